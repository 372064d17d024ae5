//! Server set-up behind `haloyadm init` and `haloyadm api token`: directories, the
//! settings file and the API token; `ready` waits for a started haloyd to serve.

pub mod ready;

use std::io::Read;
use std::path::{Path, PathBuf};

use haloy_api::spec::Secret;

use crate::certs::files::write_private;
use crate::config::{HaloydConfig, Layout, TOKEN_VAR};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("haloyd is already initialized ({}); run `haloyadm start`, or pass --force to rewrite its settings (the API token is kept)", path.display())]
    AlreadyInitialized { path: PathBuf },
    #[error("haloyd is not initialized (no {}); run `haloyadm init{}`", path.display(), if *local { " --local-install" } else { "" })]
    NotInitialized { path: PathBuf, local: bool },
    #[error("{0}")]
    Invalid(#[from] crate::config::ConfigProblem),
    #[error("{0}")]
    Load(#[from] crate::config::ConfigError),
    #[error("cannot write the settings: {0}")]
    Encode(#[source] serde_yaml::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has no {TOKEN_VAR}; run `haloyadm init --force` to create a token", path.display())]
    NoToken { path: PathBuf },
    #[error("haloyd's API certificate: {0}")]
    ApiCertificate(#[from] crate::certs::selfsigned::SelfSignedError),
}

/// What `init` creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub layout: Layout,
    pub api_port: u16,
    pub http_port: u16,
    pub https_port: u16,
    pub api_domain: Option<String>,
    pub acme_email: Option<String>,
    pub bind_address: std::net::IpAddr,
    pub acme_directory: Option<String>,
    pub acme_staging: bool,
    pub acme_ca_cert: Option<PathBuf>,
    pub api_tls_port: Option<u16>,
    pub force: bool,
    /// Containers (what users get) or host processes (test suites).
    pub run_as: crate::config::RunAs,
    /// `None`: an existing install's, else the official image
    /// ([`crate::config::DEFAULT_HAPROXY_IMAGE`]).
    pub haproxy_image: Option<String>,
}

/// Creates the directories, `haloyd.yaml` and (unless one exists) the API token.
pub fn init(options: &InitOptions) -> Result<(HaloydConfig, Secret), SetupError> {
    let layout = &options.layout;
    let config_path = layout.config_file();
    if config_path.exists() && !options.force {
        return Err(SetupError::AlreadyInitialized { path: config_path });
    }
    // Keep the instance of an existing install (its containers carry it) and the
    // protection its operator chose.
    let existing = HaloydConfig::load(&config_path).ok();
    let (protection, api_limits) = existing
        .as_ref()
        .map(|e| (e.protection.clone(), e.api_limits.clone()))
        .unwrap_or_default();
    let haproxy_image = options
        .haproxy_image
        .clone()
        .or_else(|| existing.as_ref().map(|e| e.haproxy_image.clone()))
        .unwrap_or_else(|| crate::config::DEFAULT_HAPROXY_IMAGE.to_string());
    let metrics_address = existing.as_ref().map_or_else(
        || crate::config::DEFAULT_METRICS_ADDRESS.to_string(),
        |e| e.metrics_address.clone(),
    );
    let instance = match existing {
        Some(existing) => existing.instance,
        None => new_token()
            .map(|t| t.expose()[..12].to_string())
            .map_err(|source| SetupError::Read {
                path: PathBuf::from("/dev/urandom"),
                source,
            })?,
    };
    let config = HaloydConfig {
        api_port: options.api_port,
        api_domain: options.api_domain.clone(),
        acme_email: options.acme_email.clone(),
        http_port: options.http_port,
        https_port: options.https_port,
        data_dir: layout.data_dir.clone(),
        bind_address: options.bind_address,
        instance,
        health_check_timeout_secs: 60,
        drain_timeout_secs: 30,
        stop_grace_secs: 10,
        watch_interval_secs: 5,
        acme_directory: options.acme_directory.clone(),
        acme_staging: options.acme_staging,
        acme_ca_cert: options.acme_ca_cert.clone(),
        cert_renewal_window_days: None,
        cert_check_interval_secs: 3600,
        api_tls_port: options.api_tls_port,
        protection,
        api_limits,
        max_upload_bytes: crate::engine::UploadLimits::default().max_bytes,
        upload_deadline_secs: crate::engine::UploadLimits::default().deadline.as_secs(),
        run_as: options.run_as,
        haproxy_image,
        metrics_address,
    };
    config.validate()?;

    for (dir, mode) in [
        (layout.config_dir.clone(), 0o700),
        (layout.data_dir.clone(), 0o755),
        (layout.haproxy_dir(), 0o755),
        (layout.cert_dir(), 0o700),
        (layout.db_dir(), 0o700),
    ] {
        std::fs::create_dir_all(&dir)
            .and_then(|()| set_mode(&dir, mode))
            .map_err(|source| SetupError::Write { path: dir, source })?;
    }
    let token = match read_token(layout) {
        Ok(token) => token,
        Err(_) => write_new_token(layout)?,
    };
    write_config(layout, &config)?;
    Ok((config, token))
}

fn write_config(layout: &Layout, config: &HaloydConfig) -> Result<(), SetupError> {
    let path = layout.config_file();
    let yaml = serde_yaml::to_string(config).map_err(SetupError::Encode)?;
    let text = format!("# haloyd settings, written by `haloyadm init`.\n{yaml}");
    write_private(&path, text.as_bytes()).map_err(|source| SetupError::Write { path, source })
}

/// `haloyadm api domain`: serve the API at `domain` over HTTPS through HAProxy, with
/// a certificate for which `email` is the ACME contact. Takes effect at haloyd's
/// next start.
pub fn set_api_domain(
    layout: &Layout,
    domain: &str,
    email: &str,
) -> Result<HaloydConfig, SetupError> {
    let path = layout.config_file();
    let mut config = HaloydConfig::load(&path)?;
    config.api_domain = Some(domain.to_string());
    config.acme_email = Some(email.to_string());
    config.validate()?;
    write_config(layout, &config)?;
    Ok(config)
}

/// `haloyadm upgrade --haproxy-image`: HAProxy's image from now on.
pub fn set_haproxy_image(layout: &Layout, image: &str) -> Result<HaloydConfig, SetupError> {
    let path = layout.config_file();
    let mut config = HaloydConfig::load(&path)?;
    config.haproxy_image = image.to_string();
    config.validate()?;
    write_config(layout, &config)?;
    Ok(config)
}

/// haloyd's self-signed API certificate (made on first use), for `api_tls_port`.
pub fn api_identity(layout: &Layout) -> Result<crate::certs::selfsigned::Identity, SetupError> {
    let path = layout.cert_dir().join("api-selfsigned.pem");
    std::fs::create_dir_all(layout.cert_dir()).map_err(|source| SetupError::Write {
        path: layout.cert_dir(),
        source,
    })?;
    Ok(crate::certs::selfsigned::load_or_create(
        &path,
        &["haloyd".to_string()],
    )?)
}

/// The API token from the layout's `.env`.
pub fn read_token(layout: &Layout) -> Result<Secret, SetupError> {
    let path = layout.token_file();
    let text = std::fs::read_to_string(&path).map_err(|source| SetupError::Read {
        path: path.clone(),
        source,
    })?;
    token_from_text(&text).ok_or(SetupError::NoToken { path })
}

/// The token in the text of a `.env` file, if it has one.
pub fn token_from_text(text: &str) -> Option<Secret> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(TOKEN_VAR)?.strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_string())
        .find(|value| !value.is_empty())
        .map(Secret::new)
}

/// Finds the install: `--local-install` means the user's, otherwise the system's if it
/// exists, else the user's.
pub fn find_layout(local_flag: bool, home: Option<&Path>) -> Result<Layout, SetupError> {
    let local = home.map(Layout::local);
    let system = Layout::system();
    let candidates: Vec<(Layout, bool)> = if local_flag {
        local.into_iter().map(|l| (l, true)).collect()
    } else {
        std::iter::once((system, false))
            .chain(local.map(|l| (l, true)))
            .collect()
    };
    candidates
        .iter()
        .find(|(layout, _)| layout.config_file().exists())
        .map(|(layout, _)| layout.clone())
        .ok_or_else(|| {
            let (first, local) = candidates
                .first()
                .cloned()
                .unwrap_or((Layout::system(), false));
            SetupError::NotInitialized {
                path: first.config_file(),
                local,
            }
        })
}

/// `haloyadm api token --rotate`: a new token replaces the old one in the config
/// directory's `.env` (written atomically, mode 0600). A running haloyd follows the
/// file, so the old token stops working with the next call.
pub fn rotate_token(layout: &Layout) -> Result<Secret, SetupError> {
    read_token(layout)?;
    write_new_token(layout)
}

fn write_new_token(layout: &Layout) -> Result<Secret, SetupError> {
    let token = new_token().map_err(|source| SetupError::Read {
        path: PathBuf::from("/dev/urandom"),
        source,
    })?;
    let path = layout.token_file();
    write_private(
        &path,
        format!("{TOKEN_VAR}={}\n", token.expose()).as_bytes(),
    )
    .map_err(|source| SetupError::Write { path, source })?;
    Ok(token)
}

/// 32 random bytes from the kernel, hex-encoded.
fn new_token() -> std::io::Result<Secret> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(Secret::new(hex::encode(bytes)))
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
