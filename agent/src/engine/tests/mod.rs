//! The deploy state machine against recording fakes, on paused time: no sockets, no
//! wall-clock waits. A "crash" is a fake call that never returns: the deploy's
//! future is dropped there (as SIGKILL would end it) and a new engine on the same
//! store, Docker and HAProxy recovers.

use std::collections::BTreeMap;
use std::sync::Arc;

use haloy_api::spec::{AppSpec, DeploymentStrategy, DomainSpec, History, ImageSource, ImageSpec};
use tokio::sync::{mpsc, watch};

use super::fakes::{self, FakeProxy, FakeRuntime};
use super::*;
use crate::store::{DeploymentRecord, JournalPhase, Status};

mod certificates;
mod crash;
mod deploy;
mod maintenance;
mod metrics;
mod owner;
mod prune;
mod traffic;

pub(super) struct Rig {
    pub engine: Arc<Engine>,
    pub runtime: Arc<FakeRuntime>,
    pub proxy: Arc<FakeProxy>,
    pub _dir: tempfile::TempDir,
}

pub(super) fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (seams, runtime, proxy) = fakes::seams();
    let store = Store::open(dir.path()).unwrap();
    let engine = Arc::new(Engine::new(seams, store, fakes::quick_settings()));
    Rig {
        engine,
        runtime,
        proxy,
        _dir: dir,
    }
}

pub(super) fn spec(tag: &str) -> AppSpec {
    AppSpec {
        domains: vec![DomainSpec {
            canonical: "web.test".into(),
            aliases: vec![],
        }],
        replicas: 2,
        ..AppSpec::new("web", ImageSpec::registry("web", tag))
    }
}

/// A deploy of `spec` that pulls its image, the channel its events arrive on, and
/// the sender that cancels it.
pub(super) fn request(
    spec: &AppSpec,
) -> (DeployRequest, mpsc::Receiver<Event>, watch::Sender<bool>) {
    let (events, received) = mpsc::channel(1024);
    let (cancel_tx, cancel) = watch::channel(false);
    let request = DeployRequest {
        spec: spec.clone(),
        image: ImageRequest::Ready(ImageInput::Pull),
        proposed_id: None,
        events,
        cancel,
        options: Default::default(),
    };
    (request, received, cancel_tx)
}

/// A deploy's events, up to and including `Finished`.
pub(super) async fn collect(mut events: mpsc::Receiver<Event>) -> (Outcome, Vec<Event>) {
    let mut seen = Vec::new();
    while let Some(event) = events.recv().await {
        if let Event::Finished(outcome) = &event {
            let outcome = outcome.clone();
            seen.push(event);
            return (outcome, seen);
        }
        seen.push(event);
    }
    panic!("the deploy ended without Finished: {seen:?}");
}

impl Rig {
    /// Deploys through the app's owner and waits for the outcome.
    pub async fn deploy(&self, spec: &AppSpec, image: ImageInput) -> (Outcome, Vec<Event>) {
        let (mut request, received, _cancel) = request(spec);
        request.image = ImageRequest::Ready(image);
        self.engine.deploy(request).await.unwrap();
        collect(received).await
    }

    /// Starts a deploy and "kills haloyd" when the fakes hang (see
    /// [`fakes::CallLog::hang`]); returns the interrupted deployment's id.
    pub async fn crash_during(&self, spec: &AppSpec) -> String {
        let (request, _received, _cancel) = request(spec);
        let record = self.engine.accept(&request).unwrap();
        let id = record.id.clone();
        let DeployRequest {
            spec,
            image,
            events,
            cancel,
            ..
        } = request;
        let hung_runtime = self.runtime.log.hung.notified();
        let hung_proxy = self.proxy.log.hung.notified();
        tokio::select! {
            outcome = self.engine.run_deploy(record, spec, image, events, cancel, None) => {
                panic!("the deploy finished instead of hanging: {outcome:?}")
            }
            () = hung_runtime => {}
            () = hung_proxy => {}
        }
        self.runtime.log.clear();
        self.proxy.log.clear();
        id
    }

    /// A new engine on the same store, Docker and HAProxy — haloyd started again —
    /// that has run its recovery to the end.
    pub async fn restart(&self) -> Arc<Engine> {
        let (mut seams, _, _) = fakes::seams();
        seams.runtime = self.runtime.clone();
        seams.proxy = self.proxy.clone();
        seams.probe = Arc::new(fakes::FakeProbe(self.runtime.clone()));
        let engine = Arc::new(Engine::new(
            seams,
            self.engine.store().clone(),
            fakes::quick_settings(),
        ));
        engine.recover().await.unwrap();
        settle(&engine, "web").await;
        engine
    }

    pub fn record(&self, id: &str) -> DeploymentRecord {
        self.engine.store().get("web", id).unwrap().unwrap()
    }

    /// Names of the containers of deployment `id`, replicas 1..=n.
    pub fn names(&self, id: &str, n: u32) -> Vec<String> {
        (1..=n).map(|i| format!("web-{id}-{i}")).collect()
    }
}

/// Waits until `app`'s owner has nothing running.
pub(super) async fn settle(engine: &Engine, app: &str) {
    for _ in 0..10_000 {
        if engine.snapshot(app).await.activity.is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{app} is still busy: {:?}", engine.snapshot(app).await);
}

pub(super) fn position(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix} in {calls:?}"))
}

/// Labels of a container of `app`'s deployment `id` that this instance made.
pub(super) fn labels(app: &str, id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("dev.haloy.instance".to_string(), "test".to_string()),
        ("dev.haloy.app".to_string(), app.to_string()),
        ("dev.haloy.deployment".to_string(), id.to_string()),
    ])
}

/// Asserts the record is at `phase`, with an end time once finished.
pub(super) fn assert_phase(record: &DeploymentRecord, phase: JournalPhase) {
    assert_eq!(record.phase, phase, "{record:?}");
    assert_eq!(
        record.finished_at_ms.is_some(),
        phase.is_finished(),
        "{record:?}"
    );
    assert_eq!(record.status() == Status::InProgress, !phase.is_finished());
}
