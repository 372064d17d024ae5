//! Uploading an image to haloyd: export it from the workstation's Docker, announce its
//! layers, then send only the layer files the server says it lacks.

use std::path::Path;

use futures_util::StreamExt;
use haloy_api::v1::{self, deploy_request};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::archive::{ArchiveError, ImageArchive, hex};
use crate::client::{ClientError, ImageChoice, Progress};

/// Size of each upload chunk; the server accepts messages up to 4 MiB.
const CHUNK_BYTES: usize = 1 << 20;

/// Saves `reference` (a reference or id in the workstation's Docker) to
/// `dir/image.tar`, as `docker save` would, and reads what it holds.
pub async fn export(reference: &str, dir: &Path) -> Result<ImageArchive, ArchiveError> {
    let failed = |reason: String| ArchiveError::Export {
        reference: reference.to_string(),
        reason,
    };
    let docker = bollard::Docker::connect_with_local_defaults()
        .map_err(|e| failed(format!("{e}; is Docker running on this machine?")))?
        .negotiate_version()
        .await
        .map_err(|e| failed(format!("{e}; is Docker running on this machine?")))?;
    let path = dir.join("image.tar");
    let write = |e: std::io::Error| ArchiveError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = tokio::fs::File::create(&path).await.map_err(write)?;
    let mut stream = docker.export_image(reference);
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => failed("no such image; build or pull it first".into()),
            other => failed(other.to_string()),
        })?;
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

/// An image ready to upload, with a temporary directory for the exported and the
/// partial archive; dropping it removes the directory.
pub(crate) struct Staged {
    pub archive: ImageArchive,
    dir: tempfile::TempDir,
}

/// Reads (or exports) the image of an upload; `None` for the other choices.
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
    Ok(match choice {
        ImageChoice::Pull | ImageChoice::Existing => None,
        ImageChoice::Upload(path) => Some(Staged {
            archive: open(path).await?,
            dir: dir()?,
        }),
        ImageChoice::UploadFromDocker(reference) => {
            let dir = dir()?;
            let archive = export(reference, dir.path()).await?;
            Some(Staged { archive, dir })
        }
    })
}

/// The announcement that opens an upload.
pub(crate) fn announce(archive: &ImageArchive) -> v1::Upload {
    v1::Upload {
        image_id: archive.image_id().to_string(),
        layers: archive.diff_ids(),
        archive_size: archive.size(),
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
) -> Result<u64, ClientError> {
    let archive = &staged.archive;
    let of = archive.layers().len();
    if wanted.have_image {
        progress(Progress::UploadPlanned {
            layers: 0,
            of,
            bytes: 0,
        });
        send_end(tx, 0, "").await;
        return Ok(0);
    }
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

/// Sends the file in chunks, then its digest; returns the bytes sent.
async fn send_file(
    tx: &mpsc::Sender<v1::DeployRequest>,
    path: &Path,
    total: u64,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, ClientError> {
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
    let digest = format!("sha256:{}", hex(&hasher.finalize()));
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

fn read_error(path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
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
