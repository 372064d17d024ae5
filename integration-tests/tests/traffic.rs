//! Traffic and health end to end: canaries, batched rollouts, explained health
//! failures, memory limits, the watchdog, a database accessory and drains, against
//! a local haloyd, real HAProxy and real Docker, with hey loading HAProxy where
//! traffic moves.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use integration_tests::scratch::{self, Recipe};
use integration_tests::{Load, LoadReport, Server, build_image, describe, eventually, reconfigure};

/// A busybox httpd image: `/` says `body`, and each CGI script (run by busybox sh)
/// is served at `/cgi-bin/<name>`. A script that prints an `HTTP/1.0 <status>` line
/// first answers with that status.
fn httpd(tag: &str, body: &str, cgi: &[(&str, &str)]) -> String {
    let mut recipe = Recipe {
        binaries: vec!["/bin/busybox".into()],
        entrypoint: [
            "/bin/busybox",
            "httpd",
            "-f",
            "-vv",
            "-p",
            "8080",
            "-h",
            "/www",
        ]
        .map(String::from)
        .to_vec(),
        ..Recipe::default()
    };
    recipe
        .files
        .push(("/www/index.html".into(), body.into(), false));
    recipe
        .files
        .push(("/www/health".into(), "ok\n".into(), false));
    for (name, script) in cgi {
        recipe.files.push((
            format!("/www/cgi-bin/{name}"),
            format!("#!/bin/busybox sh\n{script}\n"),
            true,
        ));
    }
    scratch::build(tag, &recipe)
}

/// The app `web` at web.test running `haloy-it:<tag>`; `extra` adds keys (a
/// `health_check` block replaces the default `/health`).
fn app(server: &Server, tag: &str, extra: &str) -> String {
    let health = if extra.contains("health_check:") {
        ""
    } else {
        "health_check_path: /health\n"
    };
    let replicas = if extra.contains("replicas:") {
        ""
    } else {
        "replicas: 2\n"
    };
    format!(
        "name: web\nimage: {{repository: haloy-it, tag: \"{tag}\", source: local}}\n{replicas}{health}network: \"{}\"\ndomains: [web.test]\nacme_email: ops@example.com\n{extra}",
        server.network
    )
}

const OK: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'";

fn haloy(server: &Server, args: &[&str], config: &Path) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    let path = config.display().to_string();
    all.extend(["-c", &path]);
    server.haloy(&all)
}

fn ok(server: &Server, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n--- haloyd.log\n{}",
        describe(output),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn clean(report: &LoadReport) {
    assert_eq!(report.errors, 0, "failed requests:\n{}", report.raw);
    assert_eq!(report.non_2xx, 0, "non-2xx answers:\n{}", report.raw);
    assert!(report.total > 50, "the load ran: {}", report.raw);
}

/// `N` from the "<label> … N request(s)" line of `haloy canary status`.
fn requests(status: &str, label: &str) -> u64 {
    let line = status
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label} line in:\n{status}"));
    let before = line.split(" request(s)").next().unwrap_or("");
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

#[test]
fn a_canary_gets_its_share_and_promote_and_abort_lose_no_request() {
    for tag in ["v1", "v2", "v3"] {
        build_image(tag, tag, true);
    }
    let server = Server::start();
    server.deploy(&server.app_config("v1", &app(&server, "v1", "")));
    let v2 = server.app_config("v2", &app(&server, "v2", ""));
    let out = ok(&server, &haloy(&server, &["deploy", "--canary", "20"], &v2));
    assert!(out.contains("canary"), "{out}");

    clean(&Load::requests(server.http_port, "web.test", 2000).finish());
    let status = ok(&server, &haloy(&server, &["canary", "status"], &v2));
    let (canary, stable) = (requests(&status, "canary:"), requests(&status, "stable:"));
    assert!(canary + stable >= 2000, "{status}");
    let share = canary as f64 * 100.0 / (canary + stable) as f64;
    assert!(
        (15.0..=25.0).contains(&share),
        "{share:.1}% to the canary:\n{status}"
    );
    let refused = haloy(&server, &["deploy"], &v2);
    assert!(!refused.status.success());
    assert!(
        describe(&refused).contains("haloy canary promote"),
        "{}",
        describe(&refused)
    );

    let load = Load::start(server.http_port, "web.test", 8);
    std::thread::sleep(Duration::from_secs(2));
    ok(&server, &haloy(&server, &["canary", "promote"], &v2));
    clean(&load.finish());
    assert_eq!(server.get("web.test", "/").2, "v2");
    assert_eq!(server.containers("web").len(), 2);

    let v3 = server.app_config("v3", &app(&server, "v3", ""));
    ok(&server, &haloy(&server, &["deploy", "--canary", "50"], &v3));
    let load = Load::start(server.http_port, "web.test", 8);
    std::thread::sleep(Duration::from_secs(2));
    ok(&server, &haloy(&server, &["canary", "abort"], &v3));
    clean(&load.finish());
    for _ in 0..10 {
        assert_eq!(server.get("web.test", "/").2, "v2");
    }
    assert_eq!(server.containers("web").len(), 2);
    let none = haloy(&server, &["canary", "abort"], &v3);
    assert!(
        describe(&none).contains("no canary running"),
        "{}",
        describe(&none)
    );
}

/// Healthy only in the first container that asks: a later batch fails.
const FIRST_ONLY: &str = "h=$(/bin/busybox hostname)
/bin/busybox mkdir /claim/first 2>/dev/null && echo $h > /claim/first/owner
if [ \"$(/bin/busybox cat /claim/first/owner)\" = \"$h\" ]; then
  printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
else
  printf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nnot the first replica\\n'
fi";

#[test]
fn a_batched_rollout_loses_no_request_and_a_failing_batch_rolls_back() {
    // Every version is checked at the same path: HAProxy checks it too.
    httpd("batch-v1", "v1", &[("health", OK)]);
    httpd("batch-v2", "v2", &[("health", OK)]);
    httpd("first-only", "v3", &[("health", FIRST_ONLY)]);
    let server = Server::start();
    let batched = "replicas: 3\nmax_surge: 1\nhealth_check: {path: /cgi-bin/health}\n";
    server.deploy(&server.app_config("v1", &app(&server, "batch-v1", batched)));
    let load = Load::start(server.http_port, "web.test", 20);
    std::thread::sleep(Duration::from_secs(2));
    let out = server.deploy(&server.app_config("v2", &app(&server, "batch-v2", batched)));
    clean(&load.finish());
    assert!(out.contains("batch 3 of 3"), "{out}");
    assert_eq!(server.get("web.test", "/").2, "v2");
    let v2_containers = server.containers("web");
    assert_eq!(v2_containers.len(), 3);

    let volume = format!("{}-claim", server.network);
    let failing = format!(
        "replicas: 3\nmax_surge: 1\nhealth_check: {{path: /cgi-bin/health, deadline: 4s}}\nvolumes: [\"{volume}:/claim\"]\n"
    );
    let v3 = server.app_config("v3", &app(&server, "first-only", &failing));
    let load = Load::start(server.http_port, "web.test", 25);
    std::thread::sleep(Duration::from_secs(2));
    let output = haloy(&server, &["deploy"], &v3);
    let report = load.finish();
    assert!(!output.status.success(), "{}", describe(&output));
    let text = describe(&output);
    assert!(
        text.contains("batch 2 of 3") && text.contains("not the first replica"),
        "{text}"
    );
    clean(&report);
    assert_eq!(server.containers("web"), v2_containers, "v2 is back whole");
    for _ in 0..6 {
        assert_eq!(server.get("web.test", "/").2, "v2");
    }
}

#[test]
fn a_failed_health_check_explains_itself_in_the_deploy_and_in_status() {
    build_image("v1", "v1", true);
    let sick = "printf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\ndatabase unreachable: connection refused\\nstack trace\\n'
echo 'health check failed: database unreachable' >&2";
    httpd("explains", "never", &[("health", sick)]);
    let server = Server::start();
    server.deploy(&server.app_config("v1", &app(&server, "v1", "")));
    let config = server.app_config(
        "explains",
        &app(
            &server,
            "explains",
            "health_check: {path: /cgi-bin/health, deadline: 3s}\n",
        ),
    );
    let output = haloy(&server, &["deploy"], &config);
    assert!(!output.status.success());
    let text = describe(&output);
    for part in [
        "answered 500 \"database unreachable: connection refused\"",
        "not healthy within 3 s",
        "tried for",
        "last log lines",
        "GET /cgi-bin/health",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    let status = ok(&server, &haloy(&server, &["status"], &config));
    assert!(
        status.contains("answered 500 \"database unreachable: connection refused\"")
            && status.contains("last log lines"),
        "{status}"
    );
    assert_eq!(server.get("web.test", "/").2, "v1");
}

#[test]
fn a_replica_killed_for_memory_is_reported_as_such() {
    let hog = Recipe::busybox_sh(
        "x=$(/bin/busybox head -c 200000000 /dev/zero | /bin/busybox tr '\\0' a); echo $x",
    );
    scratch::build("hog", &hog);
    let server = Server::start();
    let config = server.app_config(
        "hog",
        &app(
            &server,
            "hog",
            "replicas: 1\nresources: {memory: 32m, cpus: 0.5}\n",
        ),
    );
    let output = haloy(&server, &["deploy"], &config);
    assert!(!output.status.success());
    let text = describe(&output);
    assert!(
        text.contains("exited with code 137") && text.contains("killed: out of memory"),
        "{text}"
    );
}

/// Answers 500 while /tmp/sick counts down from what a test writes there.
const FLAKY: &str = "n=$(/bin/busybox cat /tmp/sick 2>/dev/null || echo 0)
if [ \"$n\" -gt 0 ]; then
  echo $((n - 1)) > /tmp/sick
  printf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nflaky\\n'
else
  printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
fi";

#[test]
fn the_watchdog_restarts_a_replica_that_fails_while_serving() {
    httpd("flaky", "flaky", &[("health", FLAKY)]);
    let server = Server::start();
    reconfigure(&server, &[("watch_interval_secs", "1".to_string())]);
    let config = server.app_config(
        "flaky",
        &app(&server, "flaky", "health_check: {path: /cgi-bin/health}\n"),
    );
    server.deploy(&config);
    let victim = server.containers("web")[0].clone();
    server.docker_sh(&victim, "echo 8 > /tmp/sick");
    let status = eventually(
        Duration::from_secs(30),
        "the watchdog restarts the replica",
        || {
            let text =
                String::from_utf8_lossy(&haloy(&server, &["status"], &config).stdout).to_string();
            let restarted =
                text.contains("restarted 1 time(s)") && text.contains("answered 500 \"flaky\"");
            let serving = text.contains("2/2 healthy");
            (restarted && serving).then_some(text)
        },
    );
    assert!(status.contains(&victim), "{status}");
    for _ in 0..6 {
        assert_eq!(server.get("web.test", "/").0, 200);
    }
}

fn redis_image() -> String {
    scratch::build("redis", &Recipe::redis_server(&["--appendonly", "yes"]))
}

#[test]
fn a_database_accessory_serves_the_app_survives_redeploys_and_is_protected() {
    integration_tests::require(
        "redis-server",
        &["--version"],
        "redis-server (package redis-server)",
    );
    redis_image();
    let redis = |command: &str| {
        format!(
            "printf '{command}\\r\\n' | /bin/busybox nc -w 2 cache 6379 | /bin/busybox tr -d '\\r'"
        )
    };
    httpd(
        "redis-client",
        "client",
        &[
            (
                "set",
                &format!(
                    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n{}",
                    redis("SET greeting hello")
                ),
            ),
            (
                "get",
                &format!(
                    "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n{}",
                    redis("GET greeting")
                ),
            ),
        ],
    );
    let server = Server::start();
    let cache_yaml = format!(
        "name: cache\nimage: {{repository: haloy-it, tag: redis, source: local}}\nport: 6379\npreset: database\nnetwork: \"{0}\"\nvolumes: [\"{0}-cache-data:/data\"]\n",
        server.network
    );
    let cache = server.app_config("cache", &cache_yaml);
    server.deploy(&cache);
    let names = server.containers("cache");
    assert_eq!(names.len(), 1, "{names:?}");
    server.deploy(&server.app_config("client", &app(&server, "redis-client", "replicas: 1\n")));
    assert_eq!(server.get("web.test", "/cgi-bin/set").2.trim(), "+OK");
    assert!(server.get("web.test", "/cgi-bin/get").2.contains("hello"));

    let refused = haloy(&server, &["deploy"], &cache);
    assert!(!refused.status.success());
    assert!(
        describe(&refused).contains("--include-protected"),
        "{}",
        describe(&refused)
    );
    ok(
        &server,
        &haloy(&server, &["deploy", "--include-protected"], &cache),
    );
    assert_eq!(server.containers("cache"), names, "one stable name");
    let value = eventually(Duration::from_secs(10), "redis answers again", || {
        let body = server.get("web.test", "/cgi-bin/get").2;
        body.contains("hello").then_some(body)
    });
    assert!(
        value.contains("hello"),
        "the named volume kept the data: {value}"
    );

    let stop = haloy(&server, &["stop", "--remove-containers"], &cache);
    assert!(!stop.status.success());
    assert!(
        describe(&stop).contains("--include-protected"),
        "{}",
        describe(&stop)
    );
    ok(
        &server,
        &haloy(
            &server,
            &["stop", "--remove-containers", "--include-protected"],
            &cache,
        ),
    );
    assert!(server.containers("cache").is_empty());
}

#[test]
fn a_drain_lets_long_requests_finish_and_closes_long_polls_at_its_end() {
    let slow = "/bin/busybox sleep 3\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow done\\n'";
    let poll = "/bin/busybox sleep 120\nprintf 'Content-Type: text/plain\\r\\n\\r\\npoll done\\n'";
    httpd("drain-v1", "v1", &[("slow", slow), ("poll", poll)]);
    httpd("drain-v2", "v2", &[("slow", slow), ("poll", poll)]);
    let server = Server::start();
    let timing = "drain_timeout: 8s\nstop_grace_period: 2s\n";
    server.deploy(&server.app_config("v1", &app(&server, "drain-v1", timing)));
    let port = server.http_port;
    let slow_request =
        std::thread::spawn(move || integration_tests::http_get(port, "web.test", "/cgi-bin/slow"));
    let started = Instant::now();
    let long_poll = std::thread::spawn(move || {
        let answer = read_to_close(port, "web.test", "/cgi-bin/poll");
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    server.deploy(&server.app_config("v2", &app(&server, "drain-v2", timing)));
    let deployed = started.elapsed();
    let (status, _, body) = slow_request.join().unwrap().expect("the slow request");
    assert_eq!(
        (status, body.trim()),
        (200, "slow done"),
        "finished within the drain"
    );
    let (answer, closed_after) = long_poll.join().unwrap();
    assert!(
        !answer.contains("poll done"),
        "the long poll was cut: {answer:?}"
    );
    assert!(
        deployed >= Duration::from_secs(7),
        "the deploy waited for the drain: {deployed:?}"
    );
    assert!(
        closed_after >= Duration::from_secs(7) && closed_after < Duration::from_secs(30),
        "closed at the drain's end, not the poll's: {closed_after:?} (deploy took {deployed:?})"
    );
    assert_eq!(server.get("web.test", "/").2, "v2");
}

/// Sends one request and reads until the other side closes (at most a minute).
fn read_to_close(port: u16, host: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}
