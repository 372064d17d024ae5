//! Unit tests of the counted metrics: a deploy's events become its count by result
//! and its durations, in the text format Prometheus reads.

use std::sync::Arc;

use prometheus::TextEncoder;
use tokio::sync::mpsc;

use super::*;
use crate::engine::Outcome;

fn text(metrics: &Metrics) -> String {
    TextEncoder::new()
        .encode_to_string(&metrics.counted())
        .unwrap()
}

#[tokio::test]
async fn a_deploys_events_are_counted_and_timed_and_passed_on_in_order() {
    let metrics = Arc::new(Metrics::new());
    let (events, mut received) = mpsc::channel(8);
    let tapped = metrics.tap("web", events);
    let sent = vec![
        Event::Accepted("d1".into()),
        Event::Phase(Phase::Starting, "starting".into()),
        Event::Phase(Phase::HealthChecking, "checking".into()),
        Event::Phase(Phase::CleaningUp, "cleaning".into()),
        Event::Finished(Outcome {
            deployment_id: "d1".into(),
            status: Status::Failed,
            reason: "replica web-1 failed its health check".into(),
        }),
    ];
    for event in sent.clone() {
        tapped.send(event).await.unwrap();
    }
    drop(tapped);
    let mut passed = Vec::new();
    while let Some(event) = received.recv().await {
        passed.push(event);
    }
    assert_eq!(passed, sent);
    metrics.health_check_failed("web", CheckedDuring::Deploy);
    let text = text(&metrics);
    for line in [
        "# TYPE haloy_deploys_total counter",
        r#"haloy_deploys_total{app="web",result="failed"} 1"#,
        r#"haloy_deploy_duration_seconds_count{app="web",result="failed"} 1"#,
        r#"haloy_deploy_phase_duration_seconds_count{app="web",phase="starting"} 1"#,
        r#"haloy_deploy_phase_duration_seconds_count{app="web",phase="health_checking"} 1"#,
        r#"haloy_deploy_phase_duration_seconds_count{app="web",phase="cleaning_up"} 1"#,
        r#"haloy_health_check_failures_total{app="web",during="deploy"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_client_that_left_does_not_stop_the_count() {
    let metrics = Arc::new(Metrics::new());
    let (events, received) = mpsc::channel(1);
    drop(received);
    let tapped = metrics.tap("api", events);
    tapped.send(Event::Accepted("d2".into())).await.unwrap();
    tapped
        .send(Event::Finished(Outcome {
            deployment_id: "d2".into(),
            status: Status::Succeeded,
            reason: String::new(),
        }))
        .await
        .unwrap();
    drop(tapped);
    haloy_testkit::eventually_async(
        std::time::Duration::from_secs(5),
        "the deploy counted",
        || async {
            text(&metrics).contains(r#"haloy_deploys_total{app="api",result="succeeded"} 1"#)
        },
    )
    .await;
}
