//! The tags of a repository in its registry (Docker Registry HTTP API v2,
//! `GET /v2/<name>/tags/list`), for the `registry` history strategy's rollback
//! targets. Basic auth, and the bearer-token challenge Docker Hub and GHCR answer
//! with. Credentials go into request headers only; no error carries them.

mod http;
mod location;
mod pattern;
mod token;

pub use location::Location;
pub use pattern::{TagPattern, newest_first};

use haloy_api::spec::RegistryAuth;
use reqwest::StatusCode;

use http::Credentials;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(
        "registry {server} refused the credentials; check image.registry.username and image.registry.password"
    )]
    Unauthorized { server: String },
    #[error("repository {repository} does not exist in registry {server}; check image.repository")]
    NotFound { server: String, repository: String },
    #[error(
        "cannot reach registry {server}: {message}; check that it is running and reachable from this server"
    )]
    Unreachable { server: String, message: String },
    #[error("registry {server} answered unexpectedly: {message}")]
    Protocol { server: String, message: String },
}

/// Every tag of `repository`, as the registry lists them.
pub async fn tags(
    repository: &str,
    auth: Option<&RegistryAuth>,
) -> Result<Vec<String>, RegistryError> {
    let at = Location::of(repository);
    let url = at.url(&format!("/v2/{}/tags/list?n=10000", at.name))?;
    // Credentials go only to the registry they are for.
    let basic = auth
        .filter(|a| location::same_registry(&a.server, &at))
        .map(|a| Credentials::Basic {
            username: a.username.expose(),
            password: a.password.expose(),
        });
    let answer = http::get(&at, url.clone(), basic.as_ref()).await?;
    let challenge = answer.challenge.as_deref().and_then(token::Challenge::find);
    let answer = match challenge {
        Some(challenge) if answer.status == StatusCode::UNAUTHORIZED => {
            let token = token::fetch(&at, &challenge, basic.as_ref()).await?;
            http::get(&at, url, Some(&Credentials::Bearer(&token))).await?
        }
        _ => answer,
    };
    match answer.status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(RegistryError::Unauthorized { server: at.server });
        }
        StatusCode::NOT_FOUND => {
            return Err(RegistryError::NotFound {
                server: at.server,
                repository: repository.to_string(),
            });
        }
        other => {
            return Err(RegistryError::Protocol {
                server: at.server,
                message: format!("HTTP {other} for the tag list"),
            });
        }
    }
    #[derive(serde::Deserialize)]
    struct TagList {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let list: TagList =
        serde_json::from_slice(&answer.body).map_err(|e| RegistryError::Protocol {
            server: at.server.clone(),
            message: format!("the tag list is not JSON: {e}"),
        })?;
    Ok(list.tags.unwrap_or_default())
}

#[cfg(test)]
mod tests;
