//! Changes to the running HAProxy that need no reload: an app backend's servers and
//! the host maps. Each function reads what runs first and changes only the
//! difference, so a call interrupted halfway is completed by the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::config::CHECK_PARAMS;
use super::routing::Server;
use super::socket::{
    MasterCli, StatRow, parse_backend_traffic, parse_show_backend, parse_show_map, parse_show_stat,
};
use crate::proxy::ProxyError;

/// How long `del server` keeps being retried while connections are closed.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// The app backends (`app_*`) the current worker has.
pub(super) async fn app_backends(cli: &MasterCli) -> Result<BTreeSet<String>, ProxyError> {
    let answer = cli.worker("show backend").await?;
    Ok(parse_show_backend(&answer)
        .into_iter()
        .filter(|b| b.starts_with("app_"))
        .collect())
}

/// The servers of `backend` in the current worker (`pid` None) or an old one.
pub(super) async fn server_rows(
    cli: &MasterCli,
    backend: &str,
    pid: Option<u32>,
) -> Result<Vec<StatRow>, ProxyError> {
    let command = format!("show stat {backend} 4 -1");
    let answer = match pid {
        None => cli.worker(&command).await?,
        Some(pid) => cli.master(&format!("@!{pid} {command}")).await?,
    };
    parse_show_stat(&answer).ok_or_else(|| ProxyError::Refused {
        command,
        answer: answer.trim().to_string(),
    })
}

/// Every app backend's traffic in the current worker.
pub(super) async fn backend_traffic(
    cli: &MasterCli,
) -> Result<Vec<crate::proxy::BackendTraffic>, ProxyError> {
    // -1: every proxy; 2: backends only; -1: every server (none: backends only).
    let command = "show stat -1 2 -1";
    let answer = cli.worker(command).await?;
    parse_backend_traffic(&answer).ok_or_else(|| ProxyError::Refused {
        command: command.to_string(),
        answer: answer.trim().to_string(),
    })
}

/// Makes `backend`'s running servers exactly `wanted`: adds, removes, re-addresses,
/// drains and readies servers as needed.
pub(super) async fn reconcile_servers(
    cli: &MasterCli,
    backend: &str,
    wanted: &[Server],
) -> Result<(), ProxyError> {
    let running = server_rows(cli, backend, None).await?;
    for row in &running {
        if !wanted.iter().any(|s| s.name == row.server) {
            remove_server(cli, backend, &row.server).await?;
        }
    }
    for server in wanted {
        let Some(row) = running.iter().find(|r| r.server == server.name) else {
            add_server(cli, backend, server).await?;
            continue;
        };
        if row.addr.parse::<SocketAddr>().ok() != Some(server.addr) {
            remove_server(cli, backend, &server.name).await?;
            add_server(cli, backend, server).await?;
        } else if server.draining && !row.status.starts_with("DRAIN") {
            set_state(cli, backend, &server.name, "drain").await?;
        } else if !server.draining
            && (row.status.starts_with("DRAIN")
                || row.status.starts_with("MAINT")
                || row.weight == 0)
        {
            let target = format!("{backend}/{}", server.name);
            set_state(cli, backend, &server.name, "ready").await?;
            // A server that was draining during a reload came back with weight 0.
            cli.worker_silent(&format!("set server {target} weight {}", server.weight))
                .await?;
            cli.worker_silent(&format!("enable health {target}"))
                .await?;
        } else if !server.draining && row.weight != u64::from(server.weight) {
            let target = format!("{backend}/{}", server.name);
            cli.worker_silent(&format!("set server {target} weight {}", server.weight))
                .await?;
        }
    }
    Ok(())
}

async fn set_state(
    cli: &MasterCli,
    backend: &str,
    name: &str,
    state: &str,
) -> Result<(), ProxyError> {
    cli.worker_silent(&format!("set server {backend}/{name} state {state}"))
        .await
}

/// `add server` creates the server in maintenance with its checks off; it inherits
/// nothing from `default-server`, so the check parameters go on the command.
///
/// The server starts up, as servers from the config file do: haloyd health-checked
/// the container before routing it, and waiting for HAProxy's first check would add
/// up to a whole check interval to every deploy. Its checks take it down if the
/// container fails later.
async fn add_server(cli: &MasterCli, backend: &str, server: &Server) -> Result<(), ProxyError> {
    let target = format!("{backend}/{}", server.name);
    let add = format!("add server {target} {} {CHECK_PARAMS}", server.addr);
    cli.worker_expect(&add, "New server registered.").await?;
    cli.worker_silent(&format!("set server {target} health up"))
        .await?;
    cli.worker_silent(&format!("enable server {target}"))
        .await?;
    cli.worker_silent(&format!("enable health {target}"))
        .await?;
    if server.draining {
        set_state(cli, backend, &server.name, "drain").await?;
    } else if server.weight != 1 {
        cli.worker_silent(&format!("set server {target} weight {}", server.weight))
            .await?;
    }
    tracing::debug!(server = %target, addr = %server.addr, "added server");
    Ok(())
}

/// Removes a server, whether it was added at runtime or came from the file (both
/// can be deleted in 2.6). `del server` wants the server in maintenance and without
/// connections, and two kinds of connection get in the way:
/// - sessions still in progress: the caller has already waited for the drain, so
///   they are cut (`shutdown sessions server`);
/// - idle keep-alive connections in HAProxy's pool: entering maintenance purges
///   them, but a session that ends after that puts its connection back in the pool,
///   where it stays for seconds. Leaving maintenance for drain (which takes no new
///   requests) and entering it again purges the pool at once.
async fn remove_server(cli: &MasterCli, backend: &str, name: &str) -> Result<(), ProxyError> {
    let target = format!("{backend}/{name}");
    set_state(cli, backend, name, "maint").await?;
    let deadline = Instant::now() + DELETE_TIMEOUT;
    let delete = format!("del server {target}");
    loop {
        let answer = cli.worker(&delete).await?;
        let answer = answer.trim();
        if answer == "Server deleted." {
            tracing::debug!(server = %target, "removed server");
            return Ok(());
        }
        if !answer.contains("still has connections") || Instant::now() > deadline {
            return Err(ProxyError::Refused {
                command: delete,
                answer: answer.to_string(),
            });
        }
        tracing::debug!(server = %target, "closing connections before removing the server");
        cli.worker_silent(&format!("shutdown sessions server {target}"))
            .await?;
        set_state(cli, backend, name, "drain").await?;
        set_state(cli, backend, name, "maint").await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes the running map loaded from `file` hold exactly `wanted`.
pub(super) async fn reconcile_map(
    cli: &MasterCli,
    file: &Path,
    wanted: &BTreeMap<String, String>,
) -> Result<(), ProxyError> {
    let file = file.display();
    let answer = cli.worker(&format!("show map {file}")).await?;
    let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in parse_show_map(&answer) {
        running.entry(key).or_default().push(value);
    }
    for key in running.keys().filter(|k| !wanted.contains_key(*k)) {
        cli.worker_silent(&format!("del map {file} {key}")).await?;
    }
    for (key, value) in wanted {
        match running.get(key).map(Vec::as_slice) {
            Some([current]) if current == value => {}
            // `set map` changes every entry with this key, duplicates included.
            Some(_) => {
                cli.worker_silent(&format!("set map {file} {key} {value}"))
                    .await?
            }
            None => {
                cli.worker_silent(&format!("add map {file} {key} {value}"))
                    .await?
            }
        }
    }
    Ok(())
}

/// `show stat`'s status in the words of [`crate::proxy::ServerStatus::state`]: "UP 1/2" (going
/// down) is still "up", "MAINT (via x/y)" is "maint", "no check" stays.
pub(super) fn server_state(status: &str) -> String {
    let status = status.to_ascii_lowercase();
    if status.starts_with("no check") {
        return status;
    }
    status
        .split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::server_state;

    #[test]
    fn server_states_read_as_one_word() {
        assert_eq!(server_state("UP"), "up");
        assert_eq!(server_state("UP 1/2"), "up");
        assert_eq!(server_state("DRAIN"), "drain");
        assert_eq!(server_state("MAINT (via app_a/s1)"), "maint");
        assert_eq!(server_state("no check"), "no check");
    }
}
