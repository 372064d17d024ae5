//! `haloy` runs as a process with a scrubbed environment and its own HOME, the way a
//! user runs it.

mod support;

use std::process::Command;

use support::{Sandbox, describe, mode};

const MULTI: &str = r#"name: "my-app"
image:
  repository: "ghcr.io/org/my-app"
  tag: "latest"
acme_email: "you@email.com"
api_token:
  from:
    env: "DEPLOY_TOKEN"
env:
  - name: "DATABASE_PASSWORD"
    from:
      env: "DB_PASSWORD"
  - name: "LOG_LEVEL"
    value: "info"
targets:
  production:
    server: "prod.haloy.com"
    replicas: 3
    image:
      tag: "v1.2.3"
    domains:
      - domain: "my-app.com"
  staging:
    server: "staging.haloy.com:8443"
    replicas: 1
    image:
      tag: "main"
      registry:
        username:
          value: "ci-user"
        password:
          from:
            env: "REGISTRY_PASSWORD"
    domains:
      - domain: "staging.my-app.com"
"#;

const SECRETS: [&str; 3] = ["tok-9f8e7d", "db-pass-1234", "reg-pass-5678"];

fn multi_sandbox() -> Sandbox {
    let mut s = Sandbox::new();
    s.write("haloy.yaml", MULTI);
    s.set("DEPLOY_TOKEN", SECRETS[0]);
    s.set("DB_PASSWORD", SECRETS[1]);
    s.set("REGISTRY_PASSWORD", SECRETS[2]);
    s
}

#[test]
fn show_resolved_config_for_one_target_reveals_its_values() {
    let s = multi_sandbox();
    let out = s.ok(
        "haloy",
        &["validate-config", "--show-resolved-config", "-t", "staging"],
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).expect("stdout is YAML");
    assert_eq!(doc["target"], "staging");
    assert_eq!(doc["server"], "staging.haloy.com:8443");
    assert_eq!(doc["replicas"], 1);
    assert_eq!(doc["image"]["tag"], "main");
    assert_eq!(doc["image"]["repository"], "ghcr.io/org/my-app");
    assert_eq!(doc["image"]["registry"]["server"], "ghcr.io");
    assert_eq!(doc["image"]["registry"]["password"], SECRETS[2]);
    assert_eq!(doc["api_token"], SECRETS[0]);
    assert_eq!(doc["env"][0]["value"], SECRETS[1]);
    assert_eq!(doc["domains"][0]["domain"], "staging.my-app.com");
    assert!(!out.contains("production"), "only staging is shown:\n{out}");
}

#[test]
fn without_the_flag_no_secret_is_printed_anywhere() {
    let s = multi_sandbox();
    let out = s.run("haloy", &["validate-config", "--all"]);
    assert!(out.status.success(), "{}", describe(&out));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    assert!(all.contains("********"));
    assert!(
        all.contains("value: info"),
        "plain values stay visible:\n{all}"
    );
    assert!(all.contains("is valid (2 targets)"), "{all}");
    assert_eq!(all.matches("target: ").count(), 2, "{all}");
}

#[test]
fn invalid_config_fails_with_key_path_and_without_secrets() {
    let mut s = Sandbox::new();
    s.write(
        "haloy.yaml",
        "name: a\nimage: {repository: x}\nreplicas: 0\nenv:\n  - name: S\n    from: {env: S}\n",
    );
    s.set("S", "very-secret-value");
    let err = s.fails("haloy", &["validate-config"]);
    assert!(
        err.contains("haloy.yaml: replicas: replicas is 0; use a whole number from 1 to 100"),
        "{err}"
    );
    assert!(!err.contains("very-secret-value"), "{err}");
}

#[test]
fn target_selection_errors_list_the_targets() {
    let s = multi_sandbox();
    let err = s.fails("haloy", &["validate-config", "-t", "prod"]);
    assert!(
        err.contains("no target named \"prod\"; choose from: production, staging"),
        "{err}"
    );
    let err = s.fails("haloy", &["validate-config", "-t", "staging", "--all"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let out = s.ok(
        "haloy",
        &["validate-config", "--targets", "production,staging"],
    );
    assert_eq!(out.matches("target: ").count(), 2, "{out}");
}

#[test]
fn config_flag_accepts_a_directory() {
    let s = multi_sandbox();
    std::fs::create_dir_all(s.work().join("deploy")).unwrap();
    std::fs::rename(
        s.work().join("haloy.yaml"),
        s.work().join("deploy/haloy.yaml"),
    )
    .unwrap();
    let out = s.ok(
        "haloy",
        &["validate-config", "-c", "deploy", "-t", "production"],
    );
    assert!(out.contains("tag: v1.2.3"), "{out}");
    let err = s.fails("haloy", &["validate-config"]);
    assert!(
        err.contains("no haloy.yaml, haloy.yml, haloy.json or haloy.toml in"),
        "{err}"
    );
}

#[test]
fn server_add_list_delete_manage_files_with_private_tokens() {
    let s = Sandbox::new();
    let dir = s.home().join(".config/haloy");
    let out = s.ok(
        "haloy",
        &[
            "server",
            "add",
            "https://Production.Haloy.com",
            "abc123token456",
        ],
    );
    assert!(out.contains("added server production.haloy.com"), "{out}");
    s.ok(
        "haloy",
        &["server", "add", "127.0.0.1:9999", "local-token-1"],
    );
    s.ok(
        "haloy",
        &["server", "add", "127.0.0.1:9998", "local-token-2"],
    );

    let client: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("client.yaml")).unwrap()).unwrap();
    assert_eq!(
        client["servers"]["production.haloy.com"]["token_env"],
        "HALOY_API_TOKEN_PRODUCTION_HALOY_COM"
    );
    assert_eq!(
        client["servers"]["127.0.0.1:9999"]["token_env"],
        "HALOY_API_TOKEN_127_0_0_1_9999"
    );
    assert_eq!(
        client["servers"]["127.0.0.1:9998"]["token_env"],
        "HALOY_API_TOKEN_127_0_0_1_9998"
    );
    let dotenv = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert_eq!(
        dotenv,
        "HALOY_API_TOKEN_PRODUCTION_HALOY_COM=abc123token456\nHALOY_API_TOKEN_127_0_0_1_9999=local-token-1\nHALOY_API_TOKEN_127_0_0_1_9998=local-token-2\n"
    );
    assert_eq!(mode(&dir.join(".env")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert!(
        !std::fs::read_to_string(dir.join("client.yaml"))
            .unwrap()
            .contains("token4")
    );

    let err = s.fails("haloy", &["server", "add", "production.haloy.com", "other"]);
    assert!(err.contains("already configured; pass --force"), "{err}");
    s.ok(
        "haloy",
        &[
            "server",
            "add",
            "production.haloy.com",
            "newtoken",
            "--force",
        ],
    );
    let dotenv = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(
        dotenv.contains("HALOY_API_TOKEN_PRODUCTION_HALOY_COM=newtoken\n"),
        "{dotenv}"
    );
    assert!(!dotenv.contains("abc123token456"), "{dotenv}");

    let list = s.ok("haloy", &["server", "list"]);
    assert!(
        list.contains("production.haloy.com") && list.contains("set"),
        "{list}"
    );
    assert!(
        !list.contains("newtoken"),
        "list never shows tokens:\n{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok("haloy", &["server", "list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[0]["has_token"], true);

    s.ok("haloy", &["server", "delete", "127.0.0.1:9999"]);
    let dotenv = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(!dotenv.contains("9999"), "{dotenv}");
    assert!(
        dotenv.contains("HALOY_API_TOKEN_127_0_0_1_9998=local-token-2"),
        "{dotenv}"
    );
    assert_eq!(mode(&dir.join(".env")), 0o600);
    let err = s.fails("haloy", &["server", "delete", "127.0.0.1:9999"]);
    assert!(
        err.contains("not configured; configured servers: production.haloy.com, 127.0.0.1:9998"),
        "{err}"
    );

    let err = s.fails("haloy", &["server", "add", "bad host", "t"]);
    assert!(err.contains("not a valid host name"), "{err}");
    let err = s.fails("haloy", &["server", "add", "ok.example.com", "two words"]);
    assert!(err.contains("token is empty or has spaces"), "{err}");
}

#[test]
fn a_missing_token_shows_in_the_list() {
    let s = Sandbox::new();
    s.ok("haloy", &["server", "add", "a.example.com", "tok"]);
    std::fs::write(s.home().join(".config/haloy/.env"), "").unwrap();
    let list = s.ok("haloy", &["server", "list"]);
    assert!(list.contains("missing"), "{list}");
}

#[test]
fn server_selection_falls_back_to_the_only_configured_server() {
    let s = Sandbox::new();
    s.write("haloy.yaml", "name: a\nimage: {repository: x}\n");
    let out = s.run("haloy", &["validate-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("no server is configured; add one with `haloy server add"),
        "{stderr}"
    );

    s.ok("haloy", &["server", "add", "only.example.com", "tok"]);
    let out = s.ok("haloy", &["validate-config"]);
    assert!(out.contains("server: only.example.com"), "{out}");

    s.ok("haloy", &["server", "add", "second.example.com", "tok"]);
    let out = s.run("haloy", &["validate-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("several servers are configured (only.example.com, second.example.com)"),
        "{stderr}"
    );

    let out = s.ok(
        "haloy",
        &["validate-config", "--server", "second.example.com"],
    );
    assert!(out.contains("server: second.example.com"), "{out}");
}

#[test]
fn help_lists_schema_and_init_with_a_line_each() {
    let s = Sandbox::new();
    let help = s.ok("haloy", &["--help"]);
    for (command, line) in [
        (
            "init",
            "Write a starter haloy.yaml for the app in the current directory",
        ),
        ("schema", "Print the JSON Schema of haloy.yaml"),
        (
            "maintenance",
            "Put the app in maintenance (its domains answer 503 with a page) or take it out",
        ),
        (
            "history",
            "Show the audit log: deploys, rollbacks, execs, stops and maintenance switches",
        ),
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(command) && l.contains(line)),
            "{help}"
        );
    }
}

#[test]
fn completion_scripts_cover_every_shell() {
    let s = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -o nospace -o bashdefault"),
        ("zsh", "#compdef haloy"),
        ("fish", "complete --keep-order --exclusive --command haloy"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = s.ok("haloy", &["completion", shell]);
        assert!(out.contains(marker), "{shell}: {out}");
    }
    let err = s.fails("haloy", &["completion", "tcsh"]);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

/// What the shell gets back when it asks haloy to complete `words`.
fn complete(s: &Sandbox, words: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_haloy"))
        .arg("--")
        .args(words)
        .env_clear()
        .env("HOME", s.home())
        .env("COMPLETE", "fish")
        .current_dir(s.work())
        .output()
        .expect("run");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn completion_offers_commands_flags_and_target_names() {
    let s = multi_sandbox();
    assert!(complete(&s, &["haloy", "dep"]).contains(&"deploy".to_string()));
    assert!(complete(&s, &["haloy", "sch"]).contains(&"schema".to_string()));
    assert!(complete(&s, &["haloy", "in"]).contains(&"init".to_string()));
    assert!(complete(&s, &["haloy", "init", "--f"]).contains(&"--force".to_string()));
    assert!(complete(&s, &["haloy", "hi"]).contains(&"history".to_string()));
    assert!(complete(&s, &["haloy", "history", "--j"]).contains(&"--json".to_string()));
    assert!(complete(&s, &["haloy", "mai"]).contains(&"maintenance".to_string()));
    assert_eq!(
        complete(&s, &["haloy", "maintenance", ""])
            .into_iter()
            .filter(|c| !c.starts_with('-'))
            .collect::<Vec<_>>(),
        ["on", "off", "help"]
    );
    assert!(
        complete(&s, &["haloy", "maintenance", "on", "--m"]).contains(&"--message".to_string())
    );
    assert_eq!(
        complete(&s, &["haloy", "maintenance", "off", "-t", "st"]),
        ["staging"]
    );
    assert!(complete(&s, &["haloy", "deploy", "--t"]).contains(&"--targets".to_string()));
    assert_eq!(
        complete(&s, &["haloy", "deploy", "-t", ""]),
        ["production", "staging"]
    );
    assert_eq!(
        complete(&s, &["haloy", "status", "--targets", "st"]),
        ["staging"]
    );
    assert!(
        complete(&s, &["haloy", "deploy", "-t", "production,"])
            .contains(&"production,staging".to_string())
    );
}

#[test]
fn help_lists_exec_and_tunnel_and_completion_offers_them() {
    let s = multi_sandbox();
    let help = s.ok("haloy", &["--help"]);
    for (command, description) in [
        ("exec", "Run a command in a running replica"),
        (
            "tunnel",
            "Forward a local port to a port of a running replica",
        ),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(command))
            .unwrap_or_else(|| panic!("{command} missing from --help:\n{help}"));
        assert!(line.contains(description), "{line}");
    }
    assert!(complete(&s, &["haloy", "ex"]).contains(&"exec".to_string()));
    assert!(complete(&s, &["haloy", "tu"]).contains(&"tunnel".to_string()));
    let flags = complete(&s, &["haloy", "exec", "--"]);
    for flag in [
        "--all-containers",
        "--container",
        "--interactive",
        "--timeout",
    ] {
        assert!(flags.contains(&flag.to_string()), "{flag}: {flags:?}");
    }
    assert_eq!(complete(&s, &["haloy", "tunnel", "-t", "st"]), ["staging"]);
}

#[test]
fn exec_refuses_bad_flags_before_connecting() {
    let s = multi_sandbox();
    let err = s.fails("haloy", &["exec", "-t", "production", "echo"]);
    assert!(err.contains("--"), "the command goes after --: {err}");
    let err = s.fails(
        "haloy",
        &["exec", "--all-containers", "--container", "2", "--", "ls"],
    );
    assert!(err.contains("cannot be used with"), "{err}");
    let err = s.fails("haloy", &["exec", "--timeout", "soon", "--", "ls"]);
    assert!(err.contains("write it like 30s"), "{err}");
    let err = s.fails("haloy", &["exec", "--all", "-i", "--", "sh"]);
    assert!(
        err.contains("--interactive talks to one target and 2 are selected"),
        "{err}"
    );
}
