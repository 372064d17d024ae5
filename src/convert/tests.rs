//! Round trips and server-side re-validation of prost messages.

use std::time::Duration;

use super::*;
use crate::spec::{HealthCheck, Preset, Resources, Rollout};

fn sample() -> AppSpec {
    AppSpec {
        name: "my-app".into(),
        image: ImageSpec {
            repository: "ghcr.io/org/my-app".into(),
            tag: "v1.2.3".into(),
            source: ImageSource::Registry,
            registry: Some(RegistryAuth {
                server: "ghcr.io".into(),
                username: Secret::new("me"),
                password: Secret::new("hunter2"),
            }),
            history: History::Registry {
                count: 10,
                pattern: "v*".into(),
            },
        },
        deployment_strategy: DeploymentStrategy::Replace,
        domains: vec![DomainSpec {
            canonical: "my-app.com".into(),
            aliases: vec!["www.my-app.com".into()],
        }],
        acme_email: Some("you@email.com".into()),
        replicas: 3,
        port: 3000,
        health_check_path: "/health".into(),
        env: vec![EnvVar {
            name: "API_KEY".into(),
            value: Secret::new("s3cret"),
            sensitive: true,
        }],
        volumes: vec![rules::volume("/var/data:/data:ro").unwrap()],
        network: Some("backend".into()),
        health_check: HealthCheck {
            interval: Some(Duration::from_millis(200)),
            timeout: Some(Duration::from_secs(2)),
            retries: Some(5),
            deadline: Some(Duration::from_secs(90)),
            start_period: Duration::from_secs(3),
            expected_status: Some(204),
            min_ready: Duration::from_secs(1),
        },
        rollout: Rollout {
            max_surge: Some(1),
            drain_timeout: Some(Duration::from_secs(5)),
            stop_grace_period: Some(Duration::from_secs(20)),
        },
        resources: Resources {
            memory_bytes: Some(512 << 20),
            nano_cpus: Some(500_000_000),
        },
        preset: Some(Preset::Database),
        protected: true,
    }
}

#[test]
fn a_client_that_omits_the_traffic_fields_gets_todays_behaviour() {
    let mut pb = v1::AppSpec::from(sample());
    pb.health_check = None;
    pb.rollout = None;
    pb.resources = None;
    pb.preset = 0;
    pb.protected = false;
    let spec = AppSpec::try_from(pb).unwrap();
    assert_eq!(spec.health_check, HealthCheck::default());
    assert_eq!(spec.rollout, Rollout::default());
    assert_eq!(spec.resources, Resources::default());
    assert!(!spec.is_protected());
    assert_eq!(spec.strategy(), DeploymentStrategy::Replace);
}

#[test]
fn a_database_is_protected_and_replaced_whatever_else_the_spec_says() {
    let mut spec = sample();
    spec.protected = false;
    spec.deployment_strategy = DeploymentStrategy::Rolling;
    assert!(spec.is_protected());
    assert_eq!(spec.strategy(), DeploymentStrategy::Replace);
    let mut pb = v1::AppSpec::from(spec);
    pb.preset = 9;
    assert_eq!(AppSpec::try_from(pb).unwrap_err().field, "spec.preset");
}

#[test]
fn an_env_value_is_secret_unless_the_client_says_it_is_plain() {
    let mut pb = v1::AppSpec::from(sample());
    pb.env = vec![
        v1::EnvVar {
            name: "FROM_GRPCURL".into(),
            value: "hunter2".into(),
            ..Default::default()
        },
        v1::EnvVar {
            name: "LOG_LEVEL".into(),
            value: "debug".into(),
            plain: true,
        },
    ];
    let spec = AppSpec::try_from(pb).unwrap();
    let secret: Vec<bool> = spec.env.iter().map(|v| v.sensitive).collect();
    assert_eq!(secret, [true, false]);
}

#[test]
fn app_spec_round_trips() {
    let spec = sample();
    let pb = v1::AppSpec::from(spec.clone());
    assert_eq!(
        pb.image
            .as_ref()
            .unwrap()
            .registry
            .as_ref()
            .unwrap()
            .password,
        "hunter2"
    );
    assert_eq!(AppSpec::try_from(pb).unwrap(), spec);
}

#[test]
fn defaults_fill_empty_fields() {
    let mut pb = v1::AppSpec::from(sample());
    pb.health_check_path.clear();
    pb.network.clear();
    pb.image.as_mut().unwrap().tag = "v2".into();
    pb.image.as_mut().unwrap().history = None;
    let spec = AppSpec::try_from(pb).unwrap();
    assert_eq!(spec.health_check_path, "/");
    assert_eq!(spec.network_or_default(), "haloy-public");
    assert_eq!(spec.image.history, History::Local { count: 5 });
}

/// The contract grpcurl users rely on: a Deploy that names only the app, its image
/// and a domain gets exactly what a haloy.yaml with only those keys gets.
#[test]
fn left_out_numbers_and_path_take_the_configs_defaults() {
    let pb = v1::AppSpec {
        name: "web".into(),
        image: Some(v1::ImageSpec {
            repository: "web".into(),
            tag: "v1".into(),
            ..Default::default()
        }),
        domains: vec![v1::Domain {
            domain: "web.example.com".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let spec = AppSpec::try_from(pb).unwrap();
    assert_eq!(spec.replicas, 1);
    assert_eq!(spec.port, 8080);
    assert_eq!(spec.health_check_path, "/");
    let expected = AppSpec {
        domains: vec![DomainSpec {
            canonical: "web.example.com".into(),
            aliases: vec![],
        }],
        ..AppSpec::new(
            "web",
            ImageSpec {
                history: History::default(),
                ..ImageSpec::registry("web", "v1")
            },
        )
    };
    assert_eq!(spec, expected);
}

#[test]
fn server_rejects_what_the_client_should_have_caught() {
    type Breakage = Box<dyn Fn(&mut v1::AppSpec)>;
    let cases: Vec<(&str, Breakage)> = vec![
        ("spec.name", Box::new(|p| p.name = "bad name".into())),
        ("spec.replicas", Box::new(|p| p.replicas = 101)),
        ("spec.port", Box::new(|p| p.port = 70000)),
        (
            "spec.volumes[0]",
            Box::new(|p| p.volumes[0].source = "./data".into()),
        ),
        (
            "spec.domains[0].domain",
            Box::new(|p| p.domains[0].domain = "a b".into()),
        ),
        (
            "spec.domains",
            Box::new(|p| p.domains[0].aliases = vec!["my-app.com".into()]),
        ),
        (
            "spec.env[0].name",
            Box::new(|p| p.env[0].name = "1BAD".into()),
        ),
        (
            "spec.acme_email",
            Box::new(|p| p.acme_email = "nobody".into()),
        ),
        ("spec.image", Box::new(|p| p.image = None)),
        (
            "spec.image.tag",
            Box::new(|p| p.image.as_mut().unwrap().tag = "latest".into()),
        ),
        (
            "spec.health_check_path",
            Box::new(|p| p.health_check_path = "health".into()),
        ),
    ];
    for (field, break_it) in cases {
        let mut pb = v1::AppSpec::from(sample());
        break_it(&mut pb);
        let err = AppSpec::try_from(pb).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let text = format!("{:?}", sample());
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
