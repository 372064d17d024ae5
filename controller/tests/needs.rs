//! Planning for commands that deploy nothing: only the server and the API token are
//! read; app env values, build arguments and registry credentials are checked for
//! shape but never read, so an unset variable or a signed-out 1Password is no error
//! and `op` is never called for them.

mod support;

use haloy_controller::Needs;
use support::Project;

/// An app whose env, build argument and registry credentials all come from sources
/// that are unavailable: variables that are not set and a 1Password item that does
/// not exist. Only the token is available.
const CONFIG: &str = r#"name: shop
server: "127.0.0.1:9"
api_token: { from: { env: SHOP_TOKEN } }
image:
  repository: registry.example.com/shop
  tag: v1
  registry:
    username: { from: { env: REGISTRY_USER } }
    password: { from: { secret: "onepassword:registry.password" } }
  history: { strategy: HISTORY, count: 3, pattern: "v*" }
  builder:
    args:
      - name: NPM_TOKEN
        from: { secret: "onepassword:npm.token" }
env:
  - name: DB_PASSWORD
    from: { env: DB_PASSWORD }
  - name: API_KEY
    from: { secret: "onepassword:app.api-key" }
  - name: MODE
    value: production
"#;

fn project(history: &str) -> Project {
    let mut p = Project::new();
    p.write("haloy.yaml", &CONFIG.replace("HISTORY", history));
    p.write("Dockerfile", "FROM scratch\n");
    p.set("SHOP_TOKEN", "token-from-env");
    p
}

#[test]
fn a_connection_plan_reads_the_token_and_no_app_secret() {
    let p = project("local");
    let plan = p
        .plan_for("haloy.yaml", &[], Needs::Connection)
        .unwrap_or_else(|e| panic!("status must not need DB_PASSWORD or 1Password: {e}"));
    let target = &plan.targets[0];
    assert_eq!(target.server.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(
        target.api_token.as_ref().map(|t| t.expose()),
        Some("token-from-env")
    );
    assert_eq!(target.spec.name, "shop");
    assert!(target.spec.env.is_empty(), "{:?}", target.spec.env);
    assert!(target.spec.image.registry.is_none());
    assert!(p.op_calls().is_empty(), "op was called: {:?}", p.op_calls());
}

#[test]
fn a_token_from_a_secret_is_still_resolved_without_app_secrets() {
    let p = project("local");
    p.op_item("Private", "haloy", &[("token", "token-from-op")]);
    p.write(
        "haloy.yaml",
        &CONFIG.replace("HISTORY", "local").replace(
            "api_token: { from: { env: SHOP_TOKEN } }",
            "api_token: { from: { secret: \"onepassword:haloy.token\" } }",
        ),
    );
    let plan = p
        .plan_for("haloy.yaml", &[], Needs::Connection)
        .expect("plan");
    assert_eq!(
        plan.targets[0].api_token.as_ref().map(|t| t.expose()),
        Some("token-from-op")
    );
    // One lookup, for the token's item; none for the app's.
    assert_eq!(p.op_calls(), ["item get haloy --format json"]);
}

#[test]
fn a_connection_plan_still_needs_the_token() {
    let mut p = project("local");
    p.env.remove("SHOP_TOKEN");
    let err = p
        .plan_for("haloy.yaml", &[], Needs::Connection)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api_token.from.env: environment variable SHOP_TOKEN is not set"),
        "{err}"
    );
    assert!(!err.contains("DB_PASSWORD"), "{err}");
}

#[test]
fn a_connection_plan_still_rejects_a_malformed_source() {
    let p = project("local");
    p.write(
        "haloy.yaml",
        &CONFIG
            .replace("HISTORY", "local")
            .replace("onepassword:app.api-key", "vault:app.api-key")
            .replace(
                "from: { env: DB_PASSWORD }",
                "from: { env: \"db-password\" }",
            ),
    );
    let err = p
        .plan_for("haloy.yaml", &[], Needs::Connection)
        .unwrap_err()
        .to_string();
    assert!(err.contains("env[0].from.env"), "{err}");
    assert!(err.contains("unknown secret provider \"vault\""), "{err}");
    assert!(p.op_calls().is_empty(), "op was called: {:?}", p.op_calls());
}

#[test]
fn rollback_targets_reads_registry_credentials_only_for_registry_history() {
    // Local history: the registry is not asked, its credentials are not read.
    let p = project("local");
    p.plan_for("haloy.yaml", &[], Needs::RegistryHistory)
        .expect("local history needs no registry credentials");
    assert!(p.op_calls().is_empty(), "op was called: {:?}", p.op_calls());

    // Registry history: the credentials are needed, and only they.
    let mut p = project("registry");
    let err = p
        .plan_for("haloy.yaml", &[], Needs::RegistryHistory)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "image.registry.username.from.env: environment variable REGISTRY_USER is not set"
        ),
        "{err}"
    );
    assert!(!err.contains("DB_PASSWORD"), "{err}");
    p.set("REGISTRY_USER", "robot");
    p.op_item("Private", "registry", &[("password", "hunter2")]);
    let plan = p
        .plan_for("haloy.yaml", &[], Needs::RegistryHistory)
        .expect("plan");
    let auth = plan.targets[0].spec.image.registry.as_ref().expect("auth");
    assert_eq!(auth.username.expose(), "robot");
    assert_eq!(auth.password.expose(), "hunter2");
    assert!(plan.targets[0].spec.env.is_empty());
    // One lookup per plan, each for the registry's item; none for the app's.
    assert_eq!(p.op_calls(), ["item get registry --format json"; 2]);
}

#[test]
fn a_deploy_plan_reads_everything_and_names_the_missing_variable() {
    let p = project("local");
    let err = p.plan("haloy.yaml", &[]).unwrap_err().to_string();
    assert!(
        err.contains("env[0].from.env: environment variable DB_PASSWORD is not set"),
        "{err}"
    );
    assert!(
        err.contains("export DB_PASSWORD=... or add DB_PASSWORD=... to .env"),
        "{err}"
    );
    assert!(
        !p.op_calls().is_empty(),
        "a deploy resolves the 1Password sources"
    );
}
