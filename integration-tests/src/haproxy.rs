//! A test server's HAProxy seen from outside: its admin socket and its counters.

use std::io::{Read, Write};
use std::time::Duration;

use crate::*;

/// One command on the admin socket of `server`'s HAProxy, and its answer.
pub fn haproxy_admin(server: &Server, command: &str) -> String {
    let socket = server.data_dir().join("haproxy-config/admin.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)
        .unwrap_or_else(|e| panic!("HAProxy's admin socket {}: {e}", socket.display()));
    stream
        .write_all(format!("{command}\n").as_bytes())
        .expect("write to the admin socket");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("read the admin socket");
    answer
}

/// Requests HAProxy's `http` frontend has received since it started (`req_tot` of
/// `show stat`).
pub fn requests_received(server: &Server) -> u64 {
    let stat = haproxy_admin(server, "show stat");
    let mut lines = stat.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header
        .trim_start_matches("# ")
        .split(',')
        .position(|name| name == "req_tot")
    else {
        panic!("no req_tot in HAProxy's stats:\n{stat}");
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields.first() == Some(&"http") && fields.get(1) == Some(&"FRONTEND"))
        .filter_map(|fields| fields.get(column).and_then(|v| v.parse::<u64>().ok()))
        .sum()
}

impl Server {
    /// Returns once HAProxy has received `requests` more requests than when called:
    /// a load started before is under way.
    pub fn await_traffic(&self, requests: u64) {
        let before = requests_received(self);
        let log = || format!("--- haloyd.log\n{}", self.log());
        Wait::new(Duration::from_secs(20), "the load to reach HAProxy")
            .context(&log)
            .until(|| {
                let now = requests_received(self);
                if now >= before + requests {
                    Ok(())
                } else {
                    Err(format!("{} of {requests} requests so far", now - before))
                }
            });
    }
}
