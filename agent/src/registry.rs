//! The tags of a repository in its registry (Docker Registry HTTP API v2,
//! `GET /v2/<name>/tags/list`), for the `registry` history strategy's rollback
//! targets. Basic auth, and the bearer-token challenge Docker Hub and GHCR answer
//! with. Credentials go into request headers only; no error carries them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use haloy_api::spec::RegistryAuth;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest answer read from a registry.
const MAX_BODY: usize = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(
        "registry {server} refused the credentials; check image.registry.username and image.registry.password"
    )]
    Unauthorized { server: String },
    #[error("repository {repository} does not exist in registry {server}; check image.repository")]
    NotFound { server: String, repository: String },
    #[error(
        "cannot reach registry {server}: {message}; check that it is running and reachable from this server"
    )]
    Unreachable { server: String, message: String },
    #[error("registry {server} answered unexpectedly: {message}")]
    Protocol { server: String, message: String },
}

/// Where a repository lives: the API's host, scheme and the name within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The registry as users name it, for messages (`index.docker.io`, `ghcr.io`).
    pub server: String,
    /// host[:port] the API answers on.
    pub host: String,
    pub https: bool,
    /// The repository without its registry, e.g. `org/app` or `library/nginx`.
    pub name: String,
}

impl Location {
    pub fn of(repository: &str) -> Self {
        let server = haloy_api::rules::registry_server_of(repository);
        let (host, name) = if server == "index.docker.io" {
            let name = repository
                .strip_prefix("docker.io/")
                .or_else(|| repository.strip_prefix("index.docker.io/"))
                .unwrap_or(repository);
            let name = if name.contains('/') {
                name.to_string()
            } else {
                format!("library/{name}")
            };
            ("registry-1.docker.io".to_string(), name)
        } else {
            let name = repository[server.len()..].trim_start_matches('/');
            (server.clone(), name.to_string())
        };
        // Docker itself talks plain HTTP to registries on loopback only.
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let https = !(bare == "localhost" || bare.starts_with("127.") || bare == "[::1]");
        Self {
            server,
            host,
            https,
            name,
        }
    }
}

/// Every tag of `repository`, as the registry lists them.
pub async fn tags(
    repository: &str,
    auth: Option<&RegistryAuth>,
) -> Result<Vec<String>, RegistryError> {
    let at = Location::of(repository);
    let path = format!("/v2/{}/tags/list?n=10000", at.name);
    // Credentials go only to the registry they are for.
    let basic = auth.filter(|a| same_registry(&a.server, &at)).map(|a| {
        format!(
            "Basic {}",
            base64(&format!("{}:{}", a.username.expose(), a.password.expose()))
        )
    });
    let (status, challenge, body) = get(&at, at.https, &at.host, &path, basic.as_deref()).await?;
    let (status, body) = match (status, challenge) {
        (StatusCode::UNAUTHORIZED, Some(challenge)) if challenge.starts_with("Bearer ") => {
            let token = bearer_token(&at, &challenge, basic.as_deref()).await?;
            let (status, _, body) = get(
                &at,
                at.https,
                &at.host,
                &path,
                Some(&format!("Bearer {token}")),
            )
            .await?;
            (status, body)
        }
        (status, _) => (status, body),
    };
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(RegistryError::Unauthorized { server: at.server });
        }
        StatusCode::NOT_FOUND => {
            return Err(RegistryError::NotFound {
                server: at.server,
                repository: repository.to_string(),
            });
        }
        other => {
            return Err(RegistryError::Protocol {
                server: at.server,
                message: format!("HTTP {other} for the tag list"),
            });
        }
    }
    #[derive(serde::Deserialize)]
    struct TagList {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let list: TagList = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
        server: at.server.clone(),
        message: format!("the tag list is not JSON: {e}"),
    })?;
    Ok(list.tags.unwrap_or_default())
}

/// True when `configured` (`image.registry.server`) names the registry at `at`.
fn same_registry(configured: &str, at: &Location) -> bool {
    let configured = configured
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    configured == at.server
        || configured == at.host
        || (at.server == "index.docker.io"
            && matches!(configured, "docker.io" | "registry-1.docker.io"))
}

/// Answers a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge.
async fn bearer_token(
    at: &Location,
    challenge: &str,
    basic: Option<&str>,
) -> Result<String, RegistryError> {
    let params = challenge_params(challenge);
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let protocol = |message: &str| RegistryError::Protocol {
        server: at.server.clone(),
        message: message.to_string(),
    };
    let realm = param("realm").ok_or_else(|| protocol("a bearer challenge without realm"))?;
    let (https, rest) = if let Some(rest) = realm.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = realm.strip_prefix("http://")
        && !at.https
    {
        // Plain HTTP only for a registry that is itself plain HTTP (loopback): the
        // credentials must not cross a network unencrypted.
        (false, rest)
    } else {
        return Err(protocol("the token realm is not an http(s) URL"));
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut query = Vec::new();
    if let Some(service) = param("service") {
        query.push(format!("service={}", encode(&service)));
    }
    let scope = param("scope").unwrap_or_else(|| format!("repository:{}:pull", at.name));
    query.push(format!("scope={}", encode(&scope)));
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{separator}{}", query.join("&"));
    let (status, _, body) = get(at, https, host, &path, basic).await?;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized {
            server: at.server.clone(),
        });
    }
    if status != StatusCode::OK {
        return Err(protocol(&format!("HTTP {status} from the token service")));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let token: Token =
        serde_json::from_slice(&body).map_err(|_| protocol("the token answer is not JSON"))?;
    token
        .token
        .or(token.access_token)
        .ok_or_else(|| protocol("the token answer holds no token"))
}

/// `Bearer realm="a",service="b"` → [(realm, a), (service, b)].
fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r);
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
            // The comma after the closing quote, if any.
            if chars.peek() == Some(&',') {
                chars.next();
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.push((key.trim().to_string(), value));
    }
    params
}

/// Percent-encodes what a query value must not hold raw.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// One GET over a fresh HTTP/1.1 connection: status, `WWW-Authenticate`, body.
async fn get(
    at: &Location,
    https: bool,
    host: &str,
    path: &str,
    authorization: Option<&str>,
) -> Result<(StatusCode, Option<String>, Bytes), RegistryError> {
    let unreachable = |message: String| RegistryError::Unreachable {
        server: at.server.clone(),
        message,
    };
    let attempt = async {
        let address = if host.contains(':') && !host.ends_with(']') {
            host.to_string()
        } else {
            format!("{host}:{}", if https { 443 } else { 80 })
        };
        let tcp = TcpStream::connect(&address)
            .await
            .map_err(|e| unreachable(format!("connect to {address}: {e}")))?;
        let mut request = Request::get(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "haloyd")
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(authorization) = authorization {
            request = request.header(hyper::header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| unreachable(format!("bad request: {e}")))?;
        if https {
            let stream = tls(host, tcp).await.map_err(unreachable)?;
            send(TokioIo::new(stream), request)
                .await
                .map_err(unreachable)
        } else {
            send(TokioIo::new(tcp), request).await.map_err(unreachable)
        }
    };
    tokio::time::timeout(TIMEOUT, attempt)
        .await
        .map_err(|_| unreachable(format!("no answer within {} s", TIMEOUT.as_secs())))?
}

async fn send<IO>(
    io: IO,
    request: Request<Empty<Bytes>>,
) -> Result<(StatusCode, Option<String>, Bytes), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(hyper::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, challenge, body))
}

async fn tls(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h).to_string();
    let name = rustls::pki_types::ServerName::try_from(name)
        .map_err(|e| format!("bad host name {host}: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}

/// Standard base64 with padding, for the Basic authorization header.
fn base64(input: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `tag` matches a `pattern` where `*` is any run of characters and `?` one.
pub fn matches(pattern: &str, tag: &str) -> bool {
    // Greedy with one backtrack point (the latest `*`): linear in practice, however
    // many stars the pattern has.
    let (p, t) = (pattern.as_bytes(), tag.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the latest star take one more character.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Orders tags newest first by version: runs of digits compare as numbers, so
/// `v10` is newer than `v9` and `1.10.0` than `1.9.3`.
pub fn newest_first(tags: &mut [String]) {
    tags.sort_by_key(|tag| std::cmp::Reverse(version_key(tag)));
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    Number(u128),
}

fn version_key(tag: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = tag;
    while let Some(c) = rest.chars().next() {
        let digits = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(match run.parse::<u128>() {
            Ok(n) if digits => Part::Number(n),
            _ => Part::Text(run.to_string()),
        });
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_repository() {
        let hub = Location::of("someone/app");
        assert_eq!(
            (
                hub.server.as_str(),
                hub.host.as_str(),
                hub.https,
                hub.name.as_str()
            ),
            (
                "index.docker.io",
                "registry-1.docker.io",
                true,
                "someone/app"
            )
        );
        assert_eq!(Location::of("nginx").name, "library/nginx");
        let ghcr = Location::of("ghcr.io/org/app");
        assert_eq!(
            (ghcr.host.as_str(), ghcr.name.as_str(), ghcr.https),
            ("ghcr.io", "org/app", true)
        );
        let local = Location::of("127.0.0.1:5000/team/app");
        assert_eq!(
            (local.host.as_str(), local.name.as_str(), local.https),
            ("127.0.0.1:5000", "team/app", false)
        );
    }

    #[test]
    fn patterns_and_version_order() {
        assert!(matches("v*", "v12") && matches("v?", "v1") && !matches("v?", "v12"));
        assert!(!matches("v*", "latest") && matches("*", "anything"));
        assert!(
            matches("release-*-v*", "release-2026-v3") && !matches("release-*-v*", "release-v3")
        );
        assert!(matches("*a*b", "xxaxxb") && !matches("*a*b", "xxaxxbc") && matches("", ""));
        // Many stars against a long tag that does not match stays quick.
        let long = "a".repeat(200);
        assert!(!matches(&format!("{}b", "*a".repeat(20)), &long));
        let mut tags: Vec<String> = ["v1", "v10", "v9", "v2.1", "v2.10"]
            .map(String::from)
            .to_vec();
        newest_first(&mut tags);
        assert_eq!(tags, ["v10", "v9", "v2.10", "v2.1", "v1"]);
    }

    #[test]
    fn credentials_go_only_to_their_registry() {
        let at = Location::of("127.0.0.1:5000/team/app");
        assert!(same_registry("127.0.0.1:5000", &at));
        assert!(same_registry("http://127.0.0.1:5000/", &at));
        assert!(!same_registry("ghcr.io", &at));
        let hub = Location::of("library/nginx");
        assert!(same_registry("index.docker.io", &hub) && same_registry("docker.io", &hub));
        assert!(!same_registry("127.0.0.1:5000", &hub));
    }

    #[test]
    fn basic_credentials_and_challenges() {
        assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64("ab"), "YWI=");
        assert_eq!(base64("a"), "YQ==");
        let params = challenge_params(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            params[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(params[2], ("scope".into(), "repository:a/b:pull".into()));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_named_and_no_secret_leaks() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let auth = RegistryAuth {
            server: format!("127.0.0.1:{port}"),
            username: haloy_api::spec::Secret::new("u"),
            password: haloy_api::spec::Secret::new("hunter2-secret"),
        };
        let err = tags(&format!("127.0.0.1:{port}/app"), Some(&auth))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("cannot reach registry 127.0.0.1:{port}")),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
    }
}
