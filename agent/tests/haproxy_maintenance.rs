//! Maintenance pages through the HAProxy driver against a real HAProxy 2.6: the
//! largest page haloyd allows passes the runtime API and the map file intact, and a
//! switch HAProxy missed is caught up.

mod support;

use haloy_api::rules::MAX_MAINTENANCE_ANSWER;
use haloyd::proxy::Proxy;
use support::{Harness, HttpBackend, route};

/// A page of exactly `bytes` bytes with line breaks, tabs, quotes, percent signs and
/// UTF-8: everything that must arrive unchanged.
fn page(bytes: usize) -> String {
    let mut page = String::from("<!doctype html>\n<pre>\t100% \"é\" %[x]\r\n</pre>\n");
    while page.len() < bytes {
        page.push_str("<p>resting</p>\n");
    }
    page.truncate(bytes);
    page
}

async fn web(h: &Harness) -> HttpBackend {
    let a = HttpBackend::start("v1-a").await;
    h.proxy
        .sync(&[route(
            "web",
            "example.com",
            &["www.example.com"],
            vec![a.backend()],
        )])
        .await
        .unwrap();
    a
}

/// Invariant: a page of the largest size haloyd allows is answered byte for byte,
/// with 503, both after the switch at runtime (`add map`) and after HAProxy starts
/// again from the map file; switching needs no reload; off serves the app again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_page_survives_the_runtime_api_and_a_restart() {
    let h = Harness::new();
    let _a = web(&h).await;
    let reloads = h.reloads().await;
    let largest = page(MAX_MAINTENANCE_ANSWER);

    h.proxy
        .set_maintenance("web", Some(&largest))
        .await
        .expect("the largest page is taken at runtime");
    let response = h.get("example.com", "/x").await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.body, largest, "byte for byte");
    // An alias still redirects to the canonical domain first, which answers 503.
    let response = h.get("www.example.com", "/x").await;
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("http://example.com/x"));
    assert_eq!(h.reloads().await, reloads, "no reload");

    // Killed, and started again from the files by the supervisor's round.
    h.crash().await;
    assert!(h.proxy.ensure_running().await.unwrap(), "it was started");
    let response = h.get("example.com", "/").await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(
        response.body, largest,
        "the map file's line holds the whole page"
    );

    h.proxy.set_maintenance("web", None).await.unwrap();
    assert_eq!(h.get("example.com", "/").await.body, "v1-a");
    let map = h.proxy.config_file().with_file_name("maintenance.map");
    assert_eq!(std::fs::read_to_string(map).unwrap(), "");
}

/// Invariant: a switch the running HAProxy did not take (its processes were
/// stopped) is not forgotten: the supervisor's next round puts it in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_haproxy_missed_reaches_it_when_it_answers_again() {
    let h = Harness::new();
    let _a = web(&h).await;
    let pids = h.signal_haproxy("STOP").await;
    let missed = h.proxy.set_maintenance("web", Some("<p>later</p>\n")).await;
    support::signal(&pids, "CONT");
    assert!(missed.is_err(), "a stopped HAProxy cannot take a change");

    assert!(!h.proxy.ensure_running().await.unwrap(), "kept running");
    let response = h.get("example.com", "/").await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "<p>later</p>\n")
    );
}

/// Invariant: a page larger than HAProxy's buffers can carry is refused before it
/// reaches HAProxy, naming the size; what serves does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_page_is_refused() {
    let h = Harness::new();
    let _a = web(&h).await;
    let error = h
        .proxy
        .set_maintenance("web", Some(&page(MAX_MAINTENANCE_ANSWER + 1)))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("10241 bytes"), "{error}");
    assert_eq!(h.get("example.com", "/").await.body, "v1-a");
}
