//! Image hygiene: after a successful deploy with history `local`, and on
//! `haloy prune-images`, the images of an app's older deployments go — all but the
//! newest `count` succeeded ones, which rollback needs.
//!
//! Only names haloyd can get back or made itself are removed: its own
//! `<repo>:<deployment id>` tags, and the reference a deployment named when haloyd
//! pulled it or named an upload with it — never a name the user gave an image on the
//! server (`image.source: local`). Never by force: an image that a kept deployment
//! or any container on this Docker (of any haloyd instance) uses stays.

use std::collections::HashSet;

use crate::store::{DeploymentRecord, ImageOrigin, Status};

use super::Engine;
use super::events::EngineError;

/// What pruning removed, or would remove on a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Image names removed (Docker deletes an image with its last name).
    pub removed: Vec<String>,
    /// Names of the deployments kept for rollback, newest first.
    pub kept: Vec<String>,
}

/// How many succeeded deployments keep their images: `count` with the local
/// strategy; only the live one otherwise (registry rollbacks pull again).
pub fn keep_count(newest: &DeploymentRecord) -> usize {
    match newest.spec.history.as_str() {
        "local" => newest
            .spec
            .history_count
            .unwrap_or(haloy_api::spec::DEFAULT_HISTORY_COUNT)
            .max(1) as usize,
        _ => 1,
    }
}

/// The deployments whose images rollback may use: the newest `keep` succeeded ones.
pub fn kept(records: &[DeploymentRecord], keep: usize) -> Vec<&DeploymentRecord> {
    records
        .iter()
        .filter(|r| r.status() == Status::Succeeded)
        .take(keep)
        .collect()
}

impl Engine {
    /// Removes the images of `app`'s deployments that fall outside its history.
    /// With `dry_run` nothing changes and the answer says what would go. Run by the
    /// app's owner, so no deploy of the app runs meanwhile.
    pub async fn prune_images(&self, app: &str, dry_run: bool) -> Result<Pruned, EngineError> {
        let records = self.store.list(app)?;
        let Some(newest) = records.first() else {
            return Err(EngineError::NotFound(app.to_string()));
        };
        let kept = kept(&records, keep_count(newest));
        let kept_names: HashSet<&str> = kept.iter().map(|r| r.image.as_str()).collect();
        let mut protected: HashSet<String> =
            self.runtime.images_in_use().await?.into_iter().collect();
        for record in &kept {
            if let Some(id) = self.runtime.image_id(&record.image).await? {
                protected.insert(id);
            }
        }
        let mut removed = Vec::new();
        for record in &records {
            if kept.iter().any(|k| k.id == record.id) {
                continue;
            }
            // The deployment's own tag first (a failed deployment recorded the
            // reference, but its image was tagged too), then the reference it deployed
            // when haloyd can get it back or named it.
            let own = format!("{}:{}", record.spec.repository, self.own_name(&record.id));
            let named = format!("{}:{}", record.spec.repository, record.spec.tag);
            let ours = matches!(
                record.image_origin,
                ImageOrigin::Pulled | ImageOrigin::Uploaded
            );
            let names = [record.image.clone(), own.clone(), named.clone()];
            for name in names {
                if !ours && name != own {
                    continue;
                }
                if kept_names.contains(name.as_str()) || removed.contains(&name) {
                    continue;
                }
                let Some(id) = self.runtime.image_id(&name).await? else {
                    continue;
                };
                if protected.contains(&id) {
                    continue;
                }
                if !dry_run && let Err(e) = self.runtime.untag_image(&name).await {
                    // Docker refuses some (an image with children, a container
                    // started meanwhile); the others still go.
                    tracing::warn!(app, image = %name, "cannot remove an old image: {e}");
                    continue;
                }
                removed.push(name);
            }
        }
        if !removed.is_empty() {
            tracing::info!(app, dry_run, removed = ?removed, "pruned images");
        }
        Ok(Pruned {
            removed,
            kept: kept.iter().map(|r| r.id.clone()).collect(),
        })
    }
}
