//! The deploy engine: obtains the image, starts and health-checks new containers,
//! switches HAProxy over and retires the old ones — or, on any failure before the
//! switch, removes what it created and leaves the old version serving.
//!
//! Each app has one owner task (`owner.rs`) that runs one change at a time; each
//! deploy moves through a journal in the store (`deploy.rs`), so that after a crash
//! `reconcile.rs` converges every app to one complete version (`recovery.rs` says
//! which). The outside world is reached through seams — [`ContainerRuntime`],
//! [`Proxy`], [`HealthProbe`], [`Clock`] — so the state machine is tested with fakes
//! on paused time.

mod accept;
mod accessory;
mod canary;
mod certificates;
pub mod clock;
mod container;
mod deploy;
mod events;
pub mod failpoint;
mod health;
mod image;
mod maintenance;
mod owner;
pub mod prune;
mod reconcile;
pub mod recovery;
mod retire;
mod status;
mod steps;
pub mod traffic;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use haloy_api::spec::AppSpec;

use crate::certs::Certificates;
use crate::protection::Protection;
use crate::proxy::Proxy;
use crate::runtime::{ContainerInfo, ContainerRuntime, RuntimeError, labels};
use crate::store::Store;

pub use canary::{CanaryOutcome, CanaryReport, VersionTraffic};
pub use clock::{Clock, SystemClock};
pub use container::ROUTE_LABEL;
pub use events::{Cancel, EngineError, Event, Events, Outcome, Phase};
pub use health::{Answer, Exit, HealthProbe, ProbeError, Unhealthy, is_healthy};
pub use image::{ImageFailure, ImageInput, ImageRequest, PrepareImage, Upload, UploadLimits};
pub use maintenance::{MaintenanceSwitch, render_page};
pub use owner::{DeployOptions, DeployRequest, Snapshot, StopOptions, Stopped};
pub use reconcile::Recovery;
pub use status::{AppStatus, ReplicaStatus};
pub use traffic::{AppTraffic, Percentiles};
pub use watch::ReplicaHealth;

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

/// The seams the engine works through.
pub struct Seams {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub proxy: Arc<dyn Proxy>,
    pub probe: Arc<dyn HealthProbe>,
    pub clock: Arc<dyn Clock>,
}

pub struct Engine {
    runtime: Arc<dyn ContainerRuntime>,
    proxy: Arc<dyn Proxy>,
    probe: Arc<dyn HealthProbe>,
    clock: Arc<dyn Clock>,
    store: Store,
    settings: EngineSettings,
    owners: owner::Owners,
    /// Where apps' certificates are requested, with the server's ACME email for
    /// apps that set none; without it apps are served on HTTP only.
    certificates: Option<(Arc<Certificates>, Option<String>)>,
    /// haloyd's own API domain (`api_domain` in haloyd.yaml), which no app may claim.
    api_domain: Option<String>,
    /// The watchdog's restarts and last failure per replica name.
    health_log: std::sync::Mutex<std::collections::HashMap<String, ReplicaHealth>>,
    /// What apps may not do to the server (bind mounts, networks).
    protection: Option<Protection>,
    /// Limits on images uploaded with a deploy.
    upload_limits: UploadLimits,
    /// What `metrics_address` serves: deploys, durations, health-check failures.
    metrics: Arc<crate::metrics::Metrics>,
    /// Samples of HAProxy's counters per app, for request and error rates.
    traffic_meter: traffic::Meter,
}

impl Engine {
    pub fn new(seams: Seams, store: Store, settings: EngineSettings) -> Self {
        Self {
            runtime: seams.runtime,
            proxy: seams.proxy,
            probe: seams.probe,
            clock: seams.clock,
            store,
            settings,
            owners: owner::Owners::default(),
            certificates: None,
            api_domain: None,
            health_log: Default::default(),
            protection: None,
            upload_limits: UploadLimits::default(),
            metrics: Arc::default(),
            traffic_meter: traffic::Meter::default(),
        }
    }

    /// The counters and histograms the engine keeps.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The settings the engine runs with.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Limits uploads (`max_upload_bytes`, `upload_deadline_secs` in haloyd.yaml).
    pub fn with_upload_limits(mut self, limits: UploadLimits) -> Self {
        self.upload_limits = limits;
        self
    }

    pub fn upload_limits(&self) -> UploadLimits {
        self.upload_limits
    }

    /// Reserves `domain` for haloyd's API: deploys listing it are refused.
    pub fn with_api_domain(mut self, domain: Option<String>) -> Self {
        self.api_domain = domain;
        self
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

    /// Refuses a spec that claims the server's API domain: the app would take over
    /// its certificate request and its plain-HTTP route.
    pub fn with_protection(mut self, protection: Protection) -> Self {
        self.protection = Some(protection);
        self
    }

    pub fn check_spec(&self, spec: &AppSpec) -> Result<(), EngineError> {
        if let Some(protection) = &self.protection {
            protection
                .check(spec)
                .map_err(|refused| EngineError::Invalid(refused.to_string()))?;
        }
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

    pub fn certificates(&self) -> Option<&Arc<Certificates>> {
        self.certificates.as_ref().map(|(c, _)| c)
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

    /// How many apps have an owner task now.
    pub fn owner_count(&self) -> usize {
        self.owners.len()
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
}

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
