//! haloyd and HAProxy as the Docker containers `haloyadm init` sets up, on a server
//! with a Docker Engine of its own (its network namespace is the server's host
//! network). Invariants: Docker brings haloyd back after SIGKILL and everything after
//! an engine reboot with no command; HAProxy serves throughout a haloyd crash, a
//! haloyd upgrade, a HAProxy image upgrade and every restart (zero failed requests
//! under hey); the next deploy works after each.

use std::path::Path;
use std::time::Duration;

use integration_tests::containerised::{container_ids, inspect};
use integration_tests::{ImageFamily, Load, LoadReport, Server, bin, describe, eventually};

fn config(server: &Server, repository: &str, tag: &str) -> String {
    format!(
        r#"name: "web"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
  history:
    strategy: "none"
replicas: 2
health_check_path: "/health"
network: "{network}"
domains:
  - domain: "web.test"
"#,
        network = server.network
    )
}

/// A server with the app deployed at v1 (and v2 built, for the next deploy).
fn serving_app(name: &str) -> (Server, ImageFamily, std::path::PathBuf) {
    let family = ImageFamily::new(name);
    family.build("v1", "v1");
    family.build("v2", "v2");
    let server = Server::start_containerised();
    // The images are on the server's own engine: load them there.
    for tag in ["v1", "v2"] {
        server.load_image(&format!("{}:{tag}", family.repository));
    }
    let path = server.app_config("v1", &config(&server, &family.repository, "v1"));
    server.deploy(&path);
    assert_eq!(server.get("web.test", "/").2, "v1");
    (server, family, path)
}

fn redeploy(server: &Server, family: &ImageFamily, tag: &str) {
    let path = server.app_config(tag, &config(server, &family.repository, tag));
    server.deploy(&path);
    assert_eq!(server.get("web.test", "/").2, tag);
}

fn no_failures(report: &LoadReport, server: &Server, what: &str) {
    assert!(report.total > 0, "hey ran during {what}: {}", report.raw);
    assert_eq!(
        (report.non_2xx, report.errors),
        (0, 0),
        "no request failed during {what}:\n{}\n--- haloyd\n{}",
        report.raw,
        server.log()
    );
}

fn haloyadm_ok(server: &Server, args: &[&str]) -> String {
    let output = server.haloyadm(args);
    assert!(
        output.status.success(),
        "haloyadm {args:?}:\n{}\n--- haloyd\n{}",
        describe(&output),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn one(ids: Vec<String>, role: &str) -> String {
    assert_eq!(ids.len(), 1, "one running {role} container: {ids:?}");
    ids.into_iter().next().unwrap_or_default()
}

/// haloyd answers its API again (through `haloy status`).
fn api_answers(server: &Server, path: &Path) {
    eventually(Duration::from_secs(30), "haloyd's API to answer", || {
        server
            .haloy(&["status", "-c", &path.display().to_string()])
            .status
            .success()
            .then_some(())
    });
}

#[test]
fn docker_restarts_a_killed_haloyd_while_haproxy_serves_and_status_shows_it() {
    let (server, family, path) = serving_app("ct-kill");
    let out = haloyadm_ok(&server, &["status", "--local-install"]);
    assert!(out.contains("haloyd: container haloyd-"), "{out}");
    assert!(out.contains("HAProxy: container haloy-haproxy-"), "{out}");
    assert!(out.contains("restarts 0"), "{out}");
    let log = server.log();
    assert!(
        log.contains("INFO") && !log.contains('\u{1b}'),
        "haloyd's container log is plain text, no colour codes:\n{log}"
    );
    assert!(
        out.contains(&format!("API: 127.0.0.1:{} answers", server.api_port)),
        "{out}"
    );

    let load = Load::start(server.http_port, "web.test", 30);
    let haloyd = one(container_ids(&server, "haloyd"), "haloyd");
    let pid = server.haloyd_pid();
    server.kill_haloyd();
    eventually(Duration::from_secs(20), "Docker to restart haloyd", || {
        let restarted = inspect(&server, &haloyd, "{{.RestartCount}} {{.State.Running}}");
        (restarted == "1 true").then_some(())
    });
    assert_ne!(server.haloyd_pid(), pid, "a new haloyd process");
    api_answers(&server, &path);
    redeploy(&server, &family, "v2");
    let report = load.stop();
    no_failures(
        &report,
        &server,
        "haloyd's crash, restart and the next deploy",
    );

    let out = haloyadm_ok(&server, &["status", "--local-install"]);
    let haloyd_line = out.lines().find(|l| l.starts_with("haloyd:")).unwrap_or("");
    assert!(haloyd_line.contains("restarts 1"), "{out}");
    assert!(haloyd_line.contains("running, up "), "{out}");
    drop(server);
    drop(family);
}

#[test]
fn after_an_engine_reboot_haloyd_haproxy_and_the_app_serve_with_no_command() {
    let (mut server, family, path) = serving_app("ct-reboot");
    let apps = server.containers("web");
    server.restart_engine();
    eventually(Duration::from_secs(60), "the app to answer again", || {
        (server.get("web.test", "/").2 == "v1").then_some(())
    });
    api_answers(&server, &path);
    assert_eq!(server.containers("web"), apps, "the same app containers");
    one(container_ids(&server, "haloyd"), "haloyd");
    one(container_ids(&server, "haproxy"), "haproxy");
    redeploy(&server, &family, "v2");
    drop(server);
    drop(family);
}

#[test]
fn upgrades_of_haloyd_and_of_haproxys_image_lose_no_request() {
    let (server, family, path) = serving_app("ct-upgrade");
    // A "newly installed" haloyd: the same program with a byte appended, so its
    // image is another one.
    let newer = server.home.path().join("haloyd-newer");
    let mut bytes = std::fs::read(bin("haloyd")).expect("haloyd");
    bytes.push(0);
    std::fs::write(&newer, bytes).expect("newer haloyd");
    std::fs::set_permissions(&newer, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let newer = newer.display().to_string();

    let old_haloyd = one(container_ids(&server, "haloyd"), "haloyd");
    let load = Load::start(server.http_port, "web.test", 60);
    let out = haloyadm_ok(
        &server,
        &["upgrade", "--local-install", "--haloyd-binary", &newer],
    );
    assert!(out.contains("HAProxy keeps serving"), "{out}");
    let new_haloyd = one(container_ids(&server, "haloyd"), "haloyd");
    assert_ne!(new_haloyd, old_haloyd, "a new haloyd container");
    let again = haloyadm_ok(
        &server,
        &["upgrade", "--local-install", "--haloyd-binary", &newer],
    );
    assert!(again.contains("nothing to upgrade"), "{again}");

    // Another HAProxy image: the same build under a new name.
    let tagged = integration_tests::run(server.docker().args([
        "tag",
        integration_tests::containerised::HAPROXY_IMAGE,
        "haloy-it-haproxy:next",
    ]));
    assert!(tagged.status.success(), "{}", describe(&tagged));
    let old_haproxy = one(container_ids(&server, "haproxy"), "haproxy");
    let out = haloyadm_ok(
        &server,
        &[
            "upgrade",
            "--local-install",
            "--haloyd-binary",
            &newer,
            "--haproxy-image",
            "haloy-it-haproxy:next",
        ],
    );
    assert!(out.contains("finished its connections"), "{out}");
    let new_haproxy = one(container_ids(&server, "haproxy"), "haproxy");
    assert_ne!(new_haproxy, old_haproxy);
    assert_eq!(
        inspect(&server, &new_haproxy, "{{.Config.Image}}"),
        "haloy-it-haproxy:next"
    );
    let gone = integration_tests::run(server.docker().args(["inspect", &old_haproxy]));
    assert!(
        !gone.status.success(),
        "the old HAProxy container is removed"
    );
    // haloyd drives the new HAProxy: a deploy changes its servers.
    api_answers(&server, &path);
    redeploy(&server, &family, "v2");
    let report = load.stop();
    no_failures(&report, &server, "both upgrades and the next deploy");
    drop(server);
    drop(family);
}

#[test]
fn restart_is_haloyd_only_unless_haproxy_is_asked_for_and_then_loses_no_request() {
    let (server, family, path) = serving_app("ct-restart");
    let haloyd = one(container_ids(&server, "haloyd"), "haloyd");
    let haproxy = one(container_ids(&server, "haproxy"), "haproxy");
    let load = Load::start(server.http_port, "web.test", 60);
    let out = haloyadm_ok(&server, &["restart", "--local-install"]);
    assert!(out.contains("restarting haloyd only"), "{out}");
    assert!(out.contains("HAProxy keeps serving"), "{out}");
    assert_ne!(one(container_ids(&server, "haloyd"), "haloyd"), haloyd);
    assert_eq!(one(container_ids(&server, "haproxy"), "haproxy"), haproxy);

    let out = haloyadm_ok(&server, &["restart", "--local-install", "--haproxy"]);
    assert!(out.contains("restarting HAProxy"), "{out}");
    assert_ne!(one(container_ids(&server, "haproxy"), "haproxy"), haproxy);
    api_answers(&server, &path);
    redeploy(&server, &family, "v2");
    let report = load.stop();
    no_failures(&report, &server, "both restarts and the next deploy");

    // stop removes both containers and leaves the app's.
    let out = haloyadm_ok(&server, &["stop", "--local-install"]);
    assert!(out.contains("haloyd stopped"), "{out}");
    assert!(container_ids(&server, "haloyd").is_empty());
    assert!(container_ids(&server, "haproxy").is_empty());
    assert_eq!(
        server.containers("web").len(),
        2,
        "app containers keep running"
    );
    drop(server);
    drop(family);
}
