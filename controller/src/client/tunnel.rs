//! `Tunnel`: one local TCP connection forwarded to a port of a running replica over
//! its own stream, each direction ending on its own (half-close).

use haloy_api::v1::{self, tunnel_data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Client, ClientError};

/// Where a tunnel's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelTarget {
    pub app: String,
    /// 1-based running replica; 0 is the first.
    pub replica: u32,
    /// Container port; 0 is the app's port.
    pub port: u16,
}

/// Bytes read from the local connection at once (one message).
const CHUNK: usize = 64 * 1024;

impl Client {
    /// Forwards `socket` to `target` until both directions ended. Returns the
    /// replica it reached. Needs only `&self`: connections share the channel, each
    /// with its own stream.
    pub async fn tunnel(
        &self,
        target: &TunnelTarget,
        socket: TcpStream,
    ) -> Result<String, ClientError> {
        let (tx, rx) = mpsc::channel(16);
        let open = tunnel_data::Frame::Open(v1::TunnelOpen {
            app: target.app.clone(),
            replica: target.replica,
            port: u32::from(target.port),
        });
        // The channel is empty and its receiver alive: this cannot fail.
        let _ = tx.send(frame(open)).await;
        let mut inner = self.inner.clone();
        let mut incoming = inner
            .tunnel(ReceiverStream::new(rx))
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        let replica = match incoming.message().await.map_err(|s| self.error(s))? {
            Some(v1::TunnelData {
                frame: Some(tunnel_data::Frame::Opened(opened)),
            }) => opened.replica,
            _ => return Err(self.no_result("tunnel")),
        };
        let (mut reader, mut writer) = socket.into_split();
        let local = |e: std::io::Error| ClientError::Call {
            server: self.server.clone(),
            message: format!("the local connection broke: {e}"),
        };
        let up = async {
            let mut buffer = vec![0; CHUNK];
            loop {
                let n = reader.read(&mut buffer).await.map_err(local)?;
                let message = if n == 0 {
                    tunnel_data::Frame::Eof(v1::TunnelEof {})
                } else {
                    tunnel_data::Frame::Data(buffer[..n].to_vec())
                };
                // A closed stream means the server ended it; `down` says why.
                if tx.send(frame(message)).await.is_err() || n == 0 {
                    return Ok::<(), ClientError>(());
                }
            }
        };
        let down = async {
            while let Some(message) = incoming.message().await.map_err(|s| self.error(s))? {
                match message.frame {
                    Some(tunnel_data::Frame::Data(bytes)) => {
                        writer.write_all(&bytes).await.map_err(local)?;
                    }
                    Some(tunnel_data::Frame::Eof(_)) => {
                        let _ = writer.shutdown().await;
                    }
                    _ => {}
                }
            }
            Ok::<(), ClientError>(())
        };
        tokio::pin!(up, down);
        let mut up_done = false;
        loop {
            tokio::select! {
                result = &mut up, if !up_done => {
                    result?;
                    up_done = true;
                }
                result = &mut down => return result.map(|()| replica),
            }
        }
    }
}

fn frame(frame: tunnel_data::Frame) -> v1::TunnelData {
    v1::TunnelData { frame: Some(frame) }
}
