//! HTTP-01 challenge answers. HAProxy sends every `/.well-known/acme-challenge/`
//! request, whatever the host, to a unix socket that haloyd serves here with the
//! key authorizations of the orders in progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const PREFIX: &str = "/.well-known/acme-challenge/";
/// A request must arrive within this and fit in this many bytes.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 8 * 1024;

/// Token → key authorization, shared by the ACME client and the socket.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

impl Challenges {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(token.to_string(), key_authorization.to_string());
        }
    }

    pub fn remove(&self, token: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(token);
        }
    }

    fn answer(&self, token: &str) -> Option<String> {
        self.tokens.lock().ok()?.get(token).cloned()
    }
}

/// Binds the socket (replacing a stale one) and answers on it until dropped.
pub struct ChallengeServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ChallengeServer {
    pub fn start(path: &Path, challenges: Challenges) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let task = tokio::spawn(async move {
            loop {
                let accepted = listener.accept().await;
                let Some((stream, _)) =
                    crate::net::accepted(accepted, "the ACME challenge socket").await
                else {
                    continue;
                };
                let challenges = challenges.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &challenges).await {
                        tracing::debug!("ACME challenge request failed: {e}");
                    }
                });
            }
        });
        Ok(Self {
            path: path.to_path_buf(),
            task,
        })
    }
}

impl Drop for ChallengeServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(mut stream: UnixStream, challenges: &Challenges) -> std::io::Result<()> {
    let mut request = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .map_err(|_| std::io::Error::other("the request did not arrive in time"))??;
    let text = String::from_utf8_lossy(&request);
    let (status, body) = match response(&text, challenges) {
        Some(key_authorization) => ("200 OK", key_authorization),
        None => ("404 Not Found", "no such ACME challenge\n".to_string()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// The key authorization for a `GET /.well-known/acme-challenge/<token>` request.
fn response(request: &str, challenges: &Challenges) -> Option<String> {
    let mut words = request.lines().next()?.split_whitespace();
    let (method, target) = (words.next()?, words.next()?);
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let token = target.strip_prefix(PREFIX)?;
    challenges.answer(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_known_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.sock");
        let challenges = Challenges::default();
        challenges.insert("tok1", "tok1.thumb");
        let _server = ChallengeServer::start(&path, challenges.clone()).unwrap();
        let get = |target: &'static str| {
            let path = path.clone();
            async move {
                let mut stream = UnixStream::connect(&path).await.unwrap();
                let request = format!("GET {target} HTTP/1.1\r\nHost: a.com\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut reply = String::new();
                stream.read_to_string(&mut reply).await.unwrap();
                reply
            }
        };
        let reply = get("/.well-known/acme-challenge/tok1").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("\r\n\r\ntok1.thumb"), "{reply}");
        assert!(
            get("/.well-known/acme-challenge/other")
                .await
                .starts_with("HTTP/1.1 404")
        );
        challenges.remove("tok1");
        assert!(
            get("/.well-known/acme-challenge/tok1")
                .await
                .starts_with("HTTP/1.1 404")
        );
    }
}
