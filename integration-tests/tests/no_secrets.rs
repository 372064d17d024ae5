//! Commands that deploy nothing need no app secrets, against a real haloyd: with the
//! app's `from.env` variable unset and a stand-in `op` that records every call,
//! `status`, `logs`, `rollback-targets`, `prune-images` and `stop` work and `op` is
//! never called; `deploy` and `validate-config` still name the missing variable.

use std::path::PathBuf;

use integration_tests::{Server, build_image, describe};

/// The stand-in 1Password CLI the controller's tests use; it appends each call to
/// `$OP_STANDIN_DIR/calls.log`.
fn op_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../controller/tests/support")
}

fn config(server: &Server) -> String {
    format!(
        r#"name: "vault"
image: {{ repository: "haloy-it", tag: "v1", source: "local" }}
health_check_path: "/health"
network: "{network}"
domains: [{{ domain: "vault.test" }}]
acme_email: "ops@example.com"
env:
  - name: DB_PASSWORD
    from: {{ env: DB_PASSWORD }}
  - name: API_KEY
    from: {{ secret: "onepassword:app.api-key" }}
"#,
        network = server.network
    )
}

#[test]
fn only_deploy_and_validate_config_need_the_apps_secrets() {
    build_image("v1", "v1", true);
    let mut server = Server::start();
    let op_store = tempfile::tempdir().expect("temp dir");
    let vault = op_store.path().join("Private");
    std::fs::create_dir_all(&vault).expect("vault");
    std::fs::write(
        vault.join("app.json"),
        r#"{"id":"a1","title":"app","vault":{"id":"v","name":"Private"},"category":"LOGIN","fields":[{"id":"k","type":"CONCEALED","label":"api-key","value":"k-123"}]}"#,
    )
    .expect("item");
    let calls = op_store.path().join("calls.log");
    server.set_env(
        "PATH",
        &format!(
            "{}:{}",
            op_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    server.set_env("OP_STANDIN_DIR", &op_store.path().display().to_string());
    server.set_env("DB_PASSWORD", "s3cret-db");
    let path = server.app_config("vault", &config(&server));
    let path = path.display().to_string();
    server.deploy(std::path::Path::new(&path));
    assert_eq!(server.get("vault.test", "/").2, "v1");
    assert!(
        std::fs::read_to_string(&calls).is_ok_and(|c| !c.is_empty()),
        "the deploy resolved the 1Password secret through op"
    );

    // From here on the variable is gone and every op call is recorded afresh.
    server.remove_env("DB_PASSWORD");
    std::fs::remove_file(&calls).expect("clear the call log");
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["-c", &path]);
        let output = server.haloy(&full);
        assert!(
            output.status.success(),
            "haloy {args:?} must work without DB_PASSWORD:\n{}\n--- haloyd.log\n{}",
            describe(&output),
            server.log()
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let status = run(&["status"]);
    assert!(status.contains("vault"), "{status}");
    run(&["logs", "--no-follow"]);
    let versions = run(&["rollback-targets"]);
    assert!(
        versions
            .lines()
            .any(|l| l.contains(" yes ") && l.contains("haloy-it:")),
        "the live deployment is listed:\n{versions}"
    );
    let pruned = run(&["prune-images"]);
    assert!(pruned.contains("kept for rollback"), "{pruned}");
    run(&["stop"]);
    assert!(
        !std::fs::exists(&calls).expect("stat"),
        "op was called by a command that deploys nothing: {}",
        std::fs::read_to_string(&calls).unwrap_or_default()
    );

    for args in [vec!["deploy"], vec!["validate-config"]] {
        let mut full = args.clone();
        full.extend(["-c", &path]);
        let output = server.haloy(&full);
        assert!(
            !output.status.success(),
            "haloy {args:?} must fail without DB_PASSWORD:\n{}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("env[0].from.env: environment variable DB_PASSWORD is not set"),
            "haloy {args:?}:\n{}",
            describe(&output)
        );
    }
}
