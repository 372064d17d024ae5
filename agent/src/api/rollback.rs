//! Rollback targets and what a rollback deploys, per history strategy.
//!
//! - `local`: a target is an earlier succeeded deployment among the newest
//!   `count`, whose image is still tagged `<repo>:<deployment id>` here; rolling back
//!   redeploys that image without pulling.
//! - `registry`: a target is a registry tag matching `pattern`, newest `count` by
//!   version order; its "deployment id" is the tag itself, and rolling back deploys
//!   (pulls) that tag. An earlier deployment's id works too and means its tag.
//! - `none`: nothing to roll back to.

use haloy_api::convert;
use haloy_api::spec::{AppSpec, History, ImageSpec, RegistryAuth};
use haloy_api::status::RollbackTarget;
use haloy_api::v1;

use super::AgentError;
use crate::engine::{Engine, EngineError, prune};
use crate::ids;
use crate::registry;
use crate::store::{DeploymentRecord, Status as RecordStatus};

pub async fn targets(
    engine: &Engine,
    app: &str,
    image: Option<ImageSpec>,
) -> Result<v1::RollbackTargetsResponse, AgentError> {
    let records = engine
        .store()
        .list(app)
        .map_err(|e| AgentError::Engine(e.into()))?;
    let Some(newest) = records.first() else {
        return Err(EngineError::NotFound(app.to_string()).into());
    };
    let live = records
        .iter()
        .find(|r| r.status() == RecordStatus::Succeeded);
    // The client's configuration decides the strategy when it sends one: it is
    // what the next rollback will use.
    let strategy = image
        .as_ref()
        .map_or(newest.spec.history.as_str(), |i| i.history.strategy());
    let targets = match strategy {
        "none" => Vec::new(),
        "registry" => {
            let (repository, count, pattern, auth) = registry_settings(newest, image.as_ref())?;
            registry_targets(&records, live, &repository, count, &pattern, auth.as_ref()).await?
        }
        _ => {
            let mut targets = Vec::new();
            for record in prune::kept(&records, prune::keep_count(newest)) {
                let available = engine
                    .runtime()
                    .image_exists(&record.image)
                    .await
                    .unwrap_or(false);
                if available {
                    targets.push(target(record, live));
                }
            }
            targets
        }
    };
    Ok(v1::RollbackTargetsResponse {
        strategy: convert::history_strategy(strategy).into(),
        targets: targets.into_iter().map(Into::into).collect(),
    })
}

fn target(record: &DeploymentRecord, live: Option<&DeploymentRecord>) -> RollbackTarget {
    RollbackTarget {
        deployment_id: record.id.clone(),
        image: record.image.clone(),
        deployed_at: Some(ids::to_system_time(record.started_at_ms)),
        live: live.is_some_and(|l| l.id == record.id),
    }
}

type RegistrySettings = (String, usize, String, Option<RegistryAuth>);

fn registry_settings(
    newest: &DeploymentRecord,
    image: Option<&ImageSpec>,
) -> Result<RegistrySettings, AgentError> {
    if let Some(ImageSpec {
        repository,
        registry,
        history: History::Registry { count, pattern },
        ..
    }) = image
    {
        same_registry(repository, &newest.spec.repository)?;
        return Ok((
            repository.clone(),
            *count as usize,
            pattern.clone(),
            registry.clone(),
        ));
    }
    match (&newest.spec.history_count, &newest.spec.history_pattern) {
        (Some(count), Some(pattern)) => Ok((
            newest.spec.repository.clone(),
            *count as usize,
            pattern.clone(),
            None,
        )),
        _ => Err(AgentError::Protocol(
            "the registry strategy needs the app's image settings in RollbackTargetsRequest.image; update haloy".into(),
        )),
    }
}

/// Refuses a repository on another registry than the app's deployments: the client
/// must not make haloyd connect wherever it likes.
fn same_registry(requested: &str, deployed: &str) -> Result<(), AgentError> {
    let (asked, app) = (
        registry::Location::of(requested),
        registry::Location::of(deployed),
    );
    if asked.host.eq_ignore_ascii_case(&app.host) {
        return Ok(());
    }
    Err(AgentError::Protocol(format!(
        "RollbackTargetsRequest.image.repository is on registry {}, but the app is deployed from {}; deploy from that registry first",
        asked.server, app.server
    )))
}

async fn registry_targets(
    records: &[DeploymentRecord],
    live: Option<&DeploymentRecord>,
    repository: &str,
    count: usize,
    pattern: &str,
    auth: Option<&RegistryAuth>,
) -> Result<Vec<RollbackTarget>, AgentError> {
    let pattern = tag_pattern(pattern)?;
    let mut tags: Vec<String> = registry::tags(repository, auth)
        .await?
        .into_iter()
        .filter(|t| pattern.matches(t))
        .collect();
    registry::newest_first(&mut tags);
    tags.truncate(count.max(1));
    let live_image = live.map(|l| l.image.as_str());
    Ok(tags
        .into_iter()
        .map(|tag| {
            let image = format!("{repository}:{tag}");
            let deployed = records.iter().find(|r| {
                r.status() == RecordStatus::Succeeded
                    && r.spec.repository == repository
                    && r.spec.tag == tag
            });
            RollbackTarget {
                deployment_id: tag,
                live: live_image == Some(image.as_str()),
                image,
                deployed_at: deployed.map(|r| ids::to_system_time(r.started_at_ms)),
            }
        })
        .collect())
}

/// Points `spec` at the version `target` names; says whether the image must be
/// pulled (registry strategy) or is already here (local).
pub fn aim(engine: &Engine, spec: &mut AppSpec, target: &str) -> Result<bool, AgentError> {
    let record = || -> Result<Option<DeploymentRecord>, AgentError> {
        Ok(engine
            .store()
            .get(&spec.name, target)
            .map_err(|e| AgentError::Engine(e.into()))?
            .filter(|r| r.status() == RecordStatus::Succeeded))
    };
    let no_such = || AgentError::NoSuchDeployment {
        app: spec.name.clone(),
        deployment: target.to_string(),
    };
    match spec.image.history.clone() {
        History::None => Err(AgentError::RollbackUnavailable(format!(
            "{} uses image.history.strategy none, which keeps no earlier versions; set strategy local (or registry) to be able to roll back",
            spec.name
        ))),
        History::Registry { pattern, .. } => {
            let tag = match record()? {
                Some(record) => record.spec.tag,
                None if ids::is_deployment_id(target) => return Err(no_such()),
                None => target.to_string(),
            };
            if !tag_pattern(&pattern)?.matches(&tag) {
                return Err(AgentError::RollbackUnavailable(format!(
                    "tag {tag:?} does not match image.history.pattern {pattern:?}; pick one from `haloy rollback-targets`"
                )));
            }
            haloy_api::rules::image_tag(&tag)
                .and_then(|()| haloy_api::rules::immutable_tag(&tag))
                .map_err(|v| AgentError::Protocol(format!("deployment_id: {v}")))?;
            spec.image.tag = tag;
            Ok(true)
        }
        History::Local { .. } => {
            let record = record()?.ok_or_else(no_such)?;
            let (repository, tag) = record.image.rsplit_once(':').ok_or_else(|| {
                AgentError::Protocol(format!("recorded image {} has no tag", record.image))
            })?;
            spec.image.repository = repository.to_string();
            spec.image.tag = tag.to_string();
            Ok(false)
        }
    }
}

fn tag_pattern(pattern: &str) -> Result<registry::TagPattern, AgentError> {
    registry::TagPattern::new(pattern).map_err(|e| {
        AgentError::RollbackUnavailable(format!(
            "image.history.pattern {pattern:?} is not a tag pattern ({e}); use * and ? as wildcards"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_targets_come_only_from_the_apps_registry() {
        assert!(same_registry("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app").is_ok());
        assert!(same_registry("127.0.0.1:5000/other", "127.0.0.1:5000/team/app").is_ok());
        assert!(same_registry("docker.io/library/nginx", "nginx").is_ok());
        let err = same_registry("10.0.0.7:22/probe", "127.0.0.1:5000/team/app")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RollbackTargetsRequest.image.repository")
                && err.contains("10.0.0.7:22")
                && err.contains("127.0.0.1:5000"),
            "{err}"
        );
        assert!(same_registry("127.0.0.1:5001/team/app", "127.0.0.1:5000/team/app").is_err());
    }
}
