//! Property: converting any `v1::AppSpec` a client could send, hostile strings and
//! numbers included, never panics, and a spec it accepts carries no space, line
//! break or control character in the values that reach HAProxy (app name, domains,
//! aliases, health check path).

use haloy_api::spec::AppSpec;
use haloy_api::v1;
use proptest::prelude::*;

/// Mostly valid-looking values, some with one hostile character inserted.
fn value(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    let hostile = prop::sample::select(vec![
        " ", "\n", "\r", "\t", "#", "\"", "'", "\\", "$", "\u{0}", "\u{85}", "\u{2028}", "é", "%",
        ",", ";", "*",
    ]);
    (
        prop::sample::select(valid.to_vec()),
        prop::option::weighted(0.25, (hostile, any::<prop::sample::Index>())),
    )
        .prop_map(|(base, insert)| {
            let mut text = base.to_string();
            if let Some((bad, at)) = insert {
                // The bases are ASCII, so every byte index is a character boundary.
                text.insert_str(at.index(text.len() + 1), bad);
            }
            text
        })
}

fn image() -> impl Strategy<Value = v1::ImageSpec> {
    (
        value(&["ghcr.io/acme/web", "nginx", "127.0.0.1:5000/team/app"]),
        value(&["v1", "latest", "1.2.3"]),
        0..4i32,
        0..5i32,
        any::<u32>(),
        value(&["v*", "*", "release-*"]),
    )
        .prop_map(
            |(repository, tag, source, strategy, count, pattern)| v1::ImageSpec {
                repository,
                tag,
                source,
                registry: None,
                history: Some(v1::History {
                    strategy,
                    count,
                    pattern,
                }),
            },
        )
}

fn spec() -> impl Strategy<Value = v1::AppSpec> {
    (
        value(&["web", "my-app", "a1"]),
        image(),
        0..4i32,
        prop::collection::vec(
            (
                value(&["example.com", "app.example.org"]),
                prop::collection::vec(value(&["www.example.com", "b.example.net"]), 0..3),
            ),
            0..3,
        ),
        any::<u32>(),
        any::<u32>(),
        value(&["/health", "/", "/up?x=1"]),
        prop::collection::vec((value(&["DB_URL", "PORT"]), value(&["x", "a b"])), 0..3),
        prop::collection::vec(
            (
                value(&["data", "/srv/data"]),
                value(&["/data", "/var/lib/app"]),
            ),
            0..2,
        ),
        value(&["", "bridge", "my-net"]),
    )
        .prop_map(
            |(name, image, strategy, domains, replicas, port, health, env, volumes, network)| {
                v1::AppSpec {
                    name,
                    image: Some(image),
                    deployment_strategy: strategy,
                    domains: domains
                        .into_iter()
                        .map(|(domain, aliases)| v1::Domain { domain, aliases })
                        .collect(),
                    acme_email: String::new(),
                    replicas,
                    port,
                    health_check_path: health,
                    env: env
                        .into_iter()
                        .map(|(name, value)| v1::EnvVar {
                            name,
                            value,
                            ..Default::default()
                        })
                        .collect(),
                    volumes: volumes
                        .into_iter()
                        .map(|(source, target)| v1::Volume {
                            source,
                            target,
                            options: Vec::new(),
                        })
                        .collect(),
                    network,
                    // Health check, rollout, resources, preset: their defaults.
                    ..Default::default()
                }
            },
        )
}

fn clean(what: &str, value: &str) {
    assert!(
        !value.chars().any(|c| c.is_whitespace() || c.is_control()),
        "an accepted {what} {value:?} has a space, line break or control character"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn accepted_specs_carry_nothing_haproxy_would_split(pb in spec()) {
        let Ok(spec) = AppSpec::try_from(pb) else {
            return Ok(());
        };
        clean("name", &spec.name);
        // Only what would split HAProxy's line: the health path rule lets other
        // control characters through (haloyd's driver refuses them before HAProxy).
        assert!(
            !spec.health_check_path.chars().any(char::is_whitespace),
            "an accepted health check path {:?} has a space or line break",
            spec.health_check_path
        );
        for domain in &spec.domains {
            clean("domain", &domain.canonical);
            for alias in &domain.aliases {
                clean("alias", alias);
            }
        }
    }
}

/// The property is not vacuous: a spec of valid bases converts.
#[test]
fn a_spec_of_valid_bases_converts() {
    let pb = v1::AppSpec {
        name: "web".into(),
        image: Some(v1::ImageSpec {
            repository: "ghcr.io/acme/web".into(),
            tag: "v1".into(),
            ..Default::default()
        }),
        domains: vec![v1::Domain {
            domain: "example.com".into(),
            aliases: vec!["www.example.com".into()],
        }],
        replicas: 1,
        port: 8080,
        health_check_path: "/up?x=1".into(),
        ..Default::default()
    };
    let spec = AppSpec::try_from(pb).unwrap();
    assert_eq!(spec.domains[0].aliases, ["www.example.com"]);
}
