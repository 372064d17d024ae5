//! The traffic and health keys: `health_check`, `max_surge`, `drain_timeout`,
//! `stop_grace_period`, `resources`, `preset` and `protected` resolve to the spec
//! haloyd gets, inherit per target, and wrong values name the key and the fix.

mod support;

use std::time::Duration;

use haloy_api::spec::{DeploymentStrategy, HealthCheck, Preset, Resources, Rollout};
use support::{Project, internal_names};

const FULL: &str = r#"
name: web
image: {repository: web}
domains: [web.test]
acme_email: a@b.test
replicas: 3
health_check:
  path: /health
  interval: 500ms
  timeout: 2s
  retries: 4
  deadline: 1m
  start_period: 10s
  expected_status: 204
  min_ready_seconds: 3
max_surge: 1
drain_timeout: 45s
stop_grace_period: 20
resources: {memory: 512m, cpus: 0.5}
targets:
  small:
    resources: {memory: 128m}
  big: {}
"#;

#[test]
fn every_key_reaches_the_spec_and_targets_replace_blocks_wholesale() {
    let p = Project::new();
    p.write("haloy.yaml", FULL);
    let plan = p.plan("haloy.yaml", &[]).unwrap();
    let big = &plan
        .targets
        .iter()
        .find(|t| t.target.as_deref() == Some("big"))
        .unwrap()
        .spec;
    assert_eq!(big.health_check_path, "/health");
    assert_eq!(
        big.health_check,
        HealthCheck {
            interval: Some(Duration::from_millis(500)),
            timeout: Some(Duration::from_secs(2)),
            retries: Some(4),
            deadline: Some(Duration::from_secs(60)),
            start_period: Duration::from_secs(10),
            expected_status: Some(204),
            min_ready: Duration::from_secs(3),
        }
    );
    assert_eq!(
        big.rollout,
        Rollout {
            max_surge: Some(1),
            drain_timeout: Some(Duration::from_secs(45)),
            stop_grace_period: Some(Duration::from_secs(20)),
        }
    );
    assert_eq!(
        big.resources,
        Resources {
            memory_bytes: Some(512 << 20),
            nano_cpus: Some(500_000_000),
        }
    );
    let small = &plan
        .targets
        .iter()
        .find(|t| t.target.as_deref() == Some("small"))
        .unwrap()
        .spec;
    assert_eq!(
        small.resources,
        Resources {
            memory_bytes: Some(128 << 20),
            nano_cpus: None
        }
    );
}

#[test]
fn a_config_without_the_keys_keeps_todays_meaning() {
    let p = Project::new();
    p.write(
        "haloy.yaml",
        "name: web\nimage: {repository: web}\nhealth_check_path: /up\n",
    );
    let plan = p.plan("haloy.yaml", &[]).unwrap();
    let spec = &plan.targets[0].spec;
    assert_eq!(spec.health_check_path, "/up");
    assert_eq!(spec.health_check, HealthCheck::default());
    assert_eq!(spec.rollout, Rollout::default());
    assert_eq!(spec.resources, Resources::default());
    assert_eq!((spec.preset, spec.protected), (None, false));
}

#[test]
fn a_database_accessory_is_protected_and_replaced() {
    let p = Project::new();
    p.write(
        "haloy.yaml",
        "name: cache\nimage: {repository: redis}\nport: 6379\npreset: database\nvolumes: [\"cache-data:/data\"]\n",
    );
    let plan = p.plan("haloy.yaml", &[]).unwrap();
    let spec = &plan.targets[0].spec;
    assert_eq!(spec.preset, Some(Preset::Database));
    assert!(spec.is_protected());
    assert_eq!(spec.strategy(), DeploymentStrategy::Replace);
}

/// (config after `name: a\nimage: {repository: x}\n`, key path, words of the fix)
const WRONG: &[(&str, &str, &str)] = &[
    (
        "health_check: {interval: soon}\n",
        "health_check.interval",
        "\"30s\"",
    ),
    (
        "health_check: {retries: 0}\n",
        "health_check.retries",
        "from 1 to 1000",
    ),
    (
        "health_check: {expected_status: 700}\n",
        "health_check.expected_status",
        "from 100 to 599",
    ),
    (
        "health_check: {pth: /x}\n",
        "health_check",
        "did you mean `path`?",
    ),
    (
        "health_check: {path: health}\n",
        "health_check.path",
        "start it with '/'",
    ),
    (
        "health_check_path: /a\nhealth_check: {path: /b}\n",
        "health_check_path",
        "keep one of them",
    ),
    (
        "health_check: {deadline: [1]}\n",
        "health_check.deadline",
        "a duration such as",
    ),
    (
        "max_surge: 0\n",
        "max_surge",
        "from 1 to the number of replicas",
    ),
    (
        "replicas: 2\nmax_surge: 3\n",
        "max_surge",
        "at most the number of replicas",
    ),
    ("drain_timeout: 2d\n", "drain_timeout", "\"24h\""),
    (
        "stop_grace_period: -1\n",
        "stop_grace_period",
        "from 0 to 86400",
    ),
    (
        "resources: {memory: 512x}\n",
        "resources.memory",
        "\"512m\"",
    ),
    (
        "resources: {memory: 1m}\n",
        "resources.memory",
        "at least \"6m\"",
    ),
    (
        "resources: {cpus: 0}\n",
        "resources.cpus",
        "positive number",
    ),
    ("resources: {cpu: 1}\n", "resources", "did you mean `cpus`?"),
    ("preset: db\n", "preset", "use one of: database, service"),
    (
        "preset: database\nprotected: false\n",
        "protected",
        "remove `protected: false`",
    ),
    (
        "preset: service\ndeployment_strategy: rolling\n",
        "deployment_strategy",
        "remove deployment_strategy",
    ),
    (
        "preset: service\nreplicas: 2\n",
        "replicas",
        "remove replicas",
    ),
    ("protected: maybe\n", "protected", "`true` or `false`"),
    ("maxsurge: 1\n", "", "did you mean `max_surge`?"),
    (
        "targets:\n  prod:\n    health_check: {timeout: x}\n",
        "targets.prod.health_check.timeout",
        "\"500ms\"",
    ),
];

#[test]
fn wrong_values_name_the_key_and_the_fix() {
    let mut failures = Vec::new();
    for (rest, path, fix) in WRONG {
        let yaml = format!("name: a\nimage: {{repository: x}}\n{rest}");
        let p = Project::new();
        let message = p.error_for(&yaml);
        let names_path = path.is_empty() || message.contains(&format!(": {path}: "));
        let internal = internal_names(&message);
        if !names_path || !message.contains(fix) || !internal.is_empty() {
            failures.push(format!(
                "{yaml}expected {path:?} and {fix:?}, got:\n{message}\n"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
