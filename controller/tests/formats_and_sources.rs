//! The three formats and --config forms, .env precedence, and the 1Password provider's
//! failure modes.

mod support;

use haloy_controller::config::load::find_config_file;
use support::Project;

const YAML: &str = "name: my-app\nacme_email: you@email.com\nhealth_check_path: /health\nimage:\n  repository: ghcr.io/org/my-app\n  tag: v1\n  build_config:\n    context: .\n    push: server\ndomains:\n  - domain: my-app.com\n    aliases: [www.my-app.com]\nsecret_providers:\n  onepassword:\n    db: {vault: V, item: DB}\nenv:\n  - name: PASSWORD\n    from: {secret: \"onepassword:db.password\"}\n";

const JSON: &str = r#"{
  "name": "my-app",
  "acmeEmail": "you@email.com",
  "healthCheckPath": "/health",
  "image": {"repository": "ghcr.io/org/my-app", "tag": "v1", "builder": {"context": ".", "push": "server"}},
  "domains": [{"domain": "my-app.com", "aliases": ["www.my-app.com"]}],
  "secretProviders": {"onepassword": {"db": {"vault": "V", "item": "DB"}}},
  "env": [{"name": "PASSWORD", "from": {"secret": "onepassword:db.password"}}]
}"#;

const TOML: &str = r#"name = "my-app"
acme_email = "you@email.com"
health_check_path = "/health"

[image]
repository = "ghcr.io/org/my-app"
tag = "v1"

[image.builder]
context = "."
push = "server"

[[domains]]
domain = "my-app.com"
aliases = ["www.my-app.com"]

[secret_providers.onepassword.db]
vault = "V"
item = "DB"

[[env]]
name = "PASSWORD"
from = { secret = "onepassword:db.password" }
"#;

#[test]
fn yaml_json_and_toml_resolve_to_the_same_plan() {
    let mut rendered = Vec::new();
    for (file, text) in [
        ("haloy.yaml", YAML),
        ("haloy.json", JSON),
        ("haloy.toml", TOML),
    ] {
        let p = Project::new();
        p.write(file, text);
        p.write("Dockerfile", "FROM scratch\n");
        p.op_item("V", "DB", &[("password", "pw")]);
        let plan = p.plan(file, &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut value = plan.targets[0].to_value(true);
        // Paths differ per temp dir; everything else must match.
        value["image"]["builder"]["context"] = "ctx".into();
        value["image"]["builder"]["dockerfile"] = "df".into();
        rendered.push(value);
    }
    assert_eq!(rendered[0], rendered[1]);
    assert_eq!(rendered[0], rendered[2]);
    assert_eq!(rendered[0]["env"][0]["value"], "pw");
    assert_eq!(rendered[0]["domains"][0]["aliases"][0], "www.my-app.com");
}

#[test]
fn config_flag_takes_a_file_or_a_directory() {
    let p = Project::new();
    let app = p.app();
    assert!(
        find_config_file(None, &app)
            .unwrap_err()
            .to_string()
            .contains("no haloy.yaml, haloy.yml, haloy.json or haloy.toml in")
    );
    p.write("haloy.toml", "name = \"a\"\n");
    assert_eq!(
        find_config_file(None, &app).unwrap(),
        app.join("haloy.toml")
    );
    p.write("haloy.yml", "name: a\n");
    assert_eq!(
        find_config_file(Some(".".as_ref()), &app).unwrap(),
        app.join("./haloy.yml")
    );
    p.write("haloy.yaml", "name: a\n");
    assert_eq!(
        find_config_file(None, &app).unwrap(),
        app.join("haloy.yaml")
    );
    p.write("deploy/prod.yaml", "name: a\n");
    assert_eq!(
        find_config_file(Some("deploy/prod.yaml".as_ref()), &app).unwrap(),
        app.join("deploy/prod.yaml")
    );
    p.write("haloy.ini", "name=a\n");
    let err = find_config_file(Some("haloy.ini".as_ref()), &app)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a .yaml, .yml, .json or .toml file"),
        "{err}"
    );
    let err = find_config_file(Some("nope.yaml".as_ref()), &app)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

fn env_value(p: &Project, target: &[&str]) -> String {
    let plan = p.plan("haloy.yaml", target).expect("plan");
    plan.targets[0].spec.env[0].value.expose().to_string()
}

/// Process environment > .env.<target> > .env (cwd) > ~/.config/haloy/.env.
#[test]
fn dotenv_precedence_is_most_specific_first() {
    let mut p = Project::new();
    p.write(
        "haloy.yaml",
        "name: a\nimage: {repository: x}\nenv:\n  - name: V\n    from: {env: SOURCE}\ntargets:\n  prod: {}\n",
    );
    std::fs::create_dir_all(p.haloy_dir()).unwrap();
    std::fs::write(p.haloy_dir().join(".env"), "SOURCE=haloy-dir\n").unwrap();
    assert_eq!(env_value(&p, &["prod"]), "haloy-dir");
    p.write(".env", "SOURCE=cwd-dotenv\n");
    assert_eq!(env_value(&p, &["prod"]), "cwd-dotenv");
    p.write(".env.prod", "SOURCE=target-dotenv\n");
    assert_eq!(env_value(&p, &["prod"]), "target-dotenv");
    p.set("SOURCE", "process");
    assert_eq!(env_value(&p, &["prod"]), "process");
}

#[test]
fn each_target_reads_its_own_dotenv_file() {
    let p = Project::new();
    p.write(
        "haloy.yaml",
        "name: a\nimage: {repository: x}\nenv:\n  - name: V\n    from: {env: DB}\ntargets:\n  prod: {}\n  staging: {}\n",
    );
    p.write(".env.prod", "DB=prod-db\n");
    p.write(".env.staging", "DB=staging-db\n");
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    assert_eq!(plan.targets[0].spec.env[0].value.expose(), "prod-db");
    assert_eq!(plan.targets[1].spec.env[0].value.expose(), "staging-db");
}

#[test]
fn a_broken_dotenv_file_is_reported_with_its_line() {
    let p = Project::new();
    p.write("haloy.yaml", "name: a\nimage: {repository: x}\n");
    p.write(".env", "GOOD=1\nthis is not an assignment\n");
    let err = p.plan("haloy.yaml", &[]).unwrap_err().to_string();
    assert!(
        err.contains(".env:2:") && err.contains("KEY=value"),
        "{err}"
    );
}

const OP_CONFIG: &str = "name: a\nimage: {repository: x}\nsecret_providers:\n  onepassword:\n    db: {account: acme, vault: Prod, item: DB}\nenv:\n  - name: P\n    from: {secret: \"onepassword:db.password\"}\n  - name: U\n    from: {secret: \"onepassword:db.username\"}\n";

#[test]
fn onepassword_reads_an_item_once_for_several_fields() {
    let p = Project::new();
    p.op_item("Prod", "DB", &[("username", "admin"), ("password", "pw")]);
    p.write("haloy.yaml", OP_CONFIG);
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    assert_eq!(plan.targets[0].spec.env[0].value.expose(), "pw");
    assert_eq!(plan.targets[0].spec.env[1].value.expose(), "admin");
    assert_eq!(
        p.op_calls(),
        ["item get DB --format json --vault Prod --account acme"]
    );
}

#[test]
fn onepassword_failures_say_what_to_do() {
    let mut p = Project::new();
    p.write("haloy.yaml", OP_CONFIG);
    // The item does not exist.
    let err = p.plan("haloy.yaml", &[]).unwrap_err().to_string();
    assert!(
        err.contains("env[0].from.secret: 1Password item \"DB\" was not found in vault \"Prod\""),
        "{err}"
    );
    assert!(
        err.contains("check secret_providers.onepassword.db.item"),
        "{err}"
    );
    // Not signed in.
    std::fs::write(p.root.path().join("op/signed-out"), "").unwrap();
    let err = p.plan("haloy.yaml", &[]).unwrap_err().to_string();
    assert!(
        err.contains("not signed in to account \"acme\"; run `op signin`"),
        "{err}"
    );
    // No op on PATH at all.
    p.set("PATH", "/nonexistent");
    let err = p.plan("haloy.yaml", &[]).unwrap_err().to_string();
    assert!(
        err.contains("`op` was not found on PATH; install it"),
        "{err}"
    );
}
