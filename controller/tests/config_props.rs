//! Property: a config with hostile values (spaces, line breaks, quotes, `#`, `$`,
//! control characters) in the fields that reach HAProxy, in YAML, JSON or TOML,
//! never panics the loader or the planner, and a plan it accepts carries no line
//! break, space or control character in the app name, domains or health check path.
//! Arbitrary text in each format never panics the parser either.

use std::collections::HashMap;

use haloy_controller::config::ConfigFile;
use haloy_controller::config::format::Format;
use haloy_controller::config::load::parse_config;
use proptest::prelude::*;

/// Mostly valid-looking values, some with one hostile character inserted.
fn value(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    let hostile = prop::sample::select(vec![
        " ", "\n", "\r", "\t", "#", "\"", "'", "\\", "$", "\u{0}", "\u{7f}", "é", "%", "{", ",",
        ";",
    ]);
    (
        prop::sample::select(valid.to_vec()),
        prop::option::weighted(0.25, (hostile, any::<prop::sample::Index>())),
    )
        .prop_map(|(base, insert)| {
            let mut text = base.to_string();
            if let Some((bad, at)) = insert {
                let at = at.index(text.len() + 1);
                // Inserting at a byte index: the bases are ASCII.
                text.insert_str(at, bad);
            }
            text
        })
}

#[derive(Debug, Clone)]
struct Hostile {
    name: String,
    domain: String,
    alias: String,
    health: String,
}

fn hostile() -> impl Strategy<Value = Hostile> {
    (
        value(&["web", "my-app", "a1"]),
        value(&["example.com", "app.example.org", "a.b.c.dev"]),
        value(&["www.example.com", "alias.example.net"]),
        value(&["/health", "/", "/up?x=1", "/a/b-c_d.e"]),
    )
        .prop_map(|(name, domain, alias, health)| Hostile {
            name,
            domain,
            alias,
            health,
        })
}

fn as_value(h: &Hostile) -> serde_json::Value {
    serde_json::json!({
        "name": h.name,
        "server": "haloy.example.com",
        "image": {"repository": "ghcr.io/acme/web", "tag": "v1"},
        "domains": [{"domain": h.domain, "aliases": [h.alias]}],
        "health_check_path": h.health,
    })
}

fn written(value: &serde_json::Value, format: Format) -> Option<(String, &'static str)> {
    match format {
        Format::Yaml => serde_yaml::to_string(value).ok().map(|t| (t, "haloy.yaml")),
        Format::Json => serde_json::to_string_pretty(value)
            .ok()
            .map(|t| (t, "haloy.json")),
        Format::Toml => toml::to_string(value).ok().map(|t| (t, "haloy.toml")),
    }
}

fn clean(what: &str, value: &str) {
    assert!(
        !value.chars().any(|c| c.is_whitespace() || c.is_control()),
        "an accepted {what} {value:?} has a space, line break or control character"
    );
}

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![Format::Yaml, Format::Json, Format::Toml])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn accepted_configs_carry_nothing_haproxy_would_split(h in hostile(), format in format()) {
        let Some((text, file_name)) = written(&as_value(&h), format) else {
            return Ok(());
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file_name), &text).unwrap();
        let Ok(file) = ConfigFile::load(Some(dir.path()), dir.path()) else {
            return Ok(());
        };
        let Ok(plan) = file.plan(&[None], haloy_controller::Needs::Everything, &HashMap::new(), dir.path(), None) else {
            return Ok(());
        };
        for target in &plan.targets {
            let spec = &target.spec;
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

    #[test]
    fn arbitrary_text_never_panics_the_parser(
        text in prop::collection::vec(any::<char>(), 0..200)
            .prop_map(|chars| chars.into_iter().collect::<String>()),
        format in format(),
    ) {
        let _ = parse_config(&text, format);
    }
}

/// The property above is not vacuous: the values without a hostile character plan.
#[test]
fn the_valid_bases_plan_in_every_format() {
    let h = Hostile {
        name: "web".into(),
        domain: "example.com".into(),
        alias: "www.example.com".into(),
        health: "/up?x=1".into(),
    };
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let (text, file_name) = written(&as_value(&h), format).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file_name), &text).unwrap();
        let file = ConfigFile::load(Some(dir.path()), dir.path()).unwrap();
        let plan = file
            .plan(
                &[None],
                haloy_controller::Needs::Everything,
                &HashMap::new(),
                dir.path(),
                None,
            )
            .unwrap();
        assert_eq!(plan.targets[0].spec.health_check_path, "/up?x=1");
    }
}
