//! How the CLI reaches haloyd: plaintext gRPC only to loopback addresses; TLS
//! otherwise, trusting the system's roots (an API domain with an ACME certificate
//! behind HAProxy), a CA bundle given to `haloy server add --ca-cert`, or haloyd's
//! own self-signed certificate pinned by its SHA-256 fingerprint
//! (`haloy server add --fingerprint`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use haloy_api::fingerprint::{sha256_hex, with_colons};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Channel, Endpoint};

use crate::address::ServerAddress;

/// haloyd's plaintext port when a loopback server is given without one.
pub const DEFAULT_API_PORT: u16 = 9999;
/// The port of a TLS server given without one: HAProxy's HTTPS.
pub const DEFAULT_TLS_PORT: u16 = 443;

/// What a server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's trusted roots.
    SystemRoots,
    /// The CA certificates in this PEM file.
    CaBundle(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint (64 upper-case hex digits).
    Fingerprint(String),
}

/// How to talk to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    Plaintext,
    Tls(Trust),
}

/// The TLS settings `haloy server add` recorded for a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub fingerprint: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// TLS even to a loopback address (the server was added as `https://…`).
    pub tls: bool,
}

/// Plaintext to loopback unless TLS was asked for (`https://`, a fingerprint or a
/// CA); TLS to everything else, and never plaintext there, even when asked.
pub fn security(
    written: &str,
    address: &ServerAddress,
    options: &TlsOptions,
) -> Result<Security, PlaintextRefused> {
    let written = written.trim();
    if let Some(fingerprint) = &options.fingerprint {
        return Ok(Security::Tls(Trust::Fingerprint(fingerprint.clone())));
    }
    if let Some(ca) = &options.ca_cert {
        return Ok(Security::Tls(Trust::CaBundle(ca.clone())));
    }
    refuse_plaintext(written, address)?;
    if address.is_loopback() && !written.starts_with("https://") && !options.tls {
        return Ok(Security::Plaintext);
    }
    Ok(Security::Tls(Trust::SystemRoots))
}

/// An explicit `http://` is only allowed for loopback servers: the API token would
/// cross the network in the clear.
pub fn refuse_plaintext(written: &str, address: &ServerAddress) -> Result<(), PlaintextRefused> {
    if written.trim().starts_with("http://") && !address.is_loopback() {
        return Err(PlaintextRefused {
            address: address.to_string(),
            host: address.host.clone(),
        });
    }
    Ok(())
}

/// `http://` to a server that is not a loopback address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "haloy does not send the API token over plaintext to {address}, which is not a loopback address; serve the API over TLS: `haloyadm api domain <domain> <email>` on the server, then `haloy server add <domain> <token>`; or `haloyadm init --api-tls-port <port>` and `haloy server add {host}:<port> <token> --fingerprint <sha256 from haloyadm api token>`"
)]
pub struct PlaintextRefused {
    pub address: String,
    pub host: String,
}

/// A `--fingerprint` that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--fingerprint {given:?} is not a SHA-256 fingerprint; pass the 64 hex digits (colons allowed) that `haloyadm api token` prints on the server"
)]
pub struct FingerprintError {
    pub given: String,
}

/// `AA:BB:…`, `aabb…` or `sha256:…` → 64 upper-case hex digits.
pub fn normalize_fingerprint(text: &str) -> Result<String, FingerprintError> {
    let bare = text.trim();
    let bare = bare
        .strip_prefix("sha256:")
        .or_else(|| bare.strip_prefix("SHA256:"))
        .or_else(|| bare.strip_prefix("sha256 Fingerprint="))
        .unwrap_or(bare);
    let hex: String = bare.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FingerprintError {
            given: text.to_string(),
        });
    }
    Ok(hex.to_ascii_uppercase())
}

/// Accepts exactly one certificate, by fingerprint; the handshake's signatures are
/// still checked, so only the holder of that certificate's key gets through.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = sha256_hex(end_entity);
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            // An invalid-certificate error, so the client reports it as one.
            let mismatch = NotPinned {
                got: with_colons(&got),
                pinned: with_colons(&self.fingerprint),
            };
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls settings for `trust`, speaking HTTP/2.
fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, ChannelError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ChannelError::Config)?;
    let mut config = match trust {
        Trust::Fingerprint(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                fingerprint: fingerprint.clone(),
                provider,
            }))
            .with_no_client_auth(),
        Trust::CaBundle(path) => {
            let pem = std::fs::read(path).map_err(|source| ChannelError::CaRead {
                path: path.clone(),
                source,
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|source| ChannelError::CaPem {
                    path: path.clone(),
                    source,
                })?;
                roots.add(cert).map_err(|source| ChannelError::CaCert {
                    path: path.clone(),
                    source,
                })?;
            }
            if roots.is_empty() {
                return Err(ChannelError::CaEmpty { path: path.clone() });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::SystemRoots => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(ChannelError::NoSystemRoots);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Opens the gRPC channel to `address` as `security` says. TLS is done here rather
/// than by tonic, so that an untrusted certificate fails the connection with its
/// reason instead of a bare protocol error at the first call.
pub async fn channel(
    address: &ServerAddress,
    security: &Security,
) -> Result<Channel, ChannelError> {
    let timeout = Duration::from_secs(5);
    let trust = match security {
        Security::Plaintext => {
            let port = address.port.unwrap_or(DEFAULT_API_PORT);
            return Endpoint::from_shared(format!("http://{}:{port}", address.host))
                .map_err(ChannelError::Transport)?
                .connect_timeout(timeout)
                .connect()
                .await
                .map_err(ChannelError::Transport);
        }
        Security::Tls(trust) => trust,
    };
    let port = address.port.unwrap_or(DEFAULT_TLS_PORT);
    let host = address
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = ServerName::try_from(host.clone()).map_err(|source| ChannelError::ServerName {
        host: host.clone(),
        source,
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(trust)?));
    let open = move |connector: tokio_rustls::TlsConnector,
                     host: String,
                     name: ServerName<'static>| async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        connector.connect(name, tcp).await
    };
    // The first connection is made here, so an untrusted certificate fails with its
    // reason (tonic would report a bare "transport error" at the first call).
    let first = tokio::time::timeout(timeout, open(connector.clone(), host.clone(), name.clone()))
        .await
        .map_err(|_| ChannelError::Timeout(timeout))?
        .map_err(|e| match untrusted(&e) {
            Some(refusal) => ChannelError::Untrusted(refusal.clone()),
            None => ChannelError::Connect(e),
        })?;
    let first = Arc::new(std::sync::Mutex::new(Some(first)));
    let connect = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let (connector, host, name) = (connector.clone(), host.clone(), name.clone());
        let ready = first.lock().ok().and_then(|mut f| f.take());
        async move {
            let tls = match ready {
                Some(tls) => tls,
                None => open(connector, host, name).await?,
            };
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    // tonic sees a plain endpoint; the connector above does the TLS.
    Endpoint::from_shared(format!("http://{}:{port}", address.host))
        .map_err(ChannelError::Transport)?
        .connect_timeout(timeout)
        .connect_with_connector(connect)
        .await
        .map_err(ChannelError::Transport)
}

/// Why no channel to haloyd could be opened.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The server's certificate is not trusted (unknown issuer, expired, wrong
    /// name, not the pinned one).
    #[error("{}", untrusted_reason(.0))]
    Untrusted(#[source] rustls::Error),
    #[error("cannot set up TLS: {0}")]
    Config(#[source] rustls::Error),
    #[error("cannot read the CA bundle {}: {source}; {CA_FIX}", path.display())]
    CaRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA bundle {} is not PEM: {source}; {CA_FIX}", path.display())]
    CaPem {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA bundle {} has a bad certificate: {source}; {CA_FIX}", path.display())]
    CaCert {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("the CA bundle {} holds no certificate; {CA_FIX}", path.display())]
    CaEmpty { path: PathBuf },
    #[error(
        "the system has no trusted root certificates (install ca-certificates), or pass --ca-cert <pem> to `haloy server add`"
    )]
    NoSystemRoots,
    #[error("{host} cannot be a TLS server name: {source}")]
    ServerName {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
    #[error("no TLS connection within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("{}", source_chain(.0))]
    Connect(#[source] std::io::Error),
    #[error("{}", source_chain(.0))]
    Transport(#[source] tonic::transport::Error),
}

const CA_FIX: &str = "fix it with `haloy server add <server> <token> --force --ca-cert <pem>`";

/// A pinned fingerprint that does not match the server's certificate.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate has fingerprint {got}, not the pinned {pinned}")]
struct NotPinned {
    got: String,
    pinned: String,
}

/// A certificate refusal as the user reads it: rustls prints the causes it does not
/// describe itself (ours among them) in debug form, so those are written out here.
pub fn untrusted_reason(refusal: &rustls::Error) -> String {
    match refusal {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            format!("invalid peer certificate: {other}")
        }
        other => other.to_string(),
    }
}

/// The certificate refusal anywhere in `error`'s causes: rustls's error as
/// tokio-rustls wraps it in an `io::Error`, or on its own.
pub fn untrusted<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(cause) = next {
        let found = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(refusal @ rustls::Error::InvalidCertificate(_)) = found {
            return Some(refusal);
        }
        next = cause.source();
    }
    None
}

/// An error and its causes, "a: b: c", without repeats.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> ServerAddress {
        ServerAddress::parse(text).unwrap()
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let none = TlsOptions::default();
        assert_eq!(
            security("127.0.0.1:9999", &address("127.0.0.1:9999"), &none),
            Ok(Security::Plaintext)
        );
        assert_eq!(
            security("haloy.example.com", &address("haloy.example.com"), &none),
            Ok(Security::Tls(Trust::SystemRoots))
        );
        let refused = security(
            "http://haloy.example.com",
            &address("http://haloy.example.com"),
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains("not a loopback address"), "{refused}");
        assert!(refused.contains("haloyadm api domain"), "{refused}");
        let pinned = TlsOptions {
            fingerprint: Some("AB".repeat(32)),
            ..TlsOptions::default()
        };
        let forced = TlsOptions {
            tls: true,
            ..TlsOptions::default()
        };
        assert_eq!(
            security("localhost:8443", &address("localhost:8443"), &forced),
            Ok(Security::Tls(Trust::SystemRoots))
        );
        assert_eq!(
            security("127.0.0.1:9443", &address("127.0.0.1:9443"), &pinned),
            Ok(Security::Tls(Trust::Fingerprint("AB".repeat(32))))
        );
    }

    #[test]
    fn fingerprints_are_normalized_or_refused() {
        let colons = (0..32).map(|_| "ab").collect::<Vec<_>>().join(":");
        assert_eq!(normalize_fingerprint(&colons), Ok("AB".repeat(32)));
        assert_eq!(
            normalize_fingerprint(&format!("sha256:{}", "0f".repeat(32))),
            Ok("0F".repeat(32))
        );
        let err = normalize_fingerprint("abc").unwrap_err().to_string();
        assert!(err.contains("--fingerprint"), "{err}");
    }
}
