//! Zero-downtime deploys on one server, end to end: the haloy CLI, a local haloyd,
//! real HAProxy and real Docker, with hey loading HAProxy during the deploys.

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::{Load, Server, build_image, describe, eventually};

fn config(server: &Server, tag: &str, replicas: u32, strategy: &str) -> String {
    format!(
        r#"name: "web"
image:
  repository: "haloy-it"
  tag: "{tag}"
  source: "local"
deployment_strategy: "{strategy}"
replicas: {replicas}
health_check_path: "/health"
network: "{network}"
domains:
  - domain: "web.test"
    aliases: ["www.web.test"]
acme_email: "ops@example.com"
"#,
        network = server.network
    )
}

fn body(server: &Server) -> String {
    server.get("web.test", "/").2
}

/// The deployment id `haloy deploy` printed.
fn deployment_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("deployment "))
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("no deployment id in:\n{stdout}"))
}

#[test]
fn rolling_deploy_under_load_has_zero_failures_and_switches_versions() {
    build_image("v1", "v1", true);
    build_image("v2", "v2", true);
    let server = Server::start();
    let v1 = server.app_config("v1", &config(&server, "v1", 3, "rolling"));
    let out = server.deploy(&v1);
    let v1_id = deployment_id(&out);
    assert_eq!(body(&server), "v1");
    assert_eq!(server.containers("web").len(), 3);

    // Routing: aliases redirect keeping path and query; unknown hosts get 404.
    let (status, head, _) = server.get("www.web.test", "/some/path?q=1&r=2");
    assert_eq!(status, 301, "{head}");
    assert!(
        head.to_lowercase()
            .contains("location: http://web.test/some/path?q=1&r=2"),
        "{head}"
    );
    assert_eq!(server.get("nobody.test", "/").0, 404);

    let load = Load::start(server.http_port, "web.test", 25);
    server.await_traffic(200);
    let started = Instant::now();
    let v2 = server.app_config("v2", &config(&server, "v2", 3, "rolling"));
    let out = server.deploy(&v2);
    let deploy_took = started.elapsed();
    let v2_id = deployment_id(&out);
    assert_eq!(body(&server), "v2");
    let report = load.finish();
    assert!(
        deploy_took < Duration::from_secs(20),
        "the deploy ({deploy_took:?}) must end while the load runs"
    );
    assert_eq!(
        report.errors, 0,
        "failed requests during the deploy:\n{}",
        report.raw
    );
    assert_eq!(
        report.non_2xx, 0,
        "non-2xx responses during the deploy:\n{}",
        report.raw
    );
    assert!(report.total > 200, "the load ran: {}", report.raw);

    let containers = server.containers("web");
    assert_eq!(containers.len(), 3, "{containers:?}");
    assert!(
        containers.iter().all(|c| c.contains(&v2_id)),
        "no v1 container remains: {containers:?}"
    );
    assert!(!containers.iter().any(|c| c.contains(&v1_id)));
}

/// A replace deploy stops v1 before starting v2: it is NOT zero downtime (requests
/// during the switch may fail), so only the outcome is checked.
#[test]
fn replace_deploy_swaps_the_version() {
    build_image("v1", "v1", true);
    build_image("v2", "v2", true);
    let server = Server::start();
    server.deploy(&server.app_config("v1", &config(&server, "v1", 2, "replace")));
    assert_eq!(body(&server), "v1");
    let out = server.deploy(&server.app_config("v2", &config(&server, "v2", 2, "replace")));
    assert!(out.contains("not zero downtime"), "{out}");
    let id = deployment_id(&out);
    assert_eq!(body(&server), "v2");
    let containers = server.containers("web");
    assert_eq!(containers.len(), 2);
    assert!(containers.iter().all(|c| c.contains(&id)), "{containers:?}");
}

#[test]
fn a_failing_health_check_keeps_v1_serving_under_load() {
    build_image("v1", "v1", true);
    build_image("sick", "sick", false);
    let server = Server::start();
    server.deploy(&server.app_config("v1", &config(&server, "v1", 2, "rolling")));
    let v1_containers = server.containers("web");

    let load = Load::start(server.http_port, "web.test", 25);
    let sick = server.app_config("sick", &config(&server, "sick", 2, "rolling"));
    let output = server.haloy(&["deploy", "-c", &sick.display().to_string()]);
    let report = load.finish();
    assert!(
        !output.status.success(),
        "the deploy must fail:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("failed its health check") || stderr.contains("failed its health check"),
        "{}",
        describe(&output)
    );
    // busybox httpd -vv logs every request it answers: "<peer>: url:/health", then
    // "<peer>: response:404". Only the container's own log says it that way.
    let logged = |what: &str| {
        stdout
            .lines()
            .any(|line| line.contains("]:") && line.trim_end().ends_with(what))
    };
    assert!(
        logged("url:/health") && logged("response:404"),
        "the failing container's last log lines are shown:\n{stdout}"
    );
    assert!(
        stdout.contains("the previous version keeps serving")
            || stderr.contains("the previous version keeps serving")
    );

    assert_eq!(report.errors, 0, "{}", report.raw);
    assert_eq!(report.non_2xx, 0, "{}", report.raw);
    assert!(report.total > 200, "{}", report.raw);
    assert_eq!(body(&server), "v1");
    assert_eq!(
        server.containers("web"),
        v1_containers,
        "the failed version's containers are gone"
    );

    let status = server.haloy(&["status", "-c", &sick.display().to_string()]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("latest:") && text.contains("failed"),
        "{text}"
    );
}

#[test]
fn traffic_survives_a_killed_haloyd_and_status_is_right_after_restart() {
    build_image("v1", "v1", true);
    let server = Server::start();
    let config = server.app_config("v1", &config(&server, "v1", 2, "rolling"));
    let id = deployment_id(&server.deploy(&config));

    let pid = server.haloyd_pid();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    eventually(Duration::from_secs(5), "haloyd to die", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z")))
        .then_some(())
    });
    for _ in 0..50 {
        assert_eq!(body(&server), "v1", "HAProxy keeps serving without haloyd");
    }

    server.start_daemons();
    let status = server.haloy(&["status", "-c", &config.display().to_string()]);
    assert!(status.status.success(), "{}", describe(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("deployment: {id} succeeded")),
        "{text}"
    );
    assert!(text.contains("replicas:   2/2 healthy"), "{text}");
}

#[test]
fn a_killed_haproxy_comes_back_with_every_route() {
    build_image("v1", "v1", true);
    let server = Server::start();
    server.deploy(&server.app_config("v1", &config(&server, "v1", 2, "rolling")));
    assert_eq!(body(&server), "v1");

    let haproxy_dir = server.data_dir().join("haproxy-config");
    let pattern = format!("haproxy.*{}", haproxy_dir.display());
    let killed = Command::new("pkill")
        .args(["-9", "-f", &pattern])
        .status()
        .expect("pkill");
    assert!(killed.success(), "HAProxy was running");
    eventually(
        Duration::from_secs(15),
        "haloyd to restart HAProxy with the same routes",
        || (body(&server) == "v1").then_some(()),
    );
    assert_eq!(server.get("www.web.test", "/").0, 301);
}

#[test]
fn logs_status_and_stop() {
    build_image("v1", "v1", true);
    let server = Server::start();
    let config = server.app_config("v1", &config(&server, "v1", 2, "rolling"));
    server.deploy(&config);
    let path = config.display().to_string();
    for _ in 0..3 {
        server.get("web.test", "/");
    }
    let logs = server.haloy(&["logs", "-c", &path, "--no-follow", "--tail", "20"]);
    assert!(logs.status.success(), "{}", describe(&logs));
    let text = String::from_utf8_lossy(&logs.stdout);
    let replicas = server.containers("web");
    assert!(
        replicas.iter().all(|r| text.contains(&format!("{r} | "))),
        "every replica is in the logs:\n{text}"
    );

    let stop = server.haloy(&["stop", "-c", &path]);
    assert!(stop.status.success(), "{}", describe(&stop));
    assert_eq!(
        server.get("web.test", "/").0,
        503,
        "a stopped app answers 503"
    );
    assert_eq!(server.containers("web").len(), 2, "stopped, not removed");
    let stop = server.haloy(&["stop", "-c", &path, "--remove-containers"]);
    assert!(stop.status.success(), "{}", describe(&stop));
    assert!(server.containers("web").is_empty());
}

#[test]
fn env_named_volumes_and_bind_mounts_reach_the_app() {
    let image = integration_tests::build_image_with(
        "cgi",
        "cgi",
        true,
        &[
            ("env", "echo \"greeting=$GREETING secret=$API_KEY\""),
            ("write", "echo remembered >> /data/note.txt; echo written"),
            ("read", "/bin/busybox cat /data/note.txt /bound/hello.txt"),
        ],
    );
    let tag = image.rsplit(':').next().unwrap_or("cgi");
    let mut server = Server::start();
    let host_dir = server.home.path().join("bound");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello.txt"), "from the host\n").unwrap();
    let yaml = format!(
        r#"name: "cgi"
image: {{ repository: "haloy-it", tag: "{tag}", source: "local" }}
replicas: 1
health_check_path: "/health"
network: "{network}"
domains: [{{ domain: "cgi.test" }}]
acme_email: "ops@example.com"
env:
  - name: "GREETING"
    value: "hello"
  - name: "API_KEY"
    from: {{ env: "IT_API_KEY" }}
volumes:
  - "{network}-data:/data"
  - "{bound}:/bound:ro"
"#,
        network = server.network,
        bound = host_dir.display()
    );
    let config = server.app_config("cgi", &yaml);
    server.set_env("IT_API_KEY", "k-123");
    let out = server.deploy(&config);
    assert!(!out.contains("k-123"), "secrets are not printed:\n{out}");
    assert_eq!(
        server.get("cgi.test", "/cgi-bin/env").2.trim(),
        "greeting=hello secret=k-123"
    );
    assert_eq!(server.get("cgi.test", "/cgi-bin/write").2.trim(), "written");
    // A new deployment gets new containers; the named volume keeps its data.
    server.deploy(&config);
    assert_eq!(
        server.get("cgi.test", "/cgi-bin/read").2,
        "remembered\nfrom the host\n"
    );
    let stored = std::fs::read_to_string(server.data_dir().join("haloyd.log")).unwrap_or_default();
    assert!(!stored.contains("k-123"), "haloyd does not log secrets");
}

#[test]
fn routes_come_back_after_haloyadm_stop_and_start() {
    build_image("v1", "v1", true);
    let server = Server::start();
    server.deploy(&server.app_config("v1", &config(&server, "v1", 2, "rolling")));
    let output = server.haloyadm(&["stop", "--local-install"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        server.get("web.test", "/").0,
        0,
        "nothing listens while stopped"
    );
    assert_eq!(
        server.containers("web").len(),
        2,
        "stop leaves app containers running"
    );
    server.start_daemons();
    assert_eq!(body(&server), "v1");
    assert_eq!(server.get("www.web.test", "/").0, 301);
}

#[test]
fn rollback_returns_to_an_earlier_version() {
    build_image("v1", "v1", true);
    build_image("v2", "v2", true);
    let server = Server::start();
    let v1 = deployment_id(
        &server.deploy(&server.app_config("v1", &config(&server, "v1", 2, "rolling"))),
    );
    let v2_config = server.app_config("v2", &config(&server, "v2", 2, "rolling"));
    let v2 = deployment_id(&server.deploy(&v2_config));
    let path = v2_config.display().to_string();

    let listing = server.haloy(&["rollback-targets", "-c", &path, "--json"]);
    assert!(listing.status.success(), "{}", describe(&listing));
    let value: serde_json::Value = serde_json::from_slice(&listing.stdout).expect("JSON");
    assert_eq!(value["strategy"], "local");
    let ids: Vec<&str> = value["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["deployment_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v2.as_str(), v1.as_str()], "newest first");
    assert_eq!(value["targets"][0]["live"], true);

    let rollback = server.haloy(&["rollback", "-c", &path, &v1]);
    assert!(rollback.status.success(), "{}", describe(&rollback));
    assert_eq!(body(&server), "v1");
    assert_eq!(server.containers("web").len(), 2);

    let missing = server.haloy(&["rollback", "-c", &path, "20200101000000000-0000"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("does not exist"),
        "{}",
        describe(&missing)
    );
    let none = server.app_config(
        "none",
        &config(&server, "v2", 1, "rolling").replace(
            "source: \"local\"",
            "source: \"local\"\n  history: { strategy: \"none\" }",
        ),
    );
    let refused = server.haloy(&["rollback", "-c", &none.display().to_string(), &v1]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("keeps no earlier versions"),
        "{}",
        describe(&refused)
    );
}
