//! Start-up: converge every app from wherever haloyd stopped. First, for all apps at
//! once, read the journal, Docker and HAProxy, plan (see `recovery.rs`) and make
//! HAProxy route each app's surviving version — so routes are right before the API
//! serves. Then each app's owner finishes its recovery on its own: starts what an
//! interrupted `replace` stopped, drains and removes the losing version, and records
//! what happened. Every step reads the world again, so a recovery that is itself
//! interrupted is simply done again at the next start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use haloy_api::spec::DomainSpec;
use tokio::sync::{mpsc, watch};

use super::Engine;
use super::container::backend;
use super::events::{Abort, EngineError};
use super::failpoint;
use super::health::Check;
use super::owner::After;
use super::recovery::{self, AppPlan};
use crate::proxy::ProxyError;
use crate::runtime::{ContainerInfo, RuntimeError, labels};
use crate::store::JournalPhase;

/// What the start-up pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Apps HAProxy routes now.
    pub routed: usize,
    /// Apps whose owners finish recovering in the background.
    pub recovering: usize,
    /// Apps left as they are, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl Engine {
    /// Plans every app, routes the survivors and hands each app's remaining work to
    /// its owner. Fails only when HAProxy cannot be made to route at all.
    pub async fn recover(self: &Arc<Self>) -> Result<Recovery, EngineError> {
        let containers = self
            .runtime
            .list(&[(labels::INSTANCE, &self.settings.instance)])
            .await?;
        let mut by_app: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
        for container in containers {
            if let Some(app) = container.labels.get(labels::APP).cloned() {
                by_app.entry(app).or_default().push(container);
            }
        }
        let apps: BTreeSet<String> = self
            .store
            .apps()?
            .into_iter()
            .chain(by_app.keys().cloned())
            .collect();
        let mut plans = Vec::new();
        for app in apps {
            let records = self.store.list(&app)?;
            let containers = by_app.remove(&app).unwrap_or_default();
            let unfinished = records.iter().any(|r| !r.phase.is_finished());
            if containers.is_empty() && !unfinished {
                continue;
            }
            // What HAProxy routes now; nothing when it is not running.
            let routed = match containers.is_empty() {
                true => Vec::new(),
                false => self.proxy.servers(&app).await.unwrap_or_default(),
            };
            plans.push(recovery::plan(&app, &records, &containers, &routed));
        }
        recovery::settle_conflicts(&mut plans);
        let mut routes: Vec<_> = plans.iter().filter_map(AppPlan::route).collect();
        for route in &mut routes {
            route.maintenance = self.maintenance_page(&route.app)?;
        }
        self.proxy.sync(&routes).await?;
        let mut summary = Recovery {
            routed: routes.len(),
            ..Recovery::default()
        };
        for plan in plans {
            if let Some(reason) = &plan.skip {
                tracing::warn!(app = %plan.app, "{reason}");
                summary.skipped.push((plan.app.clone(), reason.clone()));
            } else {
                summary.recovering += 1;
            }
            self.recover_later(plan);
        }
        Ok(summary)
    }

    /// One app's part of recovery, run by its owner.
    pub(super) async fn recover_app(&self, plan: AppPlan) -> After {
        if let Some(reason) = plan.skip {
            return After::Problem(reason);
        }
        let app = plan.app.as_str();
        failpoint::reached(failpoint::RECOVER_PLANNED, app).await;
        let mut problems = Vec::new();
        let check = Check {
            http: Some((
                plan.health_check_path.clone(),
                plan.domains.first().map_or_else(
                    || "localhost".to_string(),
                    |d: &DomainSpec| d.canonical.clone(),
                ),
            )),
            rules: Default::default(),
        };
        for container in &plan.start {
            if let Err(problem) = self.restart_replica(app, container, &check).await {
                tracing::warn!(app, container = %container.name, "{problem}");
                problems.push(problem.to_string());
            }
        }
        failpoint::reached(failpoint::RECOVER_RESTORED, app).await;

        // Events of recovery have no client; they go to the log only.
        let (events, _) = mpsc::channel(1);
        if !plan.remove.is_empty() {
            tracing::info!(
                app,
                containers = plan.remove.len(),
                "removing the containers of a version that does not serve"
            );
        }
        let timing = self.timing(&plan.rollout);
        self.retire(app, plan.remove.clone(), &events, None, timing)
            .await;
        if plan.winner.is_none()
            && !plan.draining.is_empty()
            && let Err(e) = self.proxy.remove_app(app).await
        {
            problems.push(format!("cannot remove the app's route from HAProxy: {e}"));
        }
        failpoint::reached(failpoint::RECOVER_RETIRED, app).await;

        if let (Some(mut record), Some((phase, reason, note))) =
            (plan.interrupted.clone(), plan.resolution())
        {
            record.reason = reason;
            record.note = note;
            tracing::warn!(app, deployment = %record.id, "{}", record.note);
            if let Err(e) = self.write(&mut record, phase) {
                problems.push(format!("cannot record what became of {}: {e}", record.id));
            }
        }
        for mut record in plan.stale {
            record.note = "haloyd stopped during the deploy".into();
            record.reason = record.note.clone();
            if let Err(e) = self.write(&mut record, JournalPhase::Failed) {
                problems.push(format!("cannot record what became of {}: {e}", record.id));
            }
        }
        if problems.is_empty() {
            After::Clear
        } else {
            After::Problem(problems.join("; "))
        }
    }

    /// Starts a replica an interrupted deploy stopped, waits for its health check
    /// and routes it.
    async fn restart_replica(
        &self,
        app: &str,
        container: &ContainerInfo,
        check: &Check,
    ) -> Result<(), RestartError> {
        tracing::info!(app, container = %container.name, "starting a replica the interrupted deploy stopped");
        let name = || container.name.clone();
        let started =
            self.runtime
                .start(&container.id)
                .await
                .map_err(|source| RestartError::Start {
                    name: name(),
                    source,
                })?;
        let (_never, mut cancel) = watch::channel(false);
        // Recovery has no client: the log lines of a failure go nowhere.
        let (events, _) = mpsc::channel(32);
        let healthy = match self
            .wait_healthy(&started, check, &events, &mut cancel, None)
            .await
        {
            Ok(info) => info,
            Err(Abort::Failed(reason)) => return Err(RestartError::Unhealthy(reason)),
            Err(Abort::Cancelled) => return Err(RestartError::Cancelled),
        };
        let server = backend(&healthy).map_err(|_| RestartError::NoPort(name()))?;
        self.proxy
            .add_server(app, &server)
            .await
            .map_err(|source| RestartError::Route {
                name: name(),
                source,
            })
    }
}

/// Why a replica an interrupted deploy stopped could not be brought back.
#[derive(Debug, thiserror::Error)]
enum RestartError {
    #[error("cannot start {name}: {source}")]
    Start { name: String, source: RuntimeError },
    /// The health check's own explanation.
    #[error("after the restart: {0}")]
    Unhealthy(String),
    #[error("cancelled")]
    Cancelled,
    #[error("replica {0} has no published port")]
    NoPort(String),
    #[error("cannot route {name}: {source}")]
    Route { name: String, source: ProxyError },
}
