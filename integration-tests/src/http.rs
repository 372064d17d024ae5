//! One-shot HTTP and HTTPS requests to HAProxy, and the certificate it presents.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::*;

/// One HTTP/1.1 request over a fresh connection: (status, headers, body).
pub fn http_get(port: u16, host: &str, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// `curl` over HTTPS to HAProxy for `host`, trusting `ca`: (status, body), status 0
/// when the TLS handshake or connection failed.
pub fn https_get(port: u16, host: &str, path: &str, ca: &Path) -> (u16, String) {
    let output = run(Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}{path}")));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The serial of the certificate HAProxy presents for `host` (SNI), as
/// `openssl x509 -serial` prints it, or None when no handshake succeeds.
pub fn served_serial(port: u16, host: &str) -> Option<String> {
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            host,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut pem = String::new();
    s_client.stdout.take()?.read_to_string(&mut pem).ok()?;
    let _ = s_client.wait();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    x509.stdin.take()?.write_all(pem.as_bytes()).ok()?;
    let output = x509.wait_with_output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .strip_prefix("serial=")
        .map(str::to_string)
}
