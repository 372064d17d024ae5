//! The deploy engine: obtains the image, starts and health-checks new containers,
//! switches HAProxy over and retires the old ones — or, on any failure before the
//! switch, removes what it created and leaves the old version serving.
//!
//! One deploy per app at a time: each app has a lock, taken before anything happens
//! and held until the deploy ends; a second deploy of the same app is refused with the
//! id of the one in progress. Different apps deploy concurrently.

pub mod health;
pub mod prune;
mod reconcile;
mod retire;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use haloy_api::spec::{AppSpec, DeploymentStrategy, History, ImageSource};
use tokio::sync::{mpsc, oneshot, watch};

use crate::certs::{Certificates, Wanted};
use crate::ids;
use crate::proxy::{AppRoute, Backend, Proxy, ProxyError};
use crate::runtime::{
    ArchiveStream, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerState, RuntimeError,
    labels,
};
use crate::store::{DeploymentRecord, Status, Store, StoreError, StoredSpec};

pub use status::{AppStatus, ReplicaStatus};

/// Label holding the app's routing (domains, health path) as JSON, so routes can be
/// rebuilt from Docker alone.
pub const ROUTE_LABEL: &str = "dev.haloy.route";

/// The steps of a deploy, streamed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    ReceivingImage,
    PullingImage,
    LoadingImage,
    StoppingOld,
    Starting,
    HealthChecking,
    SwitchingTraffic,
    RetiringOld,
    Certificates,
    CleaningUp,
}

/// Progress of a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Phase(Phase, String),
    /// A line from a container (`replica` is its name) or from haloyd (`haloyd`).
    Log {
        replica: String,
        stderr: bool,
        text: String,
    },
}

pub type Events = mpsc::Sender<Event>;

/// How far a client's proposed deployment id may be from this server's clock.
const PROPOSED_ID_SKEW_MS: u64 = 60 * 60 * 1000;

/// Set to true to cancel a deploy; honoured until traffic is switched.
pub type Cancel = watch::Receiver<bool>;

/// Where the image of a deploy comes from.
#[derive(Debug)]
pub enum ImageInput {
    /// Pull `spec.image` from its registry.
    Pull,
    /// `spec.image` must already be on the server.
    Existing,
    /// The image with this id (`sha256:…`) is on the server; it becomes `spec.image`.
    Id(String),
    /// A `docker save` archive arriving from the client.
    Upload(Upload),
}

/// An upload in progress: Docker loads the archive while it arrives.
pub struct Upload {
    pub archive: ArchiveStream,
    /// The id of the image the archive holds, when the client announced one: that
    /// image becomes `spec.image`.
    pub image_id: Option<String>,
    /// How receiving ended (see `api::upload::Received`).
    pub received: oneshot::Receiver<Result<u64, Option<String>>>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("image_id", &self.image_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Marks this haloyd's containers; several instances can share one Docker.
    pub instance: String,
    /// How long a new container may take to pass its health check.
    pub health_timeout: Duration,
    pub health_interval: Duration,
    /// How long old servers may keep sessions before they are removed anyway.
    pub drain_timeout: Duration,
    /// SIGTERM grace period for old containers.
    pub stop_grace: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            instance: "default".into(),
            health_timeout: Duration::from_secs(60),
            health_interval: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "a deploy of {app} is in progress (deployment {deployment}); wait for it to finish and try again"
    )]
    Busy { app: String, deployment: String },
    #[error("app {0} is not deployed on this server")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub deployment_id: String,
    pub status: Status,
    pub reason: String,
}

/// Why a deploy stopped before it succeeded.
enum Abort {
    Cancelled,
    Failed(String),
}

impl From<RuntimeError> for Abort {
    fn from(e: RuntimeError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<ProxyError> for Abort {
    fn from(e: ProxyError) -> Self {
        Self::Failed(e.to_string())
    }
}

#[derive(Default)]
struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    current: Option<String>,
}

type Slots = Arc<Mutex<HashMap<String, Slot>>>;

/// Exclusive right to change one app, with the id of the deployment it is for.
pub struct AppLock {
    pub app: String,
    pub deployment_id: String,
    slots: Slots,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for AppLock {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(slot) = slots.get_mut(&self.app)
        {
            slot.current = None;
        }
    }
}

pub struct Engine {
    runtime: Arc<dyn ContainerRuntime>,
    proxy: Arc<dyn Proxy>,
    store: Store,
    settings: EngineSettings,
    slots: Slots,
    /// Where apps' certificates are requested, with the server's ACME email for
    /// apps that set none; without it apps are served on HTTP only.
    certificates: Option<(Arc<Certificates>, Option<String>)>,
    /// haloyd's own API domain (`api_domain` in haloyd.yaml), which no app may claim.
    api_domain: Option<String>,
}

impl Engine {
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        proxy: Arc<dyn Proxy>,
        store: Store,
        settings: EngineSettings,
    ) -> Self {
        Self {
            runtime,
            proxy,
            store,
            settings,
            slots: Arc::default(),
            certificates: None,
            api_domain: None,
        }
    }

    /// Reserves `domain` for haloyd's API: deploys listing it are refused.
    pub fn with_api_domain(mut self, domain: Option<String>) -> Self {
        self.api_domain = domain;
        self
    }

    /// Refuses a spec that claims the server's API domain: the app would take over
    /// its certificate request and its plain-HTTP route.
    pub fn check_spec(&self, spec: &AppSpec) -> Result<(), EngineError> {
        let Some(api) = &self.api_domain else {
            return Ok(());
        };
        let claimed = spec
            .domains
            .iter()
            .flat_map(|d| std::iter::once(&d.canonical).chain(&d.aliases))
            .any(|host| host == api);
        if claimed {
            return Err(EngineError::Invalid(format!(
                "app {} lists {api}, this server's API domain (api_domain in haloyd.yaml); use another domain for the app",
                spec.name
            )));
        }
        Ok(())
    }

    /// Requests certificates for apps after their deploys; `default_email` is the
    /// ACME contact for apps whose spec has none.
    pub fn with_certificates(
        mut self,
        certificates: Arc<Certificates>,
        default_email: Option<String>,
    ) -> Self {
        self.certificates = Some((certificates, default_email));
        self
    }

    pub fn certificates(&self) -> Option<&Arc<Certificates>> {
        self.certificates.as_ref().map(|(c, _)| c)
    }

    /// After a healthy deploy: one certificate per canonical domain, with its
    /// aliases, obtained in the background by the renewal loop.
    async fn request_certificates(&self, spec: &AppSpec, events: &Events) {
        let Some((certificates, default_email)) = &self.certificates else {
            return;
        };
        let email = spec.acme_email.clone().or_else(|| default_email.clone());
        let wanted: Vec<Wanted> = match &email {
            Some(email) => spec
                .domains
                .iter()
                .map(|d| Wanted {
                    domain: d.canonical.clone(),
                    names: std::iter::once(&d.canonical)
                        .chain(&d.aliases)
                        .cloned()
                        .collect(),
                    email: email.clone(),
                    app: spec.name.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        if !spec.domains.is_empty() {
            let message = if email.is_none() {
                "no acme_email in the app or on the server (haloyadm init --acme-email): serving HTTP only".to_string()
            } else {
                let have: Vec<String> = certificates
                    .status(&spec.name)
                    .into_iter()
                    .filter(|c| c.not_after.is_some())
                    .map(|c| c.domain)
                    .collect();
                let missing: Vec<&str> = wanted
                    .iter()
                    .map(|w| w.domain.as_str())
                    .filter(|d| !have.iter().any(|h| h == d))
                    .collect();
                if missing.is_empty() {
                    "certificates are in place; renewals happen in the background".to_string()
                } else {
                    format!(
                        "requesting certificates for {} in the background; `haloy status` shows them",
                        missing.join(", ")
                    )
                }
            };
            phase(events, Phase::Certificates, &message).await;
        }
        certificates.want(&spec.name, wanted);
    }

    pub fn runtime(&self) -> &Arc<dyn ContainerRuntime> {
        &self.runtime
    }

    pub fn proxy(&self) -> &Arc<dyn Proxy> {
        &self.proxy
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes the app's lock and allocates a deployment id; refuses while another
    /// deploy of the app runs.
    pub fn lock(&self, app: &str) -> Result<AppLock, EngineError> {
        self.lock_as(app, None)
    }

    /// Like [`Engine::lock`], recording the deployment under `proposed` (a client's
    /// id for a deploy to several servers) when it is newer than the app's newest, as
    /// ids must keep sorting by time, and its time is within an hour of this clock.
    pub fn lock_as(&self, app: &str, proposed: Option<&str>) -> Result<AppLock, EngineError> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| EngineError::Invalid("internal lock poisoned".into()))?;
        let slot = slots.entry(app.to_string()).or_default();
        let guard = slot
            .lock
            .clone()
            .try_lock_owned()
            .map_err(|_| EngineError::Busy {
                app: app.to_string(),
                deployment: slot.current.clone().unwrap_or_else(|| "?".into()),
            })?;
        let newest = self.store.newest_id(app)?;
        let now = ids::now_ms();
        let plausible =
            |id: &str| ids::created_ms(id).is_some_and(|ms| ms.abs_diff(now) < PROPOSED_ID_SKEW_MS);
        let deployment_id = match proposed {
            Some(id) if plausible(id) && newest.as_deref().is_none_or(|newest| id > newest) => {
                id.to_string()
            }
            _ => ids::deployment_id(now, newest.as_deref(), &self.settings.instance),
        };
        slot.current = Some(deployment_id.clone());
        Ok(AppLock {
            app: app.to_string(),
            deployment_id,
            slots: self.slots.clone(),
            _guard: guard,
        })
    }

    /// Runs a deploy to its end and records it. Never returns an error: the outcome
    /// says how it ended, and the old version keeps serving unless it succeeded.
    pub async fn deploy(
        &self,
        lock: &AppLock,
        spec: &AppSpec,
        image: ImageInput,
        events: &Events,
        mut cancel: Cancel,
    ) -> Outcome {
        let id = lock.deployment_id.clone();
        let mut record = DeploymentRecord {
            id: id.clone(),
            app: spec.name.clone(),
            image: spec.image.reference(),
            status: Status::InProgress,
            reason: String::new(),
            started_at_ms: ids::now_ms(),
            finished_at_ms: None,
            spec: StoredSpec::from(spec),
        };
        if let Err(e) = self.store.put(&record) {
            return Outcome {
                deployment_id: id,
                status: Status::Failed,
                reason: e.to_string(),
            };
        }
        let mut work = Work::default();
        let result = self
            .run_deploy(&id, spec, image, events, &mut cancel, &mut work)
            .await;
        match result {
            Ok(run_image) => {
                record.status = Status::Succeeded;
                record.image = run_image;
                self.request_certificates(spec, events).await;
                if let History::Local { .. } = spec.image.history {
                    // Recorded first, so the prune counts this deployment as the newest.
                    self.prune_after(spec, &record, events).await;
                }
            }
            Err(abort) => {
                phase(events, Phase::CleaningUp, "removing the new containers").await;
                self.undo(spec, &work, events).await;
                match abort {
                    Abort::Cancelled => {
                        record.status = Status::Cancelled;
                        record.reason = "cancelled by the client".into();
                    }
                    Abort::Failed(reason) => {
                        record.status = Status::Failed;
                        record.reason = reason;
                    }
                }
            }
        }
        record.finished_at_ms = Some(ids::now_ms());
        if let Err(e) = self.store.put(&record) {
            tracing::error!(app = %spec.name, deployment = %id, "cannot record the deployment: {e}");
        }
        tracing::info!(app = %spec.name, deployment = %id, status = ?record.status, reason = %record.reason, "deploy finished");
        Outcome {
            deployment_id: id,
            status: record.status,
            reason: record.reason,
        }
    }

    /// Removes images outside the app's history after a successful deploy; a failure
    /// here is reported but does not fail the deploy, which already serves.
    async fn prune_after(&self, spec: &AppSpec, record: &DeploymentRecord, events: &Events) {
        let mut done = record.clone();
        done.finished_at_ms = Some(ids::now_ms());
        if let Err(e) = self.store.put(&done) {
            tracing::warn!(app = %spec.name, "cannot record the deployment before pruning: {e}");
            return;
        }
        match self.prune_images(&spec.name, false).await {
            Ok(pruned) if !pruned.removed.is_empty() => {
                log(
                    events,
                    &format!(
                        "removed {} image name(s) outside the history: {}",
                        pruned.removed.len(),
                        pruned.removed.join(", ")
                    ),
                )
                .await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(app = %spec.name, "cannot prune old images: {e}");
                log(events, &format!("old images were not pruned: {e}")).await;
            }
        }
    }

    /// Records a deploy that failed before the engine could run it, e.g. because its
    /// upload broke off; nothing was created, so nothing needs undoing.
    pub fn record_failure(&self, lock: &AppLock, spec: &AppSpec, reason: &str) -> Outcome {
        let now = ids::now_ms();
        let record = DeploymentRecord {
            id: lock.deployment_id.clone(),
            app: spec.name.clone(),
            image: spec.image.reference(),
            status: Status::Failed,
            reason: reason.to_string(),
            started_at_ms: now,
            finished_at_ms: Some(now),
            spec: StoredSpec::from(spec),
        };
        if let Err(e) = self.store.put(&record) {
            tracing::error!(app = %spec.name, deployment = %record.id, "cannot record the deployment: {e}");
        }
        tracing::info!(app = %spec.name, deployment = %record.id, %reason, "deploy failed before it began");
        Outcome {
            deployment_id: record.id,
            status: record.status,
            reason: record.reason,
        }
    }

    async fn run_deploy(
        &self,
        id: &str,
        spec: &AppSpec,
        image: ImageInput,
        events: &Events,
        cancel: &mut Cancel,
        work: &mut Work,
    ) -> Result<String, Abort> {
        let run_image = self.obtain_image(id, spec, image, events).await?;
        check_cancel(cancel)?;
        let network = spec.network_or_default().to_string();
        self.runtime.ensure_network(&network).await?;

        let old = self.app_containers(&spec.name).await?;
        if spec.deployment_strategy == DeploymentStrategy::Replace {
            let running: Vec<_> = old
                .iter()
                .filter(|c| c.state == ContainerState::Running)
                .collect();
            phase(
                events,
                Phase::StoppingOld,
                &format!(
                    "stopping {} old container(s) first (replace strategy: not zero downtime)",
                    running.len()
                ),
            )
            .await;
            let names: Vec<String> = running.iter().map(|c| c.name.clone()).collect();
            self.unroute(&spec.name, &names).await;
            for container in running {
                self.runtime
                    .stop(&container.id, self.settings.stop_grace)
                    .await?;
                work.stopped_old.push(container.clone());
            }
        }

        phase(
            events,
            Phase::Starting,
            &format!("starting {} replica(s) of {run_image}", spec.replicas),
        )
        .await;
        for n in 1..=spec.replicas {
            check_cancel(cancel)?;
            let container = self
                .runtime
                .run(&self.container_spec(id, spec, &run_image, n))
                .await?;
            work.created.push(container);
        }

        phase(
            events,
            Phase::HealthChecking,
            &format!(
                "waiting for GET {} to answer on each replica",
                spec.health_check_path
            ),
        )
        .await;
        for i in 0..work.created.len() {
            let ready = self.wait_healthy(&work.created[i], spec, cancel).await;
            match ready {
                Ok(info) => work.created[i] = info,
                Err(Abort::Failed(reason)) => {
                    let name = work.created[i].name.clone();
                    self.send_last_logs(&work.created[i].id, &name, events)
                        .await;
                    return Err(Abort::Failed(format!(
                        "replica {name} failed its health check: {reason}"
                    )));
                }
                Err(Abort::Cancelled) => return Err(Abort::Cancelled),
            }
            log(
                events,
                &format!("replica {} is healthy", work.created[i].name),
            )
            .await;
        }
        // Past this point the new version takes traffic; cancelling no longer applies.
        check_cancel(cancel)?;

        phase(
            events,
            Phase::SwitchingTraffic,
            "adding the new replicas to HAProxy",
        )
        .await;
        let route = AppRoute {
            app: spec.name.clone(),
            domains: spec.domains.clone(),
            health_check_path: spec.health_check_path.clone(),
            servers: Vec::new(),
        };
        self.proxy.ensure_app(&route).await?;
        for container in &work.created {
            self.proxy
                .add_server(&spec.name, &backend(container)?)
                .await?;
            work.routed.push(container.name.clone());
        }
        self.wait_routed(&spec.name, &work.routed).await?;

        let live_old: Vec<ContainerInfo> = old
            .into_iter()
            .filter(|c| !work.stopped_old.iter().any(|s| s.id == c.id))
            .collect();
        self.retire(&spec.name, live_old, events).await;
        for container in std::mem::take(&mut work.stopped_old) {
            if let Err(e) = self.runtime.remove(&container.id).await {
                tracing::warn!("cannot remove old container {}: {e}", container.name);
            }
        }
        Ok(run_image)
    }

    async fn obtain_image(
        &self,
        id: &str,
        spec: &AppSpec,
        image: ImageInput,
        events: &Events,
    ) -> Result<String, Abort> {
        let reference = spec.image.reference();
        match image {
            ImageInput::Pull => {
                phase(events, Phase::PullingImage, &format!("pulling {reference}")).await;
                self.runtime
                    .pull_image(&reference, spec.image.registry.as_ref())
                    .await?;
            }
            ImageInput::Existing => {
                if !self.runtime.image_exists(&reference).await? {
                    let hint = if spec.image.source == ImageSource::Local {
                        "load it on the server first (docker load) or remove image.source: local"
                    } else {
                        "push it to the server or its registry first"
                    };
                    return Err(Abort::Failed(format!(
                        "image {reference} is not on this server; {hint}"
                    )));
                }
            }
            ImageInput::Id(image_id) => {
                self.runtime
                    .tag_image(&image_id, &spec.image.repository, &spec.image.tag)
                    .await?;
            }
            ImageInput::Upload(Upload {
                archive,
                image_id,
                received,
            }) => {
                phase(
                    events,
                    Phase::LoadingImage,
                    "loading the image into Docker as it arrives",
                )
                .await;
                let loaded = self.runtime.load_image(archive).await;
                // After a failed load the receiver notices that nobody reads any
                // more; do not hold the app's lock long for its reason.
                let wait = if loaded.is_ok() {
                    Duration::MAX
                } else {
                    Duration::from_secs(5)
                };
                let received = tokio::time::timeout(wait, received)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(Err(None));
                let loaded = match (loaded, received) {
                    (Ok(loaded), Ok(_)) => loaded,
                    // Why the upload failed explains the broken load best.
                    (_, Err(Some(reason))) => return Err(Abort::Failed(reason)),
                    (Err(e), _) => return Err(e.into()),
                    (Ok(_), Err(None)) => {
                        return Err(Abort::Failed(
                            "Docker finished loading before the upload ended; deploy again".into(),
                        ));
                    }
                };
                // By the announced id: the archive's own tags may name another
                // reference, and spec.image may still point at the previous version.
                // (A workstation on Docker's containerd store announces a manifest
                // digest, which a classic store does not know: then by what loaded.)
                let announced = match image_id {
                    Some(id) if self.runtime.image_exists(&id).await? => Some(id),
                    _ => None,
                };
                if let Some(image_id) = announced {
                    self.runtime
                        .tag_image(&image_id, &spec.image.repository, &spec.image.tag)
                        .await?;
                } else if let Some(first) = loaded.first() {
                    self.runtime
                        .tag_image(first, &spec.image.repository, &spec.image.tag)
                        .await?;
                } else {
                    return Err(Abort::Failed(
                        "the uploaded archive contained no image".into(),
                    ));
                }
            }
        }
        if let History::Local { .. } = spec.image.history {
            // Rollback finds this version by its deployment id.
            let tag = self.own_name(id);
            self.runtime
                .tag_image(&reference, &spec.image.repository, &tag)
                .await?;
            return Ok(format!("{}:{tag}", spec.image.repository));
        }
        Ok(reference)
    }

    /// `id` as this instance names what it creates for that deployment (containers,
    /// the history tag): a proposed id is the same on every server of a deploy, so
    /// the instance's suffix keeps names apart when servers share one Docker.
    pub(super) fn own_name(&self, id: &str) -> String {
        let suffix = ids::instance_suffix(&self.settings.instance);
        if id.ends_with(&suffix) {
            id.to_string()
        } else {
            format!("{id}-{suffix}")
        }
    }

    fn container_spec(&self, id: &str, spec: &AppSpec, image: &str, n: u32) -> ContainerSpec {
        let route = serde_json::json!({
            "domains": spec.domains.iter().map(|d| (d.canonical.clone(), d.aliases.clone())).collect::<Vec<_>>(),
            "health_check_path": spec.health_check_path,
        });
        let labels = BTreeMap::from([
            (labels::INSTANCE.to_string(), self.settings.instance.clone()),
            (labels::APP.to_string(), spec.name.clone()),
            (labels::DEPLOYMENT.to_string(), id.to_string()),
            (labels::ROLE.to_string(), "app".to_string()),
            (labels::REPLICA.to_string(), n.to_string()),
            (labels::PORT.to_string(), spec.port.to_string()),
            (ROUTE_LABEL.to_string(), route.to_string()),
        ]);
        ContainerSpec {
            name: format!("{}-{}-{n}", spec.name, self.own_name(id)),
            image: image.to_string(),
            env: spec
                .env
                .iter()
                .map(|v| (v.name.clone(), v.value.expose().to_string()))
                .collect(),
            labels,
            network: spec.network_or_default().to_string(),
            volumes: spec.volumes.clone(),
            port: spec.port,
        }
    }

    /// Every container of an app owned by this haloyd.
    pub async fn app_containers(&self, app: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.runtime
            .list(&[
                (labels::INSTANCE, &self.settings.instance),
                (labels::APP, app),
            ])
            .await
    }

    async fn wait_healthy(
        &self,
        container: &ContainerInfo,
        spec: &AppSpec,
        cancel: &mut Cancel,
    ) -> Result<ContainerInfo, Abort> {
        let deadline = Instant::now() + self.settings.health_timeout;
        let mut last: String;
        // Most apps answer within moments of starting: ask again soon at first, then
        // every health_interval.
        let mut pause = Duration::from_millis(25);
        loop {
            check_cancel(cancel)?;
            let info = self.runtime.inspect(&container.id).await?;
            match (&info.state, info.host_port) {
                (ContainerState::Exited(code), _) => {
                    return Err(Abort::Failed(format!(
                        "the container exited with code {code}"
                    )));
                }
                (ContainerState::Running, Some(port)) => {
                    let per_try = self.settings.health_interval.max(Duration::from_secs(2));
                    let host = spec
                        .domains
                        .first()
                        .map_or("localhost", |d| d.canonical.as_str());
                    match health::probe(port, host, &spec.health_check_path, per_try).await {
                        Ok(status) if health::is_healthy(status) => return Ok(info),
                        Ok(status) => {
                            last = format!("GET {} answered {status}", spec.health_check_path)
                        }
                        Err(e) => last = e,
                    }
                }
                (state, _) => last = format!("the container is {}", state.as_str()),
            }
            if Instant::now() >= deadline {
                return Err(Abort::Failed(format!(
                    "not healthy within {} s (last: {last})",
                    self.settings.health_timeout.as_secs()
                )));
            }
            pause = (pause * 2).min(self.settings.health_interval);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = cancel.changed() => {}
            }
        }
    }

    /// Waits until HAProxy reports every new server up, so the old ones are only
    /// drained once traffic has somewhere to go.
    async fn wait_routed(&self, app: &str, names: &[String]) -> Result<(), Abort> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let servers = self.proxy.servers(app).await?;
            let up = names.iter().all(|n| {
                servers
                    .iter()
                    .any(|s| &s.name == n && s.state.eq_ignore_ascii_case("up"))
            });
            if up {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} {}", s.name, s.state))
                    .collect();
                return Err(Abort::Failed(format!(
                    "HAProxy did not mark the new replicas up within 15 s ({})",
                    states.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn send_last_logs(&self, id: &str, name: &str, events: &Events) {
        use futures_util::StreamExt;
        let Ok(mut lines) = self.runtime.logs(id, 20, false).await else {
            return;
        };
        while let Some(Ok(line)) = lines.next().await {
            let _ = events
                .send(Event::Log {
                    replica: name.to_string(),
                    stderr: line.stderr,
                    text: line.text,
                })
                .await;
        }
    }

    /// Removes those of `names` that are servers of the app's backend, reading the
    /// backend once; errors are logged, not fatal.
    async fn unroute(&self, app: &str, names: &[String]) {
        let Ok(servers) = self.proxy.servers(app).await else {
            return;
        };
        for name in names {
            if !servers.iter().any(|s| &s.name == name) {
                continue;
            }
            if let Err(e) = self.proxy.remove_server(app, name).await {
                tracing::warn!(app, server = %name, "cannot remove the server from HAProxy: {e}");
            }
        }
    }

    /// Undoes a failed or cancelled deploy: new containers go, old ones stopped by a
    /// replace deploy come back.
    async fn undo(&self, spec: &AppSpec, work: &Work, events: &Events) {
        self.unroute(&spec.name, &work.routed).await;
        for container in &work.created {
            if let Err(e) = self.runtime.remove(&container.id).await {
                tracing::warn!("cannot remove new container {}: {e}", container.name);
            }
        }
        for container in &work.stopped_old {
            log(
                events,
                &format!("restarting old replica {}", container.name),
            )
            .await;
            match self.runtime.start(&container.id).await {
                Ok(info) => match backend(&info) {
                    Ok(server) => {
                        if let Err(e) = self.proxy.add_server(&spec.name, &server).await {
                            tracing::warn!("cannot route restarted {}: {e}", info.name);
                        }
                    }
                    Err(_) => tracing::warn!("restarted {} has no published port", info.name),
                },
                Err(e) => tracing::warn!("cannot restart old container {}: {e}", container.name),
            }
        }
    }
}

/// What a deploy has done so far, for undoing it.
#[derive(Default)]
struct Work {
    created: Vec<ContainerInfo>,
    routed: Vec<String>,
    stopped_old: Vec<ContainerInfo>,
}

fn backend(container: &ContainerInfo) -> Result<Backend, Abort> {
    let port = container.host_port.ok_or_else(|| {
        Abort::Failed(format!(
            "container {} has no published port",
            container.name
        ))
    })?;
    Ok(Backend {
        name: container.name.clone(),
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    })
}

fn check_cancel(cancel: &Cancel) -> Result<(), Abort> {
    if *cancel.borrow() {
        Err(Abort::Cancelled)
    } else {
        Ok(())
    }
}

async fn phase(events: &Events, phase: Phase, message: &str) {
    let _ = events.send(Event::Phase(phase, message.to_string())).await;
}

async fn log(events: &Events, text: &str) {
    let _ = events
        .send(Event::Log {
            replica: "haloyd".into(),
            stderr: false,
            text: text.to_string(),
        })
        .await;
}

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
