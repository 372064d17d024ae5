//! Bounds on the API's connections: at most `max_connections` at once (a connection
//! past that is closed at once), and a connection that has made no authenticated
//! call within `unauthenticated_timeout` is closed, so idle strangers cannot hold
//! file descriptors. The limits come from `api_limits` in haloyd.yaml.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

/// The `api_limits` block of haloyd.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiLimits {
    /// Connections open at once, per API port.
    pub max_connections: usize,
    /// Seconds a connection may stay open without an authenticated call.
    pub unauthenticated_timeout_secs: u64,
    /// Calls at once on one connection (HTTP/2 streams).
    pub max_streams_per_connection: u32,
    /// Seconds between HTTP/2 pings on a quiet connection; one unanswered for as
    /// long again closes it.
    pub keepalive_secs: u64,
    /// Commands (`haloy exec`) running at once on this haloyd.
    pub max_execs: usize,
    /// Tunnelled TCP connections (`haloy tunnel`) open at once on this haloyd.
    pub max_tunnels: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            unauthenticated_timeout_secs: 10,
            max_streams_per_connection: 64,
            keepalive_secs: 30,
            max_execs: 16,
            max_tunnels: 256,
        }
    }
}

/// A limit set to 0, which would refuse every connection or stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("api_limits.{0} is 0; use at least 1")]
pub struct ZeroLimit(pub &'static str);

impl ApiLimits {
    pub fn validate(&self) -> Result<(), ZeroLimit> {
        let zero = [
            ("max_connections", self.max_connections == 0),
            (
                "unauthenticated_timeout_secs",
                self.unauthenticated_timeout_secs == 0,
            ),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection == 0,
            ),
            ("keepalive_secs", self.keepalive_secs == 0),
            ("max_execs", self.max_execs == 0),
            ("max_tunnels", self.max_tunnels == 0),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((key, _)) => Err(ZeroLimit(key)),
            None => Ok(()),
        }
    }
}

/// What the API knows of the connection a call came on (tonic puts it in every
/// request's extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo(Arc<AtomicBool>);

impl ConnInfo {
    /// The connection has made an authenticated call: it may stay.
    pub fn authenticated(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A connection under the limits.
pub struct Guarded<IO> {
    io: IO,
    authenticated: Arc<AtomicBool>,
    /// Until an authenticated call; then gone.
    deadline: Option<Pin<Box<Sleep>>>,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit, timeout: Duration) -> Self {
        Self {
            io,
            authenticated: Arc::new(AtomicBool::new(false)),
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            _permit: permit,
        }
    }

    /// An error once the deadline has passed without an authenticated call; the
    /// sleep wakes the connection's task when it does.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        if self.authenticated.load(Ordering::Relaxed) {
            self.deadline = None;
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no authenticated call in time",
            ));
        }
        Ok(())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Err(e) = self.check_deadline(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO> Connected for Guarded<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo(self.authenticated.clone())
    }
}

/// `incoming` under `limits`: a connection past `max_connections` is dropped (the
/// peer sees it closed) and the next one is taken.
pub fn guard<I, IO, IE>(
    incoming: I,
    limits: &ApiLimits,
) -> impl Stream<Item = Result<Guarded<IO>, IE>> + use<I, IO, IE>
where
    I: Stream<Item = Result<IO, IE>>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let timeout = Duration::from_secs(limits.unauthenticated_timeout_secs);
    incoming.filter_map(move |accepted| {
        let admitted = match accepted {
            Ok(io) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(Ok(Guarded::new(io, permit, timeout))),
                Err(_) => {
                    tracing::debug!("API connection refused: the connection limit is reached");
                    None
                }
            },
            Err(e) => Some(Err(e)),
        };
        std::future::ready(admitted)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits(max_connections: usize) -> ApiLimits {
        ApiLimits {
            max_connections,
            unauthenticated_timeout_secs: 5,
            ..ApiLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_an_authenticated_call_is_closed_at_the_deadline() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut guarded = Box::pin(guard(
            futures_util::stream::iter([Ok::<_, ()>(server)]),
            &limits(8),
        ))
        .next()
        .await
        .unwrap()
        .unwrap();
        client.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        guarded.read_exact(&mut buf).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_authenticated_connection_stays() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut guarded = Box::pin(guard(
            futures_util::stream::iter([Ok::<_, ()>(server)]),
            &limits(8),
        ))
        .next()
        .await
        .unwrap()
        .unwrap();
        guarded.connect_info().authenticated();
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"late").await.unwrap();
        let mut buf = [0u8; 4];
        guarded.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_dropped_until_one_closes() {
        let pairs: Vec<_> = (0..3).map(|_| tokio::io::duplex(64)).collect();
        let (clients, servers): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut admitted = Box::pin(guard(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            &limits(2),
        ));
        for server in servers {
            tx.send(Ok::<_, ()>(server)).unwrap();
        }
        let first = admitted.next().await.unwrap().unwrap();
        let _second = admitted.next().await.unwrap().unwrap();
        // Waiting for the next admitted connection takes the third, which is over
        // the limit: it is dropped, and its client reads the end of the stream.
        let next = tokio::spawn(async move { admitted.next().await.map(|r| r.is_ok()) });
        let mut third_client = clients.into_iter().nth(2).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(third_client.read(&mut buf).await.unwrap(), 0);
        drop(first);
        let (_client, server) = tokio::io::duplex(64);
        tx.send(Ok(server)).unwrap();
        assert_eq!(next.await.unwrap(), Some(true), "a slot came free");
    }
}
