//! Uploading an image to haloyd: announce its layers, then send only the layer files
//! the server says it lacks, exported from the workstation's Docker (straight into
//! the stream when the server lacks them all).

use std::path::Path;

use futures_util::StreamExt;
use haloy_api::v1::{self, deploy_request};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::archive::{ArchiveError, ImageArchive};
use crate::deployment::{ImageChoice, Progress};

/// Size of each upload chunk; the server accepts messages up to 4 MiB.
const CHUNK_BYTES: usize = 1 << 20;

/// The workstation's Docker, for exporting `reference`.
async fn local_docker(reference: &str) -> Result<bollard::Docker, ArchiveError> {
    let failed = |reason: String| ArchiveError::Export {
        reference: reference.to_string(),
        reason: format!("{reason}; is Docker running on this machine?"),
    };
    bollard::Docker::connect_with_local_defaults()
        .map_err(|e| failed(e.to_string()))?
        .negotiate_version()
        .await
        .map_err(|e| failed(e.to_string()))
}

fn export_error(reference: &str, e: bollard::errors::Error) -> ArchiveError {
    let reason = match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => "no such image; build or pull it first".to_string(),
        other => other.to_string(),
    };
    ArchiveError::Export {
        reference: reference.to_string(),
        reason,
    }
}

/// Saves `reference` (a reference or id in the workstation's Docker) to
/// `dir/image.tar`, as `docker save` would, and reads what it holds.
pub async fn export(reference: &str, dir: &Path) -> Result<ImageArchive, ArchiveError> {
    let docker = local_docker(reference).await?;
    let path = dir.join("image.tar");
    let write = |e: std::io::Error| ArchiveError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = tokio::fs::File::create(&path).await.map_err(write)?;
    let mut stream = docker.export_image(reference);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| export_error(reference, e))?;
        file.write_all(&bytes).await.map_err(write)?;
    }
    file.flush().await.map_err(write)?;
    drop(file);
    blocking(move || ImageArchive::open(&path)).await
}

/// Reads the archive at `path` off the async threads.
pub async fn open(path: &Path) -> Result<ImageArchive, ArchiveError> {
    let path = path.to_path_buf();
    blocking(move || ImageArchive::open(&path)).await
}

/// An image ready to upload, with a temporary directory for exported and partial
/// archives; dropping it removes the directory.
pub(crate) struct Staged {
    source: Source,
    dir: tempfile::TempDir,
}

enum Source {
    /// An archive on disk.
    Archive(ImageArchive),
    /// An image in the workstation's Docker, exported once the server has said what it
    /// lacks: straight into the upload when it lacks every layer, else to disk first to
    /// cut the archive down.
    Docker {
        reference: String,
        image_id: String,
        /// Diff ids, bottom first.
        layers: Vec<String>,
        /// The image's size as Docker reports it; the archive is a little larger.
        size: u64,
    },
}

/// Reads the archive, or what Docker says about the image, of an upload; `None` for
/// the other choices.
pub(crate) async fn stage(choice: &ImageChoice) -> Result<Option<Staged>, ArchiveError> {
    let dir = || {
        tempfile::Builder::new()
            .prefix("haloy-upload-")
            .tempdir()
            .map_err(|e| ArchiveError::Write {
                path: std::env::temp_dir().display().to_string(),
                reason: e.to_string(),
            })
    };
    let source = match choice {
        ImageChoice::Pull | ImageChoice::Existing => return Ok(None),
        ImageChoice::Upload(path) => Source::Archive(open(path).await?),
        ImageChoice::UploadFromDocker(reference) => {
            let docker = local_docker(reference).await?;
            let image = docker
                .inspect_image(reference)
                .await
                .map_err(|e| export_error(reference, e))?;
            Source::Docker {
                reference: reference.clone(),
                image_id: image.id.unwrap_or_default(),
                layers: image.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                size: image.size.unwrap_or(0).max(0) as u64,
            }
        }
    };
    Ok(Some(Staged {
        source,
        dir: dir()?,
    }))
}

/// The announcement that opens an upload.
pub(crate) fn announce(staged: &Staged) -> v1::Upload {
    match &staged.source {
        Source::Archive(archive) => v1::Upload {
            image_id: archive.image_id().to_string(),
            layers: archive.diff_ids(),
            archive_size: archive.size(),
        },
        Source::Docker {
            image_id, layers, ..
        } => v1::Upload {
            image_id: image_id.clone(),
            layers: layers.clone(),
            // An estimate (the archive is a little larger); the server refuses more
            // bytes than a size announced, so announce none.
            archive_size: 0,
        },
    }
}

/// Answers the server's `UploadWanted`: nothing when it has the image, else the
/// archive with only the wanted layer files (a partial copy unless every layer is
/// wanted), in chunks and then its digest. Returns the bytes sent.
pub(crate) async fn send(
    tx: &mpsc::Sender<v1::DeployRequest>,
    staged: &Staged,
    wanted: &v1::UploadWanted,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, UploadError> {
    let of = announce(staged).layers.len();
    if wanted.have_image {
        progress(Progress::UploadPlanned {
            layers: 0,
            of,
            bytes: 0,
        });
        // The server checks the digest of every upload, this empty one too.
        let nothing = format!("sha256:{}", hex::encode(Sha256::digest(b"")));
        send_end(tx, 0, &nothing).await;
        return Ok(0);
    }
    let exported;
    let archive = match &staged.source {
        Source::Archive(archive) => archive,
        Source::Docker {
            reference,
            layers,
            size,
            ..
        } if layers.iter().all(|l| wanted.layers.contains(l)) => {
            progress(Progress::UploadPlanned {
                layers: of,
                of,
                bytes: *size,
            });
            return send_export(tx, reference, *size, progress).await;
        }
        Source::Docker { reference, .. } => {
            exported = export(reference, staged.dir.path()).await?;
            &exported
        }
    };
    let path = if archive.all_wanted(&wanted.layers) {
        archive.path().to_path_buf()
    } else {
        let out = staged.dir.path().join("upload.tar");
        let (partial, layers, to) = (archive.clone(), wanted.layers.clone(), out.clone());
        blocking(move || partial.write_partial(&layers, &to)).await?;
        out
    };
    let layers = archive
        .layers()
        .iter()
        .filter(|l| wanted.layers.contains(&l.diff_id))
        .count();
    let total = tokio::fs::metadata(&path)
        .await
        .map_err(|e| read_error(&path, e))?
        .len();
    progress(Progress::UploadPlanned {
        layers,
        of,
        bytes: total,
    });
    send_file(tx, &path, total, progress).await
}

/// Streams `docker save` of `reference` into the upload as Docker writes it, in
/// chunks, then its digest; returns the bytes sent. `estimate` is the total the
/// progress shows until the export ends. An export that fails midway cancels the
/// deploy, so the server loads nothing.
async fn send_export(
    tx: &mpsc::Sender<v1::DeployRequest>,
    reference: &str,
    estimate: u64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, UploadError> {
    let docker = local_docker(reference).await?;
    let mut stream = docker.export_image(reference);
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    loop {
        let next = stream.next().await;
        let end = match next {
            Some(Ok(bytes)) => {
                buf.extend_from_slice(&bytes);
                false
            }
            Some(Err(e)) => {
                let error = export_error(reference, e);
                let cancel = v1::DeployRequest {
                    message: Some(deploy_request::Message::Cancel(v1::Cancel {
                        reason: error.to_string(),
                    })),
                };
                let _ = tx.send(cancel).await;
                return Err(error.into());
            }
            None => true,
        };
        while buf.len() >= CHUNK_BYTES || (end && !buf.is_empty()) {
            let rest = buf.split_off(buf.len().min(CHUNK_BYTES));
            let data = std::mem::replace(&mut buf, rest);
            hasher.update(&data);
            let n = data.len() as u64;
            let chunk = v1::DeployRequest {
                message: Some(deploy_request::Message::Chunk(v1::UploadChunk { data })),
            };
            if tx.send(chunk).await.is_err() {
                // The server ended the stream; its result says why.
                return Ok(sent);
            }
            sent += n;
            progress(Progress::Uploading {
                sent,
                total: estimate.max(sent),
            });
        }
        if end {
            break;
        }
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    send_end(tx, sent, &digest).await;
    Ok(sent)
}

/// Sends the file in chunks, then its digest; returns the bytes sent.
async fn send_file(
    tx: &mpsc::Sender<v1::DeployRequest>,
    path: &Path,
    total: u64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, UploadError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| read_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| read_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        let chunk = v1::DeployRequest {
            message: Some(deploy_request::Message::Chunk(v1::UploadChunk {
                data: buf[..n].to_vec(),
            })),
        };
        if tx.send(chunk).await.is_err() {
            // The server ended the stream; its result says why.
            return Ok(sent);
        }
        sent += n as u64;
        progress(Progress::Uploading { sent, total });
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    send_end(tx, sent, &digest).await;
    Ok(sent)
}

async fn send_end(tx: &mpsc::Sender<v1::DeployRequest>, size: u64, sha256: &str) {
    let end = v1::DeployRequest {
        message: Some(deploy_request::Message::End(v1::UploadEnd {
            sha256: sha256.to_string(),
            size,
        })),
    };
    // A closed stream means the server gave up; its result says why.
    let _ = tx.send(end).await;
}

/// Why an image could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read {}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

fn read_error(path: &Path, source: std::io::Error) -> UploadError {
    UploadError::Read {
        path: path.to_path_buf(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArchiveError> + Send + 'static,
) -> Result<T, ArchiveError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(ArchiveError::Read {
            path: "the image archive".into(),
            reason: e.to_string(),
        })
    })
}
