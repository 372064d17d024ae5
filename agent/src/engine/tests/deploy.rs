//! Deploys from start to end: the order of the switch, failures before it, images.

use std::time::Duration;

use super::*;

#[tokio::test(start_paused = true)]
async fn rolling_deploy_switches_before_retiring_the_old_version() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    let (v2, events) = r.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);

    let new = r.names(&v2.deployment_id, 2);
    let old = r.names(&v1.deployment_id, 2);
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
    assert_eq!(
        events.first(),
        Some(&Event::Accepted(v2.deployment_id.clone()))
    );

    let records = r.engine.store().list("web").unwrap();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_phase(record, JournalPhase::Succeeded);
    }
    let latest = &records[0];
    assert_eq!(latest.previous.as_deref(), Some(v1.deployment_id.as_str()));
    assert_eq!(latest.containers, new);
    assert!(v1.deployment_id < v2.deployment_id);
}

#[tokio::test(start_paused = true)]
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
    let old = r.names(&v1.deployment_id, 2);
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
    let record = r.record(&v2.deployment_id);
    assert_phase(&record, JournalPhase::Failed);
    assert_eq!(record.reason, v2.reason);
}

#[tokio::test(start_paused = true)]
async fn a_crashing_container_fails_fast() {
    let r = rig();
    let started = tokio::time::Instant::now();
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

#[tokio::test(start_paused = true)]
async fn an_unhealthy_replica_fails_after_the_health_timeout() {
    let r = rig();
    let started = tokio::time::Instant::now();
    let (outcome, _) = r.deploy(&spec("unhealthy"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.contains("not healthy within 3 s"),
        "{}",
        outcome.reason
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
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
    assert_eq!(
        r.record(&v2.deployment_id).stopping,
        r.names(&v1.deployment_id, 2),
        "the journal names what the deploy stopped"
    );

    s.image.tag = "v3-unhealthy".into();
    let (v3, _) = r.deploy(&s, ImageInput::Pull).await;
    assert_eq!(v3.status, Status::Failed);
    let v2_names = r.names(&v2.deployment_id, 2);
    assert_eq!(r.runtime.names(), v2_names);
    assert_eq!(
        r.proxy.server_names("web"),
        v2_names,
        "v2 restarted and routed again"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_before_the_switch_removes_the_new_containers() {
    let r = rig();
    r.deploy(&spec("v1"), ImageInput::Pull).await;
    let (request, received, cancel_tx) = request(&spec("v2-unhealthy"));
    r.engine.deploy(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel_tx.send(true).unwrap();
    let (outcome, _) = collect(received).await;
    assert_eq!(outcome.status, Status::Cancelled);
    assert_eq!(r.runtime.names().len(), 2, "only v1 remains");
    assert_phase(&r.record(&outcome.deployment_id), JournalPhase::Cancelled);
}

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
async fn an_image_prepared_after_acceptance_is_on_record_first() {
    let r = rig();
    let (mut request, received, _cancel) = request(&spec("v1"));
    let store = r.engine.store().clone();
    let prepare: PrepareImage = Box::new(move |events: Events| {
        Box::pin(async move {
            // The deploy is on record while its image is still being negotiated.
            let records = store.list("web").map_err(|e| e.to_string())?;
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].phase, JournalPhase::Accepted);
            let _ = events
                .send(Event::UploadWanted {
                    have_image: false,
                    layers: vec!["sha256:x".into()],
                })
                .await;
            Err("the upload broke off".into())
        })
    });
    request.image = ImageRequest::Prepare(prepare);
    r.engine.deploy(request).await.unwrap();
    let (outcome, events) = collect(received).await;
    assert_eq!(outcome.reason, "the upload broke off");
    assert!(matches!(events[0], Event::Accepted(_)));
    assert!(
        matches!(events[1], Event::UploadWanted { .. }),
        "{events:?}"
    );
    assert_phase(&r.record(&outcome.deployment_id), JournalPhase::Failed);
}

/// An upload of `pieces` whose receiving ends with `received` (an error also breaks
/// the stream, as the API does).
fn upload(pieces: &[&[u8]], received: Result<u64, Option<ImageFailure>>) -> ImageInput {
    let mut items: Vec<std::io::Result<bytes::Bytes>> = pieces
        .iter()
        .map(|p| Ok(bytes::Bytes::copy_from_slice(p)))
        .collect();
    if let Err(reason) = &received {
        items.push(Err(std::io::Error::other(
            reason.as_ref().map(|r| r.to_string()).unwrap_or_default(),
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

#[tokio::test(start_paused = true)]
async fn local_history_tags_the_image_with_the_deployment_id() {
    let r = rig();
    let mut s = spec("v1");
    s.image.history = History::Local { count: 5 };
    let (outcome, _) = r.deploy(&s, ImageInput::Pull).await;
    let record = r.record(&outcome.deployment_id);
    assert_eq!(record.image, format!("web:{}", outcome.deployment_id));
    assert!(
        r.runtime
            .log
            .calls()
            .contains(&format!("tag_image web:v1 web:{}", outcome.deployment_id))
    );
}

#[tokio::test(start_paused = true)]
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
    assert_eq!(r.runtime.names(), r.names(&v1.deployment_id, 2));
}

/// Invariant: replicas that are gone leave the routing, even when HAProxy cannot
/// say which of them it routes (it is down and about to start from its files).
#[tokio::test(start_paused = true)]
async fn retiring_while_haproxy_cannot_list_its_servers_still_removes_them() {
    use crate::runtime::ContainerRuntime;
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(r.proxy.server_names("web").len(), 2);
    let old = r.runtime.list(&[("dev.haloy.app", "web")]).await.unwrap();
    assert_eq!(old.len(), 2);
    r.proxy
        .log
        .fail("servers", "HAProxy's master socket does not answer");
    let (events, _received) = tokio::sync::mpsc::channel(64);
    let timing = r.engine.timing(&Default::default());
    r.engine.retire("web", old, &events, None, timing).await;
    assert!(r.proxy.server_names("web").is_empty(), "{v1:?}");
    assert!(r.runtime.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn status_and_stop() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    r.deploy(&spec("v2-unhealthy"), ImageInput::Pull).await;
    let status = r.engine.status("web").await.unwrap();
    assert_eq!(status.current.as_ref().unwrap().id, v1.deployment_id);
    assert_eq!(status.latest.as_ref().unwrap().status(), Status::Failed);
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

    let stopped = r.engine.stop("web", false).await.unwrap();
    assert_eq!(stopped.stopped.len(), 2);
    assert!(stopped.removed.is_empty());
    assert!(r.proxy.server_names("web").is_empty());
    let status = r.engine.status("web").await.unwrap();
    assert!(
        status
            .replicas
            .iter()
            .all(|rep| rep.state == "exited (0)" && rep.health == "unrouted")
    );
    let removed = r.engine.stop("web", true).await.unwrap().removed;
    assert_eq!(removed.len(), 2);
    assert!(r.runtime.names().is_empty());
}

#[tokio::test(start_paused = true)]
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
