//! Conversions of the health check, rollout, resources and preset fields of an
//! `AppSpec`. Zero on the wire means "not given", so older clients keep haloyd's
//! defaults.

use std::time::Duration;

use super::{ConversionError, at};
use crate::rollout::{self, HealthCheck, Preset, Resources, Rollout};
use crate::rules::Violation;
use crate::v1;

fn ms(duration: Option<Duration>) -> u64 {
    duration.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(field: &str, value: u64) -> Result<Option<Duration>, ConversionError> {
    if value == 0 {
        return Ok(None);
    }
    let duration = Duration::from_millis(value);
    if duration > Duration::from_secs(24 * 3600) {
        return Err(at(field)(Violation::new(
            format!("{value} ms is longer than a day"),
            "send at most 86400000",
        )));
    }
    Ok(Some(duration))
}

impl From<HealthCheck> for v1::HealthCheck {
    fn from(h: HealthCheck) -> Self {
        Self {
            interval_ms: ms(h.interval),
            timeout_ms: ms(h.timeout),
            retries: h.retries.unwrap_or(0),
            deadline_ms: ms(h.deadline),
            start_period_ms: ms(Some(h.start_period)),
            expected_status: h.expected_status.map_or(0, u32::from),
            min_ready_ms: ms(Some(h.min_ready)),
        }
    }
}

pub(super) fn health_check(pb: Option<v1::HealthCheck>) -> Result<HealthCheck, ConversionError> {
    let Some(pb) = pb else {
        return Ok(HealthCheck::default());
    };
    let f = |name: &str| format!("spec.health_check.{name}");
    let retries = match pb.retries {
        0 => None,
        n => Some(rollout::retries(i64::from(n)).map_err(at(f("retries")))?),
    };
    let expected_status = match pb.expected_status {
        0 => None,
        n => Some(rollout::expected_status(i64::from(n)).map_err(at(f("expected_status")))?),
    };
    Ok(HealthCheck {
        interval: from_ms(&f("interval_ms"), pb.interval_ms)?,
        timeout: from_ms(&f("timeout_ms"), pb.timeout_ms)?,
        retries,
        deadline: from_ms(&f("deadline_ms"), pb.deadline_ms)?,
        start_period: from_ms(&f("start_period_ms"), pb.start_period_ms)?.unwrap_or_default(),
        expected_status,
        min_ready: from_ms(&f("min_ready_ms"), pb.min_ready_ms)?.unwrap_or_default(),
    })
}

impl From<Rollout> for v1::Rollout {
    fn from(r: Rollout) -> Self {
        Self {
            max_surge: r.max_surge.unwrap_or(0),
            drain_timeout_ms: ms(r.drain_timeout),
            stop_grace_period_ms: ms(r.stop_grace_period),
        }
    }
}

pub(super) fn rollout(pb: Option<v1::Rollout>) -> Result<Rollout, ConversionError> {
    let Some(pb) = pb else {
        return Ok(Rollout::default());
    };
    let max_surge = match pb.max_surge {
        0 => None,
        n => Some(rollout::max_surge(i64::from(n)).map_err(at("spec.rollout.max_surge"))?),
    };
    Ok(Rollout {
        max_surge,
        drain_timeout: from_ms("spec.rollout.drain_timeout_ms", pb.drain_timeout_ms)?,
        stop_grace_period: from_ms("spec.rollout.stop_grace_period_ms", pb.stop_grace_period_ms)?,
    })
}

impl From<Resources> for v1::Resources {
    fn from(r: Resources) -> Self {
        Self {
            memory_bytes: r.memory_bytes.unwrap_or(0),
            nano_cpus: r.nano_cpus.unwrap_or(0),
        }
    }
}

pub(super) fn resources(pb: Option<v1::Resources>) -> Result<Resources, ConversionError> {
    let Some(pb) = pb else {
        return Ok(Resources::default());
    };
    if pb.memory_bytes != 0 && pb.memory_bytes < 6 << 20 {
        return Err(at("spec.resources.memory_bytes")(Violation::new(
            format!("{} bytes is below Docker's minimum", pb.memory_bytes),
            "send at least 6291456 (6 MiB)",
        )));
    }
    Ok(Resources {
        memory_bytes: (pb.memory_bytes != 0).then_some(pb.memory_bytes),
        nano_cpus: (pb.nano_cpus != 0).then_some(pb.nano_cpus),
    })
}

impl From<Option<Preset>> for v1::Preset {
    fn from(preset: Option<Preset>) -> Self {
        match preset {
            None => Self::Unspecified,
            Some(Preset::Database) => Self::Database,
            Some(Preset::Service) => Self::Service,
        }
    }
}

pub(super) fn preset(value: i32) -> Result<Option<Preset>, ConversionError> {
    match v1::Preset::try_from(value) {
        Ok(v1::Preset::Unspecified) => Ok(None),
        Ok(v1::Preset::Database) => Ok(Some(Preset::Database)),
        Ok(v1::Preset::Service) => Ok(Some(Preset::Service)),
        Err(_) => Err(at("spec.preset")(Violation::new(
            format!("unknown preset {value}"),
            "use DATABASE or SERVICE",
        ))),
    }
}
