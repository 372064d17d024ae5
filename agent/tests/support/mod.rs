//! Helpers for the HAProxy tests: a real HAProxy per test in its own directory and
//! ports, tiny HTTP backends, a plain HTTP client, and polling with deadlines.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use haloy_api::spec::DomainSpec;
use haloyd::proxy::haproxy::{Haproxy, HaproxySettings};
use haloyd::proxy::{AppRoute, Backend, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};

/// A free loopback port: bind port 0 and let it go.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// One HAProxy for one test. Dropping it stops HAProxy, also when the test panics,
/// and a panicking test prints the configuration HAProxy ran.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub proxy: Arc<Haproxy>,
    pub http_port: u16,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hx")
            .tempdir()
            .expect("temp dir");
        let mut settings = HaproxySettings::new(
            dir.path().join("haproxy-config"),
            free_port(),
            free_port(),
            dir.path().join("acme.sock"),
        );
        settings.bind_address = "127.0.0.1".parse().expect("ip");
        let http_port = settings.http_port;
        let proxy = Arc::new(Haproxy::new(settings).expect("valid settings"));
        Self {
            dir,
            proxy,
            http_port,
        }
    }

    pub async fn get(&self, host: &str, path: &str) -> Response {
        get(self.http_port, host, path).await
    }

    pub async fn reloads(&self) -> u64 {
        self.proxy.reload_count().await.expect("show proc")
    }

    pub fn acme_socket(&self) -> &Path {
        &self.proxy.settings().acme_socket
    }

    /// HAProxy's master and workers.
    pub async fn haproxy_pids(&self) -> Vec<u32> {
        let processes = self.proxy.processes().await.expect("show proc");
        std::iter::once(processes.master)
            .chain(processes.workers)
            .collect()
    }

    /// Sends signal `name` ("STOP", "CONT", "KILL") to HAProxy's master and workers;
    /// returns their pids.
    pub async fn signal_haproxy(&self, name: &str) -> Vec<u32> {
        let pids = self.haproxy_pids().await;
        signal(&pids, name);
        pids
    }

    /// SIGKILLs HAProxy's master and workers, as a crash would, and returns once they
    /// are gone.
    pub async fn crash(&self) {
        let pids = self.signal_haproxy("KILL").await;
        haloy_testkit::eventually_async(Duration::from_secs(10), "HAProxy is gone", || async {
            pids.iter().all(|p| !alive(*p))
        })
        .await;
    }

    /// The names of an app's servers, in HAProxy's order.
    pub async fn server_names(&self, app: &str) -> Vec<String> {
        let servers = self.proxy.servers(app).await.expect("servers");
        servers.into_iter().map(|s| s.name).collect()
    }
}

/// A client sending requests one after another, each on a new connection, and
/// recording every one that did not answer 200 with the expected body.
pub struct Hammer {
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Hammer {
    /// Bounded: at most 20,000 requests, and at least `min` before it stops.
    pub fn start(port: u16, host: &str, body: &str, min: usize) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (done.clone(), stop.clone());
        let (host, body) = (host.to_string(), body.to_string());
        let task = tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..20_000 {
                if i >= min && stopped.load(Ordering::SeqCst) {
                    break;
                }
                let response = get(port, &host, "/").await;
                if response.status != 200 || response.body != body {
                    failures.push(format!(
                        "request {i}: {} {}",
                        response.status, response.body
                    ));
                }
                counter.fetch_add(1, Ordering::SeqCst);
            }
            failures
        });
        Self { done, stop, task }
    }

    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Stops (once `min` requests are done) and returns the failures and the count.
    pub async fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.task.await.expect("hammer task");
        (failures, self.done.load(Ordering::SeqCst))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let config = std::fs::read_to_string(self.proxy.config_file()).unwrap_or_default();
            eprintln!("--- {} ---\n{config}", self.proxy.config_file().display());
        }
        // Synchronous on purpose: Drop may run outside any runtime, during a panic.
        let Some(pid) = std::fs::read_to_string(self.proxy.pid_file())
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            return;
        };
        let kill = |signal: &str| {
            let _ = std::process::Command::new("kill")
                .args(["-s", signal, &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        };
        kill("TERM");
        let stopped = haloy_testkit::Wait::new(Duration::from_secs(5), "HAProxy to stop")
            .every(Duration::from_millis(20))
            .poll(|| !alive(pid));
        if stopped.is_none() {
            kill("KILL");
        }
    }
}

/// Whether a process runs (zombies do not).
/// Sends signal `name` to `pids` (a stopped HAProxy cannot say its pids: keep them).
pub fn signal(pids: &[u32], name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .args(pids.iter().map(u32::to_string))
        .status();
    assert!(status.unwrap().success(), "kill -{name} {pids:?}");
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
        })
        .is_some_and(|zombie| !zombie)
}

pub fn route(app: &str, canonical: &str, aliases: &[&str], servers: Vec<Backend>) -> AppRoute {
    AppRoute {
        app: app.into(),
        domains: vec![DomainSpec {
            canonical: canonical.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }],
        health_check_path: "/health".into(),
        servers,
        maintenance: None,
    }
}

/// A tiny HTTP/1.1 server with keep-alive: every request gets 200 with `name` as
/// its body; `/slow` answers after 1.5 s, to hold a session open.
pub struct HttpBackend {
    pub name: String,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpBackend {
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let body = name.to_string();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, body.clone()));
            }
        });
        Self {
            name: name.into(),
            addr,
            task,
        }
    }

    pub fn backend(&self) -> Backend {
        Backend {
            name: self.name.clone(),
            addr: self.addr,
            draining: false,
            weight: None,
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(mut stream: TcpStream, body: String) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        buffer.drain(..head_end);
        if head
            .split_whitespace()
            .nth(1)
            .is_some_and(|p| p.starts_with("/slow"))
        {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let close = head.contains("connection: close");
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        if stream.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// A unix-socket HTTP server answering 200 "acme <path>", like haloyd's ACME responder.
pub fn acme_listener(path: &Path) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind acme socket");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let body = format!("acme {path}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    })
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection; status 0 when the exchange failed.
pub async fn get(port: u16, host: &str, path: &str) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let failed = |reason: String| Response {
        status: 0,
        headers: vec![],
        body: reason,
    };
    let raw = match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(_) => return failed("timed out".into()),
    };
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return failed(format!("no response head in {raw:?}"));
    };
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}
