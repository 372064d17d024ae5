//! The HAProxy driver against a real HAProxy 2.6: each test runs its own HAProxy on
//! free loopback ports, with tiny HTTP backends, and polls with deadlines.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use haloy_testkit::eventually_async;
use haloyd::proxy::Proxy;
use support::{Harness, HttpBackend, acme_listener, route};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_redirects_aliases_and_answers_404_for_unknown_hosts() {
    let h = Harness::new();
    let a = HttpBackend::start("v1-a").await;
    h.proxy.sync(&[]).await.unwrap();
    let web = route(
        "web",
        "example.com",
        &["www.example.com"],
        vec![a.backend()],
    );
    h.proxy.ensure_app(&web).await.unwrap();

    for host in ["example.com", "example.com:8080", "EXAMPLE.com"] {
        let response = h.get(host, "/").await;
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "v1-a"),
            "Host: {host}"
        );
    }
    let redirect = h.get("www.example.com:8080", "/a/b?x=1&y=2").await;
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("location"),
        Some("http://example.com/a/b?x=1&y=2")
    );
    let unknown = h.get("unknown.test", "/").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no app"), "{}", unknown.body);

    // The backend exists: new domains and aliases are map updates, no reload.
    let reloads = h.reloads().await;
    let more = route("web", "example.org", &["www.example.org"], vec![]);
    h.proxy.ensure_app(&more).await.unwrap();
    assert_eq!(h.get("example.org", "/").await.body, "v1-a");
    let redirect = h.get("www.example.org", "/p").await;
    assert_eq!(redirect.header("location"), Some("http://example.org/p"));
    assert_eq!(
        h.get("example.com", "/").await.status,
        404,
        "example.com was dropped"
    );
    assert_eq!(h.reloads().await, reloads);
    let hosts = std::fs::read_to_string(h.proxy.config_file().with_file_name("hosts.map")).unwrap();
    assert_eq!(hosts, "example.org app_web\nwww.example.org app_web\n");

    // Values that could inject configuration never reach HAProxy.
    let mut bad = route("web", "example.org", &[], vec![]);
    bad.health_check_path = "/health\n    server x 10.0.0.1:80".into();
    assert!(h.proxy.ensure_app(&bad).await.is_err());
    assert!(
        h.proxy
            .ensure_app(&route("we b", "b.test", &[], vec![]))
            .await
            .is_err()
    );
    assert_eq!(h.reloads().await, reloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_servers_alternate_drain_and_go_without_a_reload() {
    let h = Harness::new();
    let (a, b) = (
        HttpBackend::start("v1-a").await,
        HttpBackend::start("v1-b").await,
    );
    h.proxy
        .sync(&[route("web", "example.com", &[], vec![])])
        .await
        .unwrap();
    let reloads = h.reloads().await;

    h.proxy.add_server("web", &a.backend()).await.unwrap();
    h.proxy.add_server("web", &b.backend()).await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..6 {
        bodies.push(h.get("example.com", "/").await.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] != w[1]),
        "round robin: {bodies:?}"
    );
    assert_eq!(
        bodies.iter().collect::<BTreeSet<_>>().len(),
        2,
        "{bodies:?}"
    );

    // Two slow requests: round robin puts one on each server.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let port = h.http_port;
            tokio::spawn(async move { support::get(port, "example.com", "/slow").await })
        })
        .collect();
    let proxy = h.proxy.clone();
    eventually_async(LIMIT, "both slow requests are in progress", || async {
        let servers = proxy.servers("web").await.unwrap();
        servers.iter().all(|s| s.sessions == 1)
    })
    .await;
    h.proxy.drain_server("web", "v1-b").await.unwrap();
    let servers = h.proxy.servers("web").await.unwrap();
    let drained = servers.iter().find(|s| s.name == "v1-b").unwrap();
    assert_eq!(
        (drained.state.as_str(), drained.sessions),
        ("drain", 1),
        "{servers:?}"
    );
    for _ in 0..5 {
        assert_eq!(h.get("example.com", "/").await.body, "v1-a");
    }
    for request in slow {
        assert_eq!(
            request.await.unwrap().status,
            200,
            "sessions in progress finish"
        );
    }
    eventually_async(LIMIT, "the drained server has no session", || async {
        let servers = proxy.servers("web").await.unwrap();
        servers.iter().any(|s| s.name == "v1-b" && s.sessions == 0)
    })
    .await;

    h.proxy.remove_server("web", "v1-b").await.unwrap();
    assert_eq!(h.server_names("web").await, ["v1-a"]);
    assert_eq!(
        h.reloads().await,
        reloads,
        "servers change without a reload"
    );
    let config = std::fs::read_to_string(h.proxy.config_file()).unwrap();
    assert!(
        config.contains(&format!("server v1-a {}", a.addr)),
        "{config}"
    );
    assert!(!config.contains("v1-b"), "{config}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_reloads_while_the_first_keeps_answering() {
    let h = Harness::new();
    let (a, b) = (
        HttpBackend::start("v1-a").await,
        HttpBackend::start("api-1").await,
    );
    h.proxy
        .sync(&[route("web", "example.com", &[], vec![a.backend()])])
        .await
        .unwrap();
    let reloads = h.reloads().await;

    let hammer = support::Hammer::start(h.http_port, "example.com", "v1-a", 300);
    eventually_async(LIMIT, "the client is under way", || async {
        hammer.done() >= 50
    })
    .await;
    let api = route("api", "api.example.com", &[], vec![b.backend()]);
    h.proxy.ensure_app(&api).await.unwrap();
    let at_reload = hammer.done();
    eventually_async(LIMIT, "the client runs on after the reload", || async {
        hammer.done() >= at_reload + 50
    })
    .await;
    let (failures, done) = hammer.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {done} failed: {failures:?}",
        failures.len()
    );
    assert!(done >= 300);
    assert_eq!(h.reloads().await, reloads + 1);
    assert_eq!(h.get("api.example.com", "/").await.body, "api-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_ensure_running_restores_routes_and_servers() {
    let h = Harness::new();
    let servers: Vec<_> = [
        HttpBackend::start("v1-a").await,
        HttpBackend::start("v1-b").await,
        HttpBackend::start("v1-c").await,
    ]
    .into();
    h.proxy
        .sync(&[route("web", "example.com", &[], vec![servers[0].backend()])])
        .await
        .unwrap();
    // Everything below is runtime-only: it must reach the files too.
    h.proxy
        .ensure_app(&route("web", "example.com", &["www.example.com"], vec![]))
        .await
        .unwrap();
    h.proxy
        .add_server("web", &servers[1].backend())
        .await
        .unwrap();
    h.proxy
        .add_server("web", &servers[2].backend())
        .await
        .unwrap();
    h.proxy.drain_server("web", "v1-c").await.unwrap();

    h.crash().await;
    assert!(!h.proxy.is_running().await);
    assert_eq!(h.get("example.com", "/").await.status, 0, "nothing listens");

    assert!(h.proxy.ensure_running().await.unwrap(), "it was started");
    assert!(!h.proxy.ensure_running().await.unwrap(), "already running");
    let mut bodies = BTreeSet::new();
    for _ in 0..6 {
        bodies.insert(h.get("example.com", "/").await.body);
    }
    assert_eq!(
        bodies,
        BTreeSet::from(["v1-a".to_string(), "v1-b".to_string()])
    );
    let redirect = h.get("www.example.com", "/x").await;
    assert_eq!(redirect.header("location"), Some("http://example.com/x"));
    let states: Vec<_> = h
        .proxy
        .servers("web")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name, s.state))
        .collect();
    assert_eq!(
        states,
        [
            ("v1-a".into(), "up".into()),
            ("v1-b".into(), "up".into()),
            ("v1-c".into(), "drain".into())
        ]
    );
}

/// Routes app "web" at example.com to two backends, v1-a and v1-b.
async fn web_on_a_and_b(h: &Harness) -> (HttpBackend, HttpBackend) {
    let (a, b) = (
        HttpBackend::start("v1-a").await,
        HttpBackend::start("v1-b").await,
    );
    h.proxy
        .sync(&[route(
            "web",
            "example.com",
            &[],
            vec![a.backend(), b.backend()],
        )])
        .await
        .unwrap();
    (a, b)
}

/// HAProxy lists v1-b alone for "web", and only v1-b answers.
async fn only_b_is_routed(h: &Harness) {
    let names: Vec<_> = h
        .proxy
        .servers("web")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["v1-b"]);
    for _ in 0..4 {
        assert_eq!(h.get("example.com", "/").await.body, "v1-b");
    }
}

/// Invariant: what changes while HAProxy is down is what the restarted HAProxy
/// serves; a server removed then does not come back from the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_while_haproxy_is_down_reach_the_restarted_haproxy() {
    let h = Harness::new();
    let _backends = web_on_a_and_b(&h).await;
    h.crash().await;

    h.proxy
        .remove_server("web", "v1-a")
        .await
        .expect("a removal while HAProxy is down reaches its files");
    assert!(h.proxy.ensure_running().await.unwrap(), "it was started");
    only_b_is_routed(&h).await;
}

/// Invariant: a removal the running HAProxy did not take (here it answered nothing:
/// its processes were stopped) is not forgotten; once HAProxy answers again the
/// supervisor's round removes the server, so no route to a gone replica stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_haproxy_missed_reaches_it_when_it_answers_again() {
    let h = Harness::new();
    let _backends = web_on_a_and_b(&h).await;
    let pids = h.signal_haproxy("STOP").await;
    let missed = h.proxy.remove_server("web", "v1-a").await;
    support::signal(&pids, "CONT");
    assert!(missed.is_err(), "a stopped HAProxy cannot take a change");

    assert!(
        !h.proxy.ensure_running().await.unwrap(),
        "HAProxy kept running"
    );
    only_b_is_routed(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_reloads_only_when_backends_change() {
    let h = Harness::new();
    let (a, b) = (
        HttpBackend::start("v1-a").await,
        HttpBackend::start("v1-b").await,
    );
    let routes = [
        route("web", "example.com", &[], vec![a.backend()]),
        route("api", "api.example.com", &[], vec![b.backend()]),
    ];
    h.proxy.sync(&routes).await.unwrap();
    let reloads = h.reloads().await;
    h.proxy.sync(&routes).await.unwrap();
    assert_eq!(h.reloads().await, reloads, "same routes, no reload");

    // haloyd restarts: a new driver over the same directory finds HAProxy running.
    let restarted = haloyd::proxy::haproxy::Haproxy::new(h.proxy.settings().clone()).unwrap();
    assert!(!restarted.ensure_running().await.unwrap());
    restarted.sync(&routes).await.unwrap();
    assert_eq!(
        h.reloads().await,
        reloads,
        "a restarted haloyd does not reload"
    );

    // Servers and domains differ: fixed at runtime.
    let moved = [
        route(
            "web",
            "example.com",
            &["www.example.com"],
            vec![b.backend()],
        ),
        route("api", "api.example.com", &[], vec![]),
    ];
    restarted.sync(&moved).await.unwrap();
    assert_eq!(h.get("example.com", "/").await.body, "v1-b");
    assert_eq!(h.get("www.example.com", "/").await.status, 301);
    assert_eq!(h.get("api.example.com", "/").await.status, 503, "no server");
    assert_eq!(h.reloads().await, reloads);

    // An app goes: its backend goes with a reload.
    restarted.sync(&moved[..1]).await.unwrap();
    assert_eq!(h.reloads().await, reloads + 1);
    assert_eq!(h.get("api.example.com", "/").await.status, 404);
    restarted.remove_app("web").await.unwrap();
    assert_eq!(h.get("example.com", "/").await.status, 404);
    assert_eq!(h.reloads().await, reloads + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_challenges_go_to_the_unix_socket() {
    let h = Harness::new();
    let _acme = acme_listener(h.acme_socket());
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
    let path = "/.well-known/acme-challenge/token-1";
    for host in ["example.com", "www.example.com", "not-routed.test"] {
        let response = h.get(host, path).await;
        assert_eq!(
            (response.status, response.body.as_str()),
            (200, "acme /.well-known/acme-challenge/token-1"),
            "Host: {host}"
        );
    }
    assert_eq!(
        h.get("example.com", "/.well-known/other").await.body,
        "v1-a"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_from_the_file_can_be_removed_after_a_reload() {
    let h = Harness::new();
    let (a, b) = (
        HttpBackend::start("v1-a").await,
        HttpBackend::start("v1-b").await,
    );
    let web = route("web", "example.com", &[], vec![a.backend(), b.backend()]);
    h.proxy.sync(&[web]).await.unwrap();
    h.proxy
        .ensure_app(&route("api", "api.example.com", &[], vec![]))
        .await
        .unwrap();
    // Keep-alive traffic leaves idle connections to both servers in HAProxy's pool.
    for _ in 0..6 {
        assert_eq!(h.get("example.com", "/").await.status, 200);
    }
    let reloads = h.reloads().await;
    h.proxy.remove_server("web", "v1-a").await.unwrap();
    assert_eq!(h.server_names("web").await, ["v1-b"]);
    for _ in 0..4 {
        assert_eq!(h.get("example.com", "/").await.body, "v1-b");
    }
    h.proxy.remove_server("web", "v1-a").await.unwrap();

    // A server with a session in progress is removed too: the session is cut.
    let port = h.http_port;
    let slow = tokio::spawn(async move { support::get(port, "example.com", "/slow").await });
    let proxy = h.proxy.clone();
    eventually_async(LIMIT, "the slow request is in progress", || async {
        proxy
            .servers("web")
            .await
            .unwrap()
            .iter()
            .any(|s| s.sessions == 1)
    })
    .await;
    h.proxy.remove_server("web", "v1-b").await.unwrap();
    assert!(h.proxy.servers("web").await.unwrap().is_empty());
    assert_ne!(slow.await.unwrap().body, "v1-b", "the session was cut");
    assert_eq!(h.get("example.com", "/").await.status, 503);
    assert_eq!(h.reloads().await, reloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_keeps_the_previous_configuration_serving() {
    let h = Harness::new();
    let a = HttpBackend::start("v1-a").await;
    let routes = [route("web", "example.com", &[], vec![a.backend()])];
    h.proxy.sync(&routes).await.unwrap();
    let config = std::fs::read_to_string(h.proxy.config_file()).unwrap();

    // `haproxy -c` accepts an address that is not on this host; applying it fails.
    let mut elsewhere = h.proxy.settings().clone();
    elsewhere.bind_address = "198.51.100.7".parse().unwrap();
    let elsewhere = haloyd::proxy::haproxy::Haproxy::new(elsewhere).unwrap();
    let err = elsewhere.sync(&routes).await.unwrap_err();
    assert!(
        matches!(err, haloyd::proxy::ProxyError::ReloadFailed(_)),
        "{err}"
    );
    assert_eq!(
        h.get("example.com", "/").await.body,
        "v1-a",
        "the old worker serves"
    );
    let restored = std::fs::read_to_string(h.proxy.config_file()).unwrap();
    assert_eq!(restored, config, "the files match what runs again");

    // The next good reload goes through.
    let b = HttpBackend::start("api-1").await;
    let api = route("api", "api.example.com", &[], vec![b.backend()]);
    h.proxy.ensure_app(&api).await.unwrap();
    assert_eq!(h.get("api.example.com", "/").await.body, "api-1");
    assert_eq!(h.proxy.processes().await.unwrap().failed_reloads, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_requests_without_a_reload_and_survive_one() {
    let h = Harness::new();
    let (a, b) = (
        HttpBackend::start("stable").await,
        HttpBackend::start("canary").await,
    );
    h.proxy
        .sync(&[route("web", "example.com", &[], vec![a.backend()])])
        .await
        .unwrap();
    let reloads = h.reloads().await;
    // The canary gets a quarter: weight 1 beside the stable server's 3.
    h.proxy.set_weight("web", "stable", 3).await.unwrap();
    let mut canary = b.backend();
    canary.weight = Some(1);
    h.proxy.add_server("web", &canary).await.unwrap();
    let share = |bodies: &[String]| bodies.iter().filter(|b| *b == "canary").count();
    let mut bodies = Vec::new();
    for _ in 0..40 {
        bodies.push(h.get("example.com", "/").await.body);
    }
    // Smooth weighted round robin: a quarter, give or take where the cycle began.
    let first = share(&bodies);
    assert!((9..=11).contains(&first), "{bodies:?}");
    assert_eq!(
        h.reloads().await,
        reloads,
        "weights change without a reload"
    );
    let counters = h.proxy.counters("web").await.unwrap();
    let of = |name: &str| counters.iter().find(|c| c.name == name).unwrap().responses;
    assert_eq!(of("canary"), first as u64, "{counters:?}");
    assert!(of("stable") >= 40 - first as u64, "{counters:?}");

    // A reload (another app's backend) keeps the split: the file carries it.
    h.proxy
        .ensure_app(&route("other", "other.test", &[], vec![]))
        .await
        .unwrap();
    assert!(h.reloads().await > reloads);
    let config = std::fs::read_to_string(h.proxy.config_file()).unwrap();
    assert!(
        config.contains(&format!("server stable {}", a.addr)) && config.contains(" weight 3"),
        "{config}"
    );
    let mut bodies = Vec::new();
    for _ in 0..40 {
        bodies.push(h.get("example.com", "/").await.body);
    }
    assert!((9..=11).contains(&share(&bodies)), "{bodies:?}");
    assert!(h.proxy.set_weight("web", "stable", 0).await.is_err());
}
