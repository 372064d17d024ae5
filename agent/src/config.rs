//! `haloyd.yaml`: the server's settings, written by `haloyadm init` and read by
//! haloyd at start. Unknown keys are refused so a typo never silently does nothing.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::ApiLimits;
use crate::engine::UploadLimits;
use crate::protection::ProtectionConfig;

mod problem;

pub use problem::ConfigProblem;

/// Where a server's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `haloyd.yaml` and `.env` (the API token).
    pub config_dir: PathBuf,
    /// `haproxy-config/`, `cert-storage/`, `db/`.
    pub data_dir: PathBuf,
}

impl Layout {
    /// `/etc/haloy` and `/var/lib/haloy`.
    pub fn system() -> Self {
        Self {
            config_dir: PathBuf::from("/etc/haloy"),
            data_dir: PathBuf::from("/var/lib/haloy"),
        }
    }

    /// `~/.config/haloy` and `~/.local/share/haloy`, for non-root installs.
    pub fn local(home: &Path) -> Self {
        Self {
            config_dir: home.join(".config/haloy"),
            data_dir: home.join(".local/share/haloy"),
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("haloyd.yaml")
    }

    pub fn token_file(&self) -> PathBuf {
        self.config_dir.join(".env")
    }

    pub fn haproxy_dir(&self) -> PathBuf {
        self.data_dir.join("haproxy-config")
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.data_dir.join("cert-storage")
    }

    pub fn db_dir(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    /// haloyd's pid file and log, written by `haloyadm start`.
    pub fn haloyd_pid_file(&self) -> PathBuf {
        self.data_dir.join("haloyd.pid")
    }

    pub fn haloyd_log(&self) -> PathBuf {
        self.data_dir.join("haloyd.log")
    }
}

/// The variable in `.env` that holds the API token.
pub const TOKEN_VAR: &str = "HALOY_API_TOKEN";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaloydConfig {
    /// Port of the gRPC API on 127.0.0.1.
    #[serde(default = "default_api_port")]
    pub api_port: u16,
    /// Domain that serves the API over TLS through HAProxy, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_domain: Option<String>,
    /// Contact address for ACME accounts; the fallback for apps that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_email: Option<String>,
    /// HAProxy's plain HTTP port.
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// HAProxy's HTTPS port.
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Data directory (HAProxy config, certificates, database).
    pub data_dir: PathBuf,
    /// Address HAProxy's frontends listen on.
    #[serde(default = "default_bind_address")]
    pub bind_address: IpAddr,
    /// Marks this server's containers, so several haloyd can share one Docker.
    #[serde(default = "default_instance")]
    pub instance: String,
    /// Seconds a new container may take to pass its health check.
    #[serde(default = "default_health_timeout")]
    pub health_check_timeout_secs: u64,
    /// Seconds old replicas may keep sessions open after traffic moved.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_secs: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping a container.
    #[serde(default = "default_stop_grace")]
    pub stop_grace_secs: u64,
    /// Seconds between two checks of the replicas that serve (the watchdog); 0 turns
    /// the watchdog off.
    #[serde(default = "default_watch_interval")]
    pub watch_interval_secs: u64,
    /// ACME directory URL for certificates; Let's Encrypt's production directory
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    /// Use Let's Encrypt's staging directory (untrusted certificates, generous limits).
    #[serde(default, skip_serializing_if = "is_false")]
    pub acme_staging: bool,
    /// A PEM CA certificate to trust for the ACME directory's own HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme_ca_cert: Option<PathBuf>,
    /// Renew certificates with less than this many days left. Unset: 30 days, or a
    /// third of the lifetime for certificates valid less than 90 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_renewal_window_days: Option<u64>,
    /// Seconds between two looks for certificates to renew.
    #[serde(default = "default_cert_check_interval")]
    pub cert_check_interval_secs: u64,
    /// Port on `bind_address` where haloyd serves the API over TLS with its own
    /// self-signed certificate (clients pin its fingerprint); off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_tls_port: Option<u16>,
    /// Bind mounts and networks apps may not use, and exceptions (see
    /// [`crate::protection`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub protection: ProtectionConfig,
    /// Bounds on the API's connections (see [`crate::api::guard`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub api_limits: ApiLimits,
    /// The largest image archive a deploy may upload, in bytes.
    #[serde(
        default = "default_max_upload_bytes",
        skip_serializing_if = "is_default_max_upload"
    )]
    pub max_upload_bytes: u64,
    /// Seconds a whole upload may take, however steadily it arrives.
    #[serde(
        default = "default_upload_deadline",
        skip_serializing_if = "is_default_upload_deadline"
    )]
    pub upload_deadline_secs: u64,
    /// How haloyd and HAProxy run: `docker` (containers that `haloyadm start`
    /// creates and Docker restarts; what `haloyadm init` writes) or `processes`
    /// (host processes, for test suites that run many haloyd instances; the meaning
    /// of a haloyd.yaml written before containers existed).
    #[serde(default)]
    pub run_as: RunAs,
    /// HAProxy's image when `run_as` is `docker` (`haloyadm init --haproxy-image`).
    #[serde(default = "default_haproxy_image")]
    pub haproxy_image: String,
    /// Where haloyd serves Prometheus metrics (`GET /metrics`): `host:port`, or
    /// `off` (or empty) for none. Loopback by default (see [`crate::metrics`]).
    #[serde(default = "default_metrics_address")]
    pub metrics_address: String,
}

/// Where metrics are served unless haloyd.yaml says otherwise.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9101";

fn default_metrics_address() -> String {
    DEFAULT_METRICS_ADDRESS.to_string()
}

/// How haloyd and HAProxy run on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunAs {
    /// Docker containers with a restart policy.
    Docker,
    /// Host processes that `haloyadm start` spawns; haloyd restarts HAProxy.
    #[default]
    Processes,
}

/// The official HAProxy image, 2.6 or later (an LTS branch).
pub const DEFAULT_HAPROXY_IMAGE: &str = "haproxy:2.8";

fn default_haproxy_image() -> String {
    DEFAULT_HAPROXY_IMAGE.to_string()
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn default_max_upload_bytes() -> u64 {
    UploadLimits::default().max_bytes
}

fn is_default_max_upload(value: &u64) -> bool {
    *value == default_max_upload_bytes()
}

fn default_upload_deadline() -> u64 {
    UploadLimits::default().deadline.as_secs()
}

fn is_default_upload_deadline(value: &u64) -> bool {
    *value == default_upload_deadline()
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn default_cert_check_interval() -> u64 {
    3600
}

fn default_bind_address() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

fn default_instance() -> String {
    "default".into()
}

fn default_health_timeout() -> u64 {
    60
}

fn default_drain_timeout() -> u64 {
    30
}

fn default_stop_grace() -> u64 {
    10
}

fn default_watch_interval() -> u64 {
    5
}

fn default_api_port() -> u16 {
    9999
}

fn default_http_port() -> u16 {
    80
}

fn default_https_port() -> u16 {
    443
}

/// What follows a host in an HTTPS URL for `port`: nothing for the default 443,
/// `:<port>` otherwise (redirects, and the address `haloy server add` is given).
pub fn https_port_suffix(port: u16) -> String {
    match port {
        443 => String::new(),
        port => format!(":{port}"),
    }
}

impl HaloydConfig {
    /// `:<https_port>` unless it is 443; see [`https_port_suffix`].
    pub fn https_suffix(&self) -> String {
        https_port_suffix(self.https_port)
    }

    /// The ACME directory certificates come from.
    pub fn acme_directory_url(&self) -> &str {
        match (&self.acme_directory, self.acme_staging) {
            (Some(url), _) => url,
            (None, true) => crate::certs::LETS_ENCRYPT_STAGING,
            (None, false) => crate::certs::LETS_ENCRYPT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}; run `haloyadm init` first")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}; fix the file or run `haloyadm init --force`")]
    Syntax {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{path}: {source}; fix the file or run `haloyadm init --force`")]
    Invalid {
        path: PathBuf,
        source: ConfigProblem,
    },
}

impl HaloydConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_yaml::from_str(&text).map_err(|source| ConfigError::Syntax {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate().map_err(|source| ConfigError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigProblem> {
        self.api_limits.validate()?;
        let mut ports = vec![
            ("api_port", self.api_port),
            ("http_port", self.http_port),
            ("https_port", self.https_port),
        ];
        if let Some(port) = self.api_tls_port {
            ports.push(("api_tls_port", port));
        }
        if let Some(addr) = self.metrics_addr()? {
            ports.push(("metrics_address", addr.port()));
        }
        for &(key, port) in &ports {
            if port == 0 {
                return Err(ConfigProblem::ZeroPort(key));
            }
        }
        for (i, (key_a, a)) in ports.iter().enumerate() {
            if let Some((key_b, _)) = ports[i + 1..].iter().find(|(_, b)| b == a) {
                return Err(ConfigProblem::SamePort {
                    first: key_a,
                    second: key_b,
                    port: *a,
                });
            }
        }
        let instance_ok = !self.instance.is_empty()
            && self
                .instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !instance_ok {
            return Err(ConfigProblem::Instance(self.instance.clone()));
        }
        if self.health_check_timeout_secs == 0 {
            return Err(ConfigProblem::Zero {
                key: "health_check_timeout_secs",
                fix: "use at least 1",
            });
        }
        if let Some(domain) = &self.api_domain {
            haloy_api::rules::domain_name(domain).map_err(|violation| ConfigProblem::Rule {
                key: "api_domain",
                violation,
            })?;
        }
        if let Some(email) = &self.acme_email {
            haloy_api::rules::email(email).map_err(|violation| ConfigProblem::Rule {
                key: "acme_email",
                violation,
            })?;
        }
        if self.api_domain.is_some() && self.acme_email.is_none() {
            return Err(ConfigProblem::ApiDomainWithoutEmail);
        }
        if let Some(url) = &self.acme_directory {
            if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                return Err(ConfigProblem::AcmeDirectory {
                    url: url.clone(),
                    example: crate::certs::LETS_ENCRYPT,
                });
            }
            if self.acme_staging {
                return Err(ConfigProblem::AcmeDirectoryAndStaging);
            }
        }
        if let Some(path) = &self.acme_ca_cert
            && !path.is_absolute()
        {
            return Err(ConfigProblem::RelativeCaCert(path.clone()));
        }
        if self.cert_check_interval_secs == 0 {
            return Err(ConfigProblem::Zero {
                key: "cert_check_interval_secs",
                fix: "use at least 1",
            });
        }
        if self.max_upload_bytes == 0 {
            return Err(ConfigProblem::Zero {
                key: "max_upload_bytes",
                fix: "use the largest image archive to accept, in bytes (10737418240 is 10 GiB)",
            });
        }
        if self.upload_deadline_secs == 0 {
            return Err(ConfigProblem::Zero {
                key: "upload_deadline_secs",
                fix: "use at least 1 (1800 is 30 minutes)",
            });
        }
        let image = &self.haproxy_image;
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigProblem::HaproxyImage(image.clone()));
        }
        Ok(())
    }

    /// The address metrics are served on; `None` when `metrics_address` is `off` or
    /// empty. [`HaloydConfig::validate`] has checked it.
    pub fn metrics_addr(&self) -> Result<Option<std::net::SocketAddr>, ConfigProblem> {
        let text = self.metrics_address.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let addr: std::net::SocketAddr = text
            .parse()
            .map_err(|_| ConfigProblem::MetricsAddress(text.to_string()))?;
        if addr.port() == 0 {
            return Err(ConfigProblem::ZeroPort("metrics_address"));
        }
        Ok(Some(addr))
    }

    /// The upload limits the engine enforces.
    pub fn upload_limits(&self) -> UploadLimits {
        UploadLimits {
            max_bytes: self.max_upload_bytes,
            deadline: std::time::Duration::from_secs(self.upload_deadline_secs),
            ..UploadLimits::default()
        }
    }
}

#[cfg(test)]
mod tests;
