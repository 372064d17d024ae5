//! Property: for any routes the driver accepts, hostile names, domains, health
//! paths and servers included, rendering never panics, every map line is exactly
//! `key value`, and the configuration has exactly the lines its structure calls for:
//! no value can split a line or add a word to a directive.

use std::net::{Ipv4Addr, SocketAddr};

use haloy_api::spec::DomainSpec;
use proptest::prelude::*;

use super::HaproxySettings;
use super::config::{Paths, render};
use super::routing::Routing;
use crate::proxy::{AppRoute, Backend};

/// Mostly valid-looking values, some with one hostile character inserted.
fn value(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    let hostile = prop::sample::select(vec![
        " ", "\n", "\r", "\t", "#", "\"", "'", "\\", "$", "\u{0}", "\u{85}", "é", "%", ",", ";",
        "{",
    ]);
    (
        prop::sample::select(valid.to_vec()),
        prop::option::of((hostile, any::<prop::sample::Index>())),
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

fn route() -> impl Strategy<Value = AppRoute> {
    (
        value(&["web", "api", "my-app"]),
        prop::collection::vec(
            (
                value(&["a.com", "app.example.org"]),
                prop::collection::vec(value(&["www.a.com", "b.example.net"]), 0..2),
            ),
            0..3,
        ),
        value(&["/health", "/", "/up?x=1&y=(2)"]),
        prop::collection::vec(
            (
                value(&["web-1", "web_2.b"]),
                any::<u32>(),
                any::<u16>(),
                any::<bool>(),
                any::<Option<u16>>(),
            ),
            0..3,
        ),
        // Any page at all: it must still render one map line per host.
        prop::option::of(any::<String>()),
    )
        .prop_map(
            |(app, domains, health_check_path, servers, maintenance)| AppRoute {
                app,
                domains: domains
                    .into_iter()
                    .map(|(canonical, aliases)| DomainSpec { canonical, aliases })
                    .collect(),
                health_check_path,
                maintenance,
                servers: servers
                    .into_iter()
                    .map(|(name, ip, port, draining, weight)| Backend {
                        name,
                        addr: SocketAddr::from((Ipv4Addr::from(ip), port)),
                        draining,
                        weight,
                    })
                    .collect(),
            },
        )
}

fn settings() -> HaproxySettings {
    HaproxySettings {
        dir: "/srv/haproxy-config".into(),
        bind_address: "127.0.0.1".parse().unwrap(),
        http_port: 8080,
        https_port: 8443,
        acme_socket: "/srv/acme.sock".into(),
        cert_dir: "/srv/cert-storage".into(),
        api: None,
        program: "haproxy".into(),
        in_container: false,
    }
}

fn check_map(name: &str, map: &str) {
    for line in map.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        assert!(
            words.len() == 2 && words.iter().all(|w| !w.is_empty()),
            "{name} line {line:?} is not `key value`"
        );
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || (c.is_whitespace() && c != ' ')),
            "{name} line {line:?}"
        );
    }
    assert!(map.is_empty() || map.ends_with('\n'));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn accepted_routes_render_line_for_line(routes in prop::collection::vec(route(), 1..3)) {
        let Ok(routing) = Routing::from_routes(&routes) else {
            return Ok(());
        };
        let settings = settings();
        let paths = Paths::new(&settings.dir);
        let files = render(&settings, &paths, &routing);
        check_map("hosts.map", &files.hosts_map);
        check_map("aliases.map", &files.aliases_map);
        check_map("https.map", &files.https_map);
        check_map("maintenance.map", &files.maintenance_map);
        let hosts: usize = routes
            .iter()
            .flat_map(|r| &r.domains)
            .map(|d| 1 + d.aliases.len())
            .sum();
        prop_assert_eq!(files.hosts_map.lines().count(), hosts);

        // Each app adds a blank line, `backend`, three directives and its servers.
        let base = render(&settings, &paths, &Routing::default()).config;
        let per_app: usize = routes.iter().map(|r| 5 + r.servers.len()).sum();
        prop_assert_eq!(files.config.lines().count(), base.lines().count() + per_app);
        for line in files.config.lines() {
            prop_assert!(!line.chars().any(|c| c.is_control()), "{:?}", line);
            let words = line.split_whitespace().count();
            if line.starts_with("    http-check send") {
                prop_assert_eq!(words, 6, "{:?}", line);
                // Comments, quotes, escapes and variables mean something to HAProxy.
                prop_assert!(!line.contains(['#', '"', '\'', '\\', '$']), "{:?}", line);
            } else if line.starts_with("    server ") && !line.contains("unix@") {
                let expected = if line.contains(" weight ") { 12 } else { 10 };
                prop_assert_eq!(words, expected, "{:?}", line);
            } else if line.starts_with("backend ") {
                prop_assert_eq!(words, 2, "{:?}", line);
            }
        }
    }
}

/// The property is not vacuous: routes of valid bases are accepted and render.
#[test]
fn routes_of_valid_bases_render() {
    let route = AppRoute {
        app: "web".into(),
        domains: vec![DomainSpec {
            canonical: "a.com".into(),
            aliases: vec!["www.a.com".into()],
        }],
        health_check_path: "/up?x=1&y=(2)".into(),
        maintenance: Some("<p>back\nsoon</p>".into()),
        servers: vec![Backend {
            name: "web-1".into(),
            addr: "10.0.0.2:8080".parse().unwrap(),
            draining: false,
            weight: Some(3),
        }],
    };
    let routing = Routing::from_routes(&[route]).unwrap();
    let settings = settings();
    let files = render(&settings, &Paths::new(&settings.dir), &routing);
    assert_eq!(files.hosts_map.lines().count(), 2);
    // The page, line breaks and all, is one word per host.
    assert_eq!(files.maintenance_map.lines().count(), 2);
    assert!(
        files
            .maintenance_map
            .lines()
            .all(|l| l.split(' ').count() == 2),
        "{}",
        files.maintenance_map
    );
}
