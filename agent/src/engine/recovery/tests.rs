//! The recovery plan for each kind of interrupted journal, without running anything.

use std::collections::BTreeMap;

use super::*;
use crate::store::test_record;

const OLD: &str = "20261101000000000-aaaa";
const NEW: &str = "20261102000000000-aaaa";

fn record(id: &str, phase: JournalPhase) -> DeploymentRecord {
    let mut record = test_record("web", id, phase);
    record.spec.health_check_path = "/health".into();
    record.spec.domains = vec![("web.test".into(), vec!["www.web.test".into()])];
    record
}

fn container(id: &str, n: u32, running: bool, port: u16) -> ContainerInfo {
    ContainerInfo {
        id: format!("c-{id}-{n}"),
        name: format!("web-{id}-{n}"),
        image: "web".into(),
        labels: BTreeMap::from([("dev.haloy.deployment".to_string(), id.to_string())]),
        state: if running {
            ContainerState::Running
        } else {
            ContainerState::Exited(0)
        },
        host_port: running.then_some(port),
        oom_killed: false,
        restart_count: 0,
        last_exit: None,
        docker_health: None,
    }
}

fn server(name: &str, port: u16, state: &str) -> ServerStatus {
    ServerStatus {
        name: name.into(),
        addr: ([127, 0, 0, 1], port).into(),
        state: state.into(),
        sessions: 0,
    }
}

fn names(containers: &[ContainerInfo]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn before_the_switch_the_old_version_wins_and_routed_new_servers_drain_later() {
    let records = [
        record(NEW, JournalPhase::Healthy),
        record(OLD, JournalPhase::Succeeded),
    ];
    let containers = [
        container(OLD, 1, true, 1001),
        container(NEW, 1, true, 2001),
        container(NEW, 2, true, 2002),
    ];
    let routed = [
        server(&format!("web-{OLD}-1"), 1001, "up"),
        server(&format!("web-{NEW}-1"), 2001, "up"),
    ];
    let plan = plan("web", &records, &containers, &routed);
    assert_eq!(plan.winner.as_deref(), Some(OLD));
    assert_eq!(names(&plan.running), [format!("web-{OLD}-1")]);
    assert_eq!(
        names(&plan.remove),
        [format!("web-{NEW}-1"), format!("web-{NEW}-2")]
    );
    let route = plan.route().unwrap();
    let servers: Vec<(&str, bool)> = route
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.draining))
        .collect();
    let (old, new) = (format!("web-{OLD}-1"), format!("web-{NEW}-1"));
    assert_eq!(servers, [(old.as_str(), false), (new.as_str(), false)]);
    assert_eq!(route.domains[0].aliases, ["www.web.test"]);
    assert_eq!(route.health_check_path, "/health");
    let (phase, reason, note) = plan.resolution().unwrap();
    assert_eq!(phase, JournalPhase::Failed);
    assert_eq!(
        note,
        format!("haloyd stopped during the deploy at phase healthy; restored {OLD}")
    );
    assert_eq!(reason, note);
}

#[test]
fn after_the_switch_the_new_version_wins_and_draining_servers_stay_draining() {
    let records = [
        record(NEW, JournalPhase::Switched),
        record(OLD, JournalPhase::Succeeded),
    ];
    let containers = [container(OLD, 1, true, 1001), container(NEW, 1, true, 2001)];
    let routed = [
        server(&format!("web-{OLD}-1"), 1001, "drain"),
        server(&format!("web-{NEW}-1"), 2001, "up"),
    ];
    let plan = plan("web", &records, &containers, &routed);
    assert_eq!(plan.winner.as_deref(), Some(NEW));
    assert_eq!(plan.draining.len(), 1);
    assert!(
        plan.draining[0].draining,
        "an old server never takes new requests again"
    );
    assert_eq!(plan.resolution().unwrap().0, JournalPhase::Succeeded);
}

#[test]
fn an_interrupted_replace_starts_only_what_it_stopped() {
    let mut interrupted = record(NEW, JournalPhase::ReplicasStarted);
    interrupted.stopping = vec![format!("web-{OLD}-1")];
    let records = [interrupted, record(OLD, JournalPhase::Succeeded)];
    let containers = [
        container(OLD, 1, false, 0),
        // Stopped by the user before the deploy: it stays stopped.
        container(OLD, 2, false, 0),
        container(NEW, 1, true, 2001),
    ];
    let plan = plan("web", &records, &containers, &[]);
    assert_eq!(names(&plan.start), [format!("web-{OLD}-1")]);
    assert!(plan.running.is_empty());
    assert_eq!(names(&plan.remove), [format!("web-{NEW}-1")]);
}

#[test]
fn an_interrupted_undo_keeps_the_failure_reason() {
    let mut undoing = record(NEW, JournalPhase::Undoing);
    undoing.reason = "replica web-x-1 failed its health check".into();
    let records = [undoing, record(OLD, JournalPhase::Succeeded)];
    let plan = plan("web", &records, &[container(OLD, 1, true, 1001)], &[]);
    let (phase, reason, note) = plan.resolution().unwrap();
    assert_eq!(phase, JournalPhase::Failed);
    assert_eq!(reason, "replica web-x-1 failed its health check");
    assert_eq!(
        note,
        format!("haloyd stopped while undoing the deploy; restored {OLD}")
    );
}

#[test]
fn a_committed_deploy_without_containers_loses_to_the_one_that_has_them() {
    let records = [
        record(NEW, JournalPhase::Switched),
        record(OLD, JournalPhase::Succeeded),
    ];
    let plan = plan("web", &records, &[container(OLD, 1, true, 1001)], &[]);
    assert_eq!(plan.winner.as_deref(), Some(OLD));
}

#[test]
fn a_lost_store_keeps_the_newest_running_deployment_and_older_unfinished_records_are_stale() {
    let containers = [container(OLD, 1, true, 1001), container(NEW, 1, true, 2001)];
    let plan = plan("web", &[], &containers, &[]);
    assert_eq!(plan.winner.as_deref(), Some(NEW));
    assert_eq!(names(&plan.remove), [format!("web-{OLD}-1")]);
    assert!(plan.resolution().is_none());

    let records = [
        record(NEW, JournalPhase::Accepted),
        record(OLD, JournalPhase::Healthy),
    ];
    let plan = plan_of(&records);
    assert_eq!(plan.interrupted.unwrap().id, NEW);
    assert_eq!(plan.stale.len(), 1);
}

fn plan_of(records: &[DeploymentRecord]) -> AppPlan {
    plan("web", records, &[], &[])
}

#[test]
fn of_two_apps_claiming_a_host_the_older_keeps_it() {
    let mut first = plan(
        "a",
        &[record(OLD, JournalPhase::Succeeded)],
        &[container(OLD, 1, true, 1001)],
        &[],
    );
    first.app = "a".into();
    let mut second = plan(
        "b",
        &[record(NEW, JournalPhase::Succeeded)],
        &[container(NEW, 1, true, 2001)],
        &[],
    );
    second.app = "b".into();
    let mut plans = [second, first];
    settle_conflicts(&mut plans);
    assert!(plans[1].skip.is_none());
    let reason = plans[0].skip.clone().unwrap();
    assert!(reason.contains("web.test is served by app a"), "{reason}");
    assert!(plans[0].route().is_none());
}
