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
    Untrusted { server: String, reason: String },
    #[error(
        "cannot reach haloyd at {server}: {reason}; is it running? (`haloyadm start` on the server)"
    )]
    Unreachable { server: String, reason: String },
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

/// What a failed call means to the user. A TLS handshake can fail at the first call
/// (the channel connects lazily after a failed attempt); its reason is then in the
/// status's source. Only that transport error is checked for an untrusted
/// certificate: a message from haloyd (say, a registry pull that failed on x509) is
/// the server's answer, not a problem with this connection.
pub(super) fn classify(server: &str, status: Status) -> ClientError {
    let transport = std::error::Error::source(&status).map(tls::source_chain);
    if let Some(reason) = transport.filter(|r| is_untrusted(r)) {
        return ClientError::Untrusted {
            server: server.to_string(),
            reason,
        };
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
                reason: status.message().to_string(),
            }
        }
        _ => ClientError::Call {
            server: server.to_string(),
            message: status.message().to_string(),
        },
    }
}

/// Whether a connection error is the server's certificate not being trusted.
pub(super) fn is_untrusted(reason: &str) -> bool {
    [
        "certificate",
        "fingerprint",
        "UnknownIssuer",
        "not the pinned",
    ]
    .iter()
    .any(|word| reason.contains(word))
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
        status.set_source(Arc::new(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        )));
        match classify("haloy.test", status) {
            ClientError::Untrusted { reason, .. } => {
                assert!(reason.contains("UnknownIssuer"), "{reason}")
            }
            other => panic!("reported as {other:?}"),
        }
    }
}
