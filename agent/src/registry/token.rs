//! The bearer-token dance Docker Hub and GHCR ask for: a 401 names a token service
//! (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`), which hands out a token
//! for the repository, with the Basic credentials when there are any.

use reqwest::{StatusCode, Url};

use super::http::{self, Credentials};
use super::{Location, RegistryError, location};

/// The parameters of a `Bearer` challenge, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    params: Vec<(String, String)>,
}

impl Challenge {
    /// The `Bearer` challenge among those a `WWW-Authenticate` header lists, if any.
    pub(super) fn find(header: &str) -> Option<Self> {
        let challenges = http_auth::parse_challenges(header).ok()?;
        let bearer = challenges
            .into_iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))?;
        Some(Self {
            params: bearer
                .params
                .iter()
                .map(|(key, value)| (key.to_ascii_lowercase(), value.to_unescaped()))
                .collect(),
        })
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Where to ask for a token for the repository at `at`.
    fn token_url(&self, at: &Location) -> Result<Url, RegistryError> {
        let protocol = |message: &str| RegistryError::Protocol {
            server: at.server.clone(),
            message: message.to_string(),
        };
        let realm = self
            .param("realm")
            .ok_or_else(|| protocol("a bearer challenge without realm"))?;
        let mut url =
            Url::parse(realm).map_err(|_| protocol("the token realm is not an http(s) URL"))?;
        match url.scheme() {
            "https" => {}
            // Plain HTTP only when the registry and its token service are both on this
            // machine: Basic credentials must not cross a network unencrypted.
            "http" if !at.https && location::is_loopback(&url) => {}
            "http" => {
                return Err(protocol(
                    "the token realm is plain http:// on another machine; it must be https:// so the credentials are not sent in clear",
                ));
            }
            _ => return Err(protocol("the token realm is not an http(s) URL")),
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = self.param("service") {
                query.append_pair("service", service);
            }
            let scope = self
                .param("scope")
                .map_or_else(|| format!("repository:{}:pull", at.name), str::to_string);
            query.append_pair("scope", &scope);
        }
        Ok(url)
    }
}

/// Answers `challenge` from the registry at `at`: the token to send as `Bearer`.
pub(super) async fn fetch(
    at: &Location,
    challenge: &Challenge,
    basic: Option<&Credentials<'_>>,
) -> Result<String, RegistryError> {
    let protocol = |message: String| RegistryError::Protocol {
        server: at.server.clone(),
        message,
    };
    let answer = http::get(at, challenge.token_url(at)?, basic).await?;
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized {
            server: at.server.clone(),
        });
    }
    if answer.status != StatusCode::OK {
        return Err(protocol(format!(
            "HTTP {} from the token service",
            answer.status
        )));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let token: Token = serde_json::from_slice(&answer.body)
        .map_err(|_| protocol("the token answer is not JSON".into()))?;
    token
        .token
        .or(token.access_token)
        .ok_or_else(|| protocol("the token answer holds no token".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#;

    #[test]
    fn challenges_are_read() {
        let challenge = Challenge::find(HUB).unwrap();
        assert_eq!(
            challenge.param("realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(challenge.param("scope"), Some("repository:a/b:pull"));
        // Among several, in any case, with escapes.
        let both = r#"Basic realm="x", bearer Realm="https://t.example/\"q\"""#;
        let challenge = Challenge::find(both).unwrap();
        assert_eq!(challenge.param("realm"), Some(r#"https://t.example/"q""#));
        assert_eq!(Challenge::find(r#"Basic realm="registry""#), None);
    }

    #[test]
    fn the_token_url_carries_service_and_scope() {
        let hub = Location::of("library/nginx");
        let url = Challenge::find(HUB).unwrap().token_url(&hub).unwrap();
        assert_eq!(
            url.as_str(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Aa%2Fb%3Apull"
        );
        // Without a scope, the repository's pull scope.
        let url = Challenge::find(r#"Bearer realm="https://ghcr.io/token?x=1""#)
            .unwrap()
            .token_url(&Location::of("ghcr.io/org/app"))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://ghcr.io/token?x=1&scope=repository%3Aorg%2Fapp%3Apull"
        );
    }

    #[test]
    fn a_plain_http_realm_is_refused_unless_the_registry_is_plain_http() {
        let plain = Challenge::find(r#"Bearer realm="http://auth.example/token""#).unwrap();
        let err = plain
            .token_url(&Location::of("ghcr.io/org/app"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "registry ghcr.io answered unexpectedly: the token realm is plain http:// on another machine; it must be https:// so the credentials are not sent in clear"
        );
        // Not to a loopback registry either: the realm is elsewhere.
        let err = plain
            .token_url(&Location::of("127.0.0.1:5000/app"))
            .unwrap_err();
        assert!(err.to_string().contains("must be https://"), "{err}");
        for realm in [
            "http://127.0.0.1:5001/token",
            "http://localhost/t",
            "http://[::1]:80/t",
        ] {
            let local = Challenge::find(&format!("Bearer realm=\"{realm}\"")).unwrap();
            assert!(
                local.token_url(&Location::of("127.0.0.1:5000/app")).is_ok(),
                "{realm}"
            );
            // A loopback realm for a registry elsewhere is still plain HTTP off it.
            assert!(local.token_url(&Location::of("ghcr.io/org/app")).is_err());
        }
        let no_realm = Challenge::find(r#"Bearer service="x""#).unwrap();
        assert!(
            no_realm
                .token_url(&Location::of("ghcr.io/org/app"))
                .unwrap_err()
                .to_string()
                .contains("without realm")
        );
    }
}
