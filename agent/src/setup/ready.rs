//! Waiting for a freshly started haloyd to serve: `haloyadm start` returns once haloyd
//! answers on its API and reports HAProxy, or fails with the end of haloyd's log.

use std::time::{Duration, Instant};

use haloy_api::spec::Secret;
use haloy_api::v1::{VersionRequest, haloy_client::HaloyClient};

use crate::config::{HaloydConfig, Layout};
use crate::process;

/// What a serving haloyd reports about itself.
#[derive(Debug, Clone)]
pub struct Serving {
    pub haloyd: String,
    pub haproxy: String,
    pub docker: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("haloyd exited during start-up; the end of {}:\n{tail}", log.display())]
    Exited {
        log: std::path::PathBuf,
        tail: String,
    },
    #[error("haloyd did not answer within {} s; see {}", timeout.as_secs(), log.display())]
    Timeout {
        timeout: Duration,
        #[source]
        last: Unanswered,
        log: std::path::PathBuf,
    },
}

/// Why one attempt to ask haloyd got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    #[error("the API token has characters that cannot go in a header")]
    TokenHeader(#[source] tonic::metadata::errors::InvalidMetadataValue),
    #[error("cannot connect to 127.0.0.1:{port}")]
    Connect {
        port: u16,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{}", .0.message())]
    Call(#[source] tonic::Status),
    #[error("HAProxy does not answer yet")]
    NoHaproxy,
}

/// Polls haloyd (process `pid`) on its local API until it answers and HAProxy is up,
/// for at most `timeout`.
pub async fn wait_until_serving(
    layout: &Layout,
    config: &HaloydConfig,
    token: &Secret,
    pid: u32,
    timeout: Duration,
) -> Result<Serving, ReadyError> {
    let deadline = Instant::now() + timeout;
    loop {
        if !process::exists(pid) {
            return Err(ReadyError::Exited {
                log: layout.haloyd_log(),
                tail: process::log_tail(&layout.haloyd_log(), 20),
            });
        }
        let last = match ask_version(config.api_port, token).await {
            Ok(serving) if !serving.haproxy.is_empty() => return Ok(serving),
            Ok(_) => Unanswered::NoHaproxy,
            Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(ReadyError::Timeout {
                timeout,
                last,
                log: layout.haloyd_log(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One Version call on 127.0.0.1:`port`: haloyd's, HAProxy's and Docker's versions.
pub async fn ask_version(port: u16, token: &Secret) -> Result<Serving, Unanswered> {
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {}", token.expose())
        .parse()
        .map_err(Unanswered::TokenHeader)?;
    let connect = |source| Unanswered::Connect { port, source };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .map_err(connect)?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(connect)?;
    let mut client =
        HaloyClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
            Ok(request)
        });
    let version = client
        .version(VersionRequest {})
        .await
        .map_err(Unanswered::Call)?
        .into_inner();
    Ok(Serving {
        haloyd: version.haloyd,
        haproxy: version.haproxy,
        docker: version.docker,
    })
}
