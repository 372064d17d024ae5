//! What recovery makes of an app after haloyd starts: from the journal, Docker's
//! containers and HAProxy's servers, which deployment serves (the winner) and what
//! goes. A pure function, so every interrupted point is unit-tested:
//!
//! - a deploy interrupted before its commit point (`Switched`), or while undoing: the
//!   previous version wins — its containers that the deploy stopped are started
//!   again — and the new containers go;
//! - a deploy interrupted at or after the commit point: it wins and the old version
//!   goes;
//! - nothing interrupted: the newest succeeded deployment that has containers wins;
//!   with no record at all of the running containers (a lost store), the newest
//!   running deployment;
//! - a first deploy interrupted before its commit point: nothing wins, nothing of it
//!   stays routed.
//!
//! Containers the user stopped (`haloy stop`) stay stopped. Servers of a losing
//! version that HAProxy still routes are kept (draining ones stay draining) until the
//! app's owner has drained and removed them, so requests in flight finish.

use std::collections::{BTreeMap, BTreeSet};

use haloy_api::spec::DomainSpec;

use super::ROUTE_LABEL;
use super::container::{backend, deployment_of, parse_route};
use crate::proxy::{AppRoute, Backend, ServerStatus};
use crate::runtime::{ContainerInfo, ContainerState};
use crate::store::{DeploymentRecord, JournalPhase, Status};

/// What recovery does for one app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub app: String,
    /// The deployment that serves once recovery is done.
    pub winner: Option<String>,
    /// The winner's running containers: routed at once.
    pub running: Vec<ContainerInfo>,
    /// The winner's containers an interrupted `replace` deploy stopped: started,
    /// checked and routed.
    pub start: Vec<ContainerInfo>,
    /// Every container of another deployment: drained if routed, then removed.
    pub remove: Vec<ContainerInfo>,
    /// Servers of removed containers that HAProxy routes now, kept until drained.
    pub draining: Vec<Backend>,
    /// The newest deployment that was still in progress, as the journal left it.
    pub interrupted: Option<DeploymentRecord>,
    /// Older records that were in progress too (only from haloyd versions that
    /// allowed it): recorded as failed.
    pub stale: Vec<DeploymentRecord>,
    pub domains: Vec<DomainSpec>,
    pub health_check_path: String,
    /// The serving version's drain and stop times.
    pub rollout: haloy_api::spec::Rollout,
    /// Server weights of a canary split that recovery keeps.
    pub weights: BTreeMap<String, u16>,
    /// Why the app is left as it is (e.g. a domain another app serves); nothing of
    /// it changes and `haloy status` shows this.
    pub skip: Option<String>,
}

impl AppPlan {
    /// The route HAProxy gets at once: the winner's running replicas and the losing
    /// servers still to drain. `None` when nothing of the app is routed.
    pub fn route(&self) -> Option<AppRoute> {
        if self.skip.is_some() || (self.winner.is_none() && self.draining.is_empty()) {
            return None;
        }
        let mut servers: Vec<Backend> = self
            .running
            .iter()
            .filter_map(|c| backend(c).ok())
            .map(|b| Backend {
                weight: self.weights.get(&b.name).copied(),
                ..b
            })
            .chain(self.draining.iter().cloned())
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        Some(AppRoute {
            app: self.app.clone(),
            domains: self.domains.clone(),
            health_check_path: self.health_check_path.clone(),
            servers,
            // The engine adds the page from the store.
            maintenance: None,
        })
    }

    /// What the journal says of the interrupted deployment once recovery is done:
    /// its phase, reason and note.
    pub fn resolution(&self) -> Option<(JournalPhase, String, String)> {
        let record = self.interrupted.as_ref()?;
        let at = record.phase.as_str();
        if self.winner.as_deref() == Some(record.id.as_str()) {
            let note = format!(
                "haloyd stopped during the deploy at phase {at}; completed the switch to {}",
                record.id
            );
            return Some((JournalPhase::Succeeded, String::new(), note));
        }
        let restored = match &self.winner {
            Some(winner) => format!("restored {winner}"),
            None => "nothing to restore: no earlier version ran".to_string(),
        };
        let note = if record.phase == JournalPhase::Undoing {
            format!("haloyd stopped while undoing the deploy; {restored}")
        } else {
            format!("haloyd stopped during the deploy at phase {at}; {restored}")
        };
        let reason = if record.reason.is_empty() {
            note.clone()
        } else {
            record.reason.clone()
        };
        Some((JournalPhase::Failed, reason, note))
    }
}

/// The plan for `app` from its records (newest first), its containers and the
/// servers HAProxy routes for it now.
pub fn plan(
    app: &str,
    records: &[DeploymentRecord],
    containers: &[ContainerInfo],
    routed: &[ServerStatus],
) -> AppPlan {
    let mut in_progress = records.iter().filter(|r| !r.phase.is_finished());
    let interrupted = in_progress.next().cloned();
    let stale: Vec<DeploymentRecord> = in_progress.cloned().collect();
    let has = |id: &str| containers.iter().any(|c| deployment_of(c) == Some(id));
    let committed = interrupted
        .as_ref()
        .filter(|r| r.phase.committed() && has(&r.id))
        .map(|r| r.id.clone());
    let interrupted_id = interrupted.as_ref().map(|r| r.id.as_str());
    let winner = committed
        .or_else(|| {
            records
                .iter()
                .filter(|r| {
                    r.status() == Status::Succeeded && Some(r.id.as_str()) != interrupted_id
                })
                .find(|r| has(&r.id))
                .map(|r| r.id.clone())
        })
        .or_else(|| unrecorded_running(records, containers));

    // Containers the interrupted deploy stopped belong to the version it replaced:
    // they run again when that version wins.
    let restarting: BTreeSet<&str> = interrupted
        .as_ref()
        .filter(|r| winner.as_deref() != Some(r.id.as_str()))
        .map(|r| r.stopping.iter().map(String::as_str).collect())
        .unwrap_or_default();
    // A canary rests beside the version that serves: both stay, with the split.
    let canary = records
        .first()
        .filter(|r| r.phase == JournalPhase::Canary && winner.is_some());
    let (mut running, mut start, mut remove) = (Vec::new(), Vec::new(), Vec::new());
    for container in containers {
        let of_canary = canary.is_some_and(|c| deployment_of(container) == Some(c.id.as_str()));
        if of_canary && container.state == ContainerState::Running {
            running.push(container.clone());
        } else if deployment_of(container) != winner.as_deref() || winner.is_none() {
            remove.push(container.clone());
        } else if container.state == ContainerState::Running {
            running.push(container.clone());
        } else if restarting.contains(container.name.as_str()) {
            start.push(container.clone());
        }
    }
    for list in [&mut running, &mut start, &mut remove] {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let draining = remove
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .filter_map(|c| {
            let server = routed.iter().find(|s| s.name == c.name)?;
            let mut routed_now = backend(c).ok()?;
            if routed_now.addr != server.addr {
                return None;
            }
            routed_now.draining = matches!(server.state.as_str(), "drain" | "maint");
            Some(routed_now)
        })
        .collect();

    // The route: the winner's record says it; a lost store leaves the label.
    let source = winner
        .as_deref()
        .and_then(|w| records.iter().find(|r| r.id == w))
        .or(interrupted.as_ref());
    let rollout = source.map(|r| r.spec.rollout()).unwrap_or_default();
    let mut weights = BTreeMap::new();
    if let Some(c) = canary {
        let ours = |x: &&ContainerInfo| deployment_of(x) == Some(c.id.as_str());
        let (new, old): (Vec<&ContainerInfo>, Vec<&ContainerInfo>) = running.iter().partition(ours);
        let percent = c.canary.as_ref().map_or(0, |s| s.percent);
        let (w_old, w_new) = super::canary::weights(percent, old.len(), new.len());
        for x in old {
            weights.insert(x.name.clone(), w_old);
        }
        for x in new {
            weights.insert(x.name.clone(), w_new);
        }
    }
    let (domains, health_check_path) = match source {
        Some(record) => (
            record
                .spec
                .domains
                .iter()
                .map(|(canonical, aliases)| DomainSpec {
                    canonical: canonical.clone(),
                    aliases: aliases.clone(),
                })
                .collect(),
            record.spec.health_check_path.clone(),
        ),
        None => parse_route(
            running
                .iter()
                .chain(&remove)
                .find_map(|c| c.labels.get(ROUTE_LABEL).map(String::as_str)),
        ),
    };
    AppPlan {
        app: app.to_string(),
        winner,
        running,
        start,
        remove,
        draining,
        interrupted,
        stale,
        domains,
        health_check_path,
        rollout,
        weights,
        skip: None,
    }
}

/// With the store lost or reset: the newest deployment among running containers
/// that no record mentions.
fn unrecorded_running(
    records: &[DeploymentRecord],
    containers: &[ContainerInfo],
) -> Option<String> {
    containers
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .filter_map(|c| deployment_of(c))
        .filter(|id| !records.iter().any(|r| r.id == *id))
        .max()
        .map(str::to_string)
}

/// A host may be served by one app only. Where two plans claim one, the app whose
/// winner is older keeps it (it had it first) and the other is skipped, with the
/// reason, and left as it is.
pub fn settle_conflicts(plans: &mut [AppPlan]) {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |p: &AppPlan| (p.winner.is_none(), p.winner.clone(), p.app.clone());
        key(&plans[a]).cmp(&key(&plans[b]))
    });
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    for i in order {
        let Some(route) = plans[i].route() else {
            continue;
        };
        let hosts: Vec<String> = route
            .domains
            .iter()
            .flat_map(|d| std::iter::once(&d.canonical).chain(&d.aliases))
            .cloned()
            .collect();
        if let Some((host, owner)) = hosts
            .iter()
            .find_map(|h| claimed.get(h).map(|owner| (h.clone(), owner.clone())))
        {
            plans[i].skip = Some(format!(
                "not restored after haloyd started: {host} is served by app {owner}; remove it from one of the two apps and deploy again"
            ));
            continue;
        }
        for host in hosts {
            claimed.insert(host, plans[i].app.clone());
        }
    }
}

#[cfg(test)]
mod tests;
