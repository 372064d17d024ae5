//! The one place prost types become domain types and back.
//!
//! `TryFrom<v1::X>` is also haloyd's re-validation of what a client sent: every rule
//! in [`crate::rules`] runs again here, and the error names the request field.

mod status;

pub use status::{history_strategy, history_strategy_name};

use crate::rules::{self, Violation};
use crate::spec::{
    AppSpec, DeploymentStrategy, DomainSpec, EnvVar, History, ImageSource, ImageSpec, RegistryAuth,
    Secret, VolumeMount, VolumeSource,
};
use crate::v1;

mod rollout;

/// A request field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {violation}")]
pub struct ConversionError {
    /// Path of the offending field, e.g. `spec.volumes[1]`.
    pub field: String,
    pub violation: Violation,
}

fn at(field: impl Into<String>) -> impl FnOnce(Violation) -> ConversionError {
    let field = field.into();
    move |violation| ConversionError { field, violation }
}

fn missing(field: &str) -> ConversionError {
    ConversionError {
        field: field.to_string(),
        violation: Violation::new("the field is missing", "send it; it is required"),
    }
}

impl From<AppSpec> for v1::AppSpec {
    fn from(spec: AppSpec) -> Self {
        Self {
            name: spec.name,
            image: Some(spec.image.into()),
            deployment_strategy: v1::DeploymentStrategy::from(spec.deployment_strategy).into(),
            domains: spec.domains.into_iter().map(Into::into).collect(),
            acme_email: spec.acme_email.unwrap_or_default(),
            replicas: spec.replicas,
            port: u32::from(spec.port),
            health_check_path: spec.health_check_path,
            env: spec.env.into_iter().map(Into::into).collect(),
            volumes: spec.volumes.into_iter().map(Into::into).collect(),
            network: spec.network.unwrap_or_default(),
            health_check: Some(spec.health_check.into()),
            rollout: Some(spec.rollout.into()),
            resources: Some(spec.resources.into()),
            preset: v1::Preset::from(spec.preset).into(),
            protected: spec.protected,
        }
    }
}

impl TryFrom<v1::AppSpec> for AppSpec {
    type Error = ConversionError;

    fn try_from(pb: v1::AppSpec) -> Result<Self, Self::Error> {
        rules::app_name(&pb.name).map_err(at("spec.name"))?;
        let image = pb.image.ok_or_else(|| missing("spec.image"))?.try_into()?;
        let deployment_strategy = match v1::DeploymentStrategy::try_from(pb.deployment_strategy) {
            Ok(v1::DeploymentStrategy::Replace) => DeploymentStrategy::Replace,
            Ok(_) => DeploymentStrategy::Rolling,
            Err(_) => {
                return Err(ConversionError {
                    field: "spec.deployment_strategy".into(),
                    violation: Violation::new(
                        format!("unknown strategy {}", pb.deployment_strategy),
                        "use ROLLING or REPLACE",
                    ),
                });
            }
        };
        rules::item_count(pb.domains.len(), "domains").map_err(at("spec.domains"))?;
        rules::item_count(pb.env.len(), "env variables").map_err(at("spec.env"))?;
        rules::item_count(pb.volumes.len(), "volumes").map_err(at("spec.volumes"))?;
        let domains = pb
            .domains
            .into_iter()
            .enumerate()
            .map(|(i, d)| domain_from_pb(d, i))
            .collect::<Result<Vec<_>, _>>()?;
        rules::distinct_hosts(&domains).map_err(at("spec.domains"))?;
        let acme_email = (!pb.acme_email.is_empty()).then_some(pb.acme_email);
        if let Some(email) = &acme_email {
            rules::email(email).map_err(at("spec.acme_email"))?;
        }
        // Proto3 cannot tell a left-out number from 0, and 0 replicas or port 0 is
        // never meant: both take the config's defaults, as an empty path does.
        let replicas = match pb.replicas {
            0 => crate::spec::DEFAULT_REPLICAS,
            n => rules::replicas(i64::from(n)).map_err(at("spec.replicas"))?,
        };
        let port = match pb.port {
            0 => crate::spec::DEFAULT_PORT,
            n => rules::port(i64::from(n)).map_err(at("spec.port"))?,
        };
        let health_check_path = if pb.health_check_path.is_empty() {
            crate::spec::DEFAULT_HEALTH_CHECK_PATH.to_string()
        } else {
            rules::health_check_path(&pb.health_check_path)
                .map_err(at("spec.health_check_path"))?;
            pb.health_check_path
        };
        let env = pb
            .env
            .into_iter()
            .enumerate()
            .map(|(i, var)| {
                rules::env_name(&var.name).map_err(at(format!("spec.env[{i}].name")))?;
                rules::env_value(&var.value).map_err(at(format!("spec.env[{i}].value")))?;
                Ok(EnvVar {
                    name: var.name,
                    value: Secret::new(var.value),
                    // Secret unless the client says otherwise.
                    sensitive: !var.plain,
                })
            })
            .collect::<Result<Vec<_>, ConversionError>>()?;
        let volumes = pb
            .volumes
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let text = if v.options.is_empty() {
                    format!("{}:{}", v.source, v.target)
                } else {
                    format!("{}:{}:{}", v.source, v.target, v.options.join(","))
                };
                rules::volume(&text).map_err(at(format!("spec.volumes[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let network = (!pb.network.is_empty()).then_some(pb.network);
        if let Some(network) = &network {
            rules::network_name(network).map_err(at("spec.network"))?;
        }
        Ok(Self {
            name: pb.name,
            image,
            deployment_strategy,
            domains,
            acme_email,
            replicas,
            port,
            health_check_path,
            env,
            volumes,
            network,
            health_check: rollout::health_check(pb.health_check)?,
            rollout: rollout::rollout(pb.rollout)?,
            resources: rollout::resources(pb.resources)?,
            preset: rollout::preset(pb.preset)?,
            protected: pb.protected,
        })
    }
}

impl From<DeploymentStrategy> for v1::DeploymentStrategy {
    fn from(strategy: DeploymentStrategy) -> Self {
        match strategy {
            DeploymentStrategy::Rolling => Self::Rolling,
            DeploymentStrategy::Replace => Self::Replace,
        }
    }
}

impl From<ImageSpec> for v1::ImageSpec {
    fn from(image: ImageSpec) -> Self {
        let source = match image.source {
            ImageSource::Registry => v1::ImageSourceKind::Registry,
            ImageSource::Local => v1::ImageSourceKind::Local,
        };
        Self {
            repository: image.repository,
            tag: image.tag,
            source: source.into(),
            registry: image.registry.map(Into::into),
            history: Some(image.history.into()),
        }
    }
}

impl TryFrom<v1::ImageSpec> for ImageSpec {
    type Error = ConversionError;

    fn try_from(pb: v1::ImageSpec) -> Result<Self, Self::Error> {
        rules::image_repository(&pb.repository).map_err(at("spec.image.repository"))?;
        let tag = if pb.tag.is_empty() {
            crate::spec::DEFAULT_TAG.to_string()
        } else {
            rules::image_tag(&pb.tag).map_err(at("spec.image.tag"))?;
            pb.tag
        };
        let source = match v1::ImageSourceKind::try_from(pb.source) {
            Ok(v1::ImageSourceKind::Local) => ImageSource::Local,
            _ => ImageSource::Registry,
        };
        let history = match pb.history {
            Some(h) => h.try_into()?,
            None => History::default(),
        };
        if let History::Registry { .. } = history {
            rules::immutable_tag(&tag).map_err(at("spec.image.tag"))?;
        }
        let registry = pb
            .registry
            .map(|r| {
                if r.server.is_empty() {
                    return Err(missing("spec.image.registry.server"));
                }
                rules::registry_server(&r.server).map_err(at("spec.image.registry.server"))?;
                rules::credential(&r.username).map_err(at("spec.image.registry.username"))?;
                rules::credential(&r.password).map_err(at("spec.image.registry.password"))?;
                Ok(RegistryAuth {
                    server: r.server,
                    username: Secret::new(r.username),
                    password: Secret::new(r.password),
                })
            })
            .transpose()?;
        Ok(Self {
            repository: pb.repository,
            tag,
            source,
            registry,
            history,
        })
    }
}

impl From<RegistryAuth> for v1::RegistryAuth {
    fn from(auth: RegistryAuth) -> Self {
        Self {
            server: auth.server,
            username: auth.username.expose().to_string(),
            password: auth.password.expose().to_string(),
        }
    }
}

impl From<History> for v1::History {
    fn from(history: History) -> Self {
        let (strategy, count, pattern) = match history {
            History::Local { count } => (v1::HistoryStrategy::Local, count, String::new()),
            History::Registry { count, pattern } => (v1::HistoryStrategy::Registry, count, pattern),
            History::None => (v1::HistoryStrategy::None, 0, String::new()),
        };
        Self {
            strategy: strategy.into(),
            count,
            pattern,
        }
    }
}

impl TryFrom<v1::History> for History {
    type Error = ConversionError;

    fn try_from(pb: v1::History) -> Result<Self, Self::Error> {
        let count_required = || {
            if pb.count == 0 {
                Err(ConversionError {
                    field: "spec.image.history.count".into(),
                    violation: Violation::new(
                        "count is 0",
                        "send how many versions to keep, at least 1",
                    ),
                })
            } else if pb.count as usize > rules::MAX_ITEMS {
                Err(ConversionError {
                    field: "spec.image.history.count".into(),
                    violation: Violation::new(
                        format!("count is {}", pb.count),
                        format!("keep at most {} versions", rules::MAX_ITEMS),
                    ),
                })
            } else {
                Ok(pb.count)
            }
        };
        match v1::HistoryStrategy::try_from(pb.strategy) {
            Ok(v1::HistoryStrategy::None) => Ok(History::None),
            Ok(v1::HistoryStrategy::Registry) => {
                let count = count_required()?;
                if pb.pattern.is_empty() {
                    return Err(missing("spec.image.history.pattern"));
                }
                rules::tag_pattern(&pb.pattern).map_err(at("spec.image.history.pattern"))?;
                Ok(History::Registry {
                    count,
                    pattern: pb.pattern,
                })
            }
            _ => Ok(History::Local {
                count: count_required()?,
            }),
        }
    }
}

impl From<DomainSpec> for v1::Domain {
    fn from(domain: DomainSpec) -> Self {
        Self {
            domain: domain.canonical,
            aliases: domain.aliases,
        }
    }
}

fn domain_from_pb(pb: v1::Domain, index: usize) -> Result<DomainSpec, ConversionError> {
    rules::domain_name(&pb.domain).map_err(at(format!("spec.domains[{index}].domain")))?;
    rules::item_count(pb.aliases.len(), "aliases")
        .map_err(at(format!("spec.domains[{index}].aliases")))?;
    for (j, alias) in pb.aliases.iter().enumerate() {
        rules::domain_name(alias).map_err(at(format!("spec.domains[{index}].aliases[{j}]")))?;
    }
    Ok(DomainSpec {
        canonical: pb.domain,
        aliases: pb.aliases,
    })
}

impl From<EnvVar> for v1::EnvVar {
    fn from(var: EnvVar) -> Self {
        Self {
            name: var.name,
            value: var.value.expose().to_string(),
            plain: !var.sensitive,
        }
    }
}

impl From<VolumeMount> for v1::Volume {
    fn from(mount: VolumeMount) -> Self {
        let source = match mount.source {
            VolumeSource::Named(name) => name,
            VolumeSource::Bind(path) => path,
        };
        Self {
            source,
            target: mount.container_path,
            options: mount.options,
        }
    }
}

#[cfg(test)]
mod tests;
