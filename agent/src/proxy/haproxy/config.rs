//! Renders `haproxy.cfg`, `hosts.map`, `aliases.map`, `https.map`,
//! `maintenance.map`, the certificates' `certs.list` and the maintenance page's
//! Lua service from the desired state.
//!
//! The files always describe everything that runs, runtime-added servers included:
//! HAProxy forgets runtime changes on reload, and a restart after a crash starts from
//! these files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::HaproxySettings;
use super::routing::{Routing, backend_name};
use crate::proxy::ProxyError;

/// Health check timing for every app server. Written on each `server` line and each
/// `add server` command: runtime-added servers do not inherit `default-server`.
pub(super) const CHECK_PARAMS: &str = "check inter 2s rise 1 fall 2";

/// The backend answering `/.well-known/acme-challenge/` from haloyd's unix socket.
pub(super) const ACME_BACKEND: &str = "haloy_acme";
/// The backend for hosts no app claims.
pub(super) const UNKNOWN_HOST_BACKEND: &str = "haloy_unknown_host";
/// The backend passing the API domain's gRPC (HTTP/2) to haloyd.
pub(super) const API_BACKEND: &str = "haloy_api";

/// Where HAProxy's files live inside the settings' directory.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub config: PathBuf,
    pub hosts_map: PathBuf,
    pub aliases_map: PathBuf,
    /// Hosts that have a certificate: plain HTTP for them redirects to HTTPS.
    pub https_map: PathBuf,
    /// The certificates the HTTPS frontend serves, the default one first.
    pub crt_list: PathBuf,
    /// Hosts of apps in maintenance → their page (base64).
    pub maintenance_map: PathBuf,
    /// The Lua service answering with the maintenance page.
    pub maintenance_lua: PathBuf,
    pub master_socket: PathBuf,
    pub admin_socket: PathBuf,
    /// haloyd's datagram socket where HAProxy logs each request (`haloy-request %b %Ta %ST`).
    pub request_log: PathBuf,
    pub pid_file: PathBuf,
}

impl Paths {
    pub fn new(dir: &Path) -> Self {
        Self {
            config: dir.join("haproxy.cfg"),
            hosts_map: dir.join("hosts.map"),
            aliases_map: dir.join("aliases.map"),
            https_map: dir.join("https.map"),
            crt_list: dir.join("certs.list"),
            maintenance_map: dir.join("maintenance.map"),
            maintenance_lua: dir.join("maintenance.lua"),
            master_socket: dir.join("master.sock"),
            admin_socket: dir.join("admin.sock"),
            request_log: dir.join("requests.sock"),
            pid_file: dir.join("haproxy.pid"),
        }
    }
}

/// The files, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Files {
    pub config: String,
    pub hosts_map: String,
    pub aliases_map: String,
    pub https_map: String,
    pub maintenance_map: String,
    pub crt_list: String,
}

/// Answers with the page in `txn.maintenance` (base64), status 503. A Lua service
/// rather than `http-request return ... lf-string`: log-format output percent-encodes
/// line breaks, and a page must arrive byte for byte.
pub(super) const MAINTENANCE_LUA: &str = r#"-- Written by haloyd: answers hosts of apps in maintenance with their page.
core.register_service("haloy_maintenance", "http", function(applet)
    local page = applet.c:b64dec(applet:get_var("txn.maintenance") or "") or ""
    if page == "" then
        page = "This site is down for maintenance.\n"
    end
    applet:set_status(503)
    applet:add_header("content-type", "text/html; charset=utf-8")
    applet:add_header("cache-control", "no-store")
    applet:add_header("retry-after", "120")
    applet:add_header("content-length", tostring(string.len(page)))
    applet:start_response()
    applet:send(page)
end)
"#;

pub(super) fn render(settings: &HaproxySettings, paths: &Paths, routing: &Routing) -> Files {
    let mut crt_list = format!("{}\n", settings.default_cert().display());
    for cert in routing.certificates.values() {
        crt_list.push_str(&format!("{}\n", cert.path.display()));
    }
    Files {
        config: render_config(settings, paths, routing),
        hosts_map: render_map(routing.hosts_map()),
        aliases_map: render_map(routing.aliases_map()),
        https_map: render_map(routing.https_map()),
        maintenance_map: render_map(routing.maintenance_map()),
        crt_list,
    }
}

fn render_map(entries: impl IntoIterator<Item = (String, String)>) -> String {
    entries
        .into_iter()
        .map(|(key, value)| format!("{key} {value}\n"))
        .collect()
}

// `write!` into a String cannot fail; the results are discarded on purpose below.
fn render_config(settings: &HaproxySettings, paths: &Paths, routing: &Routing) -> String {
    let hosts = paths.hosts_map.display();
    let aliases = paths.aliases_map.display();
    let https_hosts = paths.https_map.display();
    let maintenance = paths.maintenance_map.display();
    let bind = std::net::SocketAddr::new(settings.bind_address, settings.http_port);
    let bind_https = std::net::SocketAddr::new(settings.bind_address, settings.https_port);
    // Redirects name the HTTPS port unless it is the default one.
    let https_port = crate::config::https_port_suffix(settings.https_port);
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "\
# Written by haloyd after every routing change; edits by hand are lost.
global
    stats socket {admin} mode 600 level admin expose-fd listeners
    lua-load {lua}
    stats timeout 30s
    # old workers keep serving their connections after a reload, for at most this long
    hard-stop-after 5m

defaults
    mode http
    # one datagram per request to haloyd (response-time histograms); dropped, never
    # waited for, when haloyd does not read
    log {request_log} format raw local0 info
    log-format \"{marker} %b %Ta %ST\"
    option forwardfor
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 30s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 30s
    timeout tunnel 1h
    timeout check 5s

frontend http
    bind {bind}
    acl acme_challenge path_beg /.well-known/acme-challenge/
    http-request set-header X-Forwarded-Proto http
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request redirect code 301 location https://%[var(txn.host)]{https_port}%[pathq] if {{ var(txn.host),map({https_hosts}) -m found }} !acme_challenge
    http-request set-var(txn.canonical) var(txn.host),map({aliases})
    http-request redirect code 301 location http://%[var(txn.canonical)]%[pathq] if {{ var(txn.canonical) -m found }} !acme_challenge
    http-request set-var(txn.maintenance) var(txn.host),map({maintenance})
    http-request use-service lua.haloy_maintenance if {{ var(txn.maintenance) -m found }} !acme_challenge
    use_backend {ACME_BACKEND} if acme_challenge
    use_backend %[var(txn.host),map({hosts})]
    default_backend {UNKNOWN_HOST_BACKEND}

frontend https
    bind {bind_https} ssl crt-list {crt_list} alpn h2,http/1.1
    # gRPC streams of the API may stay quiet for long; requests still must arrive quickly
    timeout client 1h
    http-request set-header X-Forwarded-Proto https
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-var(txn.canonical) var(txn.host),map({aliases})
    http-request redirect code 301 location https://%[var(txn.canonical)]{https_port}%[pathq] if {{ var(txn.canonical) -m found }}
    http-request set-var(txn.maintenance) var(txn.host),map({maintenance})
    http-request use-service lua.haloy_maintenance if {{ var(txn.maintenance) -m found }}
{api_route}    use_backend %[var(txn.host),map({hosts})]
    default_backend {UNKNOWN_HOST_BACKEND}

backend {ACME_BACKEND}
    server acme unix@{acme}

backend {UNKNOWN_HOST_BACKEND}
    http-request return status 404 content-type text/plain string \"no app is deployed for this domain\"
",
        admin = paths.admin_socket.display(),
        request_log = paths.request_log.display(),
        marker = crate::metrics::requests::MARKER,
        lua = paths.maintenance_lua.display(),
        acme = settings.acme_socket.display(),
        crt_list = paths.crt_list.display(),
        api_route = match &settings.api {
            Some(api) => format!(
                "    use_backend {API_BACKEND} if {{ var(txn.host) -m str {} }}\n",
                api.domain
            ),
            None => String::new(),
        },
    );
    if let Some(api) = &settings.api {
        let _ = write!(
            cfg,
            "
backend {API_BACKEND}
    timeout server 1h
    server haloyd 127.0.0.1:{} proto h2
",
            api.port
        );
    }
    for (app, spec) in &routing.apps {
        let _ = write!(
            cfg,
            "
backend {backend}
    balance roundrobin
    option httpchk
    http-check send meth GET uri {path}
",
            backend = backend_name(app),
            path = spec.health_check_path,
        );
        for server in &spec.servers {
            // A draining server comes back from a reload with weight 0 (no new
            // requests) until the driver puts it in drain again.
            let weight = match (server.draining, server.weight) {
                (true, _) => " weight 0".to_string(),
                (false, 1) => String::new(),
                (false, w) => format!(" weight {w}"),
            };
            let _ = writeln!(
                cfg,
                "    server {} {} {CHECK_PARAMS}{weight}",
                server.name, server.addr
            );
        }
    }
    cfg
}

/// The configuration without the app backends' `server` lines: what a reload is
/// needed for. Servers and maps change at runtime, everything else needs a reload.
pub(super) fn skeleton(config: &str) -> String {
    let mut in_app_backend = false;
    let mut kept = String::new();
    for line in config.lines() {
        if !line.starts_with(' ') {
            in_app_backend = line.starts_with("backend app_");
        } else if in_app_backend && line.trim_start().starts_with("server ") {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// A path that goes into the configuration as a bare word, or onto HAProxy's command
/// line (where `-S` splits on commas): refuse anything that could be parsed as more.
pub(super) fn check_path(what: &'static str, path: &Path) -> Result<(), ProxyError> {
    let text = path.to_str().unwrap_or("\u{0}");
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._+@~".contains(c);
    if !text.chars().all(allowed) {
        return Err(ProxyError::UnsafePath {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::routing::{App, Server};
    use super::*;
    use haloy_api::spec::DomainSpec;

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

    fn routing(draining: bool, path: &str) -> Routing {
        let mut routing = Routing::default();
        routing.apps.insert(
            "web".into(),
            App {
                domains: vec![DomainSpec {
                    canonical: "a.com".into(),
                    aliases: vec!["www.a.com".into()],
                }],
                health_check_path: path.into(),
                maintenance: None,
                servers: vec![Server {
                    name: "web-1".into(),
                    addr: "10.0.0.2:8080".parse().unwrap(),
                    draining,
                    weight: 1,
                }],
            },
        );
        routing
    }

    #[test]
    fn renders_backends_servers_and_maps() {
        let settings = settings();
        let files = render(&settings, &Paths::new(&settings.dir), &routing(true, "/up"));
        let cfg = &files.config;
        assert!(cfg.contains("    bind 127.0.0.1:8080\n"), "{cfg}");
        assert!(cfg.contains("map(/srv/haproxy-config/hosts.map)"), "{cfg}");
        assert!(
            cfg.contains("backend app_web\n    balance roundrobin\n"),
            "{cfg}"
        );
        assert!(cfg.contains("uri /up\n"), "{cfg}");
        assert!(
            cfg.contains("    server web-1 10.0.0.2:8080 check inter 2s rise 1 fall 2 weight 0\n")
        );
        assert!(
            cfg.contains("    server acme unix@/srv/acme.sock\n"),
            "{cfg}"
        );
        assert_eq!(files.hosts_map, "a.com app_web\nwww.a.com app_web\n");
        assert_eq!(files.aliases_map, "www.a.com a.com\n");
    }

    #[test]
    fn maintenance_answers_after_acme_and_before_routing_and_needs_no_reload() {
        let settings = settings();
        let paths = Paths::new(&settings.dir);
        let mut down = routing(false, "/up");
        down.apps.get_mut("web").unwrap().maintenance = Some("<p>later</p>\n".into());
        let files = render(&settings, &paths, &down);
        // "<p>later</p>\n" in base64, for the canonical domain and its alias.
        assert_eq!(
            files.maintenance_map,
            "a.com PHA+bGF0ZXI8L3A+Cg==\nwww.a.com PHA+bGF0ZXI8L3A+Cg==\n"
        );
        let http = files.config.split("frontend https").next().unwrap();
        let acme = http.find("acl acme_challenge").unwrap();
        let service = http
            .find("use-service lua.haloy_maintenance if { var(txn.maintenance) -m found } !acme_challenge")
            .unwrap();
        let routed = http.find("use_backend %[var(txn.host)").unwrap();
        assert!(acme < service && service < routed, "{http}");
        assert!(
            files
                .config
                .contains("lua-load /srv/haproxy-config/maintenance.lua\n")
        );
        let up = render(&settings, &paths, &routing(false, "/up"));
        assert_eq!(up.maintenance_map, "");
        assert_eq!(skeleton(&up.config), skeleton(&files.config));
    }

    #[test]
    fn skeleton_ignores_app_servers_only() {
        let settings = settings();
        let paths = Paths::new(&settings.dir);
        let with = render(&settings, &paths, &routing(false, "/up")).config;
        let mut none = routing(false, "/up");
        none.apps.get_mut("web").unwrap().servers.clear();
        let without = render(&settings, &paths, &none).config;
        assert_ne!(with, without);
        assert_eq!(skeleton(&with), skeleton(&without));
        assert!(skeleton(&with).contains("server acme unix@"));
        let other_path = render(&settings, &paths, &routing(false, "/health")).config;
        assert_ne!(skeleton(&with), skeleton(&other_path));
    }

    #[test]
    fn paths_with_spaces_or_commas_are_refused() {
        assert!(check_path("dir", Path::new("/var/lib/haloy/haproxy-config")).is_ok());
        assert!(check_path("dir", Path::new("/tmp/a b")).is_err());
        assert!(check_path("dir", Path::new("/tmp/a,mode,777")).is_err());
        assert!(check_path("dir", Path::new("/tmp/\"x")).is_err());
    }
}
