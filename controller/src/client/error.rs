//! What can go wrong talking to haloyd, in the user's words: a failed call is told
//! apart as an unreachable server, an untrusted certificate, a refused token or the
//! server's own answer.

use tonic::{Code, Status};

use crate::address::AddressError;
use crate::archive::ArchiveError;
use crate::tls;
use crate::upload;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(
        "the API token has characters that cannot go in a header; print it again with `haloyadm api token` on the server and run `haloy server add <server> <token> --force`"
    )]
    TokenHeader(#[source] tonic::metadata::errors::InvalidMetadataValue),
    /// `client.yaml` could not be read, so the server's pinned certificate or CA is
    /// unknown: connecting without them would silently trust something else.
    #[error(transparent)]
    Servers(#[from] crate::servers::ServerError),
    #[error(transparent)]
    Plaintext(#[from] tls::PlaintextRefused),
    #[error(
        "cannot reach haloyd at {server} over TLS: {reason}; if haloyd serves its own self-signed certificate, pin it with `haloy server add {server} <token> --force --fingerprint <sha256 from haloyadm api token>`, or trust its CA with --ca-cert <pem>"
    )]
    Untrusted {
        server: String,
        #[source]
        refusal: rustls::Error,
        reason: String,
    },
    /// The channel could not be opened (no answer, a bad CA bundle, ...).
    #[error(
        "cannot reach haloyd at {server}: {source}; is it running? (`haloyadm start` on the server)"
    )]
    Connect {
        server: String,
        source: tls::ChannelError,
    },
    /// A call failed in the transport, after the channel was opened.
    #[error(
        "cannot reach haloyd at {server}: {}; is it running? (`haloyadm start` on the server)",
        .source.message()
    )]
    Unreachable { server: String, source: Status },
    #[error(
        "{server} refused the API token; print the right one with `haloyadm api token` on the server and run `haloy server add {server} <token> --force`"
    )]
    Unauthenticated { server: String },
    #[error("{server}: {message}")]
    Call { server: String, message: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Upload(#[from] upload::UploadError),
}

impl ClientError {
    /// A certificate refusal from the TLS handshake with `server`.
    pub(super) fn untrusted(server: &str, refusal: rustls::Error) -> Self {
        Self::Untrusted {
            server: server.to_string(),
            reason: tls::untrusted_reason(&refusal),
            refusal,
        }
    }

    /// A channel to `server` that could not be opened.
    pub(super) fn channel(server: &str, error: tls::ChannelError) -> Self {
        match error {
            tls::ChannelError::Untrusted(refusal) => Self::untrusted(server, refusal),
            source => Self::Connect {
                server: server.to_string(),
                source,
            },
        }
    }
}

/// What a failed call means to the user. A TLS handshake can fail at the first call
/// (the channel connects lazily after a failed attempt); its refusal is then among
/// the status's causes. Only those causes are checked for an untrusted certificate:
/// a message from haloyd (say, a registry pull that failed on x509) is the server's
/// answer, not a problem with this connection.
pub(super) fn classify(server: &str, status: Status) -> ClientError {
    let refusal = std::error::Error::source(&status).and_then(tls::untrusted);
    if let Some(refusal) = refusal {
        return ClientError::untrusted(server, refusal.clone());
    }
    match status.code() {
        Code::Unauthenticated => ClientError::Unauthenticated {
            server: server.to_string(),
        },
        Code::Unavailable
            if status.message().contains("transport") || status.message().contains("connect") =>
        {
            ClientError::Unreachable {
                server: server.to_string(),
                source: status,
            }
        }
        _ => ClientError::Call {
            server: server.to_string(),
            message: status.message().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_server_message_about_certificates_is_not_a_tls_failure_of_this_connection() {
        let status = Status::internal(
            "cannot pull registry.test/web:v1: x509: certificate signed by unknown authority",
        );
        match classify("haloy.test", status) {
            ClientError::Call { message, .. } => assert!(message.contains("x509"), "{message}"),
            other => panic!("misreported as {other:?}"),
        }
    }

    #[test]
    fn an_untrusted_certificate_in_the_transport_is_reported_as_such() {
        let mut status = Status::unavailable("transport error");
        // As tokio-rustls reports a refused certificate.
        status.set_source(Arc::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        match classify("haloy.test", status) {
            ClientError::Untrusted { reason, .. } => {
                assert!(reason.contains("UnknownIssuer"), "{reason}")
            }
            other => panic!("reported as {other:?}"),
        }
    }
}
