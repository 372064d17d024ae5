//! HAProxy's process: starting it detached, stopping it, and hitless reloads through
//! the master socket, each confirmed by `show proc`.

use std::time::Duration;

use tokio::time::Instant;

use super::config::Files;
use super::routing::{Routing, backend_name};
use super::socket::Processes;
use super::{Haproxy, files, process};
use crate::proxy::ProxyError;

/// Starting, stopping and reloading each finish within this.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Haproxy {
    /// Starts HAProxy from the files on disk unless its master socket answers;
    /// returns whether it started it. Without files (a fresh server) it writes them
    /// from the routing the driver has. A running HAProxy that missed a runtime
    /// change gets it now.
    pub async fn ensure_running(&self) -> Result<bool, ProxyError> {
        let mut state = self.state.lock().await;
        if self.is_running().await {
            if state.behind {
                self.catch_up(&state.routing).await?;
                state.behind = false;
                tracing::info!("HAProxy took the changes it had missed");
            }
            return Ok(false);
        }
        self.ensure_default_cert()?;
        if files::read_files(&self.paths).await.is_none() {
            files::write_files(&self.paths, &self.render(&state.routing)).await?;
        }
        self.start(&state.routing).await?;
        // Started from the files, which hold every change.
        state.behind = false;
        Ok(true)
    }

    /// Stops the master (and so its workers) from its pid file; returns whether it
    /// was running.
    pub async fn stop(&self) -> Result<bool, ProxyError> {
        let _state = self.state.lock().await;
        if self.settings.in_container {
            return Err(ProxyError::Other(
                "HAProxy runs in a container; stop it with `haloyadm stop --haproxy`".into(),
            ));
        }
        let Some(pid) = process::read_pid(&self.paths.pid_file).filter(|p| process::is_alive(*p))
        else {
            return Ok(false);
        };
        process::signal(pid, "TERM").await?;
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        while process::is_alive(pid) {
            if Instant::now() > deadline {
                return Err(ProxyError::Other(format!(
                    "HAProxy (pid {pid}) did not stop within {}s",
                    PROCESS_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        tracing::info!(pid, "stopped HAProxy");
        Ok(true)
    }

    /// Starts HAProxy from the files and waits for its worker. A container is
    /// started by Docker (its restart policy, or `haloyadm start`): haloyd waits for
    /// its master socket to answer.
    pub(super) async fn start(&self, routing: &Routing) -> Result<(), ProxyError> {
        let what = if self.settings.in_container {
            "answer on its master socket (its container is started by Docker; see `haloyadm status`)"
        } else {
            process::start(&self.settings.program, &self.paths).await?;
            "start its worker"
        };
        let processes = self.wait_for(|p| !p.workers.is_empty(), what).await?;
        tracing::info!(master = processes.master, "started HAProxy");
        self.drain_again(routing).await
    }

    /// Polls `show proc` until `done` holds.
    async fn wait_for(
        &self,
        done: impl Fn(&Processes) -> bool,
        what: &str,
    ) -> Result<Processes, ProxyError> {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            // While the master re-executes itself the socket may not answer.
            match self.cli.processes().await {
                Ok(p) if done(&p) => return Ok(p),
                Ok(_) | Err(ProxyError::Unavailable { .. }) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(ProxyError::Other(format!(
                    "HAProxy did not {what} within {}s",
                    PROCESS_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Servers that were draining come back from a reload or restart with weight 0
    /// (no new requests); put them in drain again so they report it.
    pub(super) async fn drain_again(&self, routing: &Routing) -> Result<(), ProxyError> {
        for (app, spec) in &routing.apps {
            for server in spec.servers.iter().filter(|s| s.draining) {
                let command = format!(
                    "set server {}/{} state drain",
                    backend_name(app),
                    server.name
                );
                self.cli.worker_silent(&command).await?;
            }
        }
        Ok(())
    }

    /// Checks and writes `files`, then reloads. On failure the `previous` files are
    /// written back, matching what keeps running.
    pub(super) async fn reload_with(
        &self,
        files: &Files,
        previous: Option<&Files>,
    ) -> Result<(), ProxyError> {
        let result = async {
            self.ensure_default_cert()?;
            files::write_maps(&self.paths, files).await?;
            let candidate = files::write_candidate(&self.paths, &files.config).await?;
            // In a container the master judges the file on reload; a refused one
            // shows as a failed reload and the old worker keeps serving.
            let checked = if self.settings.in_container {
                Ok(())
            } else {
                process::check_config(&self.settings.program, &candidate).await
            };
            if let Err(e) = checked {
                let _ = tokio::fs::remove_file(&candidate).await;
                return Err(e);
            }
            files::commit_candidate(&self.paths, &candidate).await?;
            self.reload().await
        }
        .await;
        if let (Err(e), Some(previous)) = (&result, previous) {
            tracing::warn!(error = %e, "reload failed; restoring the previous HAProxy files");
            if let Err(restore) = files::write_files(&self.paths, previous).await {
                tracing::error!(error = %restore, "cannot restore the previous HAProxy files");
            }
        }
        result
    }

    /// A hitless reload through the master socket, confirmed by `show proc`.
    async fn reload(&self) -> Result<(), ProxyError> {
        let before = self.cli.processes().await?;
        self.cli.reload().await?;
        let after = self
            .wait_for(
                |p| {
                    p.reloads > before.reloads
                        && (p.failed_reloads > 0
                            || (!p.workers.is_empty() && p.workers != before.workers))
                },
                "report the reload",
            )
            .await?;
        if after.failed_reloads > 0 {
            // `haproxy -c` accepted the file, so what failed happens only when
            // HAProxy applies it, such as binding the listening address.
            return Err(ProxyError::ReloadFailed(
                "the master could not apply the new configuration (`show proc` reports a failed reload) although `haproxy -c` accepted it; check that the listening address and ports are free and on this host".into(),
            ));
        }
        tracing::info!(reloads = after.reloads, worker = ?after.workers, "reloaded HAProxy");
        Ok(())
    }
}
