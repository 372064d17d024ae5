//! Retiring the old version after the switch: drain its servers in HAProxy, wait for
//! their sessions (bounded), remove them, stop and remove the containers.

use std::time::Duration;

use haloy_api::spec::Rollout;
use tokio::time::Instant;

use super::Engine;
use super::events::{Events, Phase, log, phase};
use super::failpoint;
use crate::runtime::ContainerInfo;

/// How long one app's old replicas may drain and take to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timing {
    pub drain_timeout: Duration,
    pub stop_grace: Duration,
}

impl Engine {
    /// The app's `drain_timeout` and `stop_grace_period`, or haloyd.yaml's defaults.
    pub(super) fn timing(&self, rollout: &Rollout) -> Timing {
        Timing {
            drain_timeout: rollout.drain_timeout.unwrap_or(self.settings.drain_timeout),
            stop_grace: rollout
                .stop_grace_period
                .unwrap_or(self.settings.stop_grace),
        }
    }

    /// Failures here are logged and streamed, not fatal: the new version already
    /// serves, and leftovers are removed by the next deploy or at start-up.
    /// `drained` names the crash point between draining and removing.
    pub(super) async fn retire(
        &self,
        app: &str,
        old: Vec<ContainerInfo>,
        events: &Events,
        drained: Option<&'static str>,
        timing: Timing,
    ) {
        if old.is_empty() {
            return;
        }
        // HAProxy's own list says which old servers take traffic and need a drain.
        // Without it (HAProxy is down and about to be started again) nothing can be
        // drained, but every old server still leaves the routing, or the restarted
        // HAProxy would list replicas that are gone.
        let (routed, unlisted): (Vec<String>, Vec<String>) = match self.proxy.servers(app).await {
            Ok(servers) => (
                servers
                    .into_iter()
                    .filter(|s| old.iter().any(|c| c.name == s.name))
                    .map(|s| s.name)
                    .collect(),
                Vec::new(),
            ),
            Err(e) => {
                log(events, &format!("cannot read HAProxy's servers: {e}")).await;
                (Vec::new(), old.iter().map(|c| c.name.clone()).collect())
            }
        };
        if !routed.is_empty() {
            log(events, &format!("draining {} old replica(s)", routed.len())).await;
            for name in &routed {
                if let Err(e) = self.proxy.drain_server(app, name).await {
                    log(events, &format!("cannot drain {name}: {e}")).await;
                }
            }
            self.wait_drained(app, &routed, events, timing.drain_timeout)
                .await;
        }
        if let Some(point) = drained {
            failpoint::reached(point, app).await;
        }
        phase(
            events,
            Phase::RetiringOld,
            &format!("stopping {} old container(s)", old.len()),
        )
        .await;
        for name in routed.iter().chain(&unlisted) {
            if let Err(e) = self.proxy.remove_server(app, name).await {
                log(events, &format!("cannot remove {name} from HAProxy: {e}")).await;
            }
        }
        for container in old {
            if let Err(e) = self.runtime.stop(&container.id, timing.stop_grace).await {
                log(events, &format!("cannot stop {}: {e}", container.name)).await;
            }
            if let Err(e) = self.runtime.remove(&container.id).await {
                log(events, &format!("cannot remove {}: {e}", container.name)).await;
            }
        }
    }

    pub(super) async fn wait_drained(
        &self,
        app: &str,
        names: &[String],
        events: &Events,
        drain: Duration,
    ) {
        let deadline = Instant::now() + drain;
        let mut pause = Duration::from_millis(20);
        loop {
            let busy: u64 = match self.proxy.servers(app).await {
                Ok(servers) => servers
                    .iter()
                    .filter(|s| names.contains(&s.name))
                    .map(|s| s.sessions)
                    .sum(),
                Err(_) => 0,
            };
            if busy == 0 {
                return;
            }
            if Instant::now() >= deadline {
                log(
                    events,
                    &format!(
                        "{busy} session(s) still open after the {} s drain timeout; closing them",
                        drain.as_secs_f64()
                    ),
                )
                .await;
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}
