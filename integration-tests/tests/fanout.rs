//! One workstation deploying to several servers at once: concurrency, a target whose
//! server is down, hooks in order, and a failing pre_deploy.

use std::process::Output;

use integration_tests::{Server, build_image, describe, free_port};

fn target(name: &str, server: &Server, extra: &str) -> String {
    format!(
        "  {name}:\n    server: \"{api}\"\n    api_token: {{ value: \"{token}\" }}\n    network: \"{network}\"\n    pre_deploy: [\"echo pre-{name} >> order.log\"]\n    post_deploy: [\"echo post-{name} >> order.log\"]\n{extra}",
        api = server.api(),
        token = server.token(),
        network = server.network,
    )
}

fn config(tag: &str, servers: &[Server], down_port: u16, failing_pre: Option<&str>) -> String {
    let mut yaml = format!(
        "name: \"fan\"\nimage: {{ repository: \"haloy-it\", tag: \"{tag}\", source: \"local\" }}\nreplicas: 1\nhealth_check_path: \"/health\"\ndomains: [{{ domain: \"fan.test\" }}]\nacme_email: \"ops@example.com\"\nglobal_pre_deploy: [\"echo global-pre >> order.log\"]\nglobal_post_deploy: [\"echo global-post >> order.log\"]\ntargets:\n"
    );
    for (name, server) in ["a", "b", "c"].iter().zip(servers) {
        let extra = if failing_pre == Some(name) {
            "    pre_deploy: [\"echo about to fail\", \"exit 7\"]\n".to_string()
        } else {
            String::new()
        };
        let block = target(name, server, "");
        let block = if extra.is_empty() {
            block
        } else {
            block.replace(
                &format!("    pre_deploy: [\"echo pre-{name} >> order.log\"]\n"),
                &extra,
            )
        };
        yaml.push_str(&block);
    }
    yaml.push_str(&format!(
        "  down:\n    server: \"127.0.0.1:{down_port}\"\n    api_token: {{ value: \"nothing\" }}\n"
    ));
    yaml
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn deploy_all_reaches_every_live_server_and_reports_the_dead_one() {
    build_image("v1", "v1", true);
    build_image("v2", "v2", true);
    let servers = Server::start_many(3);
    let home = &servers[0];
    let down_port = free_port();
    let path = home.app_config("fan", &config("v1", &servers, down_port, None));
    let output = home.haloy(&["deploy", "--all", "-c", &path.display().to_string()]);
    assert!(
        !output.status.success(),
        "the dead target makes the run fail:\n{}",
        describe(&output)
    );
    let text = stdout(&output);
    for name in ["a", "b", "c"] {
        assert!(text.contains(&format!("[{name}] deployment ")), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no summary row for {name}:\n{text}"));
        assert!(row.contains("succeeded"), "{row}\n{}", describe(&output));
    }
    let down = text
        .lines()
        .find(|l| l.starts_with("down "))
        .expect("summary row for down");
    assert!(
        down.contains("failed: cannot reach haloyd at 127.0.0.1:"),
        "{down}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("1 of 4 targets failed: down"),
        "{}",
        describe(&output)
    );
    for server in &servers {
        assert_eq!(server.get("fan.test", "/").2, "v1");
    }
    // One deploy, one deployment id on every server.
    let ids: Vec<&str> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let tag = format!("[{name}] deployment ");
            let line = text.lines().find(|l| l.starts_with(&tag)).unwrap();
            line[tag.len()..].trim()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let v1_id = ids[0].to_string();

    let order = std::fs::read_to_string(home.home.path().join("order.log")).unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.first(), Some(&"global-pre"), "{order}");
    assert_eq!(lines.last(), Some(&"global-post"), "{order}");
    for name in ["a", "b", "c"] {
        let pre = lines
            .iter()
            .position(|l| *l == format!("pre-{name}"))
            .expect("pre ran");
        let post = lines
            .iter()
            .position(|l| *l == format!("post-{name}"))
            .expect("post ran");
        assert!(pre < post, "{order}");
    }
    assert!(
        !order.contains("post-down"),
        "no post_deploy for a failed target:\n{order}"
    );

    // b's pre_deploy fails: b stays on v1, the others move to v2.
    let path = home.app_config("fan", &config("v2", &servers, down_port, Some("b")));
    let output = home.haloy(&[
        "deploy",
        "-t",
        "a,b,c",
        "-c",
        &path.display().to_string(),
        "--json",
    ]);
    assert!(!output.status.success(), "{}", describe(&output));
    let results: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    let b = results.iter().find(|r| r["target"] == "b").unwrap();
    assert_eq!(b["result"], "failed");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("pre_deploy hook `exit 7` failed with exit code 7"),
        "{b}"
    );
    assert!(
        b["message"].as_str().unwrap().contains("about to fail"),
        "{b}"
    );
    assert_eq!(
        servers[0].get("fan.test", "/").2,
        "v2",
        "{}",
        describe(&output)
    );
    assert_eq!(servers[1].get("fan.test", "/").2, "v1");
    assert_eq!(servers[2].get("fan.test", "/").2, "v2");

    let status = home.haloy(&[
        "status",
        "--all",
        "-c",
        &path.display().to_string(),
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = stdout(&status)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .filter(|r| r.get("error").is_none())
            .all(|r| r["replicas"][0]["health"] == "up"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["target"] == "down" && r["error"].is_string())
    );

    // Logs of every target at once, each line prefixed with its target; the dead
    // one fails alone.
    for server in &servers {
        server.get("fan.test", "/");
    }
    let logs = home.haloy(&[
        "logs",
        "--all",
        "--no-follow",
        "-c",
        &path.display().to_string(),
    ]);
    assert!(!logs.status.success(), "{}", describe(&logs));
    let text = stdout(&logs);
    for name in ["a", "b", "c"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("[{name}] fan-")) && l.contains(" | ")),
            "{name} has log lines:\n{}",
            describe(&logs)
        );
    }
    let stderr = String::from_utf8_lossy(&logs.stderr);
    assert!(
        stderr.contains("[down] ") && stderr.contains(&down_port.to_string()),
        "{stderr}"
    );

    // The first deploy's id rolls every live target back to v1 at once.
    let rollback = home.haloy(&[
        "rollback",
        "-t",
        "a,b,c",
        "-c",
        &path.display().to_string(),
        &v1_id,
    ]);
    assert!(rollback.status.success(), "{}", describe(&rollback));
    let text = stdout(&rollback);
    for name in ["a", "b", "c"] {
        assert!(
            text.contains(&format!("[{name}] rolled back: deployment ")),
            "{text}"
        );
    }
    for server in &servers {
        assert_eq!(server.get("fan.test", "/").2, "v1");
    }
}

#[test]
fn without_a_target_flag_a_multi_target_deploy_lists_the_targets() {
    let servers = Server::start_many(1);
    let path = servers[0].app_config(
        "fan",
        &config("v1", &[], free_port(), None)
            .replace("targets:\n", "targets:\n  a: { server: \"127.0.0.1:1\" }\n"),
    );
    let output = servers[0].haloy(&["deploy", "-c", &path.display().to_string()]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("defines several targets (a, down); choose with --targets"),
        "{err}"
    );
}
