//! Deployment history and the deploy journal in sled: one JSON record per deployment,
//! keyed `app\0id` so a prefix scan lists an app's deployments in id (= time) order.
//! A deploy moves its record through [`JournalPhase`]s, each written and flushed
//! before the side effects of the next, so that after a crash haloyd knows which
//! version is the truth (see `engine::recovery`). No secret is stored: sensitive env
//! values and registry credentials are dropped before writing.

pub mod audit;
pub mod maintenance;

use std::path::Path;

use haloy_api::spec::{AppSpec, History};
use serde::{Deserialize, Serialize};

/// How a deployment ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
    /// Serving a share of requests beside the previous version.
    Canary,
}

/// Where a deployment is in the journal. The order of the variants is the order of a
/// deploy; `Switched` is the commit point: before it the previous version is the
/// truth, from it on the new one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalPhase {
    /// Recorded before anything happens (records written before the journal
    /// existed said `in_progress`).
    #[serde(alias = "in_progress")]
    Accepted,
    /// The image is on the server under the name the containers run.
    ImageReady,
    /// The new containers run; [`DeploymentRecord::containers`] names them.
    ReplicasStarted,
    /// Every new container passed its health check.
    Healthy,
    /// A canary: the new containers take a share of requests beside the previous
    /// version, which stays the truth, until a promote or an abort. A resting
    /// state: recovery keeps both versions and the split.
    Canary,
    /// The commit point: the new containers take traffic.
    Switched,
    /// The old containers are gone.
    Retired,
    Succeeded,
    /// A failure or cancellation before the switch is being undone.
    Undoing,
    Failed,
    Cancelled,
}

impl JournalPhase {
    pub fn status(self) -> Status {
        match self {
            Self::Succeeded => Status::Succeeded,
            Self::Failed => Status::Failed,
            Self::Cancelled => Status::Cancelled,
            Self::Canary => Status::Canary,
            _ => Status::InProgress,
        }
    }

    /// Whether traffic had moved to this deployment.
    pub fn committed(self) -> bool {
        matches!(self, Self::Switched | Self::Retired | Self::Succeeded)
    }

    pub fn is_finished(self) -> bool {
        self.status() != Status::InProgress
    }

    /// The phase's name as the journal writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::ImageReady => "image_ready",
            Self::ReplicasStarted => "replicas_started",
            Self::Healthy => "healthy",
            Self::Canary => "canary",
            Self::Switched => "switched",
            Self::Retired => "retired",
            Self::Succeeded => "succeeded",
            Self::Undoing => "undoing",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Where the image a deployment ran came from: pruning may remove a name only when
/// haloyd can get the image back or made the name itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageOrigin {
    /// Pulled from its registry.
    Pulled,
    /// Uploaded by the client and named by haloyd.
    Uploaded,
    /// Already on the server under a name the user gave it (`image.source: local`).
    Server,
    /// Not recorded (records from before this field): treated like `Server`.
    #[default]
    Unknown,
}

/// What is kept of a deployment: its journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub app: String,
    /// The image reference the containers run.
    pub image: String,
    /// The journal phase (records written before the journal said `status`).
    #[serde(alias = "status")]
    pub phase: JournalPhase,
    /// Why it failed or was cancelled.
    #[serde(default)]
    pub reason: String,
    pub started_at_ms: u64,
    #[serde(default)]
    pub finished_at_ms: Option<u64>,
    /// The deployment that served when this one began, if any.
    #[serde(default)]
    pub previous: Option<String>,
    /// Names of the containers this deployment started.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Names of the previous version's containers a `replace` deploy stops before
    /// starting its own: restored if the deploy does not reach the switch.
    #[serde(default)]
    pub stopping: Vec<String>,
    #[serde(default)]
    pub image_origin: ImageOrigin,
    /// The share of requests a canary was given and the previous version's
    /// counters when it started.
    #[serde(default)]
    pub canary: Option<CanaryState>,
    /// What haloyd did with the deployment after it was interrupted, if it was.
    #[serde(default)]
    pub note: String,
    pub spec: StoredSpec,
}

impl DeploymentRecord {
    pub fn status(&self) -> Status {
        self.phase.status()
    }
}

/// A running canary's split and its starting point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryState {
    /// The share of requests the new version gets, 1-99.
    pub percent: u8,
    /// (server, responses, 5xx) of the previous version's servers at the start.
    pub baseline: Vec<(String, u64, u64)>,
}

/// The parts of an [`AppSpec`] worth keeping, without secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSpec {
    pub repository: String,
    pub tag: String,
    pub replicas: u32,
    pub port: u16,
    pub health_check_path: String,
    pub domains: Vec<(String, Vec<String>)>,
    pub network: String,
    pub strategy: String,
    pub history: String,
    /// `image.history.count` for the local and registry strategies.
    #[serde(default)]
    pub history_count: Option<u32>,
    /// `image.history.pattern` for the registry strategy.
    #[serde(default)]
    pub history_pattern: Option<String>,
    /// Names of the env variables; values only for non-sensitive ones.
    pub env: Vec<(String, Option<String>)>,
    pub volumes: Vec<String>,
    /// The app's `drain_timeout` and `stop_grace_period`, when it set them.
    #[serde(default)]
    pub drain_timeout_ms: Option<u64>,
    #[serde(default)]
    pub stop_grace_ms: Option<u64>,
    /// `database` or `service` for accessories.
    #[serde(default)]
    pub preset: Option<String>,
    /// Whether removing or replacing its containers needs `--include-protected`.
    #[serde(default)]
    pub protected: bool,
    /// `health_check.expected_status`, which the watchdog checks too.
    #[serde(default)]
    pub expected_status: Option<u16>,
}

impl StoredSpec {
    /// The drain and stop times the app asked for.
    pub fn rollout(&self) -> haloy_api::spec::Rollout {
        haloy_api::spec::Rollout {
            max_surge: None,
            drain_timeout: self.drain_timeout_ms.map(std::time::Duration::from_millis),
            stop_grace_period: self.stop_grace_ms.map(std::time::Duration::from_millis),
        }
    }
}

impl From<&AppSpec> for StoredSpec {
    fn from(spec: &AppSpec) -> Self {
        Self {
            repository: spec.image.repository.clone(),
            tag: spec.image.tag.clone(),
            replicas: spec.replicas,
            port: spec.port,
            health_check_path: spec.health_check_path.clone(),
            domains: spec
                .domains
                .iter()
                .map(|d| (d.canonical.clone(), d.aliases.clone()))
                .collect(),
            network: spec.network_or_default().to_string(),
            strategy: spec.deployment_strategy.as_str().to_string(),
            history: spec.image.history.strategy().to_string(),
            history_count: match &spec.image.history {
                History::Local { count } | History::Registry { count, .. } => Some(*count),
                History::None => None,
            },
            history_pattern: match &spec.image.history {
                History::Registry { pattern, .. } => Some(pattern.clone()),
                _ => None,
            },
            env: spec
                .env
                .iter()
                .map(|v| {
                    let value = (!v.sensitive).then(|| v.value.expose().to_string());
                    (v.name.clone(), value)
                })
                .collect(),
            volumes: spec.volumes.iter().map(ToString::to_string).collect(),
            drain_timeout_ms: spec.rollout.drain_timeout.map(|d| d.as_millis() as u64),
            stop_grace_ms: spec.rollout.stop_grace_period.map(|d| d.as_millis() as u64),
            preset: spec.preset.map(|p| p.as_str().to_string()),
            protected: spec.is_protected(),
            expected_status: spec.health_check.expected_status,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the deployment database at {path} cannot be opened: {reason}; is another haloyd using it?"
    )]
    Open { path: String, reason: String },
    #[error("the deployment database failed: {0}")]
    Io(String),
}

#[derive(Clone)]
pub struct Store {
    tree: sled::Tree,
    db: sled::Db,
}

/// A sled or JSON failure as the store reports it.
fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn key(app: &str, id: &str) -> Vec<u8> {
    format!("{app}\0{id}").into_bytes()
}

/// Succeeded deployments an app keeps at least (more when its history keeps more).
pub const KEEP_SUCCEEDED: usize = 20;
/// Failed or cancelled deployments an app keeps.
pub const KEEP_UNSUCCESSFUL: usize = 20;

/// How long start-up waits for the database's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens the database, waiting up to [`LOCK_WAIT`] for a haloyd that was just
    /// killed to let go of it (its threads may still be exiting when a supervisor
    /// starts the next one).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::open(dir) {
                Ok(db) => break db,
                // sled reports a held lock as an io::Error of kind Other whose text
                // carries the OS error; its wording is all there is to go by.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(StoreError::Open {
                        path: dir.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        let tree = db.open_tree("deployments").map_err(io)?;
        Ok(Self { tree, db })
    }

    /// Writes `record`; once it is finished, the app's oldest finished records past
    /// what [`Store::retained`] keeps go.
    pub fn put(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let value = serde_json::to_vec(record).map_err(io)?;
        self.tree
            .insert(key(&record.app, &record.id), value)
            .map_err(io)?;
        if record.phase.is_finished() {
            self.prune(record)?;
        }
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// How many finished records of each kind an app keeps: every succeeded one its
    /// image history can roll back to (and at least [`KEEP_SUCCEEDED`]), and the
    /// newest [`KEEP_UNSUCCESSFUL`] failed or cancelled ones. Records of deploys
    /// still under way are never removed.
    pub fn retained(history_count: Option<u32>) -> (usize, usize) {
        let history = history_count.map_or(0, |c| c as usize + 1);
        (history.max(KEEP_SUCCEEDED), KEEP_UNSUCCESSFUL)
    }

    fn prune(&self, newest: &DeploymentRecord) -> Result<(), StoreError> {
        let (keep_succeeded, keep_unsuccessful) = Self::retained(newest.spec.history_count);
        let (mut succeeded, mut unsuccessful) = (0, 0);
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for record in self.list(&newest.app)? {
            let kept = match record.phase.status() {
                Status::InProgress | Status::Canary => true,
                Status::Succeeded => {
                    succeeded += 1;
                    succeeded <= keep_succeeded
                }
                Status::Failed | Status::Cancelled => {
                    unsuccessful += 1;
                    unsuccessful <= keep_unsuccessful
                }
            };
            if !kept {
                batch.remove(key(&record.app, &record.id));
                removed += 1;
            }
        }
        if removed > 0 {
            self.tree.apply_batch(batch).map_err(io)?;
        }
        Ok(())
    }

    pub fn get(&self, app: &str, id: &str) -> Result<Option<DeploymentRecord>, StoreError> {
        let value = self.tree.get(key(app, id)).map_err(io)?;
        value
            .map(|v| serde_json::from_slice(&v).map_err(io))
            .transpose()
    }

    /// An app's deployments, newest first.
    pub fn list(&self, app: &str) -> Result<Vec<DeploymentRecord>, StoreError> {
        let prefix = format!("{app}\0").into_bytes();
        let mut records = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (_, value) = item.map_err(io)?;
            records.push(serde_json::from_slice(&value).map_err(io)?);
        }
        records.reverse();
        Ok(records)
    }

    /// Every app with at least one deployment.
    pub fn apps(&self) -> Result<Vec<String>, StoreError> {
        let mut apps: Vec<String> = Vec::new();
        for item in self.tree.iter() {
            let (key, _) = item.map_err(io)?;
            let app = key.split(|b| *b == 0).next().unwrap_or_default();
            let app = String::from_utf8_lossy(app).to_string();
            if apps.last() != Some(&app) {
                apps.push(app);
            }
        }
        Ok(apps)
    }

    /// The newest id of an app, to keep ids increasing; reads one key.
    pub fn newest_id(&self, app: &str) -> Result<Option<String>, StoreError> {
        let prefix = format!("{app}\0").into_bytes();
        let Some(item) = self.tree.scan_prefix(&prefix).next_back() else {
            return Ok(None);
        };
        let (key, _) = item.map_err(io)?;
        Ok(Some(
            String::from_utf8_lossy(&key[prefix.len()..]).to_string(),
        ))
    }
}

/// A record of app `app` at `phase` for tests: image `x:1`, one replica on 8080 with
/// `/` checked, no domains, an env name whose value is not kept.
#[cfg(test)]
pub fn test_record(app: &str, id: &str, phase: JournalPhase) -> DeploymentRecord {
    DeploymentRecord {
        id: id.into(),
        app: app.into(),
        image: "x:1".into(),
        phase,
        reason: String::new(),
        started_at_ms: 1,
        finished_at_ms: None,
        previous: None,
        containers: vec![],
        stopping: vec![],
        image_origin: ImageOrigin::Pulled,
        canary: None,
        note: String::new(),
        spec: StoredSpec {
            repository: "x".into(),
            tag: "1".into(),
            replicas: 1,
            port: 8080,
            health_check_path: "/".into(),
            domains: vec![],
            network: "haloy-public".into(),
            strategy: "rolling".into(),
            history: "local".into(),
            history_count: Some(3),
            history_pattern: None,
            env: vec![("SECRET".into(), None)],
            volumes: vec![],
            drain_timeout_ms: None,
            stop_grace_ms: None,
            preset: None,
            protected: false,
            expected_status: None,
        },
    }
}

#[cfg(test)]
mod tests;
