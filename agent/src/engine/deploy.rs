//! The deploy state machine. Each step is written to the journal (and flushed)
//! before the side effects of the next one, so that a crash at any instruction
//! leaves a record that says which version is the truth: before `Switched` the
//! previous one, from it on the new one (see `recovery.rs`).
//!
//! rolling: image → new replicas → healthy → added to HAProxy → **switched** → old
//! drained, removed → retired → succeeded. `replace` stops the old replicas right
//! after the image is ready. A failure or cancellation before the switch undoes the
//! deploy: the new containers go, stopped old ones come back.

use haloy_api::spec::{AppSpec, DeploymentStrategy, History};

use super::Engine;
use super::accessory::is_routed;
use super::container::{backend, deployment_of};
use super::events::{Abort, Cancel, Event, Events, Outcome, Phase, check_cancel, log, phase};
use super::failpoint;
use super::health::Check;
use super::image::ImageRequest;
use super::steps::{self, Work};
use crate::runtime::{ContainerInfo, ContainerState};
use crate::store::{DeploymentRecord, JournalPhase, Status, StoreError};

impl Engine {
    /// Writes `record` at `phase` and flushes it.
    pub(super) fn write(
        &self,
        record: &mut DeploymentRecord,
        phase: JournalPhase,
    ) -> Result<(), StoreError> {
        record.phase = phase;
        if phase.is_finished() {
            record.finished_at_ms = Some(self.clock.now_ms());
        }
        self.store.put(record)
    }

    /// Runs an accepted deploy (its record says `Accepted`) to its end. Never fails:
    /// the outcome says how it ended, and the old version keeps serving unless it
    /// succeeded. The last event sent is `Finished`.
    pub(super) async fn run_deploy(
        &self,
        mut record: DeploymentRecord,
        spec: AppSpec,
        image: ImageRequest,
        events: Events,
        mut cancel: Cancel,
        canary: Option<u8>,
    ) -> Outcome {
        let _ = events.send(Event::Accepted(record.id.clone())).await;
        failpoint::reached(failpoint::ACCEPTED, &spec.name).await;
        let mut work = Work {
            canary,
            ..Work::default()
        };
        let result = self
            .advance(&mut record, &spec, image, &events, &mut cancel, &mut work)
            .await;
        match result {
            Ok(()) if record.phase == JournalPhase::Canary => {
                log(
                    &events,
                    "the canary serves its share beside the previous version; `haloy canary status` compares them, `haloy canary promote` or `abort` ends it",
                )
                .await;
            }
            Ok(()) => {
                self.request_certificates(&spec, &events).await;
                if let Err(e) = self.write(&mut record, JournalPhase::Succeeded) {
                    // The new version serves; a restart completes the record.
                    tracing::error!(app = %spec.name, deployment = %record.id, "cannot record the deployment: {e}");
                }
                if let History::Local { .. } = spec.image.history {
                    self.prune_after(&spec.name, &events).await;
                }
            }
            Err(abort) => {
                let end = match abort {
                    Abort::Cancelled => {
                        record.reason = "cancelled by the client".into();
                        JournalPhase::Cancelled
                    }
                    Abort::Failed(reason) => {
                        record.reason = reason;
                        JournalPhase::Failed
                    }
                };
                if let Err(e) = self.write(&mut record, JournalPhase::Undoing) {
                    tracing::error!(app = %spec.name, deployment = %record.id, "cannot record the undo: {e}");
                }
                phase(&events, Phase::CleaningUp, "removing the new containers").await;
                self.undo(&spec, &work, &events).await;
                if let Err(e) = self.write(&mut record, end) {
                    tracing::error!(app = %spec.name, deployment = %record.id, "cannot record the deployment: {e}");
                }
            }
        }
        tracing::info!(app = %spec.name, deployment = %record.id, phase = record.phase.as_str(), reason = %record.reason, "deploy finished");
        let outcome = Outcome {
            deployment_id: record.id.clone(),
            status: record.status(),
            reason: record.reason.clone(),
        };
        let _ = events.send(Event::Finished(outcome.clone())).await;
        outcome
    }

    /// The steps from the image to `Retired`, each on record before the next.
    async fn advance(
        &self,
        record: &mut DeploymentRecord,
        spec: &AppSpec,
        image: ImageRequest,
        events: &Events,
        cancel: &mut Cancel,
        work: &mut Work,
    ) -> Result<(), Abort> {
        let app = spec.name.as_str();
        let input = match image {
            ImageRequest::Ready(input) => input,
            ImageRequest::Prepare(prepare) => prepare(events.clone())
                .await
                .map_err(|e| Abort::Failed(e.to_string()))?,
        };
        let (run_image, origin) = self.obtain_image(&record.id, spec, input, events).await?;
        check_cancel(cancel)?;
        self.runtime
            .ensure_network(spec.network_or_default())
            .await?;
        let old: Vec<ContainerInfo> = self
            .app_containers(app)
            .await?
            .into_iter()
            .filter(|c| deployment_of(c) != Some(record.id.as_str()))
            .collect();
        let replace = spec.strategy() == DeploymentStrategy::Replace;
        let stopping: Vec<ContainerInfo> = old
            .iter()
            .filter(|c| replace && c.state == ContainerState::Running)
            .cloned()
            .collect();
        record.image = run_image.clone();
        record.image_origin = origin;
        record.previous = self.live_deployment(app)?;
        record.stopping = stopping.iter().map(|c| c.name.clone()).collect();
        if spec.preset.is_some() {
            // Recovery finds a set-aside accessory container by either name.
            let aside: Vec<String> = stopping
                .iter()
                .map(|c| Self::aside_name(&c.name, &record.id))
                .collect();
            record.stopping.extend(aside);
        }
        self.write(record, JournalPhase::ImageReady)?;
        failpoint::reached(failpoint::IMAGE_READY, app).await;

        if replace {
            phase(
                events,
                Phase::StoppingOld,
                &format!(
                    "stopping {} old container(s) first (replace strategy: not zero downtime)",
                    stopping.len()
                ),
            )
            .await;
            self.unroute(app, &record.stopping).await;
            for container in stopping {
                self.runtime
                    .stop(&container.id, self.timing(&spec.rollout).stop_grace)
                    .await?;
                work.stopped_old.push(container);
            }
            failpoint::reached(failpoint::OLD_STOPPED, app).await;
        }
        self.set_aside(spec, &record.id, &old, &mut work.renamed)
            .await?;

        let check = Check::of(spec);
        let timing = self.timing(&spec.rollout);
        // Batches only make sense beside old replicas that serve meanwhile.
        let mut serving: Vec<ContainerInfo> = old
            .iter()
            .filter(|c| !replace && c.state == ContainerState::Running)
            .cloned()
            .collect();
        serving.sort_by(|a, b| a.name.cmp(&b.name));
        let surge = if serving.is_empty() || work.canary.is_some() {
            None
        } else {
            spec.rollout.max_surge
        };
        let batches = steps::batches(spec.replicas, surge);
        let count = batches.len();
        for (b, numbers) in batches.into_iter().enumerate() {
            let which = if count > 1 {
                format!(" (batch {} of {count})", b + 1)
            } else {
                String::new()
            };
            phase(
                events,
                Phase::Starting,
                &format!(
                    "starting {} replica(s) of {run_image}{which}",
                    numbers.len()
                ),
            )
            .await;
            let started = self
                .start_batch(record, spec, &run_image, &numbers, work, cancel)
                .await?;
            record.containers = work.created.iter().map(|c| c.name.clone()).collect();
            self.write(record, JournalPhase::ReplicasStarted)?;
            failpoint::reached(failpoint::REPLICAS_STARTED, app).await;

            phase(
                events,
                Phase::HealthChecking,
                &format!(
                    "waiting for {} to answer on each replica{which}",
                    check.describe()
                ),
            )
            .await;
            let healthy = self.check_batch(started, &check, events, cancel).await?;
            let at = work.created.len() - healthy.len();
            work.created.splice(at.., healthy.iter().cloned());
            if b + 1 == count {
                self.write(record, JournalPhase::Healthy)?;
                failpoint::reached(failpoint::HEALTHY, app).await;
                // Past this point the new version takes traffic; cancelling no longer applies.
                check_cancel(cancel)?;
            }
            if let Some(percent) = work.canary {
                phase(
                    events,
                    Phase::SwitchingTraffic,
                    &format!("sending {percent}% of requests to the new replicas (canary)"),
                )
                .await;
                work.reweighted = serving.iter().map(|c| c.name.clone()).collect();
                let (state, weight) = self
                    .begin_canary(app, percent, &serving, healthy.len())
                    .await?;
                self.route_batch(spec, &healthy, work, Some(weight)).await?;
                record.canary = Some(state);
                self.write(record, JournalPhase::Canary)?;
                return Ok(());
            }
            phase(
                events,
                Phase::SwitchingTraffic,
                &format!("adding the new replicas to HAProxy{which}"),
            )
            .await;
            self.route_batch(spec, &healthy, work, None).await?;
            if b + 1 < count {
                // As many old replicas go as new ones came; the journal names them
                // first, so a crash or a later failure starts them again.
                let down: Vec<ContainerInfo> =
                    serving.drain(..numbers.len().min(serving.len())).collect();
                record.stopping.extend(down.iter().map(|c| c.name.clone()));
                self.write(record, JournalPhase::ReplicasStarted)?;
                self.take_down(app, down, events, timing, work).await?;
            }
        }
        failpoint::reached(failpoint::SERVERS_ADDED, app).await;
        self.write(record, JournalPhase::Switched)?;
        failpoint::reached(failpoint::SWITCHED, app).await;

        // From here on the new version is the truth: nothing fails the deploy.
        let live_old: Vec<ContainerInfo> = old
            .into_iter()
            .filter(|c| !work.stopped_old.iter().any(|s| s.id == c.id))
            .collect();
        self.retire(app, live_old, events, Some(failpoint::DRAINED), timing)
            .await;
        for container in std::mem::take(&mut work.stopped_old) {
            if let Err(e) = self.runtime.remove(&container.id).await {
                tracing::warn!("cannot remove old container {}: {e}", container.name);
            }
        }
        if let Err(e) = self.write(record, JournalPhase::Retired) {
            tracing::error!(app, deployment = %record.id, "cannot record the retirement: {e}");
        }
        failpoint::reached(failpoint::RETIRED, app).await;
        Ok(())
    }

    /// The record of the newest succeeded deployment of `app`.
    pub(super) fn live_record(&self, app: &str) -> Result<Option<DeploymentRecord>, StoreError> {
        Ok(self
            .store
            .list(app)?
            .into_iter()
            .find(|r| r.status() == Status::Succeeded))
    }

    /// The newest succeeded deployment of `app`, which serves unless it was stopped.
    pub(super) fn live_deployment(&self, app: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .list(app)?
            .into_iter()
            .find(|r| r.status() == Status::Succeeded)
            .map(|r| r.id))
    }

    /// Removes those of `names` that are servers of the app's backend, reading the
    /// backend once; errors are logged, not fatal.
    pub(super) async fn unroute(&self, app: &str, names: &[String]) {
        let Ok(servers) = self.proxy.servers(app).await else {
            return;
        };
        for name in names {
            if !servers.iter().any(|s| &s.name == name) {
                continue;
            }
            if let Err(e) = self.proxy.remove_server(app, name).await {
                tracing::warn!(app, server = %name, "cannot remove the server from HAProxy: {e}");
            }
        }
    }

    /// Undoes a failed or cancelled deploy: new containers go, old ones stopped by a
    /// replace deploy come back.
    async fn undo(&self, spec: &AppSpec, work: &Work, events: &Events) {
        for name in &work.reweighted {
            if let Err(e) = self.proxy.set_weight(&spec.name, name, 1).await {
                tracing::warn!(app = %spec.name, server = %name, "cannot restore the weight: {e}");
            }
        }
        // An accessory's new container holds the stable name: it goes first. Other
        // apps get their old replicas back before the new ones leave, so a failed
        // batch of a rollout does not leave the app without servers.
        if !work.renamed.is_empty() {
            self.remove_new(spec, work).await;
            self.put_back(&work.renamed).await;
        }
        for container in &work.stopped_old {
            log(
                events,
                &format!("restarting old replica {}", container.name),
            )
            .await;
            match self.runtime.start(&container.id).await {
                Ok(info) if is_routed(spec) => match backend(&info) {
                    Ok(server) => {
                        if let Err(e) = self.proxy.add_server(&spec.name, &server).await {
                            tracing::warn!("cannot route restarted {}: {e}", info.name);
                        }
                    }
                    Err(_) => tracing::warn!("restarted {} has no published port", info.name),
                },
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot restart old container {}: {e}", container.name),
            }
        }
        if work.renamed.is_empty() {
            self.remove_new(spec, work).await;
        }
    }

    async fn remove_new(&self, spec: &AppSpec, work: &Work) {
        self.unroute(&spec.name, &work.routed).await;
        for container in &work.created {
            if let Err(e) = self.runtime.remove(&container.id).await {
                tracing::warn!("cannot remove new container {}: {e}", container.name);
            }
        }
    }

    /// Removes images outside the app's history after a successful deploy; a failure
    /// here is reported but does not fail the deploy, which already serves.
    async fn prune_after(&self, app: &str, events: &Events) {
        match self.prune_images(app, false).await {
            Ok(pruned) if !pruned.removed.is_empty() => {
                log(
                    events,
                    &format!(
                        "removed {} image name(s) outside the history: {}",
                        pruned.removed.len(),
                        pruned.removed.join(", ")
                    ),
                )
                .await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(app, "cannot prune old images: {e}");
                log(events, &format!("old images were not pruned: {e}")).await;
            }
        }
    }
}
