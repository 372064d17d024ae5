//! The real [`HealthProbe`]: one HTTP/1.1 request (hyper) over loopback to a
//! container's published port, reading the status and the first line of the body;
//! and, for accessories that speak no HTTP, a TCP connection the far side keeps open.

use std::time::Duration;

use async_trait::async_trait;
use hyper::Request;
use hyper::body::Body as _;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::engine::{Answer, HealthProbe, ProbeError};

/// The real probe: HTTP/1.1 over loopback.
pub struct HttpProbe;

#[async_trait]
impl HealthProbe for HttpProbe {
    async fn probe(
        &self,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Answer, ProbeError> {
        probe(port, host, path, timeout).await
    }

    async fn connect(&self, port: u16, timeout: Duration) -> Result<(), ProbeError> {
        connect(port, timeout).await
    }
}

/// How long a connection must stay open to count: Docker's userland proxy accepts
/// on the published port before anything listens in the container, and closes the
/// connection as soon as its own connect inside is refused.
const STAYS_OPEN: Duration = Duration::from_millis(300);

/// A TCP connection to `127.0.0.1:port` that the far side keeps open for
/// [`STAYS_OPEN`] (or greets on): an accept alone proves nothing behind a proxy.
pub async fn connect(port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", port)))
        .await
        .map_err(|_| ProbeError::NoConnection(timeout))?
        .map_err(ProbeError::Connect)?;
    let mut greeting = [0u8; 64];
    match tokio::time::timeout(STAYS_OPEN.min(timeout), stream.read(&mut greeting)).await {
        // Quiet and open (redis, PostgreSQL), or a greeting (MySQL, SMTP).
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) => Err(ProbeError::ClosedAtOnce),
        Ok(Err(e)) => Err(ProbeError::Connect(e)),
    }
}

/// How much of the body is read for its first line.
const BODY_PEEK: usize = 4096;

/// One `GET path` to `127.0.0.1:port` with `Host: host`; the status and the body's
/// first line for any HTTP answer.
pub async fn probe(
    port: u16,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<Answer, ProbeError> {
    let attempt = async {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(ProbeError::Connect)?;
        // Title-case header names (`Host:`), as the hand-written probe sent: some
        // apps match them byte for byte.
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ProbeError::Handshake)?;
        // The connection task ends with the exchange: the request says close.
        tokio::spawn(connection);
        let request = Request::get(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "haloyd-health-check")
            .header(hyper::header::CONNECTION, "close")
            .body(String::new())
            .map_err(ProbeError::Request)?;
        let response = sender.send_request(request).await.map_err(|e| {
            if e.is_incomplete_message() {
                ProbeError::Closed(e)
            } else if e.is_parse() {
                ProbeError::NotHttp(e)
            } else {
                ProbeError::Exchange(e)
            }
        })?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut peek = Vec::new();
        while peek.len() < BODY_PEEK && !peek.contains(&b'\n') {
            let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
            match frame.await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        peek.extend_from_slice(data);
                    }
                }
                // A status was read; a broken body only shortens the line.
                Some(Err(_)) | None => break,
            }
        }
        Ok(Answer {
            status,
            first_line: first_line(&peek),
        })
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ProbeError::NoAnswer(timeout))?
}

/// The first non-empty line of a body, at most 200 characters.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::is_healthy;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn status(answer: Result<Answer, ProbeError>) -> Result<u16, String> {
        answer.map(|a| a.status).map_err(|e| e.to_string())
    }

    async fn server(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn reads_the_status_code() {
        let ok = server(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(
            status(probe(ok, "localhost", "/health", Duration::from_secs(2)).await),
            Ok(204)
        );
        let bad = server(b"HTTP/1.0 503 Unavailable\r\n\r\n").await;
        assert_eq!(
            status(probe(bad, "localhost", "/", Duration::from_secs(2)).await),
            Ok(503)
        );
        assert!(!is_healthy(503) && is_healthy(301));
        let junk = server(b"hello\n").await;
        assert!(
            probe(junk, "localhost", "/", Duration::from_secs(2))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_app_is_asked_for_its_own_host() {
        // An app that routes by Host, as many do: only its domain is healthy.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let answer: &[u8] = if request.contains("\r\nHost: web.test\r\n") {
                    b"HTTP/1.1 200 OK\r\n\r\n"
                } else {
                    b"HTTP/1.1 421 Misdirected Request\r\n\r\n"
                };
                let _ = socket.write_all(answer).await;
            }
        });
        let timeout = Duration::from_secs(2);
        assert_eq!(status(probe(port, "web.test", "/", timeout).await), Ok(200));
        assert_eq!(
            status(probe(port, "localhost", "/", timeout).await),
            Ok(421)
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        assert!(
            probe(port, "localhost", "/", Duration::from_secs(2))
                .await
                .unwrap_err()
                .to_string()
                .contains("connect")
        );
    }

    #[tokio::test]
    async fn the_first_line_of_the_body_comes_back() {
        let port = server(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 40\r\n\r\n\ndatabase unreachable: timeout\nmore\n\n\n\n\n",
        )
        .await;
        let answer = probe(port, "localhost", "/health", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(answer.status, 500);
        assert_eq!(answer.first_line, "database unreachable: timeout");
    }

    #[tokio::test]
    async fn a_tcp_check_needs_only_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let timeout = Duration::from_secs(2);
        assert!(HttpProbe.connect(port, timeout).await.is_ok());
        drop(listener);
        assert!(
            HttpProbe
                .connect(port, timeout)
                .await
                .unwrap_err()
                .to_string()
                .contains("connect")
        );
    }

    /// What Docker's userland proxy does while nothing listens in the container:
    /// accept, then close. That is not a healthy accessory; one that greets is.
    #[tokio::test]
    async fn a_tcp_check_wants_the_connection_kept_open() {
        let closes = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closes.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = closes.accept().await {
                drop(socket);
            }
        });
        let timeout = Duration::from_secs(2);
        let err = HttpProbe.connect(port, timeout).await.unwrap_err();
        assert!(matches!(err, ProbeError::ClosedAtOnce), "{err}");
        assert!(err.to_string().contains("nothing listens"), "{err}");

        let greets = server(b"").await;
        let greeting = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let greeting_port = greeting.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = greeting.accept().await {
                let _ = socket.write_all(b"220 ready\r\n").await;
                drop(socket);
            }
        });
        assert!(HttpProbe.connect(greeting_port, timeout).await.is_ok());
        // `server` reads first and stays quiet: open and silent counts.
        assert!(HttpProbe.connect(greets, timeout).await.is_ok());
    }
}
