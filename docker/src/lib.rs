//! What Docker's answers mean, read one way by haloyd (its container runtime) and by
//! the workstation (building and pushing images): the HTTP status Docker answered
//! with, Docker's own message, whether the daemon answered at all, and the name of
//! one engine.

use bollard::errors::Error;

/// The HTTP status Docker answered with, if it answered at all.
pub fn status(err: &Error) -> Option<u16> {
    match err {
        Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Docker's message, without bollard's "Docker responded with status code" wrapper.
pub fn message(err: &Error) -> String {
    match err {
        Error::DockerResponseServerError { message, .. } => message.clone(),
        Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

/// True when the daemon could not be reached or did not answer in time.
pub fn is_unreachable(err: &Error) -> bool {
    matches!(
        err,
        Error::SocketNotFoundError(_)
            | Error::HyperLegacyError { .. }
            | Error::HyperResponseError { .. }
            | Error::IOError { .. }
            | Error::RequestTimeoutError
    )
}

/// The name of one Docker engine, `<engine id>@<data root>`: daemons on one host can
/// share an ID (it comes from /etc/docker/key.json), the data root tells them apart.
/// haloyd reports it and the workstation compares it with its own to skip uploads.
pub fn engine_identity(id: &str, data_root: &str) -> String {
    format!("{id}@{data_root}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_docker_saying_no_not_an_unreachable_daemon() {
        let refused = Error::DockerResponseServerError {
            status_code: 404,
            message: "No such image: web:v1".into(),
        };
        assert_eq!(status(&refused), Some(404));
        assert_eq!(message(&refused), "No such image: web:v1");
        assert!(!is_unreachable(&refused));
        let gone = Error::SocketNotFoundError("/var/run/docker.sock".into());
        assert_eq!(status(&gone), None);
        assert!(is_unreachable(&gone));
    }

    #[test]
    fn engines_sharing_an_id_differ_by_data_root() {
        assert_ne!(
            engine_identity("ABCD", "/var/lib/docker"),
            engine_identity("ABCD", "/home/u/.local/share/docker")
        );
    }
}
