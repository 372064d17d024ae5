//! Images: pull from a registry (with credentials), load a `docker save` archive,
//! tag, and check what is already on the server.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ImportImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};
use haloy_api::spec::RegistryAuth;

use super::error;
use crate::runtime::{ArchiveStream, RuntimeError};

pub(super) async fn exists(
    client: &bollard::Docker,
    reference: &str,
) -> Result<bool, RuntimeError> {
    match client.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(err) if error::status(&err) == Some(404) => Ok(false),
        Err(err) => Err(error::daemon(err)),
    }
}

pub(super) async fn id(
    client: &bollard::Docker,
    reference: &str,
) -> Result<Option<String>, RuntimeError> {
    match client.inspect_image(reference).await {
        Ok(image) => Ok(image.id),
        Err(err) if error::status(&err) == Some(404) => Ok(None),
        Err(err) => Err(error::daemon(err)),
    }
}

pub(super) async fn untag(client: &bollard::Docker, reference: &str) -> Result<(), RuntimeError> {
    // Not forced: Docker refuses (409) to delete an image a container uses.
    let options = RemoveImageOptionsBuilder::new().force(false).build();
    tracing::debug!(%reference, "removing image name");
    match client.remove_image(reference, Some(options), None).await {
        Ok(_) => Ok(()),
        Err(err) if error::status(&err) == Some(404) => Ok(()),
        Err(err) => Err(error::doing(
            &format!("cannot remove image {reference}"),
            err,
        )),
    }
}

/// The RootFS layers of every image, intermediate and untagged ones included: any of
/// them keeps its layers in Docker's layer store.
pub(super) async fn layer_chains(
    client: &bollard::Docker,
) -> Result<Vec<Vec<String>>, RuntimeError> {
    let options = ListImagesOptionsBuilder::new().all(true).build();
    let images = client
        .list_images(Some(options))
        .await
        .map_err(|err| error::doing("cannot list images", err))?;
    let mut chains = Vec::with_capacity(images.len());
    // The list carries no layers; inspect each. One removed in between is skipped.
    for summary in images {
        match client.inspect_image(&summary.id).await {
            Ok(image) => {
                let layers = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
                if !layers.is_empty() && !chains.contains(&layers) {
                    chains.push(layers);
                }
            }
            Err(err) if error::status(&err) == Some(404) => {}
            Err(err) => {
                return Err(error::doing(
                    &format!("cannot inspect image {}", summary.id),
                    err,
                ));
            }
        }
    }
    Ok(chains)
}

pub(super) async fn pull(
    client: &bollard::Docker,
    reference: &str,
    auth: Option<&RegistryAuth>,
) -> Result<(), RuntimeError> {
    let reference = with_tag(reference);
    let options = CreateImageOptionsBuilder::new()
        .from_image(&reference)
        .build();
    // The password goes into the request header and nowhere else: never log this.
    let credentials = auth.map(|auth| DockerCredentials {
        username: Some(auth.username.expose().to_string()),
        password: Some(auth.password.expose().to_string()),
        serveraddress: Some(auth.server.clone()),
        ..Default::default()
    });
    tracing::debug!(%reference, authenticated = auth.is_some(), "pulling image");
    let mut progress = client.create_image(Some(options), None, credentials);
    // Docker reports registry failures inside the stream; bollard turns those
    // into errors, so consuming it to the end is what surfaces them.
    while let Some(update) = progress.next().await {
        let update = update.map_err(|err| pull_error(&reference, auth, err))?;
        if let Some(status) = update.status {
            tracing::trace!(%reference, id = ?update.id, %status, "pull progress");
        }
    }
    tracing::debug!(%reference, "pulled image");
    Ok(())
}

/// `repository` alone would make Docker pull every tag of it.
fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || last.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// The registry host a reference points at, for error messages.
fn registry(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => host,
        _ => "docker.io",
    }
}

fn pull_error(
    reference: &str,
    auth: Option<&RegistryAuth>,
    err: bollard::errors::Error,
) -> RuntimeError {
    let server = || auth.map_or_else(|| registry(reference).to_string(), |a| a.server.clone());
    let not_found = || RuntimeError::ImageNotFound {
        reference: reference.to_string(),
        local: false,
    };
    let message = error::message(&err).to_lowercase();
    match error::status(&err) {
        Some(401 | 403) => return RuntimeError::RegistryAuth { server: server() },
        Some(404) => return not_found(),
        _ => {}
    }
    // Docker Hub says this both for missing and for private repositories.
    if message.contains("repository does not exist") && auth.is_none() {
        return not_found();
    }
    if ["unauthorized", "authentication required", "denied"]
        .iter()
        .any(|m| message.contains(m))
    {
        return RuntimeError::RegistryAuth { server: server() };
    }
    if message.contains("manifest unknown") || message.contains("not found") {
        return not_found();
    }
    match error::daemon(err) {
        RuntimeError::Other(message) => RuntimeError::Other(format!(
            "cannot pull {reference}: {message}; check that registry {} is reachable from this server",
            registry(reference)
        )),
        other => other,
    }
}

pub(super) async fn load(
    client: &bollard::Docker,
    archive: ArchiveStream,
) -> Result<Vec<String>, RuntimeError> {
    tracing::debug!("loading an image archive as it arrives");
    // Untagged: the deploy names the image, never the archive (see `archive`).
    let mut stripper = super::archive::TagStripper::default();
    let archive = archive
        .map(move |chunk| {
            let chunk = chunk?;
            stripper
                .push(&chunk)
                .map(bytes::Bytes::from)
                .map_err(|problem| std::io::Error::other(RefusedArchive(problem)))
        })
        .boxed();
    let options = ImportImageOptionsBuilder::new().quiet(true).build();
    let messages: Vec<_> = client
        .import_image_stream(options, archive, None)
        .try_collect()
        .await
        .map_err(|err| match error::daemon(err) {
            // An upload leaves out the layers this server had when it answered; an
            // image removed since then (docker image prune) takes them away.
            RuntimeError::Other(message) if message.contains("no such file or directory") => {
                RuntimeError::Other(format!(
                    "cannot load the uploaded image: {message}; a layer the upload left out is no longer on this server (was an image removed meanwhile?); deploy again"
                ))
            }
            RuntimeError::Other(message) => RuntimeError::Other(format!(
                "cannot load the uploaded image: {message}; it must be an archive written by `docker save`"
            )),
            other => other,
        })?;
    let loaded: Vec<String> = messages
        .iter()
        .filter_map(|info| info.stream.as_deref())
        .filter_map(loaded_reference)
        .collect();
    if loaded.is_empty() {
        return Err(RuntimeError::Other(
            "the uploaded archive contained no image".into(),
        ));
    }
    tracing::debug!(?loaded, "loaded an image archive");
    Ok(loaded)
}

/// `Loaded image: app:1` or, for an archive of an untagged image,
/// `Loaded image ID: sha256:…`.
/// An archive the tag stripper refused, as the error that aborts Docker's load.
#[derive(Debug, thiserror::Error)]
#[error("the uploaded archive is refused: {0}")]
struct RefusedArchive(#[source] super::archive::TarError);

fn loaded_reference(message: &str) -> Option<String> {
    let message = message.trim();
    let reference = message
        .strip_prefix("Loaded image ID:")
        .or_else(|| message.strip_prefix("Loaded image:"))?
        .trim();
    (!reference.is_empty()).then(|| reference.to_string())
}

pub(super) async fn tag(
    client: &bollard::Docker,
    source: &str,
    repository: &str,
    tag: &str,
) -> Result<(), RuntimeError> {
    let options = TagImageOptionsBuilder::new()
        .repo(repository)
        .tag(tag)
        .build();
    tracing::debug!(%source, %repository, %tag, "tagging image");
    client
        .tag_image(source, Some(options))
        .await
        .map_err(|err| error::local_image(source, err))
}

#[cfg(test)]
mod tests {
    use haloy_api::spec::Secret;

    use super::*;

    #[test]
    fn untagged_references_get_latest() {
        assert_eq!(with_tag("app"), "app:latest");
        assert_eq!(with_tag("app:1"), "app:1");
        assert_eq!(
            with_tag("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app:latest"
        );
        assert_eq!(
            with_tag("ghcr.io/a/app@sha256:00"),
            "ghcr.io/a/app@sha256:00"
        );
    }

    #[test]
    fn the_registry_is_the_first_component_when_it_looks_like_a_host() {
        assert_eq!(registry("ghcr.io/a/b:1"), "ghcr.io");
        assert_eq!(registry("127.0.0.1:1/nothing:latest"), "127.0.0.1:1");
        assert_eq!(registry("localhost/app"), "localhost");
        assert_eq!(registry("library/nginx"), "docker.io");
        assert_eq!(registry("nginx"), "docker.io");
    }

    #[test]
    fn load_messages_name_the_loaded_images() {
        assert_eq!(
            loaded_reference("Loaded image: app:1\n").as_deref(),
            Some("app:1")
        );
        assert_eq!(
            loaded_reference("Loaded image ID: sha256:abc\n").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(loaded_reference("{\"status\":\"Loading layer\"}"), None);
    }

    #[test]
    fn registry_refusals_never_carry_the_password() {
        let auth = RegistryAuth {
            server: "registry.example.com".into(),
            username: Secret::new("deploy"),
            password: Secret::new("hunter2-very-secret"),
        };
        let refused = bollard::errors::Error::DockerStreamError {
            error: "unauthorized: authentication required".into(),
        };
        let err = pull_error("registry.example.com/app:1", Some(&auth), refused);
        assert!(
            matches!(err, RuntimeError::RegistryAuth { ref server } if server == "registry.example.com")
        );
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));

        let missing = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "manifest for app:9 not found".into(),
        };
        assert!(matches!(
            pull_error("app:9", None, missing),
            RuntimeError::ImageNotFound { local: false, .. }
        ));
    }
}
