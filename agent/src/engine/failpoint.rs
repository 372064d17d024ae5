//! Crash points named after the journal's phases, for the crash-matrix tests.
//!
//! Compiled in only with the `failpoints` cargo feature (the integration tests turn it
//! on; release builds never have it): without it [`reached`] is an empty function.
//! With it, `FAILPOINTS=deploy::healthy=return(web,api)` makes the deploys of `web`
//! and `api` stop at that point, once each: the app's task waits there, logging
//! `failpoint deploy::healthy paused <app>`, while haloyd goes on serving everything
//! else — the moment a test sends SIGKILL. SIGUSR2 lets every paused point go on.
//! `return` without apps (or with `*`) pauses every app. The configuration syntax is
//! the `fail` crate's; only `return` means something here.

/// Every crash point, in the order a deploy reaches them.
pub const DEPLOY_POINTS: [&str; 9] = [
    ACCEPTED,
    IMAGE_READY,
    OLD_STOPPED,
    REPLICAS_STARTED,
    HEALTHY,
    SERVERS_ADDED,
    SWITCHED,
    DRAINED,
    RETIRED,
];

/// The deploy is on record; nothing else happened.
pub const ACCEPTED: &str = "deploy::accepted";
/// The image is ready; with `replace`, the old containers are about to stop.
pub const IMAGE_READY: &str = "deploy::image_ready";
/// `replace` only: the old containers are stopped, no new one runs.
pub const OLD_STOPPED: &str = "deploy::old_stopped";
/// The new containers run, unchecked.
pub const REPLICAS_STARTED: &str = "deploy::replicas_started";
/// Every new container is healthy; none takes traffic.
pub const HEALTHY: &str = "deploy::healthy";
/// The new servers are in HAProxy beside the old ones, before the commit point.
pub const SERVERS_ADDED: &str = "deploy::servers_added";
/// The commit point is on record; the old servers still take traffic.
pub const SWITCHED: &str = "deploy::switched";
/// The old servers are drained but not removed.
pub const DRAINED: &str = "deploy::drained";
/// The old containers are gone; the deploy is about to finish.
pub const RETIRED: &str = "deploy::retired";

/// Recovery after a restart, per app: the plan is made and the routes are synced;
/// nothing of the app has changed yet.
pub const RECOVER_PLANNED: &str = "recover::planned";
/// The surviving version runs and is routed; the other is not yet removed.
pub const RECOVER_RESTORED: &str = "recover::restored";
/// The other version is gone; the journal does not say so yet.
pub const RECOVER_RETIRED: &str = "recover::retired";

/// A `FAILPOINTS` entry that cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum FailpointError {
    #[error("FAILPOINTS entry {0:?} is not name=actions")]
    Syntax(String),
    /// `reason` is the `fail` crate's own (it reports errors as strings).
    #[error("FAILPOINTS entry {entry:?}: {reason}")]
    Actions { entry: String, reason: String },
}

#[cfg(feature = "failpoints")]
mod enabled {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    use tokio::sync::Notify;

    fn fired() -> &'static Mutex<HashSet<(String, String)>> {
        static FIRED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
        FIRED.get_or_init(Mutex::default)
    }

    fn resume() -> &'static Notify {
        static RESUME: OnceLock<Notify> = OnceLock::new();
        RESUME.get_or_init(Notify::new)
    }

    /// Configures the points `FAILPOINTS` names (`name=actions;…`) and starts
    /// listening for SIGUSR2; returns what was configured.
    pub fn setup() -> Result<Vec<String>, super::FailpointError> {
        let mut configured = Vec::new();
        let text = std::env::var("FAILPOINTS").unwrap_or_default();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, actions) = entry
                .split_once('=')
                .ok_or_else(|| super::FailpointError::Syntax(entry.to_string()))?;
            fail::cfg(name.trim(), actions.trim()).map_err(|reason| {
                super::FailpointError::Actions {
                    entry: entry.to_string(),
                    reason,
                }
            })?;
            configured.push(entry.to_string());
        }
        tokio::spawn(async {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut usr2) = signal(SignalKind::user_defined2()) else {
                return;
            };
            while usr2.recv().await.is_some() {
                tracing::warn!("SIGUSR2: paused failpoints go on");
                resume().notify_waiters();
            }
        });
        Ok(configured)
    }

    pub async fn reached(name: &str, app: &str) {
        let hit = fail::eval(name, |apps| {
            apps.is_none_or(|apps| apps.split(',').map(str::trim).any(|a| a == app || a == "*"))
        });
        if hit != Some(true) {
            return;
        }
        let first = fired()
            .lock()
            .map(|mut fired| fired.insert((name.to_string(), app.to_string())))
            .unwrap_or(false);
        if !first {
            return;
        }
        let notified = resume().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        tracing::warn!("failpoint {name} paused {app}");
        notified.await;
        tracing::warn!("failpoint {name} released {app}");
    }
}

#[cfg(feature = "failpoints")]
pub use enabled::{reached, setup};

/// Without the `failpoints` feature a crash point is nothing at all.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn reached(_name: &str, _app: &str) {}

/// Whether this build has crash points (`haloyd --version` says so).
pub const ENABLED: bool = cfg!(feature = "failpoints");
