//! `Tunnel`: one TCP connection to a port of a running replica, carried over one
//! bidirectional stream. Each direction ends on its own (half-close), and the
//! stream ends when both have.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use haloy_api::v1::{self, tunnel_data};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::session::{Sessions, replica};
use super::{AgentError, app_name};
use crate::engine::{Engine, EngineError};
use crate::runtime::{ContainerInfo, labels};

pub(super) type DataStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<v1::TunnelData, Status>> + Send>>;

/// How long connecting to the replica may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the replica at once (one message).
const CHUNK: usize = 64 * 1024;

type Sender = mpsc::Sender<Result<v1::TunnelData, Status>>;

pub(super) async fn start(
    engine: &Arc<Engine>,
    sessions: &Sessions,
    mut input: Streaming<v1::TunnelData>,
) -> Result<DataStream, Status> {
    let permit = sessions.tunnel()?;
    let first = input
        .message()
        .await?
        .ok_or_else(|| protocol("the Tunnel stream closed before its TunnelOpen"))?;
    let Some(tunnel_data::Frame::Open(open)) = first.frame else {
        return Err(protocol("the first Tunnel message must be TunnelOpen"));
    };
    let app = app_name(&open.app)?.to_string();
    let (container, _) = replica(engine, &app, open.replica).await?;
    let app_port = container
        .labels
        .get(labels::PORT)
        .and_then(|p| p.parse::<u16>().ok());
    let port = match open.port {
        0 => app_port.ok_or_else(|| {
            Status::failed_precondition(format!(
                "{} does not say its app port; name one with --port",
                container.name
            ))
        })?,
        port => u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
            Status::invalid_argument(format!(
                "TunnelOpen.port {port} is not a TCP port; use 1 to 65535"
            ))
        })?,
    };
    let address = address(engine, &container, port, app_port).await?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|reason| {
            Status::unavailable(format!(
                "cannot connect to port {port} of {}: {reason}; does the app listen on that port?",
                container.name
            ))
        })?;
    let _ = stream.set_nodelay(true);
    tracing::info!(%app, replica = %container.name, port, "tunnel connection opened");
    let (tx, rx) = mpsc::channel(16);
    let opened = tunnel_data::Frame::Opened(v1::TunnelOpened {
        replica: container.name.clone(),
        port: u32::from(port),
    });
    // The receiver is alive and the channel empty: this cannot fail.
    let _ = tx.send(Ok(data(opened))).await;
    tokio::spawn(copy(stream, input, tx, permit));
    Ok(ReceiverStream::new(rx).boxed())
}

fn protocol(message: &str) -> Status {
    AgentError::Protocol(message.to_string()).into()
}

fn data(data: tunnel_data::Frame) -> v1::TunnelData {
    v1::TunnelData { frame: Some(data) }
}

/// The app port through its loopback publication (where health checks reach it);
/// any other port on the container's network address.
async fn address(
    engine: &Engine,
    container: &ContainerInfo,
    port: u16,
    app_port: Option<u16>,
) -> Result<SocketAddr, Status> {
    if let (Some(host_port), true) = (container.host_port, app_port == Some(port)) {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), host_port));
    }
    let found = engine
        .runtime()
        .address(&container.id)
        .await
        .map_err(|e| AgentError::from(EngineError::from(e)))?;
    let ip = found.ip.ok_or_else(|| {
        Status::failed_precondition(format!(
            "{} has no address on a Docker network to reach port {port} at",
            container.name
        ))
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// Copies both ways until both directions ended or either side went away.
async fn copy(
    stream: TcpStream,
    input: Streaming<v1::TunnelData>,
    tx: Sender,
    _permit: OwnedSemaphorePermit,
) {
    let (reader, writer) = stream.into_split();
    let up = upstream(input, writer);
    let down = downstream(reader, tx.clone());
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            result = &mut up, if !up_done => {
                up_done = true;
                if let Err(status) = result {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            result = &mut down, if !down_done => {
                down_done = true;
                if let Err(status) = result {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}

/// The client's bytes to the replica; its TunnelEof (or the end of its stream)
/// shuts the connection's write side.
async fn upstream(
    mut input: Streaming<v1::TunnelData>,
    mut writer: OwnedWriteHalf,
) -> Result<(), Status> {
    loop {
        match input.message().await? {
            Some(v1::TunnelData {
                frame: Some(tunnel_data::Frame::Data(bytes)),
            }) => writer
                .write_all(&bytes)
                .await
                .map_err(|e| Status::unavailable(format!("the replica's connection broke: {e}")))?,
            Some(v1::TunnelData {
                frame: Some(tunnel_data::Frame::Eof(_)),
            })
            | None => {
                let _ = writer.shutdown().await;
                return Ok(());
            }
            Some(_) => {
                return Err(protocol(
                    "after TunnelOpen the client sends only data and eof",
                ));
            }
        }
    }
}

/// The replica's bytes to the client, then a TunnelEof when it shut its side.
async fn downstream(mut reader: OwnedReadHalf, tx: Sender) -> Result<(), Status> {
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = reader
            .read(&mut buffer)
            .await
            .map_err(|e| Status::unavailable(format!("the replica's connection broke: {e}")))?;
        let message = if n == 0 {
            tunnel_data::Frame::Eof(v1::TunnelEof {})
        } else {
            tunnel_data::Frame::Data(buffer[..n].to_vec())
        };
        if tx.send(Ok(data(message))).await.is_err() || n == 0 {
            return Ok(());
        }
    }
}
