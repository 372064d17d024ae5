//! Canary releases: the new version starts beside the old one and HAProxy server
//! weights give it a share of requests (no reload). The deployment rests in the
//! journal's `Canary` phase — recovery keeps both versions and the split — until
//! a promote finishes it through the normal retire path or an abort removes it.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::Engine;
use super::container::deployment_of;
use super::events::EngineError;
use super::failpoint;
use crate::proxy::ServerCounters;
use crate::runtime::{ContainerInfo, ContainerState};
use crate::store::{CanaryState, DeploymentRecord, JournalPhase, Status};

pub use haloy_api::status::{CanaryReport, VersionTraffic};

/// What a promote or abort did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryOutcome {
    pub deployment_id: String,
    pub status: Status,
    pub message: String,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// Weights (each old server, each new server) that give the new servers
/// `percent` of the requests, within HAProxy's 1-256.
pub(super) fn weights(percent: u8, old: usize, new: usize) -> (u16, u16) {
    let p = u64::from(percent.clamp(1, 99));
    let (o, n) = (old.max(1) as u64, new.max(1) as u64);
    let (mut w_old, mut w_new) = ((100 - p) * n, p * o);
    let g = gcd(w_old, w_new);
    (w_old, w_new) = (w_old / g, w_new / g);
    let max = w_old.max(w_new);
    if max > 256 {
        let scale = |w: u64| ((w * 256 + max / 2) / max).max(1);
        (w_old, w_new) = (scale(w_old), scale(w_new));
    }
    // Both are in 1..=256 here.
    (w_old as u16, w_new as u16)
}

impl Engine {
    /// Refuses a canary that has nothing to compare with or cannot split traffic.
    pub(super) fn check_canary(&self, spec: &haloy_api::spec::AppSpec) -> Result<(), EngineError> {
        let app = &spec.name;
        if spec.strategy() != haloy_api::spec::DeploymentStrategy::Rolling {
            return Err(EngineError::Invalid(format!(
                "a canary of {app} needs the rolling strategy; it uses replace (deployment_strategy or preset)"
            )));
        }
        if spec.domains.is_empty() {
            return Err(EngineError::Invalid(format!(
                "a canary of {app} needs domains: HAProxy splits the app's requests"
            )));
        }
        if self.live_record(app)?.is_none() {
            return Err(EngineError::Invalid(format!(
                "{app} has no version serving to compare the canary with; deploy it without --canary first"
            )));
        }
        Ok(())
    }

    /// The app's newest record when it is a running canary.
    pub(super) fn canary_record(&self, app: &str) -> Result<Option<DeploymentRecord>, EngineError> {
        Ok(self
            .store
            .list(app)?
            .into_iter()
            .next()
            .filter(|r| r.phase == JournalPhase::Canary))
    }

    /// The canary's containers and the others that run, by name.
    async fn split(
        &self,
        app: &str,
        canary: &DeploymentRecord,
    ) -> Result<(Vec<ContainerInfo>, Vec<ContainerInfo>), EngineError> {
        let (new, old): (Vec<_>, Vec<_>) = self
            .app_containers(app)
            .await?
            .into_iter()
            .partition(|c| deployment_of(c) == Some(canary.id.as_str()));
        let old = old
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .collect();
        Ok((new, old))
    }

    /// Sets the previous version's servers to their canary weight, before the new
    /// servers are routed, and records where their counters stood.
    pub(super) async fn begin_canary(
        &self,
        app: &str,
        percent: u8,
        old: &[ContainerInfo],
        new_count: usize,
    ) -> Result<(CanaryState, u16), EngineError> {
        let (w_old, w_new) = weights(percent, old.len(), new_count);
        let counters = self.proxy.counters(app).await?;
        for container in old {
            self.proxy.set_weight(app, &container.name, w_old).await?;
        }
        let baseline = counters
            .into_iter()
            .filter(|c| old.iter().any(|o| o.name == c.name))
            .map(|c| (c.name, c.responses, c.errors))
            .collect();
        Ok((CanaryState { percent, baseline }, w_new))
    }

    pub async fn canary_status(&self, app: &str) -> Result<CanaryReport, EngineError> {
        let record = self
            .canary_record(app)?
            .ok_or_else(|| EngineError::NoCanary(app.to_string()))?;
        let state = record.canary.clone().unwrap_or(CanaryState {
            percent: 0,
            baseline: Vec::new(),
        });
        let (new, old) = self.split(app, &record).await?;
        let counters: BTreeMap<String, ServerCounters> = self
            .proxy
            .counters(app)
            .await?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let traffic = |containers: &[ContainerInfo], id: String, image: String| {
            let mut t = VersionTraffic {
                deployment_id: id,
                image,
                ..Default::default()
            };
            for c in containers {
                t.replicas.push(c.name.clone());
                let Some(now) = counters.get(&c.name) else {
                    continue;
                };
                let (r0, e0) = state
                    .baseline
                    .iter()
                    .find(|(name, ..)| name == &c.name)
                    .map_or((0, 0), |(_, r, e)| (*r, *e));
                t.responses += now.responses.saturating_sub(r0);
                t.errors += now.errors.saturating_sub(e0);
            }
            t
        };
        let stable = match self.live_record(app)? {
            Some(live) if !old.is_empty() => Some(traffic(&old, live.id, live.image)),
            _ => None,
        };
        Ok(CanaryReport {
            percent: state.percent,
            canary: traffic(&new, record.id.clone(), record.image.clone()),
            stable,
        })
    }

    /// Gives the canary every request and retires the previous version. Run by the
    /// app's owner.
    pub(super) async fn promote_canary(&self, app: &str) -> Result<CanaryOutcome, EngineError> {
        let mut record = self
            .canary_record(app)?
            .ok_or_else(|| EngineError::NoCanary(app.to_string()))?;
        let (new, old) = self.split(app, &record).await?;
        for container in &new {
            self.proxy.set_weight(app, &container.name, 1).await?;
        }
        record.canary = None;
        self.write(&mut record, JournalPhase::Switched)?;
        failpoint::reached(failpoint::SWITCHED, app).await;
        let (events, _) = mpsc::channel(64);
        let timing = self.timing(&record.spec.rollout());
        self.retire(app, old, &events, Some(failpoint::DRAINED), timing)
            .await;
        self.write(&mut record, JournalPhase::Retired)?;
        self.write(&mut record, JournalPhase::Succeeded)?;
        if record.spec.history == "local" {
            let _ = self.prune_images(app, false).await;
        }
        Ok(CanaryOutcome {
            deployment_id: record.id.clone(),
            status: Status::Succeeded,
            message: format!(
                "deployment {} of {app} takes every request; the previous version is retired",
                record.id
            ),
        })
    }

    /// Returns every request to the previous version and removes the canary. Run by
    /// the app's owner.
    pub(super) async fn abort_canary(&self, app: &str) -> Result<CanaryOutcome, EngineError> {
        let mut record = self
            .canary_record(app)?
            .ok_or_else(|| EngineError::NoCanary(app.to_string()))?;
        let (new, old) = self.split(app, &record).await?;
        // The previous version takes its full share before the canary drains.
        for container in &old {
            self.proxy.set_weight(app, &container.name, 1).await?;
        }
        let (events, _) = mpsc::channel(64);
        let timing = self.timing(&record.spec.rollout());
        self.retire(app, new, &events, None, timing).await;
        record.canary = None;
        record.reason = "canary aborted: the previous version takes every request again".into();
        self.write(&mut record, JournalPhase::Cancelled)?;
        Ok(CanaryOutcome {
            deployment_id: record.id.clone(),
            status: Status::Cancelled,
            message: format!(
                "canary {} of {app} removed; the previous version takes every request",
                record.id
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::weights;

    #[test]
    fn weights_give_the_new_servers_their_share() {
        assert_eq!(weights(20, 1, 1), (4, 1));
        assert_eq!(weights(50, 2, 1), (1, 2));
        let (o, n) = weights(10, 3, 3);
        assert_eq!(n * 9, o);
        // Many servers and an odd share still fit HAProxy's range.
        let (o, n) = weights(33, 7, 5);
        assert!(o <= 256 && n <= 256 && o >= 1 && n >= 1);
        let share = f64::from(n) * 5.0 / (f64::from(n) * 5.0 + f64::from(o) * 7.0);
        assert!((share - 0.33).abs() < 0.01, "{share}");
    }
}
