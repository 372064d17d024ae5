//! Image history end to end: local history keeps `count` versions and prunes the
//! names haloyd made for the rest (never the user's own tags of images already on the
//! server), rollback goes through the zero-downtime path under load, the
//! registry strategy lists a real docker-registry's tags, and no resolved secret
//! lands in haloyd's database or log.

use std::path::Path;
use std::process::Command;

use integration_tests::{ImageFamily, Load, Registry, Server, describe, run};

/// Every file under `dir` (haloyd's data: the sled database, certificates, log)
/// that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

fn assert_secret_kept_out(server: &Server, secret: &str) {
    let leaks = files_holding(&server.data_dir(), secret);
    assert!(leaks.is_empty(), "the secret value is in {leaks:?}");
    assert!(
        !server.log().contains(secret),
        "the secret is in haloyd.log"
    );
}

fn image_exists(reference: &str) -> bool {
    run(Command::new("docker").args(["image", "inspect", reference]))
        .status
        .success()
}

fn rollback_targets(server: &Server, config: &str) -> serde_json::Value {
    let output = server.haloy(&["rollback-targets", "-c", config, "--json"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(&output),
        server.log()
    );
    serde_json::from_slice(&output.stdout).expect("rollback-targets --json")
}

fn target_ids(targets: &serde_json::Value) -> Vec<String> {
    targets["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["deployment_id"].as_str().expect("id").to_string())
        .collect()
}

fn local_config(server: &Server, repository: &str, tag: &str) -> String {
    format!(
        r#"name: "hist"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
  history: {{ strategy: "local", count: 3 }}
health_check_path: "/health"
network: "{network}"
env:
  - name: "API_KEY"
    from: {{ env: "HIST_API_KEY" }}
domains: [{{ domain: "hist.test" }}]
acme_email: "ops@example.com"
"#,
        network = server.network
    )
}

#[test]
fn local_history_keeps_count_versions_and_rolls_back_under_load() {
    let family = ImageFamily::new("hist");
    let mut server = Server::start();
    let secret = "hist-api-key-5f2e9c";
    server.set_env("HIST_API_KEY", secret);
    for n in 1..=5 {
        family.build(&format!("v{n}"), &format!("version {n}"));
    }
    let path = server.home.path().join("hist.yaml").display().to_string();
    let mut deployed = Vec::new();
    for n in 1..=5 {
        server.app_config(
            "hist",
            &local_config(&server, &family.repository, &format!("v{n}")),
        );
        let out = server.deploy(Path::new(&path));
        assert_eq!(server.get("hist.test", "/").2, format!("version {n}"));
        let id = out
            .split("(deployment ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no deployment id in:\n{out}"));
        deployed.push(id.to_string());
    }

    let targets = rollback_targets(&server, &path);
    assert_eq!(targets["strategy"], "local");
    let ids = target_ids(&targets);
    assert_eq!(ids.len(), 3, "exactly count targets remain: {targets}");
    assert_eq!(targets["targets"][0]["live"], true, "{targets}");
    // haloyd's own names of the first two deployments are pruned; the tags the user
    // put on the server (image.source: local) are theirs and stay.
    let listed =
        run(Command::new("docker").args(["images", &family.repository, "--format", "{{.Tag}}"]));
    let tags = String::from_utf8_lossy(&listed.stdout).to_string();
    for (n, id) in deployed.iter().enumerate() {
        // The server names its tag after the id, with its instance's suffix when
        // the id was the client's.
        let kept = tags.lines().any(|tag| tag.starts_with(id.as_str()));
        assert_eq!(kept, n >= 2, "tag {id}… of deploy {} in:\n{tags}", n + 1);
    }
    for n in 1..=5 {
        assert!(
            image_exists(&format!("{}:v{n}", family.repository)),
            "the user's tag v{n} stays"
        );
    }
    let dry = server.haloy(&["prune-images", "-c", &path]);
    assert!(dry.status.success(), "{}", describe(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("nothing to prune"),
        "{}",
        describe(&dry)
    );

    let oldest = ids.last().expect("a target").clone();
    let load = Load::start(server.http_port, "hist.test", 12);
    server.await_traffic(100);
    let output = server.haloy(&["rollback", "-c", &path, &oldest]);
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(&output),
        server.log()
    );
    let report = load.finish();
    assert!(report.total > 100, "{}", report.raw);
    assert_eq!(
        (report.errors, report.non_2xx),
        (0, 0),
        "no failed request during the rollback:\n{}",
        report.raw
    );
    assert_eq!(server.get("hist.test", "/").2, "version 3");
    assert_secret_kept_out(&server, secret);
    drop(server);
    drop(family);
}

fn docker_as(config: &Path) -> Command {
    let mut command = Command::new("docker");
    command.arg("--config").arg(config);
    command
}

#[test]
fn registry_history_lists_the_newest_matching_tags_and_refuses_latest() {
    let family = ImageFamily::new("histreg");
    let registry = Registry::start();
    let mut server = Server::start();
    let repository = format!("{}/haloy-it-histreg", registry.server());
    let docker_config = tempfile::tempdir().expect("docker config");
    // A Docker client config of the test's own, so the user's logins stay untouched.
    let login = run(docker_as(docker_config.path()).args([
        "login",
        &registry.server(),
        "-u",
        &registry.username,
        "-p",
        &registry.password,
    ]));
    assert!(login.status.success(), "{}", describe(&login));
    for tag in ["v1", "v2", "v3", "v4", "build-7"] {
        let local = family.build(tag, &format!("release {tag}"));
        let remote = format!("{repository}:{tag}");
        assert!(
            run(Command::new("docker").args(["tag", &local, &remote]))
                .status
                .success()
        );
        let pushed = run(docker_as(docker_config.path()).args(["push", &remote]));
        assert!(pushed.status.success(), "{}", describe(&pushed));
        let _ = run(Command::new("docker").args(["rmi", &remote]));
    }
    server.set_env("REG_USER", &registry.username);
    server.set_env("REG_PASS", &registry.password);
    let config = |tag: &str| {
        format!(
            r#"name: "histreg"
image:
  repository: "{repository}"
  tag: "{tag}"
  registry:
    username: {{ from: {{ env: REG_USER }} }}
    password: {{ from: {{ env: REG_PASS }} }}
  history: {{ strategy: "registry", count: 3, pattern: "v*" }}
health_check_path: "/health"
network: "{network}"
domains: [{{ domain: "histreg.test" }}]
acme_email: "ops@example.com"
"#,
            network = server.network
        )
    };
    let path = server
        .app_config("histreg", &config("v4"))
        .display()
        .to_string();
    server.deploy(Path::new(&path));
    assert_eq!(server.get("histreg.test", "/").2, "release v4");

    let targets = rollback_targets(&server, &path);
    assert_eq!(targets["strategy"], "registry");
    assert_eq!(target_ids(&targets), ["v4", "v3", "v2"], "{targets}");
    assert_eq!(targets["targets"][0]["live"], true, "{targets}");
    assert_eq!(targets["targets"][1]["live"], false, "{targets}");

    let output = server.haloy(&["rollback", "-c", &path, "v2"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(&output),
        server.log()
    );
    assert_eq!(server.get("histreg.test", "/").2, "release v2");

    let refused = server.haloy(&["rollback", "-c", &path, "build-7"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("image.history.pattern"),
        "{}",
        describe(&refused)
    );

    let latest = server
        .app_config("latest", &config("latest"))
        .display()
        .to_string();
    let output = server.haloy(&["validate-config", "-c", &latest]);
    assert!(
        !output.status.success(),
        "tag latest is refused: {}",
        describe(&output)
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("image.tag") && err.contains("latest") && err.contains("immutable"),
        "{}",
        describe(&output)
    );
    assert_secret_kept_out(&server, &registry.password);
    drop(server);
    drop(family);
}
