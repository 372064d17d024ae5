//! The audit log end to end against a real haloyd: deploys, a rollback, a refused
//! rollback and a stop each appear in `haloy history` with the user and host the
//! CLI reported and their result, newest first, in text and `--json`.

use std::path::Path;

use integration_tests::{ImageFamily, Server, describe};

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
fn deploy_rollback_and_stop_are_recorded_with_user_host_and_result() {
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
    let stopped = server.haloy(&["stop", "-c", &path_arg]);
    assert!(stopped.status.success(), "{}", describe(&stopped));

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
            ("stop", "finished"),
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
    assert_eq!(entries[3]["detail"], second.as_str(), "{listing}");
    assert_eq!(entries[4]["detail"], first.as_str(), "{listing}");
    let error = entries[1]["error"].as_str().unwrap();
    assert!(error.contains("20200101000000000-abcd"), "{error}");
    assert!(
        !error.contains('\n'),
        "only the error's first line: {error}"
    );
    let times: Vec<u64> = entries
        .iter()
        .map(|e| e["time_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let text = server.haloy(&["history", "-c", &path_arg]);
    assert!(text.status.success(), "{}", describe(&text));
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let first_line = text.lines().next().unwrap_or_default();
    assert!(
        first_line.contains(&format!("audit-ann@{host}")) && first_line.contains("stop"),
        "{text}"
    );
}
