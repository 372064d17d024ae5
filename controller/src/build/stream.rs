//! The build context archive, written on a blocking thread and streamed into the
//! build request's body chunk by chunk, so a big context never sits in memory whole.

use std::io::{self, Write};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::context::{Context, ContextError};

/// Archive bytes handed to Docker per chunk.
const CHUNK: usize = 64 * 1024;

/// The archive's chunks, for `bollard::body_try_stream`.
pub(crate) type Chunks =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>>;

/// Starts archiving `context` and returns the chunks for the request body and the
/// task writing them. The task ends with the archive's error, if any; dropping the
/// chunks makes it give up (see [`ContextError::aborted`]).
pub(crate) fn archive(context: Context) -> (Chunks, JoinHandle<Result<(), ContextError>>) {
    let (chunks, body) = mpsc::channel::<io::Result<Bytes>>(8);
    let archiving = tokio::task::spawn_blocking(move || {
        let result = context
            .write(ChunkSender::new(chunks.clone()))
            .and_then(|sender| {
                sender.finish().map_err(|source| ContextError {
                    path: context.root.clone(),
                    source,
                })
            });
        if let Err(err) = &result {
            // Fails the request body, so Docker stops waiting for the rest.
            let _ = chunks.blocking_send(Err(io::Error::other(err.source.to_string())));
        }
        result
    });
    let chunks = futures_util::stream::unfold(body, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (Box::pin(chunks), archiving)
}

/// Hands the archive to the request body in chunks. Writing fails once the
/// request is gone, which ends the archiving.
struct ChunkSender {
    chunks: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkSender {
    fn new(chunks: mpsc::Sender<io::Result<Bytes>>) -> Self {
        Self {
            chunks,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, ABORTED))
    }

    fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

/// The marker of a write that failed because Docker stopped reading.
const ABORTED: &str = "docker stopped reading the build context";

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl ContextError {
    /// True when archiving stopped because the build ended early, which the build's
    /// own error explains better.
    pub(crate) fn aborted(&self) -> bool {
        self.source.kind() == io::ErrorKind::BrokenPipe && self.source.to_string() == ABORTED
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn archiving_stops_quietly_once_docker_stops_reading() {
        let (chunks, body) = mpsc::channel(1);
        drop(body);
        let mut sender = ChunkSender::new(chunks);
        let err = sender.write_all(&[0; CHUNK]).expect_err("nobody reads");
        let err = ContextError {
            path: PathBuf::from("/app"),
            source: err,
        };
        assert!(err.aborted());
    }
}
