//! `hey` load runs in the background and what they counted.

use std::process::{Child, Command, Stdio};

use crate::*;

/// A `hey` run against HAProxy in the background.
pub struct Load {
    child: Option<Child>,
}

/// What `hey` counted.
#[derive(Debug)]
pub struct LoadReport {
    pub total: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub raw: String,
}

impl Load {
    /// Hammers `http://127.0.0.1:port/` with `Host: host` for `seconds`, 4 workers,
    /// at most 400 requests per second in all.
    pub fn start(port: u16, host: &str, seconds: u64) -> Self {
        Self::spawn(
            &format!("http://127.0.0.1:{port}/"),
            host,
            seconds,
            Connections::KeepAlive,
        )
    }

    /// A light load that runs until [`Load::stop`] (at most `seconds`): one worker,
    /// `per_second` requests a second, so that many can run side by side.
    /// Exactly `n` requests over 10 keep-alive connections, as fast as they go;
    /// [`Load::finish`] waits for them.
    pub fn requests(port: u16, host: &str, n: u64) -> Self {
        require(
            "hey",
            &["-n", "1", "-c", "1", "http://127.0.0.1:1/"],
            "the load generator hey",
        );
        let child = Command::new("hey")
            .args(["-n", &n.to_string(), "-c", "10", "-t", "10", "-host", host])
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hey");
        Self { child: Some(child) }
    }

    pub fn light(port: u16, host: &str, seconds: u64, per_second: u32) -> Self {
        require(
            "hey",
            &["-n", "1", "-c", "1", "http://127.0.0.1:1/"],
            "the load generator hey",
        );
        let child = Command::new("hey")
            .args(["-z", &format!("{seconds}s"), "-c", "1", "-q"])
            .arg(per_second.to_string())
            .args(["-t", "10", "-host", host])
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hey");
        Self { child: Some(child) }
    }

    /// Ends the run now (hey reports what it counted on SIGINT) and parses it.
    pub fn stop(self) -> LoadReport {
        if let Some(child) = &self.child {
            signal(child.id(), "INT");
        }
        self.finish()
    }

    /// hey against `url` with `Host: host` for `seconds`, 4 workers, at most 400
    /// requests per second in all.
    fn spawn(url: &str, host: &str, seconds: u64, connections: Connections) -> Self {
        require(
            "hey",
            &["-n", "1", "-c", "1", "http://127.0.0.1:1/"],
            "the load generator hey",
        );
        let mut command = Command::new("hey");
        command.args([
            "-z",
            &format!("{seconds}s"),
            "-c",
            "4",
            "-q",
            "100",
            "-t",
            "10",
        ]);
        if connections == Connections::PerRequest {
            command.arg("-disable-keepalive");
        }
        let child = command
            .args(["-host", host])
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hey");
        Self { child: Some(child) }
    }

    /// Waits for the run to end and parses its summary.
    pub fn finish(mut self) -> LoadReport {
        let child = self.child.take().expect("running");
        let output = child.wait_with_output().expect("hey");
        let raw = String::from_utf8_lossy(&output.stdout).to_string();
        let mut report = LoadReport {
            total: 0,
            ok: 0,
            non_2xx: 0,
            errors: 0,
            raw: raw.clone(),
        };
        let mut section = "";
        for line in raw.lines() {
            let line = line.trim();
            if line.starts_with("Status code distribution") {
                section = "status";
            } else if line.starts_with("Error distribution") {
                section = "errors";
            } else if section == "status" && line.starts_with('[') {
                let code: u16 = line[1..4].parse().unwrap_or(0);
                let count: u64 = line[5..]
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                report.total += count;
                if (200..300).contains(&code) {
                    report.ok += count;
                } else {
                    report.non_2xx += count;
                }
            } else if section == "errors" && line.starts_with('[') {
                let count: u64 = line[1..]
                    .split(']')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                report.errors += count;
                report.total += count;
            }
        }
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How a load run uses its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Each worker keeps its connection open (hey's default).
    KeepAlive,
    /// A new connection, and over HTTPS a new TLS handshake, for every request: a
    /// certificate swapped during the run is met by the requests that follow.
    PerRequest,
}

impl Load {
    /// Like [`Load::start`], over HTTPS with SNI and Host `host` (hey does not check
    /// certificates), with a choice of how connections are used: for swapping
    /// certificates under load.
    pub fn start_https_with(port: u16, host: &str, seconds: u64, connections: Connections) -> Self {
        Self::spawn(
            &format!("https://127.0.0.1:{port}/"),
            host,
            seconds,
            connections,
        )
    }
}
