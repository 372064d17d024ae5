//! Obtaining a deploy's image: pulled, already on the server, or uploaded and loaded
//! while it arrives; then tagged with the deployment id when the history is local.

use std::time::Duration;

use futures_util::future::BoxFuture;
use haloy_api::spec::{AppSpec, History, ImageSource};
use tokio::sync::oneshot;

use super::Engine;
use super::events::{Abort, Events, Phase, phase};
use crate::runtime::ArchiveStream;
use crate::store::ImageOrigin;

/// Where the image of a deploy comes from.
#[derive(Debug)]
pub enum ImageInput {
    /// Pull `spec.image` from its registry.
    Pull,
    /// `spec.image` must already be on the server.
    Existing,
    /// The image with this id (`sha256:…`) is on the server; it becomes `spec.image`.
    Id(String),
    /// A `docker save` archive arriving from the client.
    Upload(Upload),
}

/// Why the image of a deploy could not be obtained from its client (an upload that
/// broke off, ...): the API's own error, which the deploy fails with as its reason.
pub type ImageFailure = Box<dyn std::error::Error + Send + Sync>;

/// Work the API does once a deploy is accepted to learn where its image comes from
/// (an upload is negotiated and received here); `Err` is the reason the deploy fails.
pub type PrepareImage =
    Box<dyn FnOnce(Events) -> BoxFuture<'static, Result<ImageInput, ImageFailure>> + Send>;

/// The image of a deploy as the caller knows it when it asks.
pub enum ImageRequest {
    Ready(ImageInput),
    /// Known only after the deploy is accepted (and on record).
    Prepare(PrepareImage),
}

/// An upload in progress: Docker loads the archive while it arrives.
pub struct Upload {
    pub archive: ArchiveStream,
    /// The id of the image the archive holds, when the client announced one: that
    /// image becomes `spec.image`.
    pub image_id: Option<String>,
    /// How receiving ended (see `api::upload::Received`).
    pub received: oneshot::Receiver<Result<u64, Option<ImageFailure>>>,
}

/// How much an upload may carry and how long it may take (haloyd.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// `max_upload_bytes`: the largest archive a deploy may upload.
    pub max_bytes: u64,
    /// `upload_deadline_secs`: how long a whole upload may take.
    pub deadline: Duration,
    /// How long an upload may go without a message.
    pub idle: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 30,
            deadline: Duration::from_secs(30 * 60),
            idle: Duration::from_secs(300),
        }
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("image_id", &self.image_id)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Puts the image on the server under the name the containers will run; returns
    /// that name and where the image came from.
    pub(super) async fn obtain_image(
        &self,
        id: &str,
        spec: &AppSpec,
        image: ImageInput,
        events: &Events,
    ) -> Result<(String, ImageOrigin), Abort> {
        let reference = spec.image.reference();
        // An accessory's image is pulled only when it is missing.
        let image = match image {
            ImageInput::Pull
                if spec.preset.is_some() && self.runtime.image_exists(&reference).await? =>
            {
                ImageInput::Existing
            }
            other => other,
        };
        let origin = match image {
            ImageInput::Pull => {
                phase(events, Phase::PullingImage, &format!("pulling {reference}")).await;
                self.runtime
                    .pull_image(&reference, spec.image.registry.as_ref())
                    .await?;
                ImageOrigin::Pulled
            }
            ImageInput::Existing => {
                if !self.runtime.image_exists(&reference).await? {
                    let hint = if spec.image.source == ImageSource::Local {
                        "load it on the server first (docker load) or remove image.source: local"
                    } else {
                        "push it to the server or its registry first"
                    };
                    return Err(Abort::Failed(format!(
                        "image {reference} is not on this server; {hint}"
                    )));
                }
                if spec.image.source == ImageSource::Local {
                    ImageOrigin::Server
                } else {
                    ImageOrigin::Pulled
                }
            }
            ImageInput::Id(image_id) => {
                self.runtime
                    .tag_image(&image_id, &spec.image.repository, &spec.image.tag)
                    .await?;
                ImageOrigin::Uploaded
            }
            ImageInput::Upload(upload) => {
                self.load_upload(spec, upload, events).await?;
                ImageOrigin::Uploaded
            }
        };
        if let History::Local { .. } = spec.image.history {
            // Rollback finds this version by its deployment id.
            let tag = self.own_name(id);
            self.runtime
                .tag_image(&reference, &spec.image.repository, &tag)
                .await?;
            return Ok((format!("{}:{tag}", spec.image.repository), origin));
        }
        Ok((reference, origin))
    }

    async fn load_upload(
        &self,
        spec: &AppSpec,
        upload: Upload,
        events: &Events,
    ) -> Result<(), Abort> {
        let Upload {
            archive,
            image_id,
            received,
        } = upload;
        phase(
            events,
            Phase::LoadingImage,
            "loading the image into Docker as it arrives",
        )
        .await;
        let loaded = self.runtime.load_image(archive).await;
        // After a failed load the receiver notices that nobody reads any more; do not
        // hold the app long for its reason.
        let wait = if loaded.is_ok() {
            Duration::MAX
        } else {
            Duration::from_secs(5)
        };
        let received = tokio::time::timeout(wait, received)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Err(None));
        let loaded = match (loaded, received) {
            (Ok(loaded), Ok(_)) => loaded,
            // Why the upload failed explains the broken load best.
            (_, Err(Some(reason))) => return Err(Abort::Failed(reason.to_string())),
            (Err(e), _) => return Err(e.into()),
            (Ok(_), Err(None)) => {
                return Err(Abort::Failed(
                    "Docker finished loading before the upload ended; deploy again".into(),
                ));
            }
        };
        // By the announced id: the archive's own tags may name another reference, and
        // spec.image may still point at the previous version. (A workstation on
        // Docker's containerd store announces a manifest digest, which a classic
        // store does not know: then by what loaded.)
        let announced = match image_id {
            Some(id) if self.runtime.image_exists(&id).await? => Some(id),
            _ => None,
        };
        let source = match (announced, loaded.first()) {
            (Some(id), _) => id,
            (None, Some(first)) => first.clone(),
            (None, None) => {
                return Err(Abort::Failed(
                    "the uploaded archive contained no image".into(),
                ));
            }
        };
        self.runtime
            .tag_image(&source, &spec.image.repository, &spec.image.tag)
            .await?;
        Ok(())
    }
}
