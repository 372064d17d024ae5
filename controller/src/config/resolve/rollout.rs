//! Resolves the traffic and health keys of one target: `health_check` (beside the
//! seed's `health_check_path`), `max_surge`, `drain_timeout`, `stop_grace_period`,
//! `resources`, `preset` and `protected`.

use std::time::Duration;

use haloy_api::rollout;
use haloy_api::rules::{self, Violation};
use haloy_api::spec::{DEFAULT_HEALTH_CHECK_PATH, HealthCheck, Preset, Resources, Rollout};

use super::Issues;
use crate::config::merge::{At, Merged};
use crate::config::raw::{CpusDef, DurationDef, PresetDef, StrategyDef};

/// What the traffic keys resolve to.
#[derive(Default)]
pub(super) struct Traffic {
    pub health_check: HealthCheck,
    pub rollout: Rollout,
    pub resources: Resources,
    pub preset: Option<Preset>,
    pub protected: bool,
}

/// The health check path from `health_check_path` or `health_check.path`; both
/// may be given only when they agree.
pub(super) fn health_check_path(merged: &Merged, issues: &mut Issues) -> Option<String> {
    let seed = merged.health_check_path.as_ref().map(|at| {
        let path = at.path("health_check_path");
        (path, at.value.clone())
    });
    let block = merged.health_check.as_ref().and_then(|at| {
        let path = at.path("health_check.path");
        at.value.path.clone().map(|value| (path, value))
    });
    match (seed, block) {
        (Some((a, x)), Some((_, y))) if x != y => {
            issues.add(
                a,
                format!("health_check_path {x:?} and health_check.path {y:?} disagree"),
                "keep one of them: remove health_check_path or make both the same path",
            );
            None
        }
        (Some((path, value)), _) | (None, Some((path, value))) => issues
            .check(path, rules::health_check_path(&value))
            .map(|()| value),
        (None, None) => Some(DEFAULT_HEALTH_CHECK_PATH.to_string()),
    }
}

fn duration(
    at: &At<impl Sized>,
    key: &str,
    def: &DurationDef,
    issues: &mut Issues,
) -> Option<Duration> {
    let result = match def {
        DurationDef::Seconds(n) => rollout::seconds(*n),
        DurationDef::Text(text) => rollout::duration(text),
    };
    issues.check(at.path(key), result)
}

fn optional<T>(
    at: &At<impl Sized>,
    key: &str,
    value: Option<T>,
    rule: impl FnOnce(T) -> Result<u32, Violation>,
    issues: &mut Issues,
) -> Option<u32> {
    value.and_then(|v| issues.check(at.path(key), rule(v)))
}

pub(super) fn resolve(merged: &Merged, replicas: Option<u32>, issues: &mut Issues) -> Traffic {
    let mut traffic = Traffic::default();
    if let Some(at) = &merged.health_check {
        let h = &at.value;
        let d = |key: &str, def: &Option<DurationDef>, issues: &mut Issues| {
            def.as_ref().and_then(|def| duration(at, key, def, issues))
        };
        traffic.health_check = HealthCheck {
            interval: d("health_check.interval", &h.interval, issues),
            timeout: d("health_check.timeout", &h.timeout, issues),
            retries: optional(
                at,
                "health_check.retries",
                h.retries,
                rollout::retries,
                issues,
            ),
            deadline: d("health_check.deadline", &h.deadline, issues),
            start_period: d("health_check.start_period", &h.start_period, issues)
                .unwrap_or_default(),
            expected_status: h.expected_status.and_then(|n| {
                issues.check(
                    at.path("health_check.expected_status"),
                    rollout::expected_status(n),
                )
            }),
            min_ready: h
                .min_ready_seconds
                .and_then(|n| {
                    issues.check(
                        at.path("health_check.min_ready_seconds"),
                        rollout::seconds(n),
                    )
                })
                .unwrap_or_default(),
        };
    }
    if let Some(at) = &merged.max_surge
        && let Some(surge) = issues.check(at.path("max_surge"), rollout::max_surge(at.value))
    {
        if let Some(r) = replicas.filter(|r| surge > *r) {
            issues.add(
                at.path("max_surge"),
                format!("max_surge is {surge} but the app runs {r} replica(s)"),
                "use at most the number of replicas, or leave max_surge out to start all at once",
            );
        }
        traffic.rollout.max_surge = Some(surge);
    }
    traffic.rollout.drain_timeout = merged
        .drain_timeout
        .as_ref()
        .and_then(|at| duration(at, "drain_timeout", &at.value, issues));
    traffic.rollout.stop_grace_period = merged
        .stop_grace_period
        .as_ref()
        .and_then(|at| duration(at, "stop_grace_period", &at.value, issues));
    if let Some(at) = &merged.resources {
        traffic.resources.memory_bytes = at
            .value
            .memory
            .as_ref()
            .and_then(|m| issues.check(at.path("resources.memory"), rollout::memory(m)));
        traffic.resources.nano_cpus = at.value.cpus.as_ref().and_then(|c| {
            let result = match c {
                CpusDef::Number(n) => rollout::cpus(*n),
                CpusDef::Text(t) => t
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| {
                        Violation::new(
                            format!("cpus {t:?} is not a number"),
                            "use a number such as 0.5 or 2",
                        )
                    })
                    .and_then(rollout::cpus),
            };
            issues.check(at.path("resources.cpus"), result)
        });
    }
    traffic.preset = merged.preset.as_ref().map(|at| match at.value {
        PresetDef::Database => Preset::Database,
        PresetDef::Service => Preset::Service,
    });
    if let (Some(preset), Some(strategy)) = (&merged.preset, &merged.deployment_strategy)
        && strategy.value == StrategyDef::Rolling
    {
        issues.add(
            strategy.path("deployment_strategy"),
            format!(
                "preset: {} always uses the replace strategy (one stable container)",
                match preset.value {
                    PresetDef::Database => "database",
                    PresetDef::Service => "service",
                }
            ),
            "remove deployment_strategy, or remove preset to roll out beside the old version",
        );
    }
    if let (Some(preset), Some(n)) = (&merged.preset, replicas.filter(|n| *n > 1)) {
        issues.add(
            merged
                .replicas
                .as_ref()
                .map_or_else(|| preset.path("replicas"), |at| at.path("replicas")),
            format!("an accessory (preset) runs one container, not {n}"),
            "remove replicas, or remove preset to run several replicas of an app",
        );
    }
    traffic.protected = merged.protected.as_ref().is_some_and(|at| at.value);
    if traffic.preset == Some(Preset::Database)
        && let Some(at) = merged.protected.as_ref().filter(|at| !at.value)
    {
        issues.add(
            at.path("protected"),
            "preset: database is always protected",
            "remove `protected: false`; pass --include-protected to replace or remove it",
        );
    }
    traffic
}
