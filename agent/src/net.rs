//! Accept loops that survive errors. `accept` fails when the process is out of file
//! descriptors (EMFILE) or the kernel of memory; retrying at once would spin a core
//! at 100 % while nothing can improve, so the loop pauses before the next try.
//!
//! Accepted API connections have Nagle's algorithm off: gRPC writes small HTTP/2
//! frames, and with Nagle a frame written while the previous one is unacknowledged
//! waits for the peer's delayed ACK, 40 ms on Linux, on every round trip.

use std::time::Duration;

use std::net::SocketAddr;

use futures_util::Stream;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long an accept loop waits after a failed `accept`.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Connections the kernel queues for an API listener before haloyd accepts them
/// (the kernel caps it at `net.core.somaxconn`). tokio's default, 1024, overflows
/// when a burst of connects outpaces the accept loop, and each overflowed connect
/// then waits a second for its SYN to be sent again.
pub const API_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`API_BACKLOG`].
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(API_BACKLOG)
}

/// The accepted connection, or `None` after logging the error and pausing.
pub async fn accepted<T>(result: std::io::Result<T>, listener: &str) -> Option<T> {
    match result {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            tracing::warn!("cannot accept a connection on {listener}: {e}");
            tokio::time::sleep(ACCEPT_PAUSE).await;
            None
        }
    }
}

/// The connections `listener` accepts, Nagle's algorithm off; a failed accept is
/// logged and paused after, never handed on.
pub fn incoming(
    listener: TcpListener,
    name: &'static str,
) -> impl Stream<Item = std::io::Result<TcpStream>> {
    futures_util::stream::unfold(listener, move |listener| async move {
        loop {
            if let Some((tcp, _)) = accepted(listener.accept().await, name).await {
                no_delay(&tcp);
                return Some((Ok(tcp), listener));
            }
        }
    })
}

/// Turns Nagle's algorithm off on an accepted connection.
pub fn no_delay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_accept_pauses_before_the_next_try() {
        let before = tokio::time::Instant::now();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(accepted::<()>(Err(emfile), "a test socket").await.is_none());
        assert!(before.elapsed() >= ACCEPT_PAUSE);
        let before = tokio::time::Instant::now();
        assert_eq!(accepted(Ok(7), "a test socket").await, Some(7));
        assert_eq!(before.elapsed(), Duration::ZERO);
    }
}
