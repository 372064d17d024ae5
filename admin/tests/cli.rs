//! `haloyadm` runs as a process with a scrubbed environment and its own HOME, the way
//! a user runs it.

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use support::{Sandbox, mode};

#[test]
fn haloyadm_init_local_install_creates_the_layout_and_token() {
    let s = Sandbox::new();
    let out = s.ok(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--http-port",
            "8080",
            "--https-port",
            "8443",
            "--api-port",
            "19999",
        ],
    );
    let config = s.home().join(".config/haloy");
    let data = s.home().join(".local/share/haloy");
    for dir in ["haproxy-config", "cert-storage", "db"] {
        assert!(data.join(dir).is_dir(), "{dir}");
    }
    assert_eq!(mode(&config.join(".env")), 0o600);
    let settings = std::fs::read_to_string(config.join("haloyd.yaml")).unwrap();
    assert!(
        settings.contains("api_port: 19999") && settings.contains("http_port: 8080"),
        "{settings}"
    );
    // What users get: containers, HAProxy from the official image.
    assert!(
        settings.contains("run_as: docker") && settings.contains("haproxy_image: haproxy:2.8"),
        "{settings}"
    );
    // Metrics on loopback, the setting written out so operators find it.
    assert!(
        settings.contains("metrics_address: 127.0.0.1:9101"),
        "{settings}"
    );
    let token = s
        .ok("haloyadm", &["api", "token", "--local-install"])
        .trim()
        .to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert!(out.contains(&token), "init prints the token:\n{out}");
    assert!(out.contains("haloy server add 127.0.0.1:19999"), "{out}");

    let err = s.fails("haloyadm", &["init", "--local-install"]);
    assert!(err.contains("already initialized"), "{err}");
    s.ok(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--force",
            "--acme-email",
            "you@example.com",
        ],
    );
    let again = s
        .ok("haloyadm", &["api", "token", "--local-install"])
        .trim()
        .to_string();
    assert_eq!(again, token, "--force keeps the token");
    s.ok(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--force",
            "--haproxy-image",
            "local/haproxy:2.6",
        ],
    );
    s.ok("haloyadm", &["init", "--local-install", "--force"]);
    let settings = std::fs::read_to_string(config.join("haloyd.yaml")).unwrap();
    assert!(
        settings.contains("haproxy_image: local/haproxy:2.6"),
        "--force keeps the HAProxy image:\n{settings}"
    );
    let err = s.fails(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--force",
            "--haproxy-image",
            "a b",
        ],
    );
    assert!(err.contains("haproxy_image"), "{err}");

    let err = s.fails(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--force",
            "--http-port",
            "9000",
            "--https-port",
            "9000",
        ],
    );
    assert!(err.contains("give each its own port"), "{err}");
    let err = s.fails(
        "haloyadm",
        &[
            "init",
            "--local-install",
            "--force",
            "--api-domain",
            "haloy.example.com",
        ],
    );
    assert!(err.contains("--acme-email"), "{err}");
}

#[test]
fn haloyadm_api_token_without_init_says_what_to_run() {
    let s = Sandbox::new();
    let err = s.fails("haloyadm", &["api", "token", "--local-install"]);
    assert!(
        err.contains("not initialized") && err.contains("haloyadm init --local-install"),
        "{err}"
    );
}
