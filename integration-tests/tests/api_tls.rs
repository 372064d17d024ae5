//! The API over TLS, end to end: through HAProxy at an API domain with a pebble
//! certificate, and straight to haloyd with its self-signed certificate pinned by
//! fingerprint. Plaintext to anything but loopback is refused.

use std::time::Duration;

use integration_tests::{
    Pebble, Server, build_image, describe, eventually, free_port, haproxy_admin, https_get,
    https_port, reconfigure,
};

fn app_config(server: &Server) -> String {
    format!(
        r#"name: "api-tls"
image:
  repository: "haloy-it"
  tag: "tls-v1"
  source: "local"
health_check_path: "/health"
network: "{network}"
domains:
  - domain: "api-tls.test"
"#,
        network = server.network
    )
}

/// `haloy <args>` and its combined output; panics with everything when `ok` is not
/// what happened.
fn haloy(server: &Server, args: &[&str], ok: bool) -> String {
    let output = server.haloy(args);
    assert_eq!(
        output.status.success(),
        ok,
        "haloy {args:?}:\n{}\n--- haloyd.log\n{}",
        describe(&output),
        server.log()
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn deploys_over_tls_through_haproxy_at_the_api_domain() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    // localhost resolves here without DNS, and pebble's DNS answers 127.0.0.1 for it.
    let output = server.haloyadm(&[
        "api",
        "domain",
        "localhost",
        "ops@example.com",
        "--local-install",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    reconfigure(
        &server,
        &[
            ("acme_directory", pebble.directory.clone()),
            ("acme_ca_cert", pebble.tls_ca.display().to_string()),
            ("cert_check_interval_secs", "1".to_string()),
        ],
    );
    let port = https_port(&server);
    let root = pebble.issuing_root.clone();
    eventually(
        Duration::from_secs(30),
        "the API domain's certificate",
        || (https_get(port, "localhost", "/", &root).0 != 0).then_some(()),
    );

    let api = format!("localhost:{port}");
    let token = server.token();
    let root_arg = root.display().to_string();
    haloy(
        &server,
        &["server", "add", &api, &token, "--ca-cert", &root_arg],
        true,
    );
    let config = server.app_config("api-tls", &app_config(&server));
    let config_arg = config.display().to_string();
    let out = haloy(
        &server,
        &["deploy", "-c", &config_arg, "--server", &api],
        true,
    );
    assert!(out.contains("deployed api-tls"), "{out}");
    assert_eq!(server.get("api-tls.test", "/").2, "tls v1");
    let status = haloy(
        &server,
        &["status", "-c", &config_arg, "--server", &api],
        true,
    );
    assert!(status.contains("replicas:   1/1 healthy"), "{status}");

    // No app may take the API domain (and its certificate request) over.
    let claims = app_config(&server)
        .replace("name: \"api-tls\"", "name: \"claims\"")
        .replace(
            "domain: \"api-tls.test\"",
            "domain: \"api-tls.test\"\n    aliases: [\"localhost\"]",
        );
    let claims = server.app_config("claims", &claims);
    let refused = haloy(
        &server,
        &[
            "deploy",
            "-c",
            &claims.display().to_string(),
            "--server",
            &api,
        ],
        false,
    );
    assert!(
        refused.contains("localhost") && refused.contains("API domain"),
        "{refused}"
    );

    // Without the CA the system's roots do not know pebble: refused, with the fix.
    let https_api = format!("https://{api}");
    haloy(
        &server,
        &["server", "add", &https_api, &token, "--force"],
        true,
    );
    let refused = haloy(
        &server,
        &["status", "-c", &config_arg, "--server", &api],
        false,
    );
    assert!(refused.contains("--ca-cert"), "{refused}");

    // Without an API domain its certificate goes: from HAProxy and from the disk.
    let pem = server.data_dir().join("cert-storage/domains/localhost.pem");
    assert!(pem.exists());
    reconfigure(&server, &[("api_domain", String::new())]);
    let name = pem.display().to_string();
    eventually(
        Duration::from_secs(15),
        "the API domain's certificate to be removed",
        || {
            let gone = !haproxy_admin(&server, "show ssl cert").contains(&name) && !pem.exists();
            gone.then_some(())
        },
    );
}

#[test]
fn a_pinned_self_signed_certificate_is_trusted_and_a_wrong_fingerprint_refused() {
    build_image("tls-v1", "tls v1", true);
    let server = Server::start();
    let tls_port = free_port();
    reconfigure(&server, &[("api_tls_port", tls_port.to_string())]);
    let pinned = server.api_fingerprint();
    let token = server.token();
    let api = format!("127.0.0.1:{tls_port}");
    haloy(
        &server,
        &["server", "add", &api, &token, "--fingerprint", &pinned],
        true,
    );
    let config = server.app_config("api-tls", &app_config(&server));
    let config_arg = config.display().to_string();
    let out = haloy(
        &server,
        &["deploy", "-c", &config_arg, "--server", &api],
        true,
    );
    assert!(out.contains("deployed api-tls"), "{out}");
    assert_eq!(server.get("api-tls.test", "/").2, "tls v1");

    // The same port without TLS is not the API, and another certificate is refused.
    let wrong = "00".repeat(32);
    haloy(
        &server,
        &[
            "server",
            "add",
            &api,
            &token,
            "--force",
            "--fingerprint",
            &wrong,
        ],
        true,
    );
    let refused = haloy(
        &server,
        &["status", "-c", &config_arg, "--server", &api],
        false,
    );
    assert!(refused.contains("not the pinned"), "{refused}");
    assert!(!refused.contains(&token), "the token leaked: {refused}");

    let bad = haloy(
        &server,
        &[
            "server",
            "add",
            "10.0.0.9:9443",
            &token,
            "--fingerprint",
            "abc",
        ],
        false,
    );
    assert!(bad.contains("--fingerprint"), "{bad}");
}

#[test]
fn plaintext_to_a_non_loopback_server_is_refused_with_the_way_to_tls() {
    let server = Server::start();
    let token = server.token();
    let refused = haloy(
        &server,
        &["server", "add", "http://haloy.example.com", &token],
        false,
    );
    assert!(refused.contains("not a loopback address"), "{refused}");
    assert!(!refused.contains(&token), "the token leaked: {refused}");
    let config = server.app_config("api-tls", &app_config(&server));
    let config_arg = config.display().to_string();
    let refused = haloy(
        &server,
        &[
            "status",
            "-c",
            &config_arg,
            "--server",
            "http://haloy.example.com",
        ],
        false,
    );
    assert!(refused.contains("not a loopback address"), "{refused}");
    assert!(refused.contains("haloyadm api domain"), "{refused}");
    assert!(!refused.contains(&token), "the token leaked: {refused}");
}
