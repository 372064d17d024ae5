//! The deploy state machine against recording fakes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use haloy_api::spec::{AppSpec, DeploymentStrategy, DomainSpec, History, ImageSource, ImageSpec};
use tokio::sync::{mpsc, watch};

use super::fakes::{FakeProxy, FakeRuntime};
use super::*;
use crate::store::Store;

struct Rig {
    engine: Engine,
    runtime: Arc<FakeRuntime>,
    proxy: Arc<FakeProxy>,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::default());
    let proxy = Arc::new(FakeProxy::default());
    let store = Store::open(dir.path()).unwrap();
    let settings = super::fakes::quick_settings();
    let engine = Engine::new(runtime.clone(), proxy.clone(), store, settings);
    Rig {
        engine,
        runtime,
        proxy,
        _dir: dir,
    }
}

fn spec(tag: &str) -> AppSpec {
    AppSpec {
        name: "web".into(),
        image: ImageSpec {
            repository: "web".into(),
            tag: tag.into(),
            source: ImageSource::Registry,
            registry: None,
            history: History::None,
        },
        deployment_strategy: DeploymentStrategy::Rolling,
        domains: vec![DomainSpec {
            canonical: "web.test".into(),
            aliases: vec![],
        }],
        acme_email: None,
        replicas: 2,
        port: 8080,
        health_check_path: "/".into(),
        env: vec![],
        volumes: vec![],
        network: None,
    }
}

impl Rig {
    async fn deploy(&self, spec: &AppSpec, image: ImageInput) -> (Outcome, Vec<Event>) {
        let lock = self.engine.lock(&spec.name).unwrap();
        let (tx, mut rx) = mpsc::channel(256);
        let (_cancel_tx, cancel) = watch::channel(false);
        let outcome = self.engine.deploy(&lock, spec, image, &tx, cancel).await;
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (outcome, events)
    }
}

fn position(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix} in {calls:?}"))
}

#[tokio::test]
async fn rolling_deploy_switches_before_retiring_the_old_version() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    let (v2, events) = r.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);

    let new: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v2.deployment_id))
        .collect();
    let old: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v1.deployment_id))
        .collect();
    assert_eq!(r.runtime.names(), new, "only v2 containers remain");
    assert_eq!(r.proxy.server_names("web"), new);

    let calls = r.proxy.log.calls();
    let added = position(&calls, &format!("add_server {}", new[1]));
    let drained = position(&calls, &format!("drain_server {}", old[0]));
    let removed = position(&calls, &format!("remove_server {}", old[0]));
    assert!(added < drained && drained < removed, "{calls:?}");
    let runtime_calls = r.runtime.log.calls();
    assert!(
        position(&runtime_calls, &format!("run {}", new[0]))
            < position(&runtime_calls, &format!("stop {}", old[0]))
    );

    let phases: Vec<Phase> = events
        .iter()
        .filter_map(|e| match e {
            Event::Phase(p, _) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            Phase::PullingImage,
            Phase::Starting,
            Phase::HealthChecking,
            Phase::SwitchingTraffic,
            Phase::RetiringOld
        ]
    );

    let records = r.engine.store().list("web").unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|rec| rec.status == Status::Succeeded && rec.finished_at_ms.is_some())
    );
    assert!(v1.deployment_id < v2.deployment_id);
}

#[tokio::test]
async fn a_failed_health_check_keeps_the_old_version_and_streams_logs() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    let (v2, events) = r.deploy(&spec("v2-unhealthy"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Failed);
    assert!(
        v2.reason.contains("failed its health check") && v2.reason.contains("answered 500"),
        "{}",
        v2.reason
    );
    let old: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v1.deployment_id))
        .collect();
    assert_eq!(r.runtime.names(), old, "the new containers are gone");
    assert_eq!(r.proxy.server_names("web"), old, "v1 still routed");
    assert!(
        !r.proxy
            .log
            .calls()
            .iter()
            .any(|c| c.starts_with("drain_server"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Log { text, .. } if text.starts_with("boom from web-")))
    );
    let record = r
        .engine
        .store()
        .get("web", &v2.deployment_id)
        .unwrap()
        .unwrap();
    assert_eq!(record.status, Status::Failed);
    assert_eq!(record.reason, v2.reason);
}

#[tokio::test]
async fn a_crashing_container_fails_fast() {
    let r = rig();
    let started = Instant::now();
    let (outcome, _) = r.deploy(&spec("crash"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.contains("exited with code 1"),
        "{}",
        outcome.reason
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the health timeout"
    );
    assert!(r.runtime.names().is_empty());
}

#[tokio::test]
async fn replace_stops_the_old_version_first_and_restores_it_on_failure() {
    let r = rig();
    let mut s = spec("v1");
    s.deployment_strategy = DeploymentStrategy::Replace;
    let (v1, _) = r.deploy(&s, ImageInput::Pull).await;
    s.image.tag = "v2".into();
    let (v2, events) = r.deploy(&s, ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    let calls = r.runtime.log.calls();
    assert!(
        position(&calls, &format!("stop web-{}-1", v1.deployment_id))
            < position(&calls, &format!("run web-{}-1", v2.deployment_id))
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::Phase(Phase::StoppingOld, m) if m.contains("not zero downtime"))
    ));

    s.image.tag = "v3-unhealthy".into();
    let (v3, _) = r.deploy(&s, ImageInput::Pull).await;
    assert_eq!(v3.status, Status::Failed);
    let v2_names: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v2.deployment_id))
        .collect();
    assert_eq!(r.runtime.names(), v2_names);
    assert_eq!(
        r.proxy.server_names("web"),
        v2_names,
        "v2 restarted and routed again"
    );
}

#[tokio::test]
async fn cancelling_before_the_switch_removes_the_new_containers() {
    let r = rig();
    r.deploy(&spec("v1"), ImageInput::Pull).await;
    let lock = r.engine.lock("web").unwrap();
    let (tx, _rx) = mpsc::channel(256);
    let (cancel_tx, cancel) = watch::channel(false);
    let slow = spec("v2-unhealthy");
    let cancel_soon = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel_tx.send(true).unwrap();
    };
    let (outcome, ()) = tokio::join!(
        r.engine.deploy(&lock, &slow, ImageInput::Pull, &tx, cancel),
        cancel_soon
    );
    assert_eq!(outcome.status, Status::Cancelled);
    assert_eq!(r.runtime.names().len(), 2, "only v1 remains");
    assert_eq!(
        r.engine
            .store()
            .get("web", &outcome.deployment_id)
            .unwrap()
            .unwrap()
            .status,
        Status::Cancelled
    );
}

#[tokio::test]
async fn one_deploy_per_app_at_a_time() {
    let r = rig();
    let first = r.engine.lock("web").unwrap();
    match r.engine.lock("web") {
        Err(EngineError::Busy { deployment, .. }) => assert_eq!(deployment, first.deployment_id),
        other => panic!(
            "expected busy, got {:?}",
            other.map(|l| l.deployment_id.clone())
        ),
    }
    assert!(r.engine.lock("other").is_ok(), "other apps are independent");
    drop(first);
    assert!(r.engine.lock("web").is_ok());
}

#[tokio::test]
async fn a_proposed_id_is_used_when_it_is_newer_than_the_apps_newest() {
    let r = rig();
    let proposed = &ids::proposed_id(ids::now_ms() + 1000);
    let lock = r.engine.lock_as("web", Some(proposed)).unwrap();
    assert_eq!(&lock.deployment_id, proposed);
    let (tx, _rx) = mpsc::channel(256);
    let (_cancel_tx, cancel) = watch::channel(false);
    let outcome = r
        .engine
        .deploy(&lock, &spec("v1"), ImageInput::Pull, &tx, cancel)
        .await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
    drop(lock);
    // The instance's suffix keeps container names apart on a shared Docker.
    let suffix = ids::instance_suffix(&crate::engine::fakes::quick_settings().instance);
    assert!(
        r.runtime
            .log
            .calls()
            .iter()
            .any(|c| c.contains(&format!("web-{proposed}-{suffix}-1"))),
        "{:?}",
        r.runtime.log.calls()
    );

    // Older than what the app has (ids must keep sorting by time) or far from this
    // clock: the server picks the id.
    for odd in ["20200101000000000-abcd", "29990101000000000-abcd"] {
        let lock = r.engine.lock_as("web", Some(odd)).unwrap();
        assert!(
            lock.deployment_id.as_str() > proposed.as_str() && lock.deployment_id != odd,
            "{}",
            lock.deployment_id
        );
    }
}

#[tokio::test]
async fn images_come_from_uploads_or_must_exist() {
    let r = rig();
    let (missing, _) = r.deploy(&spec("v1"), ImageInput::Existing).await;
    assert_eq!(missing.status, Status::Failed);
    assert!(
        missing
            .reason
            .contains("image web:v1 is not on this server"),
        "{}",
        missing.reason
    );

    let (uploaded, _) = r
        .deploy(&spec("v1"), upload(&[b"uploaded:", b"abc"], Ok(12)))
        .await;
    assert_eq!(uploaded.status, Status::Succeeded, "{}", uploaded.reason);
    assert!(
        r.runtime
            .log
            .calls()
            .contains(&"tag_image uploaded:abc web:v1".to_string())
    );

    // A failed upload fails the deploy with its own reason, not the load's.
    let (broken, _) = r
        .deploy(
            &spec("v2"),
            upload(&[b"uploaded:"], Err(Some("the upload broke off".into()))),
        )
        .await;
    assert_eq!(broken.status, Status::Failed);
    assert_eq!(broken.reason, "the upload broke off");
    assert!(
        !r.runtime.log.calls().iter().any(|c| c.contains("web:v2")),
        "{:?}",
        r.runtime.log.calls()
    );
}

/// An upload of `pieces` whose receiving ends with `received` (an error also breaks
/// the stream, as the API does).
fn upload(pieces: &[&[u8]], received: Result<u64, Option<String>>) -> ImageInput {
    let mut items: Vec<std::io::Result<bytes::Bytes>> = pieces
        .iter()
        .map(|p| Ok(bytes::Bytes::copy_from_slice(p)))
        .collect();
    if let Err(reason) = &received {
        items.push(Err(std::io::Error::other(
            reason.clone().unwrap_or_default(),
        )));
    }
    let (done, receiver) = tokio::sync::oneshot::channel();
    done.send(received).unwrap();
    ImageInput::Upload(Upload {
        archive: futures_util::StreamExt::boxed(futures_util::stream::iter(items)),
        image_id: None,
        received: receiver,
    })
}

#[tokio::test]
async fn local_history_tags_the_image_with_the_deployment_id() {
    let r = rig();
    let mut s = spec("v1");
    s.image.history = History::Local { count: 5 };
    let (outcome, _) = r.deploy(&s, ImageInput::Pull).await;
    let record = r
        .engine
        .store()
        .get("web", &outcome.deployment_id)
        .unwrap()
        .unwrap();
    assert_eq!(record.image, format!("web:{}", outcome.deployment_id));
    assert!(
        r.runtime
            .log
            .calls()
            .contains(&format!("tag_image web:v1 web:{}", outcome.deployment_id))
    );
}

#[tokio::test]
async fn a_proxy_failure_at_the_switch_keeps_the_old_version() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    r.proxy.log.fail("add_server", "runtime API unreachable");
    let (v2, _) = r.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Failed);
    assert!(
        v2.reason.contains("runtime API unreachable"),
        "{}",
        v2.reason
    );
    let old: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v1.deployment_id))
        .collect();
    assert_eq!(r.runtime.names(), old);
}

#[tokio::test]
async fn reconcile_keeps_the_live_deployment_and_removes_leftovers() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    // A deploy that was interrupted: a record in progress and a container of it.
    let lock = r.engine.lock("web").unwrap();
    let mut record = r
        .engine
        .store()
        .get("web", &v1.deployment_id)
        .unwrap()
        .unwrap();
    record.id = lock.deployment_id.clone();
    record.status = Status::InProgress;
    r.engine.store().put(&record).unwrap();
    let labels = BTreeMap::from([
        ("dev.haloy.instance".to_string(), "test".to_string()),
        ("dev.haloy.app".to_string(), "web".to_string()),
        (
            "dev.haloy.deployment".to_string(),
            lock.deployment_id.clone(),
        ),
    ]);
    r.runtime
        .adopt(&format!("web-{}-1", lock.deployment_id), labels, true)
        .await;
    drop(lock);

    let routes = r.engine.reconcile().await.unwrap();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].domains[0].canonical, "web.test");
    let live: Vec<String> = (1..=2)
        .map(|n| format!("web-{}-{n}", v1.deployment_id))
        .collect();
    assert_eq!(
        routes[0]
            .servers
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        live
    );
    assert_eq!(r.runtime.names(), live);
    let interrupted = r.engine.store().get("web", &record.id).unwrap().unwrap();
    assert_eq!(interrupted.status, Status::Failed);
    assert!(interrupted.reason.contains("haloyd stopped"));
}

#[tokio::test]
async fn status_and_stop() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    r.deploy(&spec("v2-unhealthy"), ImageInput::Pull).await;
    let status = r.engine.status("web").await.unwrap();
    assert_eq!(status.current.as_ref().unwrap().id, v1.deployment_id);
    assert_eq!(status.latest.as_ref().unwrap().status, Status::Failed);
    assert_eq!(status.replicas.len(), 2);
    assert!(
        status
            .replicas
            .iter()
            .all(|rep| rep.health == "up" && rep.state == "running")
    );
    assert!(matches!(
        r.engine.status("nope").await,
        Err(EngineError::NotFound(_))
    ));

    let (stopped, removed) = r.engine.stop("web", false).await.unwrap();
    assert_eq!(stopped.len(), 2);
    assert!(removed.is_empty());
    assert!(r.proxy.server_names("web").is_empty());
    let status = r.engine.status("web").await.unwrap();
    assert!(
        status
            .replicas
            .iter()
            .all(|rep| rep.state == "exited (0)" && rep.health == "unrouted")
    );
    let (_, removed) = r.engine.stop("web", true).await.unwrap();
    assert_eq!(removed.len(), 2);
    assert!(r.runtime.names().is_empty());
}

#[tokio::test]
async fn a_failed_pull_is_reported_and_leaves_nothing() {
    let r = rig();
    r.runtime
        .log
        .fail("pull_image", "registry 127.0.0.1:1 refused the connection");
    let (outcome, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.contains("refused the connection"),
        "{}",
        outcome.reason
    );
    assert!(r.runtime.names().is_empty());
    assert!(
        r.proxy.log.calls().is_empty(),
        "HAProxy untouched: {:?}",
        r.proxy.log.calls()
    );
}

#[tokio::test]
async fn different_apps_deploy_concurrently() {
    let r = rig();
    let web = spec("v1");
    let mut api = spec("v1");
    api.name = "api".into();
    api.domains = vec![DomainSpec {
        canonical: "api.test".into(),
        aliases: vec![],
    }];
    let web_lock = r.engine.lock("web").unwrap();
    let api_lock = r.engine.lock("api").unwrap();
    let (tx, _rx) = mpsc::channel(256);
    let (_c1, cancel1) = watch::channel(false);
    let (_c2, cancel2) = watch::channel(false);
    let (a, b) = tokio::join!(
        r.engine
            .deploy(&web_lock, &web, ImageInput::Pull, &tx, cancel1),
        r.engine
            .deploy(&api_lock, &api, ImageInput::Pull, &tx, cancel2),
    );
    assert_eq!((a.status, b.status), (Status::Succeeded, Status::Succeeded));
    assert_eq!(r.proxy.server_names("web").len(), 2);
    assert_eq!(r.proxy.server_names("api").len(), 2);
}

mod certificates;

#[tokio::test]
async fn local_history_keeps_the_newest_count_images_and_prunes_the_rest() {
    let rig = rig();
    let mut ids = Vec::new();
    for n in 1..=5 {
        let mut spec = spec(&format!("v{n}"));
        spec.image.history = History::Local { count: 3 };
        rig.runtime
            .images
            .lock()
            .unwrap()
            .insert(format!("web:v{n}"));
        let (outcome, _) = rig.deploy(&spec, ImageInput::Existing).await;
        assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
        ids.push(outcome.deployment_id);
    }
    let images = rig.runtime.images.lock().unwrap().clone();
    for gone in ["web:v1", "web:v2"] {
        assert!(!images.contains(gone), "{gone} pruned: {images:?}");
    }
    for (n, id) in ids.iter().enumerate() {
        let present = images.contains(&format!("web:{id}"));
        assert_eq!(present, n >= 2, "web:{id} (deploy {}) in {images:?}", n + 1);
    }
    assert!(images.contains("web:v3") && images.contains("web:v5"));
    let dry = rig.engine.prune_images("web", true).await.unwrap();
    assert!(dry.removed.is_empty(), "nothing left to prune: {dry:?}");
    assert_eq!(dry.kept, [ids[4].clone(), ids[3].clone(), ids[2].clone()]);
}

#[tokio::test]
async fn pruning_never_removes_an_image_a_container_uses() {
    let rig = rig();
    let mut first = spec("v1");
    first.image.history = History::Local { count: 1 };
    rig.runtime.images.lock().unwrap().insert("web:v1".into());
    let (v1, _) = rig.deploy(&first, ImageInput::Existing).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    // Another haloyd on the same Docker runs v1 under a name of its own.
    rig.runtime
        .run(&ContainerSpec {
            name: "other-v1".into(),
            image: "web:v1".into(),
            env: vec![],
            labels: BTreeMap::new(),
            network: "haloy-public".into(),
            volumes: vec![],
            port: 8080,
        })
        .await
        .unwrap();
    let mut second = spec("v2");
    second.image.history = History::Local { count: 1 };
    rig.runtime.images.lock().unwrap().insert("web:v2".into());
    let (v2, _) = rig.deploy(&second, ImageInput::Existing).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    let images = rig.runtime.images.lock().unwrap().clone();
    assert!(images.contains("web:v1"), "in use elsewhere: {images:?}");
    let pruned = rig.engine.prune_images("web", false).await.unwrap();
    assert!(pruned.removed.is_empty(), "{pruned:?}");
}
