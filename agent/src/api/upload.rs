//! Receiving an uploaded image: which of its layers this server lacks, and the
//! archive itself, handed to Docker's load as it arrives (nothing is staged on disk).
//!
//! The client announces the image id and its layers' diff ids, bottom first. The
//! server answers with the layers after the longest prefix it already has as a chain
//! (some local image's layers start with exactly that prefix): Docker's load only
//! opens a layer's file when it lacks the chain up to that layer, so the client can
//! leave the other files out of the archive (see `controller/src/archive.rs`).

use std::io;
use std::time::Duration;

use bytes::Bytes;

use haloy_api::spec::AppSpec;
use haloy_api::v1::{self, deploy_request};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tonic::Streaming;

use super::error::AgentError;
use crate::runtime::ContainerRuntime;

/// Docker refuses images with more than 127 layers; this leaves room.
const MAX_LAYERS: usize = 256;
/// How long an upload may go without a message before the deploy gives up on it.
const IDLE: Duration = Duration::from_secs(300);

/// Refuses an announcement whose id or layers are not `sha256:<64 hex digits>`.
/// An empty id is an older client that announces nothing.
pub fn check(upload: &v1::Upload) -> Result<(), AgentError> {
    if upload.image_id.is_empty() {
        return Ok(());
    }
    let invalid = |what: &str, value: &str| {
        AgentError::Protocol(format!(
            "{what} must be a digest like sha256:<64 hex digits>, not {value:?}"
        ))
    };
    if !is_digest(&upload.image_id) {
        return Err(invalid("Upload.image_id", &upload.image_id));
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

fn is_digest(value: &str) -> bool {
    value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What the server wants of an announced (and checked) upload.
pub async fn answer(
    runtime: &dyn ContainerRuntime,
    spec: &AppSpec,
    upload: &v1::Upload,
) -> v1::UploadWanted {
    if upload.image_id.is_empty() {
        // Without an id only the reference can tell, and everything travels.
        let have = runtime
            .image_exists(&spec.image.reference())
            .await
            .unwrap_or(false);
        return v1::UploadWanted {
            have_image: have,
            layers: if have {
                Vec::new()
            } else {
                upload.layers.clone()
            },
        };
    }
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
pub type Received = Result<u64, Option<String>>;

/// Reads chunks until `UploadEnd` and checks the size and digest, passing the data to
/// `sink` (or dropping it, for an image the server already has).
///
/// The latest chunk is held back until the digest matches: the archive's end-of-tar
/// marker is in it, so Docker cannot take a truncated or corrupt upload for a whole
/// one. The caller ends the sink with an error when this fails, which aborts the load.
pub async fn receive(
    stream: &mut Streaming<v1::DeployRequest>,
    sink: Option<&mpsc::Sender<io::Result<Bytes>>>,
) -> Received {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut held: Option<Bytes> = None;
    loop {
        let next = async {
            tokio::time::timeout(IDLE, stream.message())
                .await
                .map_err(|_| {
                    format!(
                        "the upload stalled: nothing arrived for {} s; deploy again",
                        IDLE.as_secs()
                    )
                })?
                .map_err(|e| format!("the upload broke off: {}", e.message()))?
                .ok_or_else(|| "the upload ended without UploadEnd".to_string())
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
                hasher.update(&chunk.data);
                size += chunk.data.len() as u64;
                let data = Bytes::from(chunk.data);
                if let (Some(sink), Some(previous)) = (sink, held.replace(data)) {
                    sink.send(Ok(previous)).await.map_err(|_| None)?;
                }
            }
            Some(deploy_request::Message::End(end)) => {
                let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
                if size > 0 && end.sha256 != digest {
                    return Err(Some(format!(
                        "the upload is corrupt: its digest is {digest}, the client announced {}; deploy again",
                        end.sha256
                    )));
                }
                if end.size != size {
                    return Err(Some(format!(
                        "the upload is incomplete: received {size} bytes, the client sent {}; deploy again",
                        end.size
                    )));
                }
                if let (Some(sink), Some(last)) = (sink, held) {
                    sink.send(Ok(last)).await.map_err(|_| None)?;
                }
                return Ok(size);
            }
            Some(deploy_request::Message::Cancel(cancel)) if cancel.reason.is_empty() => {
                return Err(Some("cancelled by the client".into()));
            }
            Some(deploy_request::Message::Cancel(cancel)) => {
                return Err(Some(format!("cancelled by the client: {}", cancel.reason)));
            }
            Some(deploy_request::Message::Start(_)) | None => {
                return Err(Some("unexpected message during the upload".into()));
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
        assert!(check(&upload).is_ok());
        upload.layers.push("sha256:../../etc".into());
        let err = check(&upload).unwrap_err().to_string();
        assert!(
            err.contains("Upload.layers") && err.contains("etc"),
            "{err}"
        );
        upload.layers.clear();
        upload.image_id = "nginx:latest".into();
        assert!(check(&upload).is_err());
        upload.image_id = format!("sha256:{}", "AB".repeat(32));
        assert!(check(&upload).is_err(), "Docker's digests are lowercase");
        upload.image_id = String::new();
        assert!(check(&upload).is_ok(), "an older client announces nothing");
    }
}
