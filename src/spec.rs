//! The domain model of a deployable app: what the workstation resolves from its
//! configuration and what haloyd acts on. Prost types never leak past `convert`.

use std::fmt;

pub use crate::rollout::{HealthCheck, Preset, Resources, Rollout};

/// A value that must never be printed: tokens, passwords, resolved secrets.
///
/// `Debug` and `Display` mask it; the only way to read it is [`Secret::expose`], so
/// every place that reveals a secret is greppable.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// Everything haloyd needs to run one version of an app. Secrets are already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    pub name: String,
    pub image: ImageSpec,
    pub deployment_strategy: DeploymentStrategy,
    pub domains: Vec<DomainSpec>,
    pub acme_email: Option<String>,
    pub replicas: u32,
    /// The port the app listens on inside its container.
    pub port: u16,
    pub health_check_path: String,
    pub env: Vec<EnvVar>,
    pub volumes: Vec<VolumeMount>,
    /// The Docker network; `None` means Haloy's own network.
    pub network: Option<String>,
    /// Health check timing and expectations beside `health_check_path`.
    pub health_check: HealthCheck,
    pub rollout: Rollout,
    pub resources: Resources,
    /// An accessory (database, service) rather than an app.
    pub preset: Option<Preset>,
    /// Refuses `stop --remove-containers` and replacing deploys without
    /// `--include-protected`; a database is always protected.
    pub protected: bool,
}

/// The network apps join when their config names none.
pub const DEFAULT_NETWORK: &str = "haloy-public";
/// The defaults of a config that leaves these keys out, and of a gRPC `AppSpec`
/// that leaves these fields zero or empty (grpcurl users write only what they need).
pub const DEFAULT_REPLICAS: u32 = 1;
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_TAG: &str = "latest";
pub const DEFAULT_HEALTH_CHECK_PATH: &str = "/";
pub const DEFAULT_HISTORY_COUNT: u32 = 5;

impl AppSpec {
    /// An app with the defaults a config without those keys gets: one replica on
    /// port 8080, health checks on `/`, rolling deploys, no domains, env or volumes,
    /// Haloy's own network.
    pub fn new(name: impl Into<String>, image: ImageSpec) -> Self {
        Self {
            name: name.into(),
            image,
            deployment_strategy: DeploymentStrategy::default(),
            domains: Vec::new(),
            acme_email: None,
            replicas: DEFAULT_REPLICAS,
            port: DEFAULT_PORT,
            health_check_path: DEFAULT_HEALTH_CHECK_PATH.into(),
            env: Vec::new(),
            volumes: Vec::new(),
            network: None,
            health_check: HealthCheck::default(),
            rollout: Rollout::default(),
            resources: Resources::default(),
            preset: None,
            protected: false,
        }
    }

    pub fn network_or_default(&self) -> &str {
        self.network.as_deref().unwrap_or(DEFAULT_NETWORK)
    }

    /// Whether replacing or removing the app's containers needs `--include-protected`.
    pub fn is_protected(&self) -> bool {
        self.protected || self.preset == Some(Preset::Database)
    }

    /// The strategy a deploy uses: accessories are always replaced.
    pub fn strategy(&self) -> DeploymentStrategy {
        if self.preset.is_some() {
            DeploymentStrategy::Replace
        } else {
            self.deployment_strategy
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentStrategy {
    /// Start the new version beside the old one, switch traffic, then stop the old.
    #[default]
    Rolling,
    /// Stop the old version first, for apps that cannot run twice. Not zero downtime.
    Replace,
}

impl DeploymentStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rolling => "rolling",
            Self::Replace => "replace",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub repository: String,
    pub tag: String,
    pub source: ImageSource,
    pub registry: Option<RegistryAuth>,
    pub history: History,
}

impl ImageSpec {
    /// `repository:tag` from a registry (or an upload), without credentials or
    /// history.
    pub fn registry(repository: impl Into<String>, tag: impl Into<String>) -> Self {
        Self {
            repository: repository.into(),
            tag: tag.into(),
            source: ImageSource::Registry,
            registry: None,
            history: History::None,
        }
    }

    /// `repository:tag`, the reference Docker understands.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageSource {
    /// Pull from a registry (or receive an upload from the workstation).
    #[default]
    Registry,
    /// Use an image that is already on the server; never pull.
    Local,
}

impl ImageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// Registry host, e.g. `ghcr.io` or `index.docker.io`.
    pub server: String,
    pub username: Secret,
    pub password: Secret,
}

/// How earlier versions are kept for rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// Tag each deployed image with its deployment id and keep the newest `count`.
    Local { count: u32 },
    /// Roll back to registry tags matching `pattern`, newest `count`.
    Registry { count: u32, pattern: String },
    /// No rollback.
    None,
}

impl Default for History {
    fn default() -> Self {
        Self::Local {
            count: DEFAULT_HISTORY_COUNT,
        }
    }
}

impl History {
    pub fn strategy(&self) -> &'static str {
        match self {
            Self::Local { .. } => "local",
            Self::Registry { .. } => "registry",
            Self::None => "none",
        }
    }
}

/// A canonical domain and the aliases that redirect to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    pub canonical: String,
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: Secret,
    /// Whether the value came from an environment variable or a secret provider
    /// rather than the config file; such values are masked in output and never stored.
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub source: VolumeSource,
    /// Absolute path inside the container.
    pub container_path: String,
    /// Mount options such as `ro` or `z`.
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A Docker named volume.
    Named(String),
    /// An absolute path on the server.
    Bind(String),
}

impl fmt::Display for VolumeMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            VolumeSource::Named(name) => name,
            VolumeSource::Bind(path) => path,
        };
        write!(f, "{source}:{}", self.container_path)?;
        if !self.options.is_empty() {
            write!(f, ":{}", self.options.join(","))?;
        }
        Ok(())
    }
}
