//! One GET to a registry or its token service, over one shared HTTP client.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{StatusCode, Url};

use super::{Location, RegistryError, location};

/// Largest answer read from a registry.
const MAX_BODY: usize = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(20);

/// The client every registry request shares: its connection pool, and the system's
/// trusted roots, loaded once per process. A failure to build it is kept, and every
/// later request reports it again.
static CLIENT: LazyLock<Result<reqwest::Client, ClientSetupError>> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable entries are skipped; an empty store fails every HTTPS request with
    // an error naming the registry.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(ClientSetupError::Tls)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent("haloyd")
        .timeout(TIMEOUT)
        // A redirect could carry the request (and its credentials) elsewhere; none of
        // the API calls made here needs one.
        .redirect(reqwest::redirect::Policy::none())
        // Like before: haloyd's own environment chooses no proxy for registry calls.
        .no_proxy()
        .build()
        .map_err(ClientSetupError::Build)
});

/// Why the shared registry client could not be built.
#[derive(Debug, thiserror::Error)]
enum ClientSetupError {
    #[error("{0}")]
    Tls(#[source] rustls::Error),
    #[error("{0}")]
    Build(#[source] reqwest::Error),
}

/// What a request sends in its `Authorization` header.
pub(super) enum Credentials<'a> {
    Basic {
        username: &'a str,
        password: &'a str,
    },
    Bearer(&'a str),
}

/// A registry's answer: status, `WWW-Authenticate` and body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: Bytes,
}

/// GETs `url` on behalf of the registry at `at` (whose name the errors carry).
pub(super) async fn get(
    at: &Location,
    url: Url,
    credentials: Option<&Credentials<'_>>,
) -> Result<Answer, RegistryError> {
    let unreachable = |message: String| RegistryError::Unreachable {
        server: at.server.clone(),
        message,
    };
    let client = CLIENT
        .as_ref()
        .map_err(|e| unreachable(format!("cannot set up HTTPS: {e}")))?;
    let address = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    // A registry's answer can send haloyd to other hosts (a token realm); how
    // connecting to those failed is not told, so that the API is no port scanner.
    let elsewhere = !location::is_registry(&url, at);
    let mut request = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    request = match credentials {
        Some(Credentials::Basic { username, password }) => {
            request.basic_auth(username, Some(password))
        }
        Some(Credentials::Bearer(token)) => request.bearer_auth(token),
        None => request,
    };
    let failed = |e: reqwest::Error| {
        if elsewhere {
            unreachable("the token service it named does not answer".into())
        } else if e.is_timeout() {
            unreachable(format!("no answer within {} s", TIMEOUT.as_secs()))
        } else if e.is_connect() {
            unreachable(format!("connect to {address}: {}", root_cause(&e)))
        } else {
            unreachable(format!("{address}: {}", chain(&e)))
        }
    };
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(RegistryError::Protocol {
                server: at.server.clone(),
                message: format!("an answer larger than {} MiB", MAX_BODY >> 20),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        challenge,
        body: body.freeze(),
    })
}

/// An error and its causes, `a: b: c`, without the URL (the caller names the host).
fn chain(error: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(e) = cause {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&e.to_string());
        cause = e.source();
    }
    if text.is_empty() {
        text = error.to_string();
    }
    text
}

/// The innermost cause, e.g. `Connection refused (os error 111)`.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
