//! Batched rollouts, canaries, accessories, protection, the watchdog and the
//! health check's explanations, against the fakes.

use std::collections::HashMap;
use std::time::Duration;

use haloy_api::spec::{HealthCheck, Preset};

use super::*;
use crate::proxy::ServerCounters;
use crate::runtime::ContainerState;

fn surge(tag: &str, replicas: u32, max_surge: u32) -> AppSpec {
    let mut s = spec(tag);
    s.replicas = replicas;
    s.rollout.max_surge = Some(max_surge);
    s
}

fn canary_request(
    spec: &AppSpec,
    percent: u8,
) -> (DeployRequest, mpsc::Receiver<Event>, watch::Sender<bool>) {
    let (mut request, received, cancel) = request(spec);
    request.options.canary_percent = Some(percent);
    (request, received, cancel)
}

#[tokio::test(start_paused = true)]
async fn a_batched_rollout_retires_one_old_replica_per_new_one() {
    let r = rig();
    let (v1, _) = r.deploy(&surge("v1", 3, 1), ImageInput::Pull).await;
    let (v2, events) = r.deploy(&surge("v2", 3, 1), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    let (old, new) = (r.names(&v1.deployment_id, 3), r.names(&v2.deployment_id, 3));
    assert_eq!(r.runtime.names(), new);
    let calls = r.runtime.log.calls();
    // Batch 1 serves before the first old replica stops; batch 2 starts after.
    let added = position(&r.proxy.log.calls(), &format!("add_server {}", new[0]));
    assert!(added > 0);
    assert!(
        position(&calls, &format!("stop {}", old[0]))
            < position(&calls, &format!("run {}", new[1]))
    );
    assert!(
        position(&calls, &format!("stop {}", old[1]))
            < position(&calls, &format!("run {}", new[2]))
    );
    let batches = events
        .iter()
        .filter(|e| matches!(e, Event::Phase(Phase::Starting, m) if m.contains("batch")))
        .count();
    assert_eq!(batches, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failing_later_batch_restores_the_old_version() {
    let r = rig();
    let (v1, _) = r.deploy(&surge("v1", 3, 1), ImageInput::Pull).await;
    r.runtime
        .sick
        .lock()
        .unwrap()
        .push(("v2".into(), "-2".into()));
    let (v2, _) = r.deploy(&surge("v2", 3, 1), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Failed);
    assert!(v2.reason.contains("answered 500"), "{}", v2.reason);
    let old = r.names(&v1.deployment_id, 3);
    assert_eq!(r.runtime.names(), old, "the new replicas are gone");
    for name in &old {
        assert_eq!(
            r.runtime.state(name),
            Some(ContainerState::Running),
            "{name}"
        );
    }
    let mut routed = r.proxy.server_names("web");
    routed.sort();
    assert_eq!(routed, old, "every old replica serves again");
    // The old replica comes back before the new one of batch 1 goes.
    let calls = r.runtime.log.calls();
    let new1 = format!("web-{}-1", v2.deployment_id);
    assert!(
        position(&calls, &format!("start {}", old[0]))
            < position(&calls, &format!("remove {new1}"))
    );
    assert_phase(&r.record(&v2.deployment_id), JournalPhase::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_batches_restores_the_old_version() {
    let r = rig();
    let (v1, _) = r.deploy(&surge("v1", 2, 1), ImageInput::Pull).await;
    // The second batch's container never starts: haloyd "dies" there.
    r.runtime.log.hang("run", 1);
    let id = r.crash_during(&surge("v2", 2, 1)).await;
    let stopped = r.record(&id).stopping;
    assert_eq!(stopped, vec![r.names(&v1.deployment_id, 2)[0].clone()]);
    r.restart().await;
    let old = r.names(&v1.deployment_id, 2);
    assert_eq!(r.runtime.names(), old);
    for name in &old {
        assert_eq!(
            r.runtime.state(name),
            Some(ContainerState::Running),
            "{name}"
        );
    }
    assert_eq!(r.record(&id).status(), Status::Failed);
}

#[tokio::test(start_paused = true)]
async fn a_canary_splits_traffic_and_a_promote_finishes_the_rollout() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    let (canary, received, _cancel) = canary_request(&spec("v2"), 20);
    r.engine.deploy(canary).await.unwrap();
    let (v2, _) = collect(received).await;
    assert_eq!(v2.status, Status::Canary, "{}", v2.reason);
    let (old, new) = (r.names(&v1.deployment_id, 2), r.names(&v2.deployment_id, 2));
    let weights = r.proxy.weights.lock().unwrap().clone();
    assert_eq!((weights[&old[0]], weights[&new[0]]), (4, 1), "{weights:?}");
    assert_eq!(r.proxy.server_names("web").len(), 4);
    assert_phase(&r.record(&v2.deployment_id), JournalPhase::Canary);

    // Another deploy waits for the canary's end.
    let (again, _, _) = request(&spec("v3"));
    let refused = r.engine.deploy(again).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::CanaryRunning { .. }),
        "{refused}"
    );

    r.proxy.counters.lock().unwrap().insert(
        new[0].clone(),
        ServerCounters {
            name: new[0].clone(),
            responses: 10,
            errors: 3,
        },
    );
    let report = r.engine.canary_status("web").await.unwrap();
    assert_eq!(report.percent, 20);
    assert_eq!((report.canary.responses, report.canary.errors), (10, 3));
    assert_eq!(report.stable.unwrap().replicas, old);

    let promoted = r.engine.canary_promote("web").await.unwrap();
    assert_eq!(promoted.status, Status::Succeeded);
    assert_eq!(r.runtime.names(), new);
    assert_eq!(r.proxy.weights.lock().unwrap()[&new[0]], 1);
    assert_phase(&r.record(&v2.deployment_id), JournalPhase::Succeeded);
    let none = r.engine.canary_promote("web").await.unwrap_err();
    assert!(matches!(none, EngineError::NoCanary(_)), "{none}");
}

#[tokio::test(start_paused = true)]
async fn an_aborted_canary_gives_the_old_version_every_request_back() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    let (canary, received, _cancel) = canary_request(&spec("v2"), 50);
    r.engine.deploy(canary).await.unwrap();
    let (v2, _) = collect(received).await;
    // A restart keeps the canary where it was.
    let engine = r.restart().await;
    assert_eq!(r.proxy.server_names("web").len(), 4);
    let aborted = engine.canary_abort("web").await.unwrap();
    assert_eq!(aborted.status, Status::Cancelled);
    let old = r.names(&v1.deployment_id, 2);
    assert_eq!(r.runtime.names(), old);
    assert_eq!(r.proxy.weights.lock().unwrap()[&old[0]], 1);
    assert_eq!(r.record(&v2.deployment_id).status(), Status::Cancelled);
    let (v3, _) = r.deploy(&spec("v3"), ImageInput::Pull).await;
    assert_eq!(v3.status, Status::Succeeded, "a deploy runs again");
}

fn database(tag: &str) -> AppSpec {
    let mut s = spec(tag);
    s.name = "web".into();
    s.replicas = 1;
    s.domains.clear();
    s.preset = Some(Preset::Database);
    s
}

#[tokio::test(start_paused = true)]
async fn a_database_keeps_its_name_and_refuses_to_be_replaced_unasked() {
    let r = rig();
    let (v1, _) = r.deploy(&database("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    let stable = r.runtime.names();
    assert_eq!(stable.len(), 1);
    assert!(!stable[0].contains(&v1.deployment_id), "{stable:?}");
    assert!(r.proxy.server_names("web").is_empty(), "not routed");

    let (again, _, _) = request(&database("v2"));
    let refused = r.engine.deploy(again).await.unwrap_err();
    assert!(
        refused.to_string().contains("--include-protected"),
        "{refused}"
    );

    let (mut allowed, received, _) = request(&database("v2"));
    allowed.options.include_protected = true;
    r.engine.deploy(allowed).await.unwrap();
    let (v2, _) = collect(received).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    assert_eq!(r.runtime.names(), stable, "the same name, the new version");

    let stop = r.engine.stop("web", true).await.unwrap_err();
    assert!(matches!(stop, EngineError::Protected { .. }), "{stop}");
    assert!(
        r.engine.stop("web", false).await.is_ok(),
        "a plain stop is fine"
    );
    let removed = r
        .engine
        .stop_with(
            "web",
            StopOptions {
                remove: true,
                include_protected: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(removed.removed, stable);
}

#[tokio::test(start_paused = true)]
async fn a_failed_accessory_deploy_gives_the_old_container_its_name_back() {
    let r = rig();
    r.deploy(&database("v1"), ImageInput::Pull).await;
    let stable = r.runtime.names();
    let (mut request, received, _) = request(&database("v2-crash"));
    request.options.include_protected = true;
    r.engine.deploy(request).await.unwrap();
    let (v2, _) = collect(received).await;
    assert_eq!(v2.status, Status::Failed);
    assert_eq!(r.runtime.names(), stable);
    assert_eq!(r.runtime.state(&stable[0]), Some(ContainerState::Running));
}

#[tokio::test(start_paused = true)]
async fn a_replica_killed_for_memory_says_so() {
    let r = rig();
    let (outcome, _) = r.deploy(&spec("oom"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    for part in ["exited with code 137", "out of memory", "boom from"] {
        assert!(outcome.reason.contains(part), "{part}: {}", outcome.reason);
    }
}

#[tokio::test(start_paused = true)]
async fn expected_status_and_retries_decide_health() {
    let r = rig();
    let mut strict = spec("v1");
    strict.health_check = HealthCheck {
        expected_status: Some(204),
        retries: Some(3),
        interval: Some(Duration::from_millis(100)),
        ..HealthCheck::default()
    };
    let started = tokio::time::Instant::now();
    let (outcome, _) = r.deploy(&strict, ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(
        outcome.reason.contains("3 failed checks in a row")
            && outcome
                .reason
                .contains("answered 200 \"ok\" (expected 204)"),
        "{}",
        outcome.reason
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "retries, not the deadline"
    );

    let mut patient = spec("v2");
    patient.health_check.min_ready = Duration::from_secs(2);
    let started = tokio::time::Instant::now();
    let (outcome, _) = r.deploy(&patient, ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "stayed healthy first"
    );
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_restarts_a_replica_that_fails_while_serving() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    let [first, second] = <[String; 2]>::try_from(r.names(&v1.deployment_id, 2)).unwrap();
    let mut strikes = HashMap::new();
    r.engine.watch_once(&mut strikes).await;
    settle(&r.engine, "web").await;
    assert!(
        !r.runtime
            .log
            .calls()
            .iter()
            .any(|c| c.starts_with("start "))
    );

    r.runtime.kill(&first, 137, true);
    r.engine.watch_once(&mut strikes).await;
    settle(&r.engine, "web").await;
    assert_eq!(r.runtime.state(&first), Some(ContainerState::Running));
    let status = r.engine.status("web").await.unwrap();
    let replica = status.replicas.iter().find(|x| x.name == first).unwrap();
    assert_eq!(replica.restarts, 1);
    assert!(
        replica.last_failure.contains("out of memory"),
        "{}",
        replica.last_failure
    );
    assert_eq!(replica.health, "up", "routed again");

    // A running replica that answers 500 is restarted after two checks in a row.
    r.runtime
        .sick
        .lock()
        .unwrap()
        .push(("v1".into(), second.rsplit('-').next().unwrap().to_string()));
    r.engine.watch_once(&mut strikes).await;
    settle(&r.engine, "web").await;
    assert!(
        !r.runtime
            .log
            .calls()
            .iter()
            .any(|c| c == &format!("stop {second}"))
    );
    r.engine.watch_once(&mut strikes).await;
    settle(&r.engine, "web").await;
    assert!(
        r.runtime
            .log
            .calls()
            .iter()
            .any(|c| c == &format!("stop {second}"))
    );
    let status = r.engine.status("web").await.unwrap();
    let replica = status.replicas.iter().find(|x| x.name == second).unwrap();
    assert_eq!(replica.restarts, 1);
    assert!(
        replica.last_failure.contains("500"),
        "{}",
        replica.last_failure
    );
    assert_eq!(replica.health, "unrouted", "still failing: not routed");

    // Once it answers again, the next round routes it.
    r.runtime.sick.lock().unwrap().clear();
    r.engine.watch_once(&mut strikes).await;
    settle(&r.engine, "web").await;
    let status = r.engine.status("web").await.unwrap();
    let replica = status.replicas.iter().find(|x| x.name == second).unwrap();
    assert_eq!((replica.health.as_str(), replica.restarts), ("up", 1));
}
