//! The real [`HealthProbe`]: one HTTP/1.0 request over loopback to a container's
//! published port.

use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::engine::HealthProbe;

/// The real probe: HTTP/1.0 over loopback.
pub struct HttpProbe;

#[async_trait]
impl HealthProbe for HttpProbe {
    async fn probe(
        &self,
        port: u16,
        host: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<u16, String> {
        probe(port, host, path, timeout).await
    }
}

/// One `GET path` to `127.0.0.1:port` with `Host: host`; `Ok(status)` for any HTTP
/// answer.
pub async fn probe(port: u16, host: &str, path: &str, timeout: Duration) -> Result<u16, String> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: haloyd-health-check\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut head = Vec::with_capacity(64);
        let mut buf = [0u8; 256];
        while !head.contains(&b'\n') && head.len() < 4096 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| {
                if head.is_empty() {
                    "the connection closed without an answer".to_string()
                } else {
                    "the answer is not HTTP".to_string()
                }
            })?;
        Ok(status)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::is_healthy;
    use tokio::net::TcpListener;

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
            probe(ok, "localhost", "/health", Duration::from_secs(2)).await,
            Ok(204)
        );
        let bad = server(b"HTTP/1.0 503 Unavailable\r\n\r\n").await;
        assert_eq!(
            probe(bad, "localhost", "/", Duration::from_secs(2)).await,
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
        assert_eq!(probe(port, "web.test", "/", timeout).await, Ok(200));
        assert_eq!(probe(port, "localhost", "/", timeout).await, Ok(421));
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
                .contains("connect")
        );
    }
}
