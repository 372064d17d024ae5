//! haloyd as a long-running process: wires the real Docker and HAProxy into the
//! engine, reconciles, keeps HAProxy running, and serves the API until a signal.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::certs::acme::AcmeClient;
use crate::certs::challenge::{ChallengeServer, Challenges};
use crate::certs::{CertDir, CertSettings, Certificates, Wanted};
use crate::config::{HaloydConfig, Layout};
use crate::engine::{Engine, EngineError, EngineSettings, Seams, SystemClock};
use crate::protection::Protection;
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
        "cannot listen on {addr}: {source}; is another haloyd using the port? (api_port in haloyd.yaml)"
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot serve metrics on {addr}: {source}; give metrics_address in haloyd.yaml a free port, or off"
    )]
    MetricsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot prepare {}: {source}", path.display())]
    ChallengeSocket {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare {}: {source}", path.display())]
    RequestLogSocket {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot prepare {}: {source}", path.display())]
    ApiCertificate {
        path: std::path::PathBuf,
        source: AcceptorError,
    },
    #[error("cannot prepare FAILPOINTS: {0}")]
    Failpoints(#[from] crate::engine::failpoint::FailpointError),
    #[error("the API server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// Why the TLS API's certificate and key cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum AcceptorError {
    #[error("the certificate is not PEM: {0}")]
    CertificatePem(#[source] std::io::Error),
    #[error("the key is not PEM: {0}")]
    KeyPem(#[source] std::io::Error),
    #[error("the file holds no private key")]
    NoKey,
    #[error("{0}")]
    Protocols(#[source] rustls::Error),
    #[error("the certificate and key do not fit together: {0}")]
    Mismatch(#[source] rustls::Error),
}

/// How often haloyd checks that HAProxy still runs.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

/// Runs haloyd until SIGTERM or SIGINT.
/// Raises the soft limit on open files to the hard limit (at most [`WANTED_FILES`]):
/// every API connection, container log stream and HAProxy socket is a descriptor,
/// and the default soft limit (often 1024) is reached long before the machine's.
fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        let wanted = limit.rlim_max.min(WANTED_FILES);
        if limit.rlim_cur >= wanted {
            return;
        }
        limit.rlim_cur = wanted;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
    };
    if raised {
        tracing::info!(open_files = limit.rlim_cur, "raised the open-file limit");
    }
}

/// The open-file limit haloyd asks for.
const WANTED_FILES: libc::rlim_t = 65_536;

/// `host_root` is where haloyd sees the host's root file system when it runs in a
/// container (bind-mount sources in app specs are host paths); `None` on the host.
pub async fn run(
    config: HaloydConfig,
    config_dir: &Path,
    host_root: Option<&Path>,
) -> Result<(), DaemonError> {
    raise_file_limit();
    let layout = Layout {
        config_dir: config_dir.to_path_buf(),
        data_dir: config.data_dir.clone(),
    };
    let token = setup::read_token(&layout)?;
    // Both API ports share one Auth, which follows the token file (rotation).
    let auth = crate::api::Auth::following(token, layout.token_file());
    // Earlier releases staged uploads here; haloyd now loads them as they arrive.
    let _ = std::fs::remove_dir_all(layout.data_dir.join("uploads"));
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
        ChallengeServer::start(&acme_socket, challenges.clone()).map_err(|source| {
            DaemonError::ChallengeSocket {
                path: acme_socket.clone(),
                source,
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
    #[cfg(feature = "failpoints")]
    match crate::engine::failpoint::setup() {
        Ok(configured) if !configured.is_empty() => {
            tracing::warn!(?configured, "crash points are armed (FAILPOINTS)")
        }
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let seams = Seams {
        runtime: docker,
        proxy: haproxy.clone(),
        probe: Arc::new(crate::probe::HttpProbe),
        clock: Arc::new(SystemClock),
    };
    let engine = Arc::new(
        Engine::new(seams, store, settings)
            .with_certificates(certificates.clone(), config.acme_email.clone())
            .with_api_domain(config.api_domain.clone())
            .with_protection(Protection::with_host_root(
                &config.protection,
                &layout.config_dir,
                &layout.data_dir,
                host_root.unwrap_or(Path::new("/")),
            ))
            .with_upload_limits(config.upload_limits()),
    );
    // Before recovery starts HAProxy, so its first requests are counted.
    let request_log_socket = haproxy.request_log_socket().to_path_buf();
    let _request_log =
        crate::metrics::RequestLog::start(&request_log_socket, engine.metrics().clone()).map_err(
            |source| DaemonError::RequestLogSocket {
                path: request_log_socket.clone(),
                source,
            },
        )?;
    let recovery = engine.recover().await?;
    // Without an API domain (or an address to request it with), a certificate
    // requested for an earlier one is dropped.
    let api_certificate = match (&config.api_domain, &config.acme_email) {
        (Some(domain), Some(email)) => vec![Wanted {
            domain: domain.clone(),
            names: vec![domain.clone()],
            email: email.clone(),
            app: String::new(),
        }],
        _ => Vec::new(),
    };
    certificates.want("", api_certificate);
    tracing::info!(
        directory = config.acme_directory_url(),
        "certificates come from this ACME directory"
    );
    let renewals = tokio::spawn(certificates.run());
    let watchdog = (config.watch_interval_secs > 0)
        .then(|| engine.spawn_watchdog(Duration::from_secs(config.watch_interval_secs)));
    tracing::info!(
        routed = recovery.routed,
        recovering = recovery.recovering,
        skipped = recovery.skipped.len(),
        "routes restored from Docker, HAProxy and the deploy journal"
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

    let tls_api = match config.api_tls_port {
        Some(port) => Some(
            serve_tls_api(
                SocketAddr::new(config.bind_address, port),
                &layout,
                engine.clone(),
                auth.clone(),
                config.api_limits.clone(),
            )
            .await?,
        ),
        None => None,
    };

    let sampler = engine.spawn_traffic_sampler();
    let metrics = match config.metrics_addr().ok().flatten() {
        Some(addr) => {
            let listener = crate::metrics::serve::listen(addr)
                .map_err(|source| DaemonError::MetricsListen { addr, source })?;
            tracing::info!(%addr, "serving Prometheus metrics at /metrics");
            Some(tokio::spawn(crate::metrics::serve::serve(
                listener,
                engine.clone(),
            )))
        }
        None => None,
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.api_port));
    let listener =
        crate::net::listen(addr).map_err(|source| DaemonError::Listen { addr, source })?;
    tracing::info!(%addr, "serving the haloy API");
    let served = crate::api::serve(
        engine,
        auth,
        &config.api_limits,
        crate::net::incoming(listener, "the API port"),
        shutdown_signal(),
    )
    .await;
    supervisor.abort();
    renewals.abort();
    sampler.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if let Some(tls_api) = tls_api {
        tls_api.abort();
    }
    tracing::info!("haloyd stopped; HAProxy keeps serving");
    served.map_err(DaemonError::Serve)
}

/// Serves the API over TLS on `addr` with haloyd's self-signed certificate (made on
/// first use and kept in cert-storage), for clients that pin its fingerprint.
async fn serve_tls_api(
    addr: SocketAddr,
    layout: &Layout,
    engine: Arc<Engine>,
    auth: crate::api::Auth,
    limits: crate::api::ApiLimits,
) -> Result<tokio::task::JoinHandle<()>, DaemonError> {
    let identity = setup::api_identity(layout)?;
    let fingerprint = identity.fingerprint().unwrap_or_default();
    let tls = tls_acceptor(&identity).map_err(|source| DaemonError::ApiCertificate {
        path: layout.cert_dir().join("api-selfsigned.pem"),
        source,
    })?;
    let listener =
        crate::net::listen(addr).map_err(|source| DaemonError::Listen { addr, source })?;
    tracing::info!(%addr, %fingerprint, "serving the haloy API over TLS with haloyd's own certificate");
    // Handshakes run apart from the accept loop, so a slow client holds up no other.
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let accept = tokio::spawn(async move {
        loop {
            let accepted = listener.accept().await;
            let Some((tcp, _)) = crate::net::accepted(accepted, "the TLS API port").await else {
                continue;
            };
            crate::net::no_delay(&tcp);
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!("TLS handshake on the API failed: {e}"),
                    Err(_) => tracing::debug!("TLS handshake on the API timed out"),
                }
            });
        }
    });
    Ok(tokio::spawn(async move {
        let served = crate::api::serve(
            engine,
            auth,
            &limits,
            tokio_stream::wrappers::ReceiverStream::new(rx),
            shutdown_signal(),
        )
        .await;
        accept.abort();
        if let Err(e) = served {
            tracing::error!("the TLS API server failed: {e}");
        }
    }))
}

fn tls_acceptor(
    identity: &crate::certs::selfsigned::Identity,
) -> Result<tokio_rustls::TlsAcceptor, AcceptorError> {
    let certs = rustls_pemfile::certs(&mut identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(AcceptorError::CertificatePem)?;
    let key = rustls_pemfile::private_key(&mut identity.key_pem.as_bytes())
        .map_err(AcceptorError::KeyPem)?
        .ok_or(AcceptorError::NoKey)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(AcceptorError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(AcceptorError::Mismatch)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
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
        in_container: config.run_as == crate::config::RunAs::Docker,
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
