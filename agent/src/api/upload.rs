//! Receiving an uploaded image: which of its layers this server lacks, and the
//! archive itself, handed to Docker's load as it arrives (nothing is staged on disk).
//!
//! The client announces the image id and its layers' diff ids, bottom first. The
//! server answers with the layers after the longest prefix it already has as a chain
//! (some local image's layers start with exactly that prefix): Docker's load only
//! opens a layer's file when it lacks the chain up to that layer, so the client can
//! leave the other files out of the archive (see `controller/src/archive.rs`).

use bytes::Bytes;
use std::io;

use haloy_api::v1::{self, deploy_request};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::Streaming;

use super::error::AgentError;
use crate::engine::UploadLimits;
use crate::runtime::ContainerRuntime;

/// Docker refuses images with more than 127 layers; this leaves room.
const MAX_LAYERS: usize = 256;
/// The largest chunk a client may send (haloy sends 1 MiB).
pub const MAX_CHUNK: usize = 1 << 20;
/// The digest of nothing, which an upload of no bytes ends with.
#[cfg(test)]
pub const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Refuses an announcement whose id or layers are not `sha256:<64 hex digits>`, or
/// whose announced size is past `max_upload_bytes`.
pub fn check(upload: &v1::Upload, limits: &UploadLimits) -> Result<(), AgentError> {
    let invalid = |what: &str, value: &str| {
        AgentError::Protocol(format!(
            "{what} must be a digest like sha256:<64 hex digits>, not {value:?}"
        ))
    };
    if upload.image_id.is_empty() {
        // Without it the deploy could only guess which image the archive holds.
        return Err(AgentError::Protocol(
            "Upload.image_id is required: the id (sha256:<64 hex digits>) of the uploaded image; update haloy".into(),
        ));
    }
    if !is_digest(&upload.image_id) {
        return Err(invalid("Upload.image_id", &upload.image_id));
    }
    if upload.archive_size > limits.max_bytes {
        return Err(AgentError::Protocol(too_large(
            "Upload.archive_size announces",
            upload.archive_size,
            limits,
        )));
    }
    if upload.layers.len() > MAX_LAYERS {
        return Err(AgentError::Protocol(format!(
            "Upload.layers lists {} layers; an image has at most {MAX_LAYERS}",
            upload.layers.len()
        )));
    }
    match upload.layers.iter().find(|l| !is_digest(l)) {
        Some(layer) => Err(invalid("each of Upload.layers", layer)),
        None => Ok(()),
    }
}

fn too_large(what: &str, size: u64, limits: &UploadLimits) -> String {
    format!(
        "{what} {size} bytes, over this server's limit of {} bytes (max_upload_bytes in haloyd.yaml); raise it there or make the image smaller",
        limits.max_bytes
    )
}

fn is_digest(value: &str) -> bool {
    value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What the server wants of an announced (and checked) upload.
pub async fn answer(runtime: &dyn ContainerRuntime, upload: &v1::Upload) -> v1::UploadWanted {
    if runtime
        .image_exists(&upload.image_id)
        .await
        .unwrap_or(false)
    {
        return v1::UploadWanted {
            have_image: true,
            layers: Vec::new(),
        };
    }
    let chains = runtime.layer_chains().await.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "cannot list local layers; asking for every layer");
        Vec::new()
    });
    v1::UploadWanted {
        have_image: false,
        layers: missing_layers(&upload.layers, &chains),
    }
}

/// The layers of `announced` after the longest prefix that some chain starts with.
pub fn missing_layers(announced: &[String], chains: &[Vec<String>]) -> Vec<String> {
    let have = chains
        .iter()
        .map(|chain| {
            chain
                .iter()
                .zip(announced)
                .take_while(|(local, wanted)| local == wanted)
                .count()
        })
        .max()
        .unwrap_or(0);
    announced[have..].to_vec()
}

/// How receiving an upload ended: its size, or why it failed; `Err(None)` when it
/// stopped because nobody reads the data any more (the load gave up first).
pub type Received = Result<u64, Option<ReceiveError>>;

/// Why an upload could not be received; the deploy fails with it as its reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReceiveError {
    #[error("the upload stalled: nothing arrived for {} s; deploy again", .0.as_secs())]
    Stalled(std::time::Duration),
    #[error(
        "the upload took longer than {} s (upload_deadline_secs in haloyd.yaml); raise it there or upload over a faster link",
        .0.as_secs()
    )]
    Deadline(std::time::Duration),
    #[error("the upload broke off: {}", .0.message())]
    BrokeOff(#[source] tonic::Status),
    #[error("the upload ended without UploadEnd")]
    NoEnd,
    #[error(
        "an upload chunk of {0} bytes is over the limit of {MAX_CHUNK} bytes (1 MiB); send smaller chunks"
    )]
    ChunkTooLarge(usize),
    #[error(
        "the upload carries more than {0} bytes, over this server's limit of {0} bytes (max_upload_bytes in haloyd.yaml); raise it there or make the image smaller"
    )]
    OverLimit(u64),
    #[error(
        "the upload carries more than the {0} bytes its Upload.archive_size announced; deploy again"
    )]
    OverAnnounced(u64),
    #[error(
        "the upload is corrupt: its digest is {digest}, the client announced {announced:?}; deploy again"
    )]
    Corrupt { digest: String, announced: String },
    #[error(
        "the upload is incomplete: received {received} bytes, the client sent {sent}; deploy again"
    )]
    Incomplete { received: u64, sent: u64 },
    #[error("cancelled by the client")]
    Cancelled,
    #[error("cancelled by the client: {0}")]
    CancelledBecause(String),
    #[error("unexpected message during the upload")]
    Unexpected,
    /// The client ended the stream before the end of an upload of an image the
    /// server has.
    #[error("the upload ended early; deploy again")]
    EndedEarly,
}

/// Reads chunks until `UploadEnd` and checks the size and digest, passing the data to
/// `sink` (or dropping it, for an image the server already has). `announced` is the
/// whole archive's size from the announcement (a partial archive is smaller), or 0
/// when the client streams `docker save` and cannot know it.
///
/// The latest chunk is held back until the digest matches: the archive's end-of-tar
/// marker is in it, so Docker cannot take a truncated or corrupt upload for a whole
/// one. The caller ends the sink with an error when this fails, which aborts the load.
pub async fn receive(
    stream: &mut Streaming<v1::DeployRequest>,
    sink: Option<&mpsc::Sender<io::Result<Bytes>>>,
    announced: u64,
    limits: &UploadLimits,
) -> Received {
    let deadline = tokio::time::Instant::now() + limits.deadline;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut held: Option<Bytes> = None;
    loop {
        let next = async {
            let idle = tokio::time::Instant::now() + limits.idle;
            let message = if idle <= deadline {
                tokio::time::timeout_at(idle, stream.message())
                    .await
                    .map_err(|_| ReceiveError::Stalled(limits.idle))?
            } else {
                tokio::time::timeout_at(deadline, stream.message())
                    .await
                    .map_err(|_| ReceiveError::Deadline(limits.deadline))?
            };
            message
                .map_err(ReceiveError::BrokeOff)?
                .ok_or(ReceiveError::NoEnd)
        };
        let message = match sink {
            Some(sink) => tokio::select! {
                message = next => message,
                () = sink.closed() => return Err(None),
            },
            None => next.await,
        }?;
        match message.message {
            Some(deploy_request::Message::Chunk(chunk)) => {
                if chunk.data.len() > MAX_CHUNK {
                    return Err(Some(ReceiveError::ChunkTooLarge(chunk.data.len())));
                }
                size += chunk.data.len() as u64;
                if size > limits.max_bytes {
                    return Err(Some(ReceiveError::OverLimit(limits.max_bytes)));
                }
                if announced > 0 && size > announced {
                    return Err(Some(ReceiveError::OverAnnounced(announced)));
                }
                hasher.update(&chunk.data);
                let data = Bytes::from(chunk.data);
                if let (Some(sink), Some(previous)) = (sink, held.replace(data)) {
                    sink.send(Ok(previous)).await.map_err(|_| None)?;
                }
            }
            Some(deploy_request::Message::End(end)) => {
                let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
                if end.sha256 != digest {
                    return Err(Some(ReceiveError::Corrupt {
                        digest,
                        announced: end.sha256,
                    }));
                }
                if end.size != size {
                    return Err(Some(ReceiveError::Incomplete {
                        received: size,
                        sent: end.size,
                    }));
                }
                if let (Some(sink), Some(last)) = (sink, held) {
                    sink.send(Ok(last)).await.map_err(|_| None)?;
                }
                return Ok(size);
            }
            Some(deploy_request::Message::Cancel(cancel)) if cancel.reason.is_empty() => {
                return Err(Some(ReceiveError::Cancelled));
            }
            Some(deploy_request::Message::Cancel(cancel)) => {
                return Err(Some(ReceiveError::CancelledBecause(cancel.reason)));
            }
            Some(deploy_request::Message::Start(_)) | None => {
                return Err(Some(ReceiveError::Unexpected));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_longest_shared_prefix_is_left_out() {
        let announced = layers(&["base", "deps", "app-v2"]);
        let chains = vec![
            layers(&["base"]),
            layers(&["base", "deps", "app-v1"]),
            layers(&["other", "deps", "app-v2"]),
        ];
        assert_eq!(missing_layers(&announced, &chains), ["app-v2"]);
    }

    #[test]
    fn a_layer_elsewhere_in_a_chain_does_not_count() {
        // Docker stores layers by chain: "deps" on top of "other" is not "deps" on
        // top of "base".
        let announced = layers(&["base", "deps"]);
        let chains = vec![layers(&["other", "deps"]), layers(&["deps"])];
        assert_eq!(missing_layers(&announced, &chains), ["base", "deps"]);
    }

    #[test]
    fn nothing_or_everything_may_be_missing() {
        let announced = layers(&["base", "app"]);
        assert_eq!(missing_layers(&announced, &[]), ["base", "app"]);
        let longer = vec![layers(&["base", "app", "more"])];
        assert!(missing_layers(&announced, &longer).is_empty());
        assert!(missing_layers(&[], &longer).is_empty());
    }

    #[test]
    fn announcements_carry_digests() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut upload = v1::Upload {
            image_id: digest.clone(),
            layers: vec![digest.clone()],
            archive_size: 1,
        };
        let limits = UploadLimits::default();
        assert!(check(&upload, &limits).is_ok());
        upload.layers.push("sha256:../../etc".into());
        let err = check(&upload, &limits).unwrap_err().to_string();
        assert!(
            err.contains("Upload.layers") && err.contains("etc"),
            "{err}"
        );
        upload.layers.clear();
        upload.image_id = "nginx:latest".into();
        assert!(check(&upload, &limits).is_err());
        upload.image_id = format!("sha256:{}", "AB".repeat(32));
        assert!(
            check(&upload, &limits).is_err(),
            "Docker's digests are lowercase"
        );
    }

    #[test]
    fn an_announcement_names_its_image_and_fits_the_limit() {
        let limits = UploadLimits {
            max_bytes: 1000,
            ..UploadLimits::default()
        };
        let mut upload = v1::Upload {
            image_id: String::new(),
            layers: Vec::new(),
            archive_size: 1000,
        };
        let err = check(&upload, &limits).unwrap_err().to_string();
        assert!(err.contains("Upload.image_id is required"), "{err}");
        upload.image_id = format!("sha256:{}", "ab".repeat(32));
        assert!(check(&upload, &limits).is_ok());
        upload.archive_size = 1001;
        let err = check(&upload, &limits).unwrap_err().to_string();
        assert!(
            err.contains("1001") && err.contains("max_upload_bytes in haloyd.yaml"),
            "{err}"
        );
    }

    #[test]
    fn the_digest_of_nothing_is_what_an_empty_upload_ends_with() {
        assert_eq!(
            EMPTY_SHA256,
            format!("sha256:{}", hex::encode(Sha256::digest(b"")))
        );
    }
}
