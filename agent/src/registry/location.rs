//! Where a repository lives: which registry, which host answers its API, and
//! whether a configured credential belongs to it.

use reqwest::Url;

use super::RegistryError;

/// Where a repository lives: the API's host, scheme and the name within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The registry as users name it, for messages (`index.docker.io`, `ghcr.io`).
    pub server: String,
    /// host[:port] the API answers on.
    pub host: String,
    pub https: bool,
    /// The repository without its registry, e.g. `org/app` or `library/nginx`.
    pub name: String,
}

impl Location {
    pub fn of(repository: &str) -> Self {
        let mut server = haloy_api::rules::registry_server_of(repository);
        // `docker.io/x` is Docker Hub too, not a host named docker.io.
        if matches!(server.as_str(), "docker.io" | "registry-1.docker.io") {
            server = "index.docker.io".to_string();
        }
        let (host, name) = if server == "index.docker.io" {
            let name = repository
                .strip_prefix("docker.io/")
                .or_else(|| repository.strip_prefix("index.docker.io/"))
                .or_else(|| repository.strip_prefix("registry-1.docker.io/"))
                .unwrap_or(repository);
            let name = if name.contains('/') {
                name.to_string()
            } else {
                format!("library/{name}")
            };
            ("registry-1.docker.io".to_string(), name)
        } else {
            let name = repository[server.len()..].trim_start_matches('/');
            (server.clone(), name.to_string())
        };
        // Docker itself talks plain HTTP to registries on loopback only.
        let bare = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let https = !(bare == "localhost" || bare.starts_with("127.") || bare == "[::1]");
        Self {
            server,
            host,
            https,
            name,
        }
    }

    /// The URL of `path_and_query` on this registry's API.
    pub(super) fn url(&self, path_and_query: &str) -> Result<Url, RegistryError> {
        let scheme = if self.https { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{}{path_and_query}", self.host)).map_err(|e| {
            RegistryError::Protocol {
                server: self.server.clone(),
                message: format!("no valid URL for {}: {e}", self.name),
            }
        })
    }
}

/// True when `url`'s host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub(super) fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// True when `url` is on the registry at `at` itself (same host and port).
pub(super) fn is_registry(url: &Url, at: &Location) -> bool {
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => return false,
    };
    authority.eq_ignore_ascii_case(&at.host)
}

/// True when `configured` (`image.registry.server`) names the registry at `at`.
pub(super) fn same_registry(configured: &str, at: &Location) -> bool {
    let configured = configured
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    configured == at.server
        || configured == at.host
        || (at.server == "index.docker.io"
            && matches!(configured, "docker.io" | "registry-1.docker.io"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_the_repository() {
        let hub = Location::of("someone/app");
        assert_eq!(
            (
                hub.server.as_str(),
                hub.host.as_str(),
                hub.https,
                hub.name.as_str()
            ),
            (
                "index.docker.io",
                "registry-1.docker.io",
                true,
                "someone/app"
            )
        );
        assert_eq!(Location::of("nginx").name, "library/nginx");
        assert_eq!(
            Location::of("docker.io/library/nginx"),
            Location::of("nginx")
        );
        let ghcr = Location::of("ghcr.io/org/app");
        assert_eq!(
            (ghcr.host.as_str(), ghcr.name.as_str(), ghcr.https),
            ("ghcr.io", "org/app", true)
        );
        let local = Location::of("127.0.0.1:5000/team/app");
        assert_eq!(
            (local.host.as_str(), local.name.as_str(), local.https),
            ("127.0.0.1:5000", "team/app", false)
        );
        assert_eq!(
            local.url("/v2/team/app/tags/list?n=1").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/team/app/tags/list?n=1"
        );
        assert_eq!(
            hub.url("/v2/").unwrap().as_str(),
            "https://registry-1.docker.io/v2/"
        );
    }

    #[test]
    fn the_registry_and_loopback_are_recognised() {
        let at = Location::of("127.0.0.1:5000/team/app");
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(is_registry(&url("http://127.0.0.1:5000/v2/"), &at));
        assert!(!is_registry(&url("http://127.0.0.1:5001/token"), &at));
        let hub = Location::of("library/nginx");
        assert!(is_registry(&url("https://registry-1.docker.io/v2/"), &hub));
        assert!(!is_registry(&url("https://auth.docker.io/token"), &hub));
        assert!(is_loopback(&url("http://localhost:1/")));
        assert!(is_loopback(&url("http://127.1.2.3/")));
        assert!(is_loopback(&url("http://[::1]/")));
        assert!(!is_loopback(&url("http://10.0.0.1/")));
        assert!(!is_loopback(&url("http://localhost.example.com/")));
    }

    #[test]
    fn credentials_go_only_to_their_registry() {
        let at = Location::of("127.0.0.1:5000/team/app");
        assert!(same_registry("127.0.0.1:5000", &at));
        assert!(same_registry("http://127.0.0.1:5000/", &at));
        assert!(!same_registry("ghcr.io", &at));
        let hub = Location::of("library/nginx");
        assert!(same_registry("index.docker.io", &hub) && same_registry("docker.io", &hub));
        assert!(!same_registry("127.0.0.1:5000", &hub));
    }
}
