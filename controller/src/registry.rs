//! Pushing a locally built image to the app's registry with the credentials from
//! `image.registry`, through the workstation's Docker.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;
use haloy_api::rules::registry_server_of;
use haloy_api::spec::RegistryAuth;

use crate::build::Redactor;

/// One progress report of a push, as Docker sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProgress {
    /// `Preparing`, `Pushing`, `Pushed`, `Layer already exists`, the final digest line…
    pub status: String,
    /// Bytes of the current layer sent so far, and its size, while a layer uploads.
    pub current: Option<i64>,
    pub total: Option<i64>,
}

/// What the registry now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `repository:tag` as pushed.
    pub reference: String,
    /// The manifest digest the registry stored, `sha256:…`, when Docker reported it.
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "registry {server} refused the credentials; check image.registry.username and image.registry.password"
    )]
    Unauthorized { server: String },
    #[error(
        "cannot reach registry {server}: {message}; check that it is running and reachable from this machine"
    )]
    Unreachable { server: String, message: String },
    #[error("image {reference} is not on this machine; build or tag it before pushing")]
    ImageMissing { reference: String },
    #[error(
        "image {reference} would go to registry {target} but the credentials are for {server}; start image.repository with {server}/"
    )]
    WrongRegistry {
        reference: String,
        target: String,
        server: String,
    },
    #[error("cannot push {reference} to registry {server}: {message}")]
    Push {
        reference: String,
        server: String,
        message: String,
    },
    #[error(
        "cannot reach Docker on this machine ({0}); Docker must be running to push images: start it and try again"
    )]
    DockerUnavailable(String),
    #[error("docker: {0}")]
    Docker(String),
}

/// Gives the local image `source` (an id or reference) the name `reference`.
pub async fn tag_image(docker: &Docker, source: &str, reference: &str) -> Result<(), PushError> {
    let (repository, tag) = split(reference);
    let options = TagImageOptionsBuilder::new()
        .repo(repository)
        .tag(tag)
        .build();
    docker
        .tag_image(source, Some(options))
        .await
        .map_err(|err| match haloy_docker::status(&err) {
            Some(404) => PushError::ImageMissing {
                reference: source.to_string(),
            },
            _ => daemon(err),
        })
}

/// Pushes the local image `reference` (`repository[:tag]`, `latest` when untagged)
/// to the registry `auth` is for, passing each progress report to `progress`.
///
/// The credentials travel in the request's auth header only; no message this
/// returns or reports contains them.
pub async fn push_image(
    docker: &Docker,
    reference: &str,
    auth: &RegistryAuth,
    mut progress: impl FnMut(PushProgress),
) -> Result<PushedImage, PushError> {
    let (repository, tag) = split(reference);
    let reference = format!("{repository}:{tag}");
    let target = registry_server_of(repository);
    if !same_registry(&target, &auth.server) {
        return Err(PushError::WrongRegistry {
            reference,
            target,
            server: auth.server.clone(),
        });
    }
    // Docker's own answer for a missing image ("An image does not exist locally with
    // the tag") arrives mid-stream; checking first gives the clearer error.
    if let Err(err) = docker.inspect_image(&reference).await {
        return Err(match haloy_docker::status(&err) {
            Some(404) => PushError::ImageMissing { reference },
            _ => daemon(err),
        });
    }

    let redactor = Redactor::new([auth.username.expose(), auth.password.expose()]);
    let credentials = DockerCredentials {
        username: Some(auth.username.expose().to_string()),
        password: Some(auth.password.expose().to_string()),
        serveraddress: Some(auth.server.clone()),
        ..Default::default()
    };
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    tracing::debug!(%reference, server = %auth.server, "pushing image");
    let mut stream = docker.push_image(repository, Some(options), Some(credentials));
    let mut digest = None;
    // Docker answers 200 at once and reports registry failures inside the stream;
    // bollard turns an `errorDetail` there into an error item.
    while let Some(item) = stream.next().await {
        let info = item.map_err(|err| push_error(&reference, &auth.server, err, &redactor))?;
        let Some(status) = info.status else { continue };
        if let Some(found) = digest_of(&status) {
            digest = Some(found);
        }
        let detail = info.progress_detail.unwrap_or_default();
        progress(PushProgress {
            status: redactor.redact(&status),
            current: detail.current,
            total: detail.total,
        });
    }
    tracing::debug!(%reference, ?digest, "pushed image");
    Ok(PushedImage { reference, digest })
}

/// `repository[:tag]` split at the tag; a colon before the last `/` is a port.
fn split(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |slash| slash + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (&reference[..at], &reference[at + 1..])
        }
        None => (reference, "latest"),
    }
}

/// Registry hosts compared the way Docker does: Docker Hub has several names.
fn same_registry(a: &str, b: &str) -> bool {
    fn canonical(server: &str) -> String {
        let bare = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match bare.as_str() {
            "docker.io"
            | "index.docker.io"
            | "registry-1.docker.io"
            | "registry.hub.docker.com" => "docker.io".into(),
            _ => bare,
        }
    }
    canonical(a) == canonical(b)
}

/// The digest from Docker's closing line, `latest: digest: sha256:… size: 528`.
fn digest_of(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

fn daemon(err: Error) -> PushError {
    if haloy_docker::is_unreachable(&err) {
        return PushError::DockerUnavailable(err.to_string());
    }
    PushError::Docker(haloy_docker::message(&err))
}

fn push_error(reference: &str, server: &str, err: Error, redactor: &Redactor) -> PushError {
    if haloy_docker::is_unreachable(&err) {
        return daemon(err);
    }
    let code = haloy_docker::status(&err);
    let message = haloy_docker::message(&err);
    let message = redactor.redact(message.trim());
    let lower = message.to_lowercase();
    if matches!(code, Some(401 | 403))
        || [
            "unauthorized",
            "authentication required",
            "denied",
            "no basic auth",
        ]
        .iter()
        .any(|m| lower.contains(m))
    {
        return PushError::Unauthorized {
            server: server.to_string(),
        };
    }
    if [
        "connection refused",
        "no such host",
        "i/o timeout",
        "no route to host",
        "network is unreachable",
        "server misbehaving",
        "tls handshake",
        "connection reset",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return PushError::Unreachable {
            server: server.to_string(),
            message,
        };
    }
    PushError::Push {
        reference: reference.to_string(),
        server: server.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(split("app"), ("app", "latest"));
        assert_eq!(split("app:1.2"), ("app", "1.2"));
        assert_eq!(
            split("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team/app", "latest")
        );
        assert_eq!(
            split("127.0.0.1:5000/team/app:v2"),
            ("127.0.0.1:5000/team/app", "v2")
        );
    }

    #[test]
    fn docker_hub_has_many_names() {
        assert!(same_registry("index.docker.io", "docker.io"));
        assert!(same_registry(
            "https://index.docker.io/v1/",
            "registry-1.docker.io"
        ));
        assert!(same_registry("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(!same_registry("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(!same_registry("ghcr.io", "docker.io"));
    }

    #[test]
    fn the_closing_line_carries_the_digest() {
        assert_eq!(
            digest_of("latest: digest: sha256:abc123 size: 528").as_deref(),
            Some("sha256:abc123")
        );
        assert_eq!(digest_of("Pushing"), None);
    }

    #[test]
    fn refusals_name_the_registry_and_never_the_password() {
        let redactor = Redactor::new(["deploy-user", "hunter2-very-secret"]);
        let refused = Error::DockerStreamError {
            error: "unauthorized: authentication required for deploy-user".into(),
        };
        let err = push_error("127.0.0.1:5000/app:1", "127.0.0.1:5000", refused, &redactor);
        assert!(
            matches!(err, PushError::Unauthorized { ref server } if server == "127.0.0.1:5000")
        );
        let text = err.to_string();
        assert!(text.contains("image.registry.username"), "{text}");

        let other = Error::DockerStreamError {
            error: "blob upload invalid: hunter2-very-secret".into(),
        };
        let err = push_error("127.0.0.1:5000/app:1", "127.0.0.1:5000", other, &redactor);
        assert!(matches!(err, PushError::Push { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
