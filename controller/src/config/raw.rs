//! The configuration file as written: every key optional so inheritance can tell
//! "not given" from "given", unknown keys refused, seed spellings accepted
//! (`builder`/`build_config`, `secret_providers`/`secretProviders`, camelCase in JSON).

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

pub use super::raw_rollout::{
    CpusDef, DurationDef, HealthCheckDef, MaintenanceDef, PresetDef, ResourcesDef,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub name: Option<String>,
    pub image: Option<RawImage>,
    pub server: Option<String>,
    #[serde(alias = "apiToken")]
    pub api_token: Option<ApiTokenDef>,
    #[serde(alias = "deploymentStrategy")]
    pub deployment_strategy: Option<StrategyDef>,
    pub domains: Option<Vec<DomainDef>>,
    #[serde(alias = "acmeEmail")]
    pub acme_email: Option<String>,
    pub replicas: Option<i64>,
    pub port: Option<PortDef>,
    #[serde(alias = "healthCheckPath")]
    pub health_check_path: Option<String>,
    pub env: Option<Vec<EnvVarDef>>,
    pub volumes: Option<Vec<String>>,
    #[serde(alias = "preDeploy")]
    pub pre_deploy: Option<Vec<String>>,
    #[serde(alias = "postDeploy")]
    pub post_deploy: Option<Vec<String>>,
    #[serde(alias = "globalPreDeploy")]
    pub global_pre_deploy: Option<Vec<String>>,
    #[serde(alias = "globalPostDeploy")]
    pub global_post_deploy: Option<Vec<String>>,
    pub targets: Option<IndexMap<String, RawTarget>>,
    #[serde(alias = "secretProviders")]
    pub secret_providers: Option<SecretProvidersDef>,
    pub network: Option<String>,
    #[serde(alias = "healthCheck")]
    pub health_check: Option<HealthCheckDef>,
    #[serde(alias = "maxSurge")]
    pub max_surge: Option<i64>,
    #[serde(alias = "drainTimeout")]
    pub drain_timeout: Option<DurationDef>,
    #[serde(alias = "stopGracePeriod")]
    pub stop_grace_period: Option<DurationDef>,
    pub resources: Option<ResourcesDef>,
    pub preset: Option<PresetDef>,
    pub protected: Option<bool>,
    pub maintenance: Option<MaintenanceDef>,
}

/// A target's overrides. Every field replaces the base's wholesale, except `image`,
/// whose unspecified fields are inherited.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub server: Option<String>,
    #[serde(alias = "apiToken")]
    pub api_token: Option<ApiTokenDef>,
    pub image: Option<RawImage>,
    #[serde(alias = "deploymentStrategy")]
    pub deployment_strategy: Option<StrategyDef>,
    pub domains: Option<Vec<DomainDef>>,
    #[serde(alias = "acmeEmail")]
    pub acme_email: Option<String>,
    pub env: Option<Vec<EnvVarDef>>,
    pub replicas: Option<i64>,
    pub port: Option<PortDef>,
    #[serde(alias = "healthCheckPath")]
    pub health_check_path: Option<String>,
    pub volumes: Option<Vec<String>>,
    #[serde(alias = "preDeploy")]
    pub pre_deploy: Option<Vec<String>>,
    #[serde(alias = "postDeploy")]
    pub post_deploy: Option<Vec<String>>,
    pub network: Option<String>,
    #[serde(alias = "healthCheck")]
    pub health_check: Option<HealthCheckDef>,
    #[serde(alias = "maxSurge")]
    pub max_surge: Option<i64>,
    #[serde(alias = "drainTimeout")]
    pub drain_timeout: Option<DurationDef>,
    #[serde(alias = "stopGracePeriod")]
    pub stop_grace_period: Option<DurationDef>,
    pub resources: Option<ResourcesDef>,
    pub preset: Option<PresetDef>,
    pub protected: Option<bool>,
    pub maintenance: Option<MaintenanceDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub build: Option<bool>,
    pub registry: Option<RegistryDef>,
    pub source: Option<ImageSourceDef>,
    pub history: Option<HistoryDef>,
    #[serde(alias = "build_config", alias = "buildConfig")]
    pub builder: Option<BuilderDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyDef {
    Rolling,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSourceDef {
    Registry,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryStrategyDef {
    Local,
    Registry,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushDef {
    Registry,
    Server,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDef {
    pub server: Option<String>,
    pub username: Option<ValueSourceDef>,
    pub password: Option<ValueSourceDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryDef {
    pub strategy: Option<HistoryStrategyDef>,
    pub count: Option<i64>,
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderDef {
    pub context: Option<String>,
    pub dockerfile: Option<String>,
    pub platform: Option<String>,
    pub args: Option<Vec<EnvVarDef>>,
    pub push: Option<PushDef>,
}

/// `value: ...` or `from: { env | secret }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSourceDef {
    pub value: Option<Scalar>,
    pub from: Option<FromDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FromDef {
    pub env: Option<String>,
    pub secret: Option<String>,
}

/// An environment variable or build argument: a name and a value source. A build
/// argument with neither `value` nor `from` passes through from the environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVarDef {
    pub name: Option<String>,
    pub value: Option<Scalar>,
    pub from: Option<FromDef>,
}

impl EnvVarDef {
    pub fn source(&self) -> ValueSourceDef {
        ValueSourceDef {
            value: self.value.clone(),
            from: self.from.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretProvidersDef {
    pub onepassword: Option<IndexMap<String, crate::secrets::OnePasswordSourceDef>>,
}

/// A scalar written as a string, number or boolean, kept as the text it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// `port` as a string (`"8080"`) or an integer (`8080`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortDef {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for PortDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = PortDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number such as 8080 or \"8080\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortDef, E> {
                Ok(PortDef::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortDef, E> {
                Ok(PortDef::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortDef, E> {
                Ok(PortDef::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// `api_token`: a bare string names an environment variable (the seed's legacy form);
/// a map is a value source.
#[derive(Debug, Clone)]
pub enum ApiTokenDef {
    EnvName(String),
    Source(ValueSourceDef),
}

impl<'de> Deserialize<'de> for ApiTokenDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokenVisitor;
        impl<'de> Visitor<'de> for TokenVisitor {
            type Value = ApiTokenDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an environment variable name or a value source (value: or from:)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ApiTokenDef, E> {
                Ok(ApiTokenDef::EnvName(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ApiTokenDef, A::Error> {
                let source =
                    ValueSourceDef::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ApiTokenDef::Source(source))
            }
        }
        deserializer.deserialize_any(TokenVisitor)
    }
}

/// A domain: `{ domain, aliases }`, or a bare host name as a shorthand.
#[derive(Debug, Clone, Default)]
pub struct DomainDef {
    pub domain: Option<String>,
    pub aliases: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for DomainDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            domain: Option<String>,
            aliases: Option<Vec<String>>,
        }
        struct DomainVisitor;
        impl<'de> Visitor<'de> for DomainVisitor {
            type Value = DomainDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a domain entry such as { domain: my-app.com, aliases: [www.my-app.com] }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DomainDef, E> {
                Ok(DomainDef {
                    domain: Some(v.to_string()),
                    aliases: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DomainDef, A::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(DomainDef {
                    domain: full.domain,
                    aliases: full.aliases,
                })
            }
        }
        deserializer.deserialize_any(DomainVisitor)
    }
}
