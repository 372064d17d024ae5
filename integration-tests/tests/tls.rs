//! Automatic TLS end to end: certificates from a real pebble through HAProxy's
//! HTTP-01 route to haloyd, served by HAProxy, renewed under load, and failures
//! reported while the app keeps serving on HTTP.

use std::time::Duration;

use integration_tests::{
    Connections, Load, Pebble, Server, Wait, build_image, describe, haproxy_admin, https_get,
    https_port, reconfigure, served_serial,
};

fn app_config(server: &Server) -> String {
    format!(
        r#"name: "web"
image:
  repository: "haloy-it"
  tag: "tls-v1"
  source: "local"
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

/// A server whose certificates come from `pebble`, checked every second.
fn use_pebble(server: &Server, pebble: &Pebble, extra: &[(&str, String)]) {
    let mut values = vec![
        ("acme_directory", pebble.directory.clone()),
        ("acme_ca_cert", pebble.tls_ca.display().to_string()),
        ("cert_check_interval_secs", "1".to_string()),
    ];
    values.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
    values.extend(extra.iter().cloned());
    reconfigure(server, &values);
}

/// Polls `check` until it holds; on timeout fails with haloyd's and pebble's logs.
/// Deploys the web app and waits until it answers over HTTPS with pebble's
/// certificate; returns HAProxy's https port.
fn deploy_and_await_https(server: &Server, pebble: &Pebble) -> u16 {
    let port = https_port(server);
    server.deploy(&server.app_config("web", &app_config(server)));
    until(
        server,
        pebble,
        Duration::from_secs(30),
        "HTTPS with pebble's certificate",
        || (https_get(port, "web.test", "/", &pebble.issuing_root).0 == 200).then_some(()),
    );
    port
}

/// Waits for `check` with haloyd's and pebble's logs in the failure.
fn until<T>(
    server: &Server,
    pebble: &Pebble,
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Option<T>,
) -> T {
    let logs = || {
        format!(
            "--- haloyd.log\n{}\n--- pebble\n{}",
            server.log(),
            pebble.log()
        )
    };
    Wait::new(timeout, what)
        .every(Duration::from_millis(200))
        .context(&logs)
        .until(check)
}

/// HAProxy reloads haloyd has made, from its log.
fn reloads(server: &Server) -> usize {
    server.log().matches("reloaded HAProxy").count()
}

fn status(server: &Server, config: &std::path::Path) -> String {
    let output = server.haloy(&["status", "-c", &config.display().to_string()]);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn an_app_gets_a_certificate_from_pebble_and_http_redirects_to_https() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    use_pebble(&server, &pebble, &[]);
    let port = https_port(&server);
    let config = server.app_config("web", &app_config(&server));
    server.deploy(&config);
    let reloads_after_deploy = reloads(&server);

    let root = &pebble.issuing_root;
    until(
        &server,
        &pebble,
        Duration::from_secs(30),
        "HTTPS with pebble's certificate",
        || (https_get(port, "web.test", "/", root) == (200, "tls v1".to_string())).then_some(()),
    );
    assert_eq!(
        reloads(&server),
        reloads_after_deploy,
        "installing the certificate reloaded HAProxy:\n{}",
        server.log()
    );
    // The alias is on the certificate too, and redirects to the canonical domain.
    let (code, _) = https_get(port, "www.web.test", "/", root);
    assert_eq!(code, 301, "{}", server.log());

    // Plain HTTP redirects, keeping path and query; ACME challenges do not.
    let (code, head, _) = server.get("web.test", "/a/b?c=1&d=2");
    assert_eq!(code, 301, "{head}");
    assert!(
        head.to_lowercase()
            .contains(&format!("location: https://web.test:{port}/a/b?c=1&d=2")),
        "{head}"
    );
    let (code, _, body) = server.get("web.test", "/.well-known/acme-challenge/unknown");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no such ACME challenge"), "{body}");

    let shown = status(&server, &config);
    assert!(
        shown.contains("tls:        web.test: valid until"),
        "{shown}"
    );

    // The key is private to haloyd, and a restart serves the same certificate
    // without asking pebble again.
    use std::os::unix::fs::PermissionsExt;
    let pem = server.data_dir().join("cert-storage/domains/web.test.pem");
    let mode = std::fs::metadata(&pem)
        .expect("certificate file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let serial = served_serial(port, "web.test").expect("a served certificate");
    // haloyd logs each pass over its certificates; one after the restart that found
    // web.test's certificate served has had its chance to ask for another.
    let passes = |log: &str| {
        log.lines()
            .filter(|l| l.contains("certificates checked: 1 served"))
            .count()
    };
    let before = passes(&server.log());
    let output = server.haloyadm(&["restart", "--local-install"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(https_get(port, "web.test", "/", root).0, 200);
    until(
        &server,
        &pebble,
        Duration::from_secs(10),
        "a certificate pass after the restart",
        || (passes(&server.log()) > before).then_some(()),
    );
    assert_eq!(
        served_serial(port, "web.test").as_deref(),
        Some(serial.as_str())
    );
    assert_eq!(
        server.log().matches("requesting a certificate").count(),
        1,
        "a valid certificate was requested again after the restart:\n{}",
        server.log()
    );
}

#[test]
fn a_due_certificate_is_renewed_and_swapped_under_load_without_failures() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    // A window wider than pebble's certificates live: every one is due at once.
    use_pebble(
        &server,
        &pebble,
        &[
            ("cert_renewal_window_days", "100000".to_string()),
            ("cert_check_interval_secs", "2".to_string()),
        ],
    );
    let port = deploy_and_await_https(&server, &pebble);
    let root = &pebble.issuing_root;
    let first = served_serial(port, "web.test").expect("served certificate");
    let reloads_before = reloads(&server);

    // A new handshake per request: kept-alive connections would never see a swap.
    let load = Load::start_https_with(port, "web.test", 12, Connections::PerRequest);
    let mut seen = vec![first.clone()];
    until(
        &server,
        &pebble,
        Duration::from_secs(11),
        "two renewals to be served",
        || {
            if let Some(serial) = served_serial(port, "web.test")
                && !seen.contains(&serial)
            {
                seen.push(serial);
            }
            (seen.len() >= 3).then_some(())
        },
    );
    let report = load.finish();
    assert!(report.total > 100, "too little load:\n{}", report.raw);
    assert_eq!(
        (report.errors, report.non_2xx),
        (0, 0),
        "failed requests while certificates were swapped:\n{}",
        report.raw
    );
    assert_eq!(https_get(port, "web.test", "/", root).0, 200);
    assert!(server.log().contains("the certificate is due for renewal"));
    assert_eq!(
        reloads(&server),
        reloads_before,
        "renewals reloaded HAProxy"
    );
}

#[test]
fn a_dropped_domain_loses_its_certificate_redirect_and_files() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    use_pebble(&server, &pebble, &[]);
    deploy_and_await_https(&server, &pebble);
    let storage = server.data_dir().join("cert-storage/domains");
    let pem = storage.join("web.test.pem");
    let name = pem.display().to_string();
    assert!(haproxy_admin(&server, "show ssl cert").contains(&name));
    assert_eq!(server.get("web.test", "/").0, 301);

    let without = app_config(&server).replace(
        "domains:\n  - domain: \"web.test\"\n    aliases: [\"www.web.test\"]\n",
        "",
    );
    assert!(!without.contains("web.test"), "{without}");
    let config = server.app_config("web", &without);
    server.deploy(&config);
    until(
        &server,
        &pebble,
        Duration::from_secs(15),
        "the certificate to leave HAProxy",
        || (!haproxy_admin(&server, "show ssl cert").contains(&name)).then_some(()),
    );
    let (code, head, _) = server.get("web.test", "/");
    assert_ne!(code, 301, "HTTP still redirects to HTTPS:\n{head}");
    assert_ne!(server.get("www.web.test", "/").0, 301);
    let crt_list = haproxy_admin(
        &server,
        &format!(
            "show ssl crt-list {}",
            server
                .data_dir()
                .join("haproxy-config/certs.list")
                .display()
        ),
    );
    assert!(!crt_list.contains(&name), "{crt_list}");
    let https_map = server.data_dir().join("haproxy-config/https.map");
    assert_eq!(std::fs::read_to_string(https_map).unwrap(), "");
    assert!(!pem.exists(), "the certificate and its key stayed on disk");
    assert!(!storage.join("web.test.json").exists());
    assert!(
        server.log().contains("certificate removed"),
        "{}",
        server.log()
    );
}

#[test]
fn acme_failures_keep_the_app_on_http_with_the_reason_in_status() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    // pebble validates on a port where nothing listens: the challenge is unreachable.
    let pebble = Pebble::start(integration_tests::free_port());
    use_pebble(&server, &pebble, &[]);
    let config = server.app_config("web", &app_config(&server));
    server.deploy(&config);
    let shown = until(
        &server,
        &pebble,
        Duration::from_secs(30),
        "the failure in status",
        || {
            let shown = status(&server, &config);
            shown.contains("last error").then_some(shown)
        },
    );
    assert!(shown.contains("HTTP-01 challenge failed"), "{shown}");
    assert!(shown.contains("not issued yet"), "{shown}");
    let (code, _, body) = server.get("web.test", "/");
    assert_eq!((code, body.as_str()), (200, "tls v1"));
    assert!(server.log().contains("cannot obtain a certificate"));
}

#[test]
fn an_unreachable_acme_directory_keeps_the_app_on_http_with_the_reason_in_status() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let mut pebble = Pebble::start(server.http_port);
    use_pebble(&server, &pebble, &[]);
    pebble.stop_acme_server();
    let config = server.app_config("web", &app_config(&server));
    server.deploy(&config);
    let shown = until(
        &server,
        &pebble,
        Duration::from_secs(30),
        "the failure in status",
        || {
            let shown = status(&server, &config);
            shown.contains("last error").then_some(shown)
        },
    );
    assert!(shown.contains(&pebble.directory), "{shown}");
    let (code, _, body) = server.get("web.test", "/");
    assert_eq!((code, body.as_str()), (200, "tls v1"));
}
