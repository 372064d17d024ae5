//! Accepting a deploy: the checks that refuse it at once (a running canary, a
//! protected app) and the deployment id it is recorded under.

use super::Engine;
use super::events::EngineError;
use super::owner::DeployRequest;
use crate::ids;
use crate::store::{DeploymentRecord, ImageOrigin, JournalPhase, StoredSpec};

/// How far a client's proposed deployment id may be from this server's clock.
const PROPOSED_ID_SKEW_MS: u64 = 60 * 60 * 1000;

impl Engine {
    /// Mints the deployment's id and records it as accepted. The id is `proposed`
    /// (a client's id for a deploy to several servers) when it is newer than the
    /// app's newest, as ids must keep sorting by time, and within an hour of this
    /// clock; a fresh one otherwise.
    pub(super) fn accept(&self, request: &DeployRequest) -> Result<DeploymentRecord, EngineError> {
        let spec = &request.spec;
        if let Some(canary) = self.canary_record(&spec.name)? {
            return Err(EngineError::CanaryRunning {
                app: spec.name.clone(),
                deployment: canary.id,
            });
        }
        if request.options.canary_percent.is_some() {
            self.check_canary(spec)?;
        }
        if !request.options.include_protected
            && let Some(live) = self.live_record(&spec.name)?
            && (live.spec.protected || spec.is_protected())
        {
            return Err(EngineError::Protected {
                app: spec.name.clone(),
                action: format!(
                    "this deploy would replace its running container ({})",
                    live.id
                ),
            });
        }
        let newest = self.store.newest_id(&spec.name)?;
        let now = self.clock.now_ms();
        let plausible =
            |id: &str| ids::created_ms(id).is_some_and(|ms| ms.abs_diff(now) < PROPOSED_ID_SKEW_MS);
        let id = match request.proposed_id.as_deref() {
            Some(id) if plausible(id) && newest.as_deref().is_none_or(|newest| id > newest) => {
                id.to_string()
            }
            _ => ids::deployment_id(now, newest.as_deref(), &self.settings.instance),
        };
        let record = DeploymentRecord {
            id,
            app: spec.name.clone(),
            image: spec.image.reference(),
            phase: JournalPhase::Accepted,
            reason: String::new(),
            started_at_ms: now,
            finished_at_ms: None,
            previous: None,
            containers: Vec::new(),
            stopping: Vec::new(),
            image_origin: ImageOrigin::Unknown,
            canary: None,
            note: String::new(),
            spec: StoredSpec::from(spec),
        };
        self.store.put(&record)?;
        Ok(record)
    }
}
