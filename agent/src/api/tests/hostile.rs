//! Hostile Deploy requests through the real gRPC service: each is refused with
//! INVALID_ARGUMENT naming the field, and nothing reaches Docker.

use std::path::Path;

use haloy_api::v1::{self, image_source};
use tonic::Code;

use super::{TOKEN, deploy, rig, rig_with, spec, start};
use crate::protection::{Protection, ProtectionConfig};

type Mutation = fn(&mut v1::AppSpec);

fn volume(source: &str, target: &str, options: &[&str]) -> v1::Volume {
    v1::Volume {
        source: source.into(),
        target: target.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

fn env(name: &str, value: &str) -> v1::EnvVar {
    v1::EnvVar {
        name: name.into(),
        value: value.into(),
        plain: false,
    }
}

fn registry(server: &str, password: &str) -> Option<v1::RegistryAuth> {
    Some(v1::RegistryAuth {
        server: server.into(),
        username: "me".into(),
        password: password.into(),
    })
}

fn history_pattern(pattern: &str) -> Option<v1::History> {
    Some(v1::History {
        strategy: v1::HistoryStrategy::Registry.into(),
        count: 3,
        pattern: pattern.into(),
    })
}

/// (what, how the spec is changed, the field the error must name, a word of why)
const CASES: &[(&str, Mutation, &str, &str)] = &[
    (
        "the host's root",
        |s| s.volumes = vec![volume("/", "/host", &[])],
        "volumes[0]",
        "whole file system",
    ),
    (
        "Docker's socket",
        |s| s.volumes = vec![volume("/var/run/docker.sock", "/var/run/docker.sock", &[])],
        "volumes[0]",
        "Docker",
    ),
    (
        "what holds Docker's socket",
        |s| s.volumes = vec![volume("/run", "/r", &["ro"])],
        "volumes[0]",
        "Docker",
    ),
    (
        "haloyd's config",
        |s| s.volumes = vec![volume("/etc/haloy", "/cfg", &["ro"])],
        "volumes[0]",
        "API token",
    ),
    (
        "haloyd's data",
        |s| s.volumes = vec![volume("/var/lib/haloy/db", "/db", &[])],
        "volumes[0]",
        "database",
    ),
    (
        "/proc",
        |s| s.volumes = vec![volume("/proc", "/p", &["ro"])],
        "volumes[0]",
        "processes",
    ),
    (
        "a writable /etc",
        |s| s.volumes = vec![volume("/etc/cron.d", "/cron", &[])],
        "volumes[0]",
        "/etc",
    ),
    (
        "mount propagation",
        |s| s.volumes = vec![volume("/srv/data", "/data", &["rshared"])],
        "spec.volumes[0]",
        "propagation",
    ),
    (
        "the host network",
        |s| s.network = "host".into(),
        "network",
        "allow_networks",
    ),
    (
        "no network",
        |s| s.network = "none".into(),
        "network",
        "allow_networks",
    ),
    (
        "another container's network",
        |s| s.network = "container:db".into(),
        "spec.network",
        "network",
    ),
    (
        "a NUL in the app name",
        |s| s.name = "web\0x".into(),
        "spec.name",
        "app name",
    ),
    (
        "an endless app name",
        |s| s.name = "a".repeat(10_000),
        "spec.name",
        "app name",
    ),
    (
        "a line break in an env name",
        |s| s.env = vec![env("A\nB", "x")],
        "spec.env[0].name",
        "environment variable",
    ),
    (
        "a NUL in an env value",
        |s| s.env = vec![env("A", "x\0y")],
        "spec.env[0].value",
        "NUL",
    ),
    (
        "an oversize env value",
        |s| s.env = vec![env("A", &"x".repeat(200_000))],
        "spec.env[0].value",
        "bytes long",
    ),
    (
        "too many env variables",
        |s| s.env = (0..300).map(|i| env(&format!("V{i}"), "x")).collect(),
        "spec.env",
        "more than",
    ),
    (
        "a line break in a domain",
        |s| {
            s.domains = vec![v1::Domain {
                domain: "web.test\nx".into(),
                aliases: vec![],
            }]
        },
        "spec.domains[0].domain",
        "domain",
    ),
    (
        "an endless domain",
        |s| {
            s.domains = vec![v1::Domain {
                domain: format!("{}.test", "a".repeat(300)),
                aliases: vec![],
            }]
        },
        "spec.domains[0].domain",
        "domain",
    ),
    (
        "too many aliases",
        |s| {
            s.domains = vec![v1::Domain {
                domain: "web.test".into(),
                aliases: (0..300).map(|i| format!("a{i}.test")).collect(),
            }]
        },
        "spec.domains[0].aliases",
        "more than",
    ),
    (
        "a line break in the health path",
        |s| s.health_check_path = "/h\nserver x 1.2.3.4:80".into(),
        "spec.health_check_path",
        "contains",
    ),
    (
        "a comment in the health path",
        |s| s.health_check_path = "/h#x".into(),
        "spec.health_check_path",
        "contains",
    ),
    (
        "an endless health path",
        |s| s.health_check_path = format!("/{}", "a".repeat(5000)),
        "spec.health_check_path",
        "characters long",
    ),
    (
        "a line break in a volume",
        |s| s.volumes = vec![volume("/srv/a\nb", "/data", &[])],
        "spec.volumes[0]",
        "control characters",
    ),
    (
        "an endless volume",
        |s| s.volumes = vec![volume(&format!("/{}", "a".repeat(5000)), "/data", &[])],
        "spec.volumes[0]",
        "too long",
    ),
    (
        "a line break in the repository",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.repository = "web\nx".into()
            }
        },
        "spec.image.repository",
        "repository",
    ),
    (
        "an endless repository",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.repository = "a".repeat(10_000)
            }
        },
        "spec.image.repository",
        "repository",
    ),
    (
        "a NUL in the tag",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.tag = "v1\0".into()
            }
        },
        "spec.image.tag",
        "tag",
    ),
    (
        "a pattern of a million stars",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.tag = "v1".into();
                i.history = history_pattern(&"*".repeat(1_000_000))
            }
        },
        "spec.image.history.pattern",
        "too long",
    ),
    (
        "a line break in a pattern",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.tag = "v1".into();
                i.history = history_pattern("v*\n")
            }
        },
        "spec.image.history.pattern",
        "control",
    ),
    (
        "a registry host with a path",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.registry = registry("evil.test/x", "pw")
            }
        },
        "spec.image.registry.server",
        "registry host",
    ),
    (
        "a line break in a password",
        |s| {
            if let Some(i) = s.image.as_mut() {
                i.registry = registry("ghcr.io", "pw\r\nX-Evil: 1")
            }
        },
        "spec.image.registry.password",
        "control",
    ),
    (
        "a NUL in the ACME address",
        |s| s.acme_email = "me\0@example.com".into(),
        "spec.acme_email",
        "e-mail",
    ),
];

#[tokio::test]
async fn hostile_deploys_are_refused_naming_the_field() {
    let protection = Protection::new(
        &ProtectionConfig::default(),
        Path::new("/etc/haloy"),
        Path::new("/var/lib/haloy"),
    );
    let rig = rig_with(None, Some(protection)).await;
    for (what, mutate, field, why) in CASES {
        let mut hostile = v1::AppSpec::from(spec("v1"));
        mutate(&mut hostile);
        let mut request = start(spec("v1"), image_source::Source::Pull(v1::Pull {}));
        if let Some(v1::deploy_request::Message::Start(start)) = &mut request.message {
            start.spec = Some(hostile);
        }
        // Not expect_err: an accepted request's events would quote the whole input.
        let Err(err) = deploy(&rig, vec![request]).await else {
            panic!("{what} was accepted");
        };
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{what}: {}",
            err.message()
        );
        let message = err.message();
        assert!(message.contains(field), "{what}: no {field} in {message}");
        assert!(message.contains(why), "{what}: no {why:?} in {message}");
        assert!(message.len() < 1024, "{what}: the error echoes the input");
    }
    assert!(
        rig.runtime.log.calls().is_empty(),
        "a refused deploy reached Docker: {:?}",
        rig.runtime.log.calls()
    );
}

#[tokio::test]
async fn health_and_reflection_need_the_token_too() {
    let rig = rig().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(rig.channel.clone());
    let denied = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
            rig.channel.clone(),
        );
    let list = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let denied = reflection
        .server_reflection_info(tokio_stream::iter(vec![list]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    // With the token the same health call answers.
    let mut client = rig.client(Some(TOKEN));
    assert!(client.version(v1::VersionRequest {}).await.is_ok());
}
