//! Every YAML example of the seed README loads, validates and resolves; the
//! inheritance example resolves to exactly what its comments say.

mod support;

use haloy_api::spec::{History, ImageSource, VolumeSource};
use haloy_controller::config::plan::{PushTo, TargetPlan};
use support::Project;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed");

fn seed(name: &str) -> String {
    std::fs::read_to_string(format!("{SEED}/{name}")).expect("fixture")
}

/// A project holding a seed example, a Dockerfile for the build examples, and every
/// environment variable and 1Password item the examples reference.
fn project_with(name: &str, text: &str) -> Project {
    let mut p = Project::new();
    p.write(name, text);
    p.write("Dockerfile", "FROM scratch\n");
    for var in [
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
        "VERSION",
        "GITHUB_USERNAME",
        "GITHUB_TOKEN",
        "PRODUCTION_DATABASE_URL",
        "MY_API_KEY",
        "PRODUCTION_DEPLOY_TOKEN",
        "PROD_TOKEN",
        "STAGING_TOKEN",
        "PROJECT_A_PROD_TOKEN",
        "PROJECT_A_STAGING_TOKEN",
        "PROJECT_B_TOKEN",
    ] {
        p.set(var, &format!("value-of-{var}"));
    }
    p.op_item(
        "Production",
        "Database Credentials",
        &[("password", "db-pw")],
    );
    p.op_item(
        "API Services",
        "Third-party APIs",
        &[("stripe-key", "sk_live"), ("secret-key", "sec")],
    );
    p.op_item(
        "Private",
        "registry-credentials",
        &[("username", "reg-user"), ("password", "reg-pw")],
    );
    p.op_item("Private", "build-secrets", &[("api-key", "build-key")]);
    p.op_item("Private", "api-tokens", &[("production", "tok-prod")]);
    p.op_item("Private", "production-db", &[("password", "db-pw")]);
    p.op_item("Private", "api-keys", &[("secret-key", "sec")]);
    p
}

#[test]
fn every_full_seed_example_validates_and_resolves() {
    let mut count = 0;
    for entry in std::fs::read_dir(SEED).expect("fixtures") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if !name.ends_with(".yaml") || name.starts_with("snippet-") || name.starts_with("client-") {
            continue;
        }
        let p = project_with("haloy.yaml", &seed(&name));
        let plan = p
            .plan("haloy.yaml", &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!plan.targets.is_empty(), "{name}");
        count += 1;
    }
    assert_eq!(count, 20, "all 20 full seed examples were checked");
}

/// Snippets are fragments; each is checked inside a minimal config.
#[test]
fn every_seed_snippet_validates_inside_a_config() {
    let mut count = 0;
    for entry in std::fs::read_dir(SEED).expect("fixtures") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if !name.starts_with("snippet-") {
            continue;
        }
        let mut text = seed(&name);
        if !text.contains("\nimage:") && !text.starts_with("image:") {
            text.push_str("image:\n  repository: \"my-app\"\n");
        }
        let p = project_with("haloy.yaml", &format!("name: \"my-app\"\n{text}"));
        p.plan("haloy.yaml", &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        count += 1;
    }
    assert_eq!(count, 17);
}

/// A target's env as (name, value) pairs.
fn env_of(target: &TargetPlan) -> Vec<(&str, &str)> {
    target
        .spec
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.value.expose()))
        .collect()
}

#[test]
fn inheritance_example_resolves_as_its_comments_say() {
    let p = project_with("haloy.yaml", &seed("11-target-inheritance.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    let names: Vec<_> = plan.targets.iter().map(|t| t.label()).collect();
    assert_eq!(names, ["production", "staging"]);

    let production = &plan.targets[0];
    assert_eq!(production.server.as_deref(), Some("prod.haloy.com"));
    assert_eq!(production.spec.replicas, 2);
    assert_eq!(production.spec.port, 8080);
    assert_eq!(production.spec.image.repository, "ghcr.io/my-org/my-app");
    assert_eq!(production.spec.image.tag, "v1.2.3");
    assert_eq!(production.spec.domains[0].canonical, "my-app.com");
    assert_eq!(env_of(production), [("NODE_ENV", "production")]);

    let staging = &plan.targets[1];
    assert_eq!(staging.server.as_deref(), Some("staging.haloy.com"));
    assert_eq!(staging.spec.replicas, 1);
    assert_eq!(staging.spec.port, 8080);
    assert_eq!(staging.spec.image.repository, "ghcr.io/my-org/my-app");
    assert_eq!(staging.spec.image.tag, "latest");
    assert_eq!(staging.spec.domains[0].canonical, "staging.my-app.com");
    assert_eq!(
        env_of(staging),
        [("LOG_LEVEL", "info"), ("FEATURE_FLAG", "false")]
    );
}

#[test]
fn shared_build_example_merges_builder_per_target() {
    let p = project_with("haloy.yaml", &seed("05-multi-target-shared-build.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    let production = plan.targets[0].build.as_ref().expect("production builds");
    let staging = plan.targets[1].build.as_ref().expect("staging builds");
    assert_eq!(production.push, PushTo::Server);
    assert_eq!(staging.push, PushTo::Registry);
    assert_eq!(production.dockerfile, p.app().join("Dockerfile"));
    assert_eq!(production.platform, "linux/amd64");
    assert_eq!(production.context, staging.context);
    assert!(plan.targets[0].spec.image.registry.is_none());
    let auth = plan.targets[1].spec.image.registry.as_ref().expect("auth");
    assert_eq!(auth.server, "ghcr.io");
    assert_eq!(auth.password.expose(), "value-of-GITHUB_TOKEN");
}

#[test]
fn quick_start_builds_the_dockerfile_next_to_the_config() {
    let p = project_with("haloy.yaml", &seed("01-quickstart.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    let target = &plan.targets[0];
    assert_eq!(target.spec.image.repository, "my-app");
    assert_eq!(target.spec.image.tag, "latest");
    let build = target.build.as_ref().expect("builds");
    assert_eq!(build.push, PushTo::Server);
    assert_eq!(target.spec.domains[0].aliases, ["www.my-app.com"]);
    assert!(
        target.warnings.iter().any(|w| w.path == "acme_email"),
        "missing acme_email is reported: {:?}",
        target.warnings
    );
}

#[test]
fn onepassword_example_reads_each_item_once() {
    let p = project_with("haloy.yaml", &seed("07-onepassword-secret-providers.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    let env = &plan.targets[0].spec.env;
    assert_eq!(env[0].value.expose(), "db-pw");
    assert_eq!(env[1].value.expose(), "sk_live");
    assert!(env.iter().all(|v| v.sensitive));
    let calls = p.op_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].contains("Database Credentials") && calls[0].contains("--vault Production"));
    assert!(calls[1].contains("Third-party APIs") && calls[1].contains("--vault API Services"));
}

#[test]
fn history_and_volume_examples_resolve() {
    let p = project_with("haloy.yaml", &seed("09-history-registry.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    assert_eq!(
        plan.targets[0].spec.image.history,
        History::Registry {
            count: 10,
            pattern: "v*".into()
        }
    );
    let p = project_with("haloy.yaml", &seed("10-history-none.yaml"));
    assert_eq!(
        p.plan("haloy.yaml", &[]).expect("plan").targets[0]
            .spec
            .image
            .history,
        History::None
    );

    let p = project_with("haloy.yaml", &seed("06-volumes.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    let kinds: Vec<bool> = plan.targets[0]
        .spec
        .volumes
        .iter()
        .map(|v| matches!(v.source, VolumeSource::Named(_)))
        .collect();
    assert_eq!(kinds, [true, true, false, false]);
    assert_eq!(plan.targets[0].spec.volumes[3].options, ["ro"]);
}

#[test]
fn hook_examples_keep_hooks_and_local_source() {
    let p = project_with("haloy.yaml", &seed("13-hooks-multi-target-global.yaml"));
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    assert_eq!(plan.global_pre_deploy.len(), 2);
    assert_eq!(plan.global_post_deploy, ["rm my-app.tar"]);
    assert_eq!(plan.targets[0].pre_deploy.len(), 2);
    assert!(
        plan.targets
            .iter()
            .all(|t| t.spec.image.source == ImageSource::Local)
    );
    assert!(plan.targets.iter().all(|t| t.build.is_none()));
}

#[test]
fn api_token_forms_resolve() {
    for (file, expected) in [
        (
            "15-api-token-legacy-string.yaml",
            "value-of-PRODUCTION_DEPLOY_TOKEN",
        ),
        (
            "16-api-token-from-env.yaml",
            "value-of-PRODUCTION_DEPLOY_TOKEN",
        ),
        ("17-api-token-direct-value.yaml", "your_token_here"),
        ("18-api-token-secret-provider.yaml", "tok-prod"),
    ] {
        let p = project_with("haloy.yaml", &seed(file));
        let plan = p
            .plan("haloy.yaml", &[])
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let token = plan.targets[0].api_token.as_ref().expect("token");
        assert_eq!(token.expose(), expected, "{file}");
    }
}
