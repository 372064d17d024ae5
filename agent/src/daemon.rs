//! haloyd as a long-running process: wires the real Docker and HAProxy into the
//! engine, reconciles, keeps HAProxy running, and serves the API until a signal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::certs::acme::AcmeClient;
use crate::certs::challenge::{ChallengeServer, Challenges};
use crate::certs::{CertDir, CertSettings, Certificates, Wanted};
use crate::config::{HaloydConfig, Layout};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::proxy::haproxy::{ApiRoute, Haproxy, HaproxySettings};
use crate::runtime::RuntimeError;
use crate::runtime::docker::Docker;
use crate::setup::{self, SetupError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("start-up reconciliation failed: {0}")]
    Reconcile(#[from] EngineError),
    #[error(
        "cannot listen on {addr}: {reason}; is another haloyd using the port? (api_port in haloyd.yaml)"
    )]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot prepare {path}: {reason}")]
    Prepare { path: String, reason: String },
    #[error("the API server failed: {0}")]
    Serve(String),
}

/// How often haloyd checks that HAProxy still runs.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

/// Runs haloyd until SIGTERM or SIGINT.
pub async fn run(config: HaloydConfig, config_dir: &Path) -> Result<(), DaemonError> {
    let layout = Layout {
        config_dir: config_dir.to_path_buf(),
        data_dir: config.data_dir.clone(),
    };
    let token = setup::read_token(&layout)?;
    prepare_upload_dir(&layout)?;
    let store = Store::open(&layout.db_dir())?;
    let docker = Arc::new(Docker::connect().await?);
    let haproxy = Arc::new(Haproxy::new(haproxy_settings(&layout, &config))?);
    let settings = EngineSettings {
        instance: config.instance.clone(),
        health_timeout: Duration::from_secs(config.health_check_timeout_secs),
        health_interval: Duration::from_millis(500),
        drain_timeout: Duration::from_secs(config.drain_timeout_secs),
        stop_grace: Duration::from_secs(config.stop_grace_secs),
    };
    let challenges = Challenges::default();
    let acme_socket = layout.data_dir.join("acme.sock");
    let _challenge_server =
        ChallengeServer::start(&acme_socket, challenges.clone()).map_err(|e| {
            DaemonError::Prepare {
                path: acme_socket.display().to_string(),
                reason: e.to_string(),
            }
        })?;
    let cert_dir = CertDir::new(layout.cert_dir());
    let acme = AcmeClient::new(
        config.acme_directory_url().to_string(),
        config.acme_ca_cert.clone(),
        cert_dir.clone(),
        challenges,
    );
    let certificates = Arc::new(Certificates::new(
        cert_dir,
        Arc::new(acme),
        haproxy.clone(),
        CertSettings {
            renew_before: config
                .cert_renewal_window_days
                .map(|days| Duration::from_secs(days.saturating_mul(24 * 3600))),
            check_interval: Duration::from_secs(config.cert_check_interval_secs),
        },
    ));
    haproxy.preload_certificates(&certificates.stored()).await;
    let engine = Arc::new(
        Engine::new(docker, haproxy.clone(), store, settings)
            .with_certificates(certificates.clone(), config.acme_email.clone()),
    );
    let routes = engine.reconcile().await?;
    if let (Some(domain), Some(email)) = (&config.api_domain, &config.acme_email) {
        certificates.want(
            "",
            vec![Wanted {
                domain: domain.clone(),
                names: vec![domain.clone()],
                email: email.clone(),
                app: String::new(),
            }],
        );
    }
    tracing::info!(
        directory = config.acme_directory_url(),
        "certificates come from this ACME directory"
    );
    let renewals = tokio::spawn(certificates.run());
    tracing::info!(
        apps = routes.len(),
        "routes restored from Docker and the deployment store"
    );

    // HAProxy restarts from its configuration on disk, which always matches what
    // runs, so restarting it is enough to restore every route.
    let supervisor = tokio::spawn(async move {
        loop {
            tokio::time::sleep(SUPERVISE_EVERY).await;
            match haproxy.ensure_running().await {
                Ok(true) => tracing::warn!("HAProxy was not running; started it again"),
                Ok(false) => {}
                Err(e) => tracing::error!("cannot start HAProxy: {e}"),
            }
        }
    });

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.api_port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError::Listen {
            addr,
            reason: e.to_string(),
        })?;
    tracing::info!(%addr, "serving the haloy API");
    let served = crate::api::serve(
        engine,
        token,
        layout.upload_dir(),
        TcpListenerStream::new(listener),
        shutdown_signal(),
    )
    .await;
    supervisor.abort();
    renewals.abort();
    tracing::info!("haloyd stopped; HAProxy keeps serving");
    served.map_err(|e| DaemonError::Serve(e.to_string()))
}

/// HAProxy's settings for a server's layout and settings file.
pub fn haproxy_settings(layout: &Layout, config: &HaloydConfig) -> HaproxySettings {
    HaproxySettings {
        dir: layout.haproxy_dir(),
        bind_address: config.bind_address,
        http_port: config.http_port,
        https_port: config.https_port,
        acme_socket: layout.data_dir.join("acme.sock"),
        cert_dir: layout.cert_dir(),
        api: config.api_domain.as_ref().map(|domain| ApiRoute {
            domain: domain.clone(),
            port: config.api_port,
        }),
        program: "haproxy".into(),
    }
}

/// Uploads left by an earlier run belong to deploys that can no longer finish.
fn prepare_upload_dir(layout: &Layout) -> Result<(), DaemonError> {
    let dir = layout.upload_dir();
    let fail = |e: std::io::Error| DaemonError::Prepare {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    for entry in std::fs::read_dir(&dir).map_err(fail)?.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
