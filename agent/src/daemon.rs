//! haloyd as a long-running process: wires the real Docker and HAProxy into the
//! engine, reconciles, keeps HAProxy running, and serves the API until a signal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::config::{HaloydConfig, Layout};
use crate::engine::{Engine, EngineError, EngineSettings};
use crate::proxy::haproxy::{Haproxy, HaproxySettings};
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
    let engine = Arc::new(Engine::new(docker, haproxy.clone(), store, settings));
    let routes = engine.reconcile().await?;
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
        TcpListenerStream::new(listener),
        shutdown_signal(),
    )
    .await;
    supervisor.abort();
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
        program: "haproxy".into(),
    }
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
