//! bollard's errors turned into [`RuntimeError`]s that say what went wrong in
//! Haloy's words. Docker's own message is kept: it names the missing thing. How an
//! error is read (status, message, unreachable) is `haloy-docker`'s, shared with the
//! workstation.

use bollard::errors::Error;

use crate::runtime::RuntimeError;

use haloy_docker::is_unreachable as unreachable;
pub(super) use haloy_docker::{message, status};

/// Errors from connecting and negotiating the API version.
pub(super) fn connect(err: Error) -> RuntimeError {
    match err {
        Error::SocketNotFoundError(path) => {
            RuntimeError::Unavailable(format!("no Docker socket at {path}"))
        }
        other => RuntimeError::Unavailable(message(&other)),
    }
}

/// Any call where nothing more specific than "Docker said no" applies.
pub(super) fn daemon(err: Error) -> RuntimeError {
    if unreachable(&err) {
        RuntimeError::Unavailable(message(&err))
    } else {
        RuntimeError::Other(message(&err))
    }
}

/// Like [`daemon`], with what was being done in front of Docker's message.
pub(super) fn doing(what: &str, err: Error) -> RuntimeError {
    match daemon(err) {
        RuntimeError::Other(message) => RuntimeError::Other(format!("{what}: {message}")),
        other => other,
    }
}

/// Calls on one container: a 404 means it does not exist.
pub(super) fn container(id: &str, err: Error) -> RuntimeError {
    match status(&err) {
        Some(404) => RuntimeError::NoSuchContainer(id.to_string()),
        _ => daemon(err),
    }
}

/// Calls on a local image: a 404 means it is not on this server.
pub(super) fn local_image(reference: &str, err: Error) -> RuntimeError {
    match status(&err) {
        Some(404) => RuntimeError::ImageNotFound {
            reference: reference.to_string(),
            local: true,
        },
        _ => daemon(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status_code: u16, message: &str) -> Error {
        Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn missing_things_get_their_own_variants() {
        assert!(matches!(
            container("web-1", answer(404, "No such container: web-1")),
            RuntimeError::NoSuchContainer(id) if id == "web-1"
        ));
        assert!(matches!(
            local_image("app:1", answer(404, "No such image: app:1")),
            RuntimeError::ImageNotFound { local: true, .. }
        ));
    }

    #[test]
    fn an_unreachable_daemon_is_unavailable() {
        let err = daemon(Error::SocketNotFoundError("/run/nothing.sock".into()));
        assert!(matches!(err, RuntimeError::Unavailable(_)));
        assert!(matches!(
            connect(Error::RequestTimeoutError),
            RuntimeError::Unavailable(_)
        ));
    }

    #[test]
    fn other_answers_keep_dockers_message_and_context() {
        let err = doing(
            "cannot start web-1",
            answer(500, "port is already allocated"),
        );
        assert_eq!(
            err.to_string(),
            "docker: cannot start web-1: port is already allocated"
        );
    }
}
