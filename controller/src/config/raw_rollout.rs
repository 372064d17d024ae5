//! The traffic and health keys as written: the `health_check` block, durations,
//! `resources` and `preset`. Validation and defaults are in `resolve/rollout.rs`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// `maintenance`: what `haloy maintenance on` shows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceDef {
    /// An HTML file, relative to the config file's directory.
    pub page: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckDef {
    pub path: Option<String>,
    pub interval: Option<DurationDef>,
    pub timeout: Option<DurationDef>,
    pub retries: Option<i64>,
    pub deadline: Option<DurationDef>,
    #[serde(alias = "startPeriod")]
    pub start_period: Option<DurationDef>,
    #[serde(alias = "expectedStatus")]
    pub expected_status: Option<i64>,
    #[serde(alias = "minReadySeconds")]
    pub min_ready_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesDef {
    /// Docker's units: `"512m"`, `"1g"`.
    pub memory: Option<String>,
    pub cpus: Option<CpusDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresetDef {
    Database,
    Service,
}

/// A duration: text such as `"30s"`, or a whole number of seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationDef {
    Seconds(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for DurationDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationDef, E> {
                Ok(DurationDef::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationDef, E> {
                Ok(DurationDef::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationDef, E> {
                Ok(DurationDef::Seconds(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// `cpus: 0.5`, `cpus: 2` or `cpus: "1.5"`.
#[derive(Debug, Clone, PartialEq)]
pub enum CpusDef {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for CpusDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CpusVisitor;
        impl Visitor<'_> for CpusVisitor {
            type Value = CpusDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of CPUs such as 0.5")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CpusDef, E> {
                Ok(CpusDef::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CpusDef, E> {
                Ok(CpusDef::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CpusDef, E> {
                Ok(CpusDef::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CpusDef, E> {
                Ok(CpusDef::Number(v as f64))
            }
        }
        deserializer.deserialize_any(CpusVisitor)
    }
}
