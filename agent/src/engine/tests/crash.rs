//! Crash recovery on the fakes: a deploy is cut off where one of its calls hangs (as
//! if haloyd were killed there), a new engine recovers from the same store, Docker
//! and HAProxy, and every case checks the same invariant: exactly one version
//! serves — the old one before the commit point, the new one from it on — with all
//! its replicas running and routed, nothing left of the other, the journal saying
//! what happened, and the next deploy succeeding.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seam {
    Runtime,
    Proxy,
}

/// Where the deploy is cut off: the `after`+1-th call of `method`.
#[derive(Debug, Clone, Copy)]
struct Cut {
    seam: Seam,
    method: &'static str,
    after: usize,
    /// The journal phase the deploy had reached.
    phase: JournalPhase,
}

impl Cut {
    fn arm(self, r: &Rig) {
        match self.seam {
            Seam::Runtime => r.runtime.log.hang(self.method, self.after),
            Seam::Proxy => r.proxy.log.hang(self.method, self.after),
        }
    }
}

const fn cut(seam: Seam, method: &'static str, after: usize, phase: JournalPhase) -> Cut {
    Cut {
        seam,
        method,
        after,
        phase,
    }
}

fn with_strategy(strategy: DeploymentStrategy, tag: &str) -> AppSpec {
    let mut s = spec(tag);
    s.deployment_strategy = strategy;
    s
}

/// Deploys v1 (unless `first`), cuts v2 off at `cut`, restarts, and checks the
/// invariant; returns the new engine and the ids of v1 (if any) and v2.
async fn crash_and_recover(
    strategy: DeploymentStrategy,
    first: bool,
    cut: Cut,
) -> (Rig, Option<String>, String) {
    let r = rig();
    let v1 = if first {
        None
    } else {
        let (v1, _) = r
            .deploy(&with_strategy(strategy, "v1"), ImageInput::Pull)
            .await;
        assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
        Some(v1.deployment_id)
    };
    cut.arm(&r);
    let v2 = r.crash_during(&with_strategy(strategy, "v2")).await;
    assert_eq!(r.record(&v2).phase, cut.phase, "cut off at {cut:?}");

    let engine = r.restart().await;
    let winner = if cut.phase.committed() {
        Some(v2.clone())
    } else {
        v1.clone()
    };
    let case = format!("{strategy:?}, first: {first}, cut off at {cut:?}");
    let expected: Vec<String> = winner.iter().flat_map(|w| r.names(w, 2)).collect();
    assert_eq!(r.runtime.names(), expected, "containers: {case}");
    for name in &expected {
        assert_eq!(
            r.runtime.state(name),
            Some(crate::runtime::ContainerState::Running),
            "{name}: {case}"
        );
    }
    let routed: Vec<String> = expected.iter().map(|n| format!("{n} up")).collect();
    let mut states = r.proxy.server_states("web");
    states.sort();
    assert_eq!(states, routed, "HAProxy: {case}");
    let hosts = r.proxy.hosts.lock().unwrap().get("web").cloned();
    match winner {
        Some(_) => assert_eq!(hosts, Some(vec!["web.test".to_string()]), "{case}"),
        None => assert_eq!(hosts, None, "nothing of a first deploy is routed: {case}"),
    }

    let record = r.record(&v2);
    let at = cut.phase.as_str();
    if cut.phase.committed() {
        assert_phase(&record, JournalPhase::Succeeded);
        assert_eq!(
            record.note,
            format!("haloyd stopped during the deploy at phase {at}; completed the switch to {v2}"),
        );
    } else {
        assert_phase(&record, JournalPhase::Failed);
        let restored = match &v1 {
            Some(v1) => format!("restored {v1}"),
            None => "nothing to restore: no earlier version ran".into(),
        };
        assert_eq!(
            record.note,
            format!("haloyd stopped during the deploy at phase {at}; {restored}")
        );
        assert_eq!(record.reason, record.note);
    }
    let status = engine.status("web").await.unwrap();
    assert_eq!(status.current.map(|c| c.id), winner, "{case}");
    assert_eq!(status.snapshot, Snapshot::default(), "{case}");
    assert!(
        status.replicas.iter().all(|rep| rep.health == "up"),
        "{case}"
    );

    // The next deploy works, through the new engine.
    let next = Rig {
        engine,
        runtime: r.runtime.clone(),
        proxy: r.proxy.clone(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let (v3, _) = next
        .deploy(&with_strategy(strategy, "v3"), ImageInput::Pull)
        .await;
    assert_eq!(v3.status, Status::Succeeded, "{case}: {}", v3.reason);
    assert_eq!(r.runtime.names(), r.names(&v3.deployment_id, 2), "{case}");
    (r, v1, v2)
}

/// Cut-off points every deploy reaches, before and after the commit point.
const BEFORE_COMMIT: [Cut; 5] = [
    cut(Seam::Runtime, "pull_image", 0, JournalPhase::Accepted),
    cut(Seam::Runtime, "run", 0, JournalPhase::ImageReady),
    cut(Seam::Runtime, "run", 1, JournalPhase::ImageReady),
    cut(Seam::Proxy, "ensure_app", 0, JournalPhase::Healthy),
    cut(Seam::Proxy, "add_server", 1, JournalPhase::Healthy),
];

#[tokio::test(start_paused = true)]
async fn a_redeploy_cut_off_anywhere_leaves_one_complete_version() {
    for strategy in [DeploymentStrategy::Rolling, DeploymentStrategy::Replace] {
        for cut in BEFORE_COMMIT {
            crash_and_recover(strategy, false, cut).await;
        }
    }
    // After the commit point: retiring the old version.
    crash_and_recover(
        DeploymentStrategy::Rolling,
        false,
        cut(Seam::Proxy, "drain_server", 0, JournalPhase::Switched),
    )
    .await;
    crash_and_recover(
        DeploymentStrategy::Rolling,
        false,
        cut(Seam::Proxy, "remove_server", 0, JournalPhase::Switched),
    )
    .await;
    crash_and_recover(
        DeploymentStrategy::Replace,
        false,
        cut(Seam::Runtime, "remove", 0, JournalPhase::Switched),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn replace_cut_off_while_stopping_the_old_version_restarts_it() {
    // One old replica stopped, the other still running.
    let (r, v1, _) = crash_and_recover(
        DeploymentStrategy::Replace,
        false,
        cut(Seam::Runtime, "stop", 1, JournalPhase::ImageReady),
    )
    .await;
    let v1 = v1.unwrap();
    let calls = r.runtime.log.calls();
    assert!(
        calls.contains(&format!("start web-{v1}-1")),
        "the stopped old replica was started again: {calls:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_cut_off_before_its_switch_routes_nothing() {
    for strategy in [DeploymentStrategy::Rolling, DeploymentStrategy::Replace] {
        for cut in BEFORE_COMMIT {
            crash_and_recover(strategy, true, cut).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_past_its_switch_is_completed() {
    let r = rig();
    r.proxy.log.hang("add_server", 1);
    let id = r.crash_during(&spec("v1")).await;
    // As if the switch had been recorded just before the kill.
    let mut record = r.record(&id);
    record.phase = JournalPhase::Switched;
    r.engine.store().put(&record).unwrap();
    r.proxy
        .add_server(
            "web",
            &crate::proxy::Backend {
                name: format!("web-{id}-2"),
                addr: (
                    [127, 0, 0, 1],
                    r.runtime.list(&[]).await.unwrap()[1].host_port.unwrap(),
                )
                    .into(),
                draining: false,
                weight: None,
            },
        )
        .await
        .unwrap();
    let engine = r.restart().await;
    assert_eq!(r.proxy.server_names("web"), r.names(&id, 2));
    let record = r.record(&id);
    assert_phase(&record, JournalPhase::Succeeded);
    assert!(
        record.note.contains("completed the switch"),
        "{}",
        record.note
    );
    assert_eq!(
        engine.status("web").await.unwrap().current.map(|c| c.id),
        Some(id)
    );
}

/// Invariant: recovery that is itself cut off converges when haloyd starts again.
#[tokio::test(start_paused = true)]
async fn recovery_cut_off_is_done_again_at_the_next_start() {
    for (seam, method) in [(Seam::Proxy, "drain_server"), (Seam::Runtime, "remove")] {
        let r = rig();
        let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
        r.proxy.log.hang("add_server", 1);
        let v2 = r.crash_during(&spec("v2")).await;
        // The first restart hangs while it removes v2's containers.
        cut(seam, method, 0, JournalPhase::Healthy).arm(&r);
        let hung_runtime = r.runtime.log.hung.notified();
        let hung_proxy = r.proxy.log.hung.notified();
        let restarting = r.restart();
        tokio::select! {
            _ = restarting => panic!("recovery finished instead of hanging at {method}"),
            () = hung_runtime => {}
            () = hung_proxy => {}
        }
        r.runtime.log.clear();
        r.proxy.log.clear();
        assert_eq!(
            r.record(&v2).phase,
            JournalPhase::Healthy,
            "not resolved yet"
        );
        r.restart().await;
        let v1_names = r.names(&v1.deployment_id, 2);
        assert_eq!(r.runtime.names(), v1_names);
        assert_eq!(r.proxy.server_names("web"), v1_names);
        assert_phase(&r.record(&v2), JournalPhase::Failed);
    }
}

#[tokio::test(start_paused = true)]
async fn a_stopped_app_stays_stopped_across_a_restart() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    r.engine.stop("web", false).await.unwrap();
    r.restart().await;
    for name in r.names(&v1.deployment_id, 2) {
        assert_eq!(
            r.runtime.state(&name),
            Some(crate::runtime::ContainerState::Exited(0))
        );
    }
    assert!(r.proxy.server_names("web").is_empty());
}

#[tokio::test(start_paused = true)]
async fn leftovers_of_finished_deploys_are_removed_and_a_lost_store_keeps_what_runs() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    // A container of a failed deployment that a crash left behind.
    let (failed, _) = r.deploy(&spec("v2-unhealthy"), ImageInput::Pull).await;
    r.runtime.adopt(
        &format!("web-{}-1", failed.deployment_id),
        labels("web", &failed.deployment_id),
        true,
    );
    // Another app's containers, with no record at all (its store was lost).
    r.runtime.adopt(
        "lost-20260101000000000-aaaa-1",
        labels("lost", "20260101000000000-aaaa"),
        true,
    );
    let engine = r.restart().await;
    settle(&engine, "lost").await;
    assert_eq!(
        r.runtime.names(),
        [
            "lost-20260101000000000-aaaa-1".to_string(),
            format!("web-{}-1", v1.deployment_id),
            format!("web-{}-2", v1.deployment_id),
        ]
    );
    assert_eq!(
        r.proxy.server_names("lost"),
        ["lost-20260101000000000-aaaa-1"]
    );
}

/// An app whose domain another app serves is left as it is, with the reason in its
/// status; haloyd starts and every other app is routed.
#[tokio::test(start_paused = true)]
async fn a_domain_conflict_skips_one_app_and_starts_the_rest() {
    let r = rig();
    let (web, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    // A lost store's containers of an app that claims web's domain.
    // Its deployment is newer than web's: web had the domain first.
    let mut lost = labels("thief", "29990101000000000-bbbb");
    lost.insert(
        ROUTE_LABEL.to_string(),
        r#"{"domains":[["web.test",[]]],"health_check_path":"/"}"#.into(),
    );
    r.runtime
        .adopt("thief-29990101000000000-bbbb-1", lost, true);
    let engine = r.restart().await;
    settle(&engine, "thief").await;
    assert_eq!(r.proxy.server_names("web"), r.names(&web.deployment_id, 2));
    assert!(r.proxy.server_names("thief").is_empty());
    let snapshot = engine.snapshot("thief").await;
    let problem = snapshot.problem.expect("the skipped app says why");
    assert!(
        problem.contains("web.test is served by app web"),
        "{problem}"
    );
    assert!(
        r.runtime
            .names()
            .contains(&"thief-29990101000000000-bbbb-1".to_string()),
        "nothing of it removed"
    );
}
