//! HAProxy's master CLI: one connection per command, over a unix socket, with
//! timeouts. Worker commands go through the master with `@1` (the current worker), so
//! they never land on an old worker that is still finishing its sessions after a
//! reload; `@!<pid>` reaches a given old worker.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::proxy::ProxyError;

/// One runtime API command must answer within this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(super) struct MasterCli {
    path: PathBuf,
}

impl MasterCli {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn unavailable(&self, reason: impl ToString) -> ProxyError {
        ProxyError::Unavailable {
            socket: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Sends one command to the master and returns its whole answer.
    pub async fn master(&self, command: &str) -> Result<String, ProxyError> {
        // A line break or ';' would smuggle a second command in: refused in every
        // build, whatever the callers validated.
        if command.contains(['\n', '\r', ';']) {
            return Err(ProxyError::Other(format!(
                "refusing to send HAProxy a command with a line break or ';': {command:?}"
            )));
        }
        let exchange = async {
            let mut stream = UnixStream::connect(&self.path).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            // Closing our side tells the CLI there is nothing more: it answers and
            // closes, so the answer is everything up to EOF.
            stream.shutdown().await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(self.unavailable(e)),
            Err(_) => Err(self.unavailable(format!(
                "no answer to `{command}` within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Sends one command to the current worker.
    pub async fn worker(&self, command: &str) -> Result<String, ProxyError> {
        self.master(&format!("@1 {command}")).await
    }

    /// A worker command that answers nothing when it succeeds.
    pub async fn worker_silent(&self, command: &str) -> Result<(), ProxyError> {
        let answer = self.worker(command).await?;
        expect(command, &answer, "")
    }

    /// A worker command that answers exactly `ok` when it succeeds.
    pub async fn worker_expect(&self, command: &str, ok: &str) -> Result<(), ProxyError> {
        let answer = self.worker(command).await?;
        expect(command, &answer, ok)
    }

    /// Asks the master to reload. HAProxy 2.6 answers nothing and the master
    /// re-executes itself, dropping the connection; the outcome is read from
    /// `show proc` afterwards, so only failing to send the command is an error here.
    pub async fn reload(&self) -> Result<(), ProxyError> {
        let send = async {
            let mut stream = UnixStream::connect(&self.path).await?;
            stream.write_all(b"reload\n").await?;
            Ok::<_, std::io::Error>(stream)
        };
        let mut stream = match tokio::time::timeout(COMMAND_TIMEOUT, send).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(self.unavailable(e)),
            Err(_) => return Err(self.unavailable("the master did not take `reload` in time")),
        };
        let drain = async {
            stream.shutdown().await?;
            let mut ignored = Vec::new();
            stream.read_to_end(&mut ignored).await
        };
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, drain).await;
        Ok(())
    }

    pub async fn processes(&self) -> Result<Processes, ProxyError> {
        let answer = self.master("show proc").await?;
        parse_show_proc(&answer).ok_or_else(|| {
            ProxyError::Other(format!(
                "cannot read HAProxy's `show proc` answer: {}",
                answer.trim()
            ))
        })
    }
}

fn expect(command: &str, answer: &str, ok: &str) -> Result<(), ProxyError> {
    if answer.trim() == ok {
        Ok(())
    } else {
        Err(ProxyError::Refused {
            command: command.to_string(),
            answer: answer.trim().to_string(),
        })
    }
}

/// HAProxy's processes as the master lists them (`show proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    pub master: u32,
    /// Reloads since the master started, failed ones included.
    pub reloads: u64,
    /// Failed reloads since the last successful one (HAProxy resets it to 0).
    pub failed_reloads: u64,
    /// The worker serving the current configuration (one, unless `nbproc`).
    pub workers: Vec<u32>,
    /// Workers of earlier configurations still finishing their sessions.
    pub old_workers: Vec<u32>,
    /// The master's version, e.g. "2.6.12-1+deb12u4".
    pub version: String,
}

/// ```text
/// #<PID>          <type>          <reloads>       <uptime>        <version>
/// 21892           master          5 [failed: 1]   0d00h01m55s     2.6.12-1+deb12u4
/// # workers
/// 25077           worker          1               0d00h00m40s     2.6.12-1+deb12u4
/// # old workers
/// 24001           worker          2               0d00h03m10s     2.6.12-1+deb12u4
/// # programs
/// ```
pub(super) fn parse_show_proc(text: &str) -> Option<Processes> {
    let mut processes: Option<Processes> = None;
    let mut section = "";
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            section = name.trim();
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [
                pid,
                "master",
                reloads,
                "[failed:",
                failed,
                _uptime,
                version,
                ..,
            ] => {
                processes = Some(Processes {
                    master: pid.parse().ok()?,
                    reloads: reloads.parse().ok()?,
                    failed_reloads: failed.trim_end_matches(']').parse().ok()?,
                    workers: vec![],
                    old_workers: vec![],
                    version: version.to_string(),
                });
            }
            [pid, "worker", ..] => {
                let pid = pid.parse().ok()?;
                let list = processes.as_mut()?;
                match section {
                    "workers" => list.workers.push(pid),
                    "old workers" => list.old_workers.push(pid),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    processes
}

/// One server row of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StatRow {
    pub backend: String,
    pub server: String,
    /// "UP", "DOWN", "DRAIN", "MAINT", "no check", "UP 1/2", ...
    pub status: String,
    pub sessions: u64,
    pub weight: u64,
    /// "127.0.0.1:8080", "[::1]:8080"; empty for unix sockets.
    pub addr: String,
    /// HTTP responses by class: 1xx to 5xx and other.
    pub responses: u64,
    pub errors_5xx: u64,
}

/// Server rows (not FRONTEND/BACKEND) of `show stat` CSV, read by column name.
pub(super) fn parse_show_stat(text: &str) -> Option<Vec<StatRow>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.strip_prefix("# ")?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, scur, status, weight, addr) = (
        column("pxname")?,
        column("svname")?,
        column("scur")?,
        column("status")?,
        column("weight")?,
        column("addr")?,
    );
    let classes: Vec<usize> = [
        "hrsp_1xx",
        "hrsp_2xx",
        "hrsp_3xx",
        "hrsp_4xx",
        "hrsp_5xx",
        "hrsp_other",
    ]
    .iter()
    .filter_map(|c| column(c))
    .collect();
    let errors = column("hrsp_5xx");
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        if matches!(field(sv), "FRONTEND" | "BACKEND") {
            continue;
        }
        rows.push(StatRow {
            backend: field(px).to_string(),
            server: field(sv).to_string(),
            status: field(status).to_string(),
            sessions: field(scur).parse().unwrap_or(0),
            weight: field(weight).parse().unwrap_or(0),
            addr: field(addr).to_string(),
            responses: classes
                .iter()
                .map(|&i| field(i).parse::<u64>().unwrap_or(0))
                .sum(),
            errors_5xx: errors.map_or(0, |i| field(i).parse().unwrap_or(0)),
        });
    }
    Some(rows)
}

/// The BACKEND rows of `show stat` CSV whose backend is an app's (`app_<name>`).
pub(super) fn parse_backend_traffic(text: &str) -> Option<Vec<crate::proxy::BackendTraffic>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.strip_prefix("# ")?.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, req_tot, errors) = (
        column("pxname")?,
        column("svname")?,
        column("req_tot")?,
        column("hrsp_5xx")?,
    );
    let (rtime, rtime_max, ttime) = (column("rtime"), column("rtime_max"), column("ttime"));
    let mut backends = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (Some(backend), Some(&"BACKEND")) = (fields.get(px), fields.get(sv)) else {
            continue;
        };
        let Some(app) = backend.strip_prefix("app_") else {
            continue;
        };
        backends.push(crate::proxy::BackendTraffic {
            app: app.to_string(),
            requests: number(Some(req_tot)),
            errors: number(Some(errors)),
            response_ms_avg: number(rtime),
            response_ms_max: number(rtime_max),
            total_ms_avg: number(ttime),
        });
    }
    Some(backends)
}

/// `show map <file>`: `0x55d0c8a1b2c0 example.com app_web` per entry.
pub(super) fn parse_show_map(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (id, key, value) = (fields.next()?, fields.next()?, fields.next()?);
            // Entries start with their reference; an error message does not.
            id.starts_with("0x")
                .then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

/// `show backend`: a `# name` header, then one backend per line.
pub(super) fn parse_show_backend(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_that_would_smuggle_another_is_refused_before_it_is_sent() {
        // No socket exists: an error naming the socket would mean it tried to send.
        let cli = MasterCli::new(PathBuf::from("/nonexistent/master.sock"));
        for command in [
            "set map hosts.map a b\nshutdown sessions server x/y",
            "show proc; reload",
            "show proc\r",
        ] {
            let err = cli.master(command).await.unwrap_err().to_string();
            assert!(err.contains("line break or ';'"), "{command:?}: {err}");
        }
    }

    #[test]
    fn reads_app_backends_traffic_from_show_stat() {
        let text = "# pxname,svname,scur,req_tot,hrsp_5xx,rtime,ttime,rtime_max\n\
            app_web,BACKEND,0,120,7,3,5,41\n\
            app_web,web-1,0,,7,3,5,41\n\
            acme,BACKEND,0,2,0,1,1,1\n\
            app_api,BACKEND,0,0,0,0,0,0\n";
        let traffic = parse_backend_traffic(text).unwrap();
        assert_eq!(traffic.len(), 2);
        assert_eq!(
            traffic[0],
            crate::proxy::BackendTraffic {
                app: "web".into(),
                requests: 120,
                errors: 7,
                response_ms_avg: 3,
                response_ms_max: 41,
                total_ms_avg: 5,
            }
        );
        assert_eq!(traffic[1].app, "api");
        assert!(parse_backend_traffic("Unknown command\n").is_none());
    }

    #[test]
    fn reads_show_proc() {
        let text = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n\
            21892           master          5 [failed: 1]   0d00h01m55s     2.6.12-1+deb12u4\n\
            # workers\n\
            25077           worker          1               0d00h00m40s     2.6.12-1+deb12u4\n\
            # old workers\n\
            24001           worker          2               0d00h03m10s     2.6.12-1+deb12u4\n\
            # programs\n\n";
        let p = parse_show_proc(text).unwrap();
        assert_eq!((p.master, p.reloads, p.failed_reloads), (21892, 5, 1));
        assert_eq!((p.workers, p.old_workers), (vec![25077], vec![24001]));
        assert_eq!(p.version, "2.6.12-1+deb12u4");
        assert!(parse_show_proc("Unknown command.\n").is_none());
    }

    #[test]
    fn reads_server_rows_of_show_stat() {
        let text = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,addr,\n\
            app_one,k2,0,0,1,1,,4,234,354,,0,,0,0,0,0,DRAIN,1,1,127.0.0.1:18092,\n\
            app_one,k3,0,0,0,1,,4,234,354,,0,,0,0,0,0,UP 1/2,0,1,[::1]:80,\n\
            app_one,BACKEND,0,0,1,1,1,7,468,708,,0,,0,0,0,0,UP,1,1,,\n";
        let rows = parse_show_stat(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].server, "k2");
        assert_eq!((rows[0].status.as_str(), rows[0].sessions), ("DRAIN", 1));
        assert_eq!(rows[0].addr, "127.0.0.1:18092");
        assert_eq!((rows[1].status.as_str(), rows[1].weight), ("UP 1/2", 0));
        assert!(parse_show_stat("No such proxy.\n").is_none());
    }

    #[test]
    fn reads_maps_and_backends() {
        let map = "0x557a7ae0f810 example.com app_one\n0x7f9b3c046750 b.example app_two\n\n";
        assert_eq!(
            parse_show_map(map),
            [
                ("example.com".into(), "app_one".into()),
                ("b.example".into(), "app_two".into())
            ]
        );
        assert!(parse_show_map("Unknown map identifier. Please use #<id> or <file>.\n").is_empty());
        assert_eq!(
            parse_show_backend("# name\nhaloy_acme\napp_one\n\n"),
            ["haloy_acme", "app_one"]
        );
    }
}
