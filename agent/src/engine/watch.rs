//! The watchdog: after a deploy haloyd keeps checking the replicas that serve. One
//! that fails twice in a row (or stops) is taken out of HAProxy and restarted by
//! the app's owner (a heal), which then routes it again once healthy (or, when the
//! restart did not help, once a later round finds it answering); `haloy status`
//! shows each replica's restarts and last failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Engine;
use super::container::{backend, deployment_of};
use super::events::Abort;
use super::health::{Check, Probed};
use crate::runtime::{ContainerInfo, ContainerState};

/// Failed checks in a row before a running replica is restarted.
const STRIKES: u32 = 2;

/// How long one watchdog probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the watchdog learned about one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaHealth {
    /// How often it was restarted after failing while serving.
    pub restarts: u32,
    /// Why it last failed, empty when it never did.
    pub last_failure: String,
}

impl Engine {
    /// Checks the serving replicas every `interval` until the engine goes away.
    pub fn spawn_watchdog(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut strikes = HashMap::new();
            loop {
                tokio::time::sleep(interval).await;
                let Some(engine) = weak.upgrade() else { return };
                engine.watch_once(&mut strikes).await;
            }
        })
    }

    /// One round over every app with a serving deployment.
    pub async fn watch_once(self: &Arc<Self>, strikes: &mut HashMap<String, u32>) {
        let Ok(apps) = self.store.apps() else { return };
        for app in apps {
            let Ok(Some(live)) = self.live_record(&app) else {
                continue;
            };
            let Ok(containers) = self.app_containers(&app).await else {
                continue;
            };
            // Without HAProxy's list nothing can be told apart: wait for it.
            let Ok(servers) = self.proxy.servers(&app).await else {
                continue;
            };
            let check = Check::stored(&live.spec);
            let routes = live.spec.preset.is_none() || !live.spec.domains.is_empty();
            for container in containers
                .iter()
                .filter(|c| deployment_of(c) == Some(live.id.as_str()))
            {
                // Only replicas that serve (or served until they stopped on their
                // own) are watched; a stopped app stays stopped.
                let routed = servers.iter().any(|s| s.name == container.name);
                if !routed {
                    // A replica a restart could not heal at once comes back once
                    // it answers again.
                    let healthy = matches!(
                        self.probe_once(container, &check, PROBE_TIMEOUT).await,
                        Ok(Probed::Healthy(_))
                    );
                    if routes && healthy && container.state == ContainerState::Running {
                        self.reroute_later(&app, container.name.clone());
                    }
                    continue;
                }
                let failure = match self.probe_once(container, &check, PROBE_TIMEOUT).await {
                    Ok(Probed::Healthy(_)) => {
                        strikes.remove(&container.name);
                        continue;
                    }
                    Ok(Probed::Not(why, _)) => (why, false),
                    Ok(Probed::Exited(exit, _)) => {
                        let mut why = format!("the container exited with code {}", exit.code);
                        if exit.oom_killed {
                            why.push_str(" (killed: out of memory)");
                        }
                        (why, true)
                    }
                    Err(_) => continue,
                };
                let count = strikes.entry(container.name.clone()).or_default();
                *count += 1;
                if failure.1 || *count >= STRIKES {
                    strikes.remove(&container.name);
                    tracing::warn!(app, replica = %container.name, "a serving replica failed: {}", failure.0);
                    self.metrics
                        .health_check_failed(&app, crate::metrics::CheckedDuring::Serving);
                    self.heal_later(&app, container.name.clone(), failure.0);
                }
            }
        }
    }

    /// What the watchdog knows of a replica.
    pub fn replica_health(&self, name: &str) -> ReplicaHealth {
        self.health_log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Takes a failed replica out of HAProxy, restarts it and routes it again once
    /// healthy. Run by the app's owner, so it never races a deploy.
    pub(super) async fn heal(&self, app: &str, name: &str, failure: String) {
        {
            let mut log = self
                .health_log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let entry = log.entry(name.to_string()).or_default();
            entry.restarts += 1;
            entry.last_failure = failure;
        }
        let Ok(Some(live)) = self.live_record(app) else {
            return;
        };
        let Ok(container) = self.runtime.inspect(name).await else {
            return;
        };
        if deployment_of(&container) != Some(live.id.as_str()) {
            return; // a deploy replaced it meanwhile
        }
        self.unroute(app, &[name.to_string()]).await;
        let timing = self.timing(&live.spec.rollout());
        if let Err(e) = self.restart(&container, timing.stop_grace).await {
            tracing::warn!(app, replica = name, "cannot restart the replica: {e}");
            return;
        }
        let check = Check::stored(&live.spec);
        let (events, _) = mpsc::channel(32);
        let (_never, mut cancel) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        match self
            .wait_healthy(&container, &check, &events, &mut cancel, None)
            .await
        {
            Ok(info) => match backend(&info) {
                Ok(server) => {
                    if let Err(e) = self.proxy.add_server(app, &server).await {
                        tracing::warn!(
                            app,
                            replica = name,
                            "cannot route the restarted replica: {e}"
                        );
                    } else {
                        tracing::info!(app, replica = name, after = ?started.elapsed(), "the restarted replica serves again");
                    }
                }
                Err(Abort::Failed(e)) => tracing::warn!(app, replica = name, "{e}"),
                Err(Abort::Cancelled) => {}
            },
            Err(Abort::Failed(reason)) => {
                tracing::warn!(
                    app,
                    replica = name,
                    "the restarted replica is not healthy: {reason}"
                );
                let mut log = self
                    .health_log
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(entry) = log.get_mut(name) {
                    entry.last_failure = reason;
                }
            }
            Err(Abort::Cancelled) => {}
        }
    }

    /// Routes a replica of the serving deployment again once it is healthy. Run by
    /// the app's owner.
    pub(super) async fn reroute(&self, app: &str, name: &str) {
        let Ok(Some(live)) = self.live_record(app) else {
            return;
        };
        let Ok(container) = self.runtime.inspect(name).await else {
            return;
        };
        let unlisted = self
            .proxy
            .servers(app)
            .await
            .is_ok_and(|servers| !servers.iter().any(|s| s.name == name));
        if deployment_of(&container) != Some(live.id.as_str()) || !unlisted {
            return;
        }
        let check = Check::stored(&live.spec);
        if let Ok(Probed::Healthy(info)) = self.probe_once(&container, &check, PROBE_TIMEOUT).await
            && let Ok(server) = backend(&info)
        {
            match self.proxy.add_server(app, &server).await {
                Ok(()) => {
                    tracing::info!(app, replica = name, "the replica answers again and serves")
                }
                Err(e) => tracing::warn!(app, replica = name, "cannot route the replica: {e}"),
            }
        }
    }

    async fn restart(
        &self,
        container: &ContainerInfo,
        grace: Duration,
    ) -> Result<ContainerInfo, crate::runtime::RuntimeError> {
        if container.state == ContainerState::Running {
            self.runtime.stop(&container.id, grace).await?;
        }
        self.runtime.start(&container.id).await
    }
}
