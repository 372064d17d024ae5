//! What the engine exposes for Prometheus and `haloy status`: a deploy counted with
//! its phases, replicas by state, and HAProxy's counters turned into rates.

use std::time::Duration;

use super::*;
use crate::proxy::BackendTraffic;

fn web_traffic(requests: u64, errors: u64) -> Vec<BackendTraffic> {
    vec![BackendTraffic {
        app: "web".into(),
        requests,
        errors,
        response_ms_avg: 4,
        response_ms_max: 9,
        total_ms_avg: 5,
    }]
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test(start_paused = true)]
async fn a_deploy_and_the_apps_traffic_are_exposed_and_status_shows_the_rates() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);

    *r.proxy.traffic.lock().unwrap() = web_traffic(100, 10);
    let first = r.engine.status("web").await.unwrap().traffic.unwrap();
    assert_eq!((first.now.requests, first.window), (100, Duration::ZERO));
    tokio::time::advance(Duration::from_secs(10)).await;
    *r.proxy.traffic.lock().unwrap() = web_traffic(300, 30);
    let later = r.engine.status("web").await.unwrap().traffic.unwrap();
    assert_eq!(later.window, Duration::from_secs(10));
    assert_eq!((later.request_rate(), later.error_rate()), (20.0, 2.0));

    let text = crate::metrics::exposition(&r.engine).await;
    for line in [
        r#"haloy_deploys_total{app="web",result="succeeded"} 1"#,
        r#"haloy_deploy_duration_seconds_count{app="web",result="succeeded"} 1"#,
        r#"haloy_deploy_phase_duration_seconds_count{app="web",phase="health_checking"} 1"#,
        r#"haloy_replicas{app="web",state="up"} 2"#,
        r#"haloy_app_requests_total{app="web"} 300"#,
        r#"haloy_app_responses_5xx_total{app="web"} 30"#,
        r#"haloy_app_response_time_average_seconds{app="web"} 0.004"#,
        r#"haloy_app_response_time_max_seconds{app="web"} 0.009"#,
        "haloy_haproxy_up 1",
    ] {
        assert!(has(&text, line), "no {line:?} in\n{text}");
    }
    // The scrape sampled the counters again, right after the status did.
    assert!(
        text.contains(r#"haloy_app_request_rate{app="web"} 20"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn haproxy_that_does_not_answer_leaves_status_without_traffic_and_says_so_in_metrics() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    r.proxy.log.fail("traffic", "the runtime socket is gone");
    assert_eq!(r.engine.status("web").await.unwrap().traffic, None);
    let text = crate::metrics::exposition(&r.engine).await;
    assert!(has(&text, "haloy_haproxy_up 0"), "{text}");
    assert!(!text.contains("haloy_app_requests_total"), "{text}");
    // What haloyd counted itself is still there.
    assert!(
        has(
            &text,
            r#"haloy_deploys_total{app="web",result="succeeded"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deploy_that_fails_its_health_check_counts_as_failed_and_counts_the_failing_replica() {
    let r = rig();
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    let (v2, _) = r.deploy(&spec("v2-unhealthy"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Failed, "{}", v2.reason);
    let text = crate::metrics::exposition(&r.engine).await;
    for line in [
        r#"haloy_deploys_total{app="web",result="failed"} 1"#,
        r#"haloy_deploys_total{app="web",result="succeeded"} 1"#,
        r#"haloy_health_check_failures_total{app="web",during="deploy"} 1"#,
        r#"haloy_deploy_phase_duration_seconds_count{app="web",phase="cleaning_up"} 1"#,
        // The old version kept serving.
        r#"haloy_replicas{app="web",state="up"} 2"#,
    ] {
        assert!(has(&text, line), "no {line:?} in\n{text}");
    }
}
