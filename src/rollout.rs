//! How an app's replicas are checked, rolled out, limited and stopped: the
//! `health_check` block, `max_surge`, `drain_timeout`, `stop_grace_period`,
//! `resources`, `preset` and `protected`, with the rules their values obey.
//!
//! Every field is optional: what is not given keeps haloyd's defaults (haloyd.yaml),
//! so a spec from a client that knows none of these keys deploys as it always did.

use std::time::Duration;

use crate::rules::Violation;

/// The health check beyond its path (`health_check_path` stays where it was).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheck {
    /// Pause between two probes of a starting replica.
    pub interval: Option<Duration>,
    /// How long one probe may take.
    pub timeout: Option<Duration>,
    /// Failed probes (after `start_period`) before the replica counts as failed.
    pub retries: Option<u32>,
    /// How long a replica may take in total to become healthy.
    pub deadline: Option<Duration>,
    /// Failures during this time after the start do not count against `retries`.
    pub start_period: Duration,
    /// The one status that counts as healthy; `None` means any 2xx or 3xx.
    pub expected_status: Option<u16>,
    /// How long a replica must stay healthy before it takes traffic.
    pub min_ready: Duration,
}

impl HealthCheck {
    /// Whether `status` is a healthy answer.
    pub fn accepts(&self, status: u16) -> bool {
        match self.expected_status {
            Some(expected) => status == expected,
            None => (200..400).contains(&status),
        }
    }
}

/// How a deploy replaces and retires replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollout {
    /// How many new replicas may run beside the old ones during a rolling deploy;
    /// `None` means all of them at once.
    pub max_surge: Option<u32>,
    /// How long old replicas keep their open connections after the switch.
    pub drain_timeout: Option<Duration>,
    /// SIGTERM to SIGKILL for the app's containers.
    pub stop_grace_period: Option<Duration>,
}

/// Limits applied to every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in billionths of a CPU (Docker's NanoCpus).
    pub nano_cpus: Option<u64>,
}

/// Upstream's accessory presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// A database: replace strategy, one stable container, protected.
    Database,
    /// A service beside the app (a cache, a queue): replace strategy, one stable container.
    Service,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Service => "service",
        }
    }
}

/// Longest duration any of these keys takes: a day.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `"30s"`, `"500ms"`, `"2m"`, `"1m 30s"`.
pub fn duration(text: &str) -> Result<Duration, Violation> {
    let fix = "write a duration such as \"30s\", \"500ms\" or \"2m\"";
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| Violation::new(format!("{text:?} is not a duration ({e})"), fix))?;
    if parsed > MAX_DURATION {
        return Err(Violation::new(
            format!("{text:?} is longer than a day"),
            "use at most \"24h\"",
        ));
    }
    Ok(parsed)
}

/// A whole number of seconds written as a number.
pub fn seconds(value: i64) -> Result<Duration, Violation> {
    match u64::try_from(value) {
        Ok(secs) if Duration::from_secs(secs) <= MAX_DURATION => Ok(Duration::from_secs(secs)),
        _ => Err(Violation::new(
            format!("{value} seconds is out of range"),
            "use a number of seconds from 0 to 86400, or a duration such as \"30s\"",
        )),
    }
}

pub fn retries(value: i64) -> Result<u32, Violation> {
    match u32::try_from(value) {
        Ok(n @ 1..=1000) => Ok(n),
        _ => Err(Violation::new(
            format!("retries is {value}"),
            "use a whole number from 1 to 1000",
        )),
    }
}

pub fn expected_status(value: i64) -> Result<u16, Violation> {
    match u16::try_from(value) {
        Ok(code @ 100..=599) => Ok(code),
        _ => Err(Violation::new(
            format!("expected_status is {value}"),
            "use an HTTP status code from 100 to 599, e.g. 200",
        )),
    }
}

pub fn max_surge(value: i64) -> Result<u32, Violation> {
    match u32::try_from(value) {
        Ok(n @ 1..=100) => Ok(n),
        _ => Err(Violation::new(
            format!("max_surge is {value}"),
            "use a whole number from 1 to the number of replicas",
        )),
    }
}

/// Docker's memory units: `"512m"`, `"1g"`, `"300000k"`, `"1048576"` (bytes).
pub fn memory(text: &str) -> Result<u64, Violation> {
    let fix = "write a size in Docker's units, e.g. \"512m\" or \"1g\" (at least \"6m\")";
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c)),
        _ => (t, None),
    };
    let factor: u64 = match unit {
        None => 1,
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some(_) => {
            return Err(Violation::new(format!("{text:?} has an unknown unit"), fix));
        }
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| Violation::new(format!("{text:?} is not a memory size"), fix))?;
    // Docker refuses limits under 6 MiB.
    if bytes < 6 << 20 {
        return Err(Violation::new(format!("{text:?} is below 6m"), fix));
    }
    Ok(bytes)
}

/// `cpus: 0.5` → NanoCpus.
pub fn cpus(value: f64) -> Result<u64, Violation> {
    if !(value > 0.0 && value <= 1024.0) {
        return Err(Violation::new(
            format!("cpus is {value}"),
            "use a positive number of CPUs, e.g. 0.5 or 2",
        ));
    }
    // In range (0, 1024], so the product fits in u64.
    Ok((value * 1e9).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_docker_and_humans_write_them() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("soon").unwrap_err().fix.contains("\"30s\""));
        assert!(duration("2d").is_err());
        assert_eq!(memory("512m"), Ok(512 << 20));
        assert_eq!(memory("1G"), Ok(1 << 30));
        assert_eq!(memory("7340032"), Ok(7 << 20));
        assert!(memory("512x").unwrap_err().problem.contains("unknown unit"));
        assert!(memory("1m").is_err());
        assert_eq!(cpus(0.5), Ok(500_000_000));
        assert!(cpus(0.0).is_err() && cpus(f64::NAN).is_err());
    }

    #[test]
    fn expected_status_narrows_what_counts_as_healthy() {
        let any = HealthCheck::default();
        assert!(any.accepts(200) && any.accepts(302) && !any.accepts(404));
        let only = HealthCheck {
            expected_status: Some(204),
            ..HealthCheck::default()
        };
        assert!(only.accepts(204) && !only.accepts(200));
        assert!(expected_status(600).is_err() && expected_status(200).is_ok());
    }
}
