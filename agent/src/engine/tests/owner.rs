//! One owner per app: one change at a time, refusals that say what runs, ids minted
//! only for deploys that run, and owners that go away when idle.

use std::time::Duration;

use super::*;
use crate::ids;

/// Starts a deploy of `spec` that hangs at its first `run` until the fakes let go.
async fn hanging_deploy(r: &Rig, spec: &AppSpec) -> (String, mpsc::Receiver<Event>) {
    r.runtime.log.hang("run", 0);
    let (request, received, _cancel) = request(spec);
    let hung = r.runtime.log.hung.notified();
    let id = r.engine.deploy(request).await.unwrap();
    hung.await;
    (id, received)
}

#[tokio::test(start_paused = true)]
async fn a_second_change_is_refused_naming_what_runs_and_for_how_long() {
    let r = rig();
    let (running, _events) = hanging_deploy(&r, &spec("v1")).await;
    tokio::time::sleep(Duration::from_secs(12)).await;

    let (second, _, _cancel) = request(&spec("v2"));
    let refused = r.engine.deploy(second).await.unwrap_err();
    match &refused {
        EngineError::Busy {
            deployment,
            running_for,
            ..
        } => {
            assert_eq!(deployment.as_deref(), Some(running.as_str()));
            assert!(*running_for >= Duration::from_secs(12), "{running_for:?}");
        }
        other => panic!("expected busy, got {other:?}"),
    }
    let message = refused.to_string();
    assert!(
        message.contains(&running) && message.contains("running for 12 s"),
        "{message}"
    );

    // A stop is refused too, and no deployment id is minted for it.
    let stop = r.engine.stop("web", false).await.unwrap_err();
    assert!(stop.to_string().contains(&running), "{stop}");
    let ids: Vec<String> = r
        .engine
        .store()
        .list("web")
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(
        ids,
        std::slice::from_ref(&running),
        "only the running deploy is on record"
    );

    // The status says what runs.
    let snapshot = r.engine.snapshot("web").await;
    let (what, for_how_long) = snapshot.activity.unwrap();
    assert!(what.contains(&running), "{what}");
    assert!(for_how_long >= Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn different_apps_change_concurrently() {
    let r = rig();
    let (_web, _events) = hanging_deploy(&r, &spec("v1")).await;
    let mut api = spec("v1");
    api.name = "api".into();
    api.domains = vec![DomainSpec {
        canonical: "api.test".into(),
        aliases: vec![],
    }];
    r.runtime.log.clear();
    let (outcome, _) = r.deploy(&api, ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
    assert_eq!(r.proxy.server_names("api").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_proposed_id_is_used_when_it_is_newer_than_the_apps_newest() {
    let r = rig();
    let proposed = ids::proposed_id(ids::now_ms() + 1000);
    let deploy = |proposed: &str| {
        let (mut request, received, cancel) = request(&spec("v1"));
        request.proposed_id = Some(proposed.to_string());
        let engine = r.engine.clone();
        async move {
            let _cancel = cancel;
            let id = engine.deploy(request).await.unwrap();
            let (outcome, _) = collect(received).await;
            assert_eq!(outcome.deployment_id, id);
            outcome
        }
    };
    let outcome = deploy(&proposed).await;
    assert_eq!(outcome.deployment_id, proposed);
    assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
    // The instance's suffix keeps container names apart on a shared Docker.
    let suffix = ids::instance_suffix(&fakes::quick_settings().instance);
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
        let outcome = deploy(odd).await;
        assert!(
            outcome.deployment_id.as_str() > proposed.as_str() && outcome.deployment_id != odd,
            "{}",
            outcome.deployment_id
        );
    }
}

#[tokio::test(start_paused = true)]
async fn idle_owners_go_away_and_questions_start_none() {
    let r = rig();
    let (outcome, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded);
    assert_eq!(r.engine.owner_count(), 1);
    for n in 0..50 {
        let app = format!("nope{n}");
        assert!(r.engine.status(&app).await.is_err());
        assert!(r.engine.snapshot(&app).await.activity.is_none());
    }
    assert_eq!(r.engine.owner_count(), 1, "status never starts an owner");
    for n in 0..50 {
        assert!(matches!(
            r.engine.stop(&format!("gone{n}"), false).await,
            Err(EngineError::NotFound(_))
        ));
    }
    assert_eq!(r.engine.owner_count(), 51);
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(r.engine.owner_count(), 0, "idle owners went away");
    // And an app whose owner went away is served by a new one.
    let (again, _) = r.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(again.status, Status::Succeeded, "{}", again.reason);
}
