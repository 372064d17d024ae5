//! haloyd killed by timing rather than at crash points, as a user would hit it: while
//! a deploy runs, at moments spread over it, and with the server's Docker Engine
//! restarted (a reboot). The invariant after each: the app is served by one complete
//! version — every replica of the deployment `haloy status` calls current is
//! running and in HAProxy, nothing else of the app is left, and the app answers
//! with that version. Rolling deploys lose no request under load.

use std::process::Child;
use std::time::{Duration, Instant};

use integration_tests::{ImageFamily, Load, Server, Wait, describe, eventually};

fn config(server: &Server, repository: &str, tag: &str, replicas: u32, strategy: &str) -> String {
    config_checked(server, repository, tag, replicas, strategy, "/health")
}

fn config_checked(
    server: &Server,
    repository: &str,
    tag: &str,
    replicas: u32,
    strategy: &str,
    health: &str,
) -> String {
    format!(
        r#"name: "web"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
  history:
    strategy: "none"
deployment_strategy: "{strategy}"
replicas: {replicas}
health_check_path: "{health}"
network: "{network}"
domains:
  - domain: "web.test"
"#,
        network = server.network
    )
}

/// `haloy status --json` of the app, once haloyd is doing nothing with it.
fn settled_status(server: &Server, config: &std::path::Path) -> serde_json::Value {
    eventually(Duration::from_secs(60), "haloyd to settle the app", || {
        let output = server.haloy(&["status", "--json", "-c", &config.display().to_string()]);
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        status["activity"].is_null().then_some(status)
    })
}

/// Checks that one complete version serves; returns its tag.
fn one_complete_version(server: &Server, config: &std::path::Path, replicas: usize) -> String {
    let status = settled_status(server, config);
    let context = format!("{status}\n--- haloyd.log\n{}", server.log());
    let current = &status["current"];
    let id = current["id"].as_str().unwrap_or_default();
    let image = current["image"].as_str().unwrap_or_default();
    let tag = image.rsplit(':').next().unwrap_or_default().to_string();
    let containers = server.containers("web");
    assert_eq!(containers.len(), replicas, "{containers:?}; {context}");
    assert!(
        containers.iter().all(|c| c.contains(id)),
        "{containers:?}; {context}"
    );
    // "UP 1/2" is up too: a check failed once, as one may while a replica restarts.
    let routed: Vec<(String, String)> = server
        .haproxy_servers("web")
        .into_iter()
        .map(|(name, state)| {
            (
                name,
                state.split(' ').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = containers
        .iter()
        .map(|c| (c.clone(), "UP".to_string()))
        .collect();
    assert_eq!(routed, expected, "{context}");
    assert_eq!(server.get("web.test", "/").2, tag, "{context}");
    tag
}

fn deploy_in_background(server: &Server, config: &std::path::Path) -> Child {
    server.spawn_haloy(&["deploy", "--no-logs", "-c", &config.display().to_string()])
}

/// The state of `name` in HAProxy's backend of the app, if it is there.
fn haproxy_state(server: &Server, name: &str) -> Option<String> {
    server
        .haproxy_servers("web")
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, state)| state)
}

/// The reported outage, and its mirror image: one replica of v1 serves under load,
/// `haloy deploy` of v2 runs, and haloyd is SIGKILLed while v1 is being retired
/// (v2 must serve after the restart) or before v2 takes traffic (v1 must serve).
/// No request fails either way.
#[test]
fn killed_after_the_switch_v2_serves_and_killed_before_it_v1_serves() {
    let family = ImageFamily::new("outage");
    family.build("v1", "v1");
    family.build("v2", "v2");
    // v3 takes a second to pass its health check: time to kill haloyd after its
    // container started and before it takes traffic.
    family.build_slow("v3", "v3");
    let server = Server::start();
    let at = |tag: &str| {
        let health = if tag == "v3" {
            "/cgi-bin/slow-health"
        } else {
            "/health"
        };
        server.app_config(
            tag,
            &config_checked(&server, &family.repository, tag, 1, "rolling", health),
        )
    };
    server.deploy(&at("v1"));
    let load = Load::start(server.http_port, "web.test", 120);
    let v1 = server.containers("web");

    // Killed while v1 is being retired: after the commit point.
    let mut deploy = deploy_in_background(&server, &at("v2"));
    let log = || server.log();
    // v1's server leaves service only once the switch is on record.
    Wait::new(Duration::from_secs(30), "v1 to be retired")
        .every(Duration::from_millis(5))
        .context(&log)
        .until(|| haproxy_state(&server, &v1[0]).is_none_or(|s| s != "UP"));
    server.kill_haloyd();
    let _ = deploy.wait();
    server.start_daemons();
    assert_eq!(one_complete_version(&server, &at("v3"), 1), "v2");
    let status = settled_status(&server, &at("v3"));
    let note = status["current"]["note"].as_str().unwrap_or_default();
    assert!(note.contains("completed the switch"), "{status}");

    // The mirror image: killed after v3's container started, before it takes traffic.
    let v2 = server.containers("web");
    let mut deploy = deploy_in_background(&server, &at("v3"));
    Wait::new(Duration::from_secs(30), "v3's container to start")
        .every(Duration::from_millis(20))
        .context(&log)
        .until(|| server.containers("web").iter().any(|c| !v2.contains(c)));
    let routed: Vec<String> = server
        .haproxy_servers("web")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        routed, v2,
        "v3 is not routed yet: its health check takes a second"
    );
    server.kill_haloyd();
    let _ = deploy.wait();
    server.start_daemons();
    assert_eq!(one_complete_version(&server, &at("v3"), 1), "v2");
    let status = settled_status(&server, &at("v3"));
    let note = status["latest"]["note"].as_str().unwrap_or_default();
    assert!(note.contains("restored"), "{status}");

    let report = load.stop();
    assert_eq!(
        report.non_2xx + report.errors,
        0,
        "requests failed across the kills:\n{}",
        report.raw
    );
    drop(server);
    drop(family);
}

/// A sweep of kills at moments spread over v(n) → v(n+1) deploys of a two-replica
/// app, rolling and replace, like the report that found the outage: every kill
/// leaves one complete version, and the rolling deploys lose no request.
#[test]
fn kills_spread_over_deploys_always_leave_one_complete_version() {
    let family = ImageFamily::new("sweep");
    let tags = ["v1", "v2", "v3"];
    for version in tags {
        family.build(version, version);
    }
    let server = Server::start();
    let mut outcomes = Vec::new();
    for strategy in ["rolling", "replace"] {
        let at = |tag: &str| {
            server.app_config(
                &format!("{strategy}-{tag}"),
                &config(&server, &family.repository, tag, 2, strategy),
            )
        };
        server.deploy(&at("v1"));
        let load = Load::start(server.http_port, "web.test", 300);
        // An uninterrupted deploy sets the scale: kills fall from a tenth of it to
        // just past its end.
        let began = Instant::now();
        server.deploy(&at("v2"));
        let full = began.elapsed().as_millis() as u64;
        let mut serving = "v2".to_string();
        for percent in [10, 25, 40, 55, 70, 80, 90, 100, 110] {
            let millis = full * percent / 100;
            let next = tags[(tags.iter().position(|t| *t == serving).unwrap_or(0) + 1) % 3];
            let mut deploy = deploy_in_background(&server, &at(next));
            std::thread::sleep(Duration::from_millis(millis));
            server.kill_haloyd();
            let deployed = deploy.wait().is_ok_and(|s| s.success());
            server.start_daemons();
            let now = one_complete_version(&server, &at(next), 2);
            assert!(
                now == serving || now == next,
                "{strategy} at {millis} ms: {now} serves, neither {serving} nor {next}"
            );
            if deployed {
                assert_eq!(now, next, "the deploy said it succeeded");
            }
            outcomes.push(format!(
                "{strategy} killed at {millis:>4} ms: {serving} -> {next}: {now} serves"
            ));
            serving = now;
        }
        let report = load.stop();
        let failed = report.non_2xx + report.errors;
        outcomes.push(format!(
            "{strategy}: {failed} of {} requests failed",
            report.total
        ));
        if strategy == "rolling" {
            assert_eq!(failed, 0, "rolling deploys lost requests:\n{}", report.raw);
        }
        // Back to no app for the next strategy.
        let output = server.haloy(&[
            "stop",
            "--remove-containers",
            "-c",
            &at("v1").display().to_string(),
        ]);
        assert!(output.status.success(), "{}", describe(&output));
    }
    println!("{}", outcomes.join("\n"));
    drop(server);
    drop(family);
}

/// A reboot: the server's own Docker Engine stops (and with it the containers),
/// haloyd and HAProxy die; when the engine is back the containers return by their
/// restart policy, and haloyd, started again, serves the app with no command from
/// the user, its status right.
#[test]
fn after_a_reboot_the_app_serves_again() {
    let family = ImageFamily::new("reboot");
    family.build("v1", "v1");
    let mut servers = Server::start_isolated(1);
    let server = &mut servers[0];
    // The image is on the server's own engine: load it there.
    server.load_image(&format!("{}:v1", family.repository));
    let config = server.app_config(
        "v1",
        &config(server, &family.repository, "v1", 2, "rolling"),
    );
    server.deploy(&config);
    let before = server.containers("web");
    assert_eq!(server.get("web.test", "/").2, "v1");

    server.kill_haloyd();
    server.kill_haproxy();
    server.restart_engine();
    eventually(
        Duration::from_secs(60),
        "the containers to come back",
        || {
            let running = integration_tests::run(server.docker().args([
                "ps",
                "-q",
                "--filter",
                "label=dev.haloy.app=web",
            ]));
            (String::from_utf8_lossy(&running.stdout).lines().count() == 2).then_some(())
        },
    );
    server.start_daemons();
    assert_eq!(one_complete_version(server, &config, 2), "v1");
    assert_eq!(
        server.containers("web"),
        before,
        "the same containers, not new ones"
    );
    let status = settled_status(server, &config);
    assert_eq!(
        status["latest"],
        serde_json::Value::Null,
        "no deploy was interrupted: {status}"
    );
    drop(servers);
    drop(family);
}
