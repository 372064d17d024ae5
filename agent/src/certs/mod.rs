//! TLS certificates: one per canonical domain (its aliases as extra names), obtained
//! from an ACME directory by HTTP-01, stored in cert-storage and installed into
//! HAProxy without a reload. A background loop renews certificates inside their
//! renewal window or whose names changed; failures back off and are reported in
//! `haloy status` and the log. A valid certificate is never requested again.
//!
//! The outside world is reached through two seams, so the renewal and back-off logic
//! is unit-tested with fakes: [`AcmeDirectory`] (the real one is [`acme::AcmeClient`])
//! and [`Installer`] (the real one is the HAProxy driver).

pub mod acme;
pub mod challenge;
mod error;
pub mod files;
pub mod policy;
pub mod selfsigned;
pub mod x509;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::Notify;

pub use error::{InstallError, ObtainError};
pub use files::{CertDir, Wanted};
use policy::Need;
pub use x509::CertInfo;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`acme_staging: true`).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("the ACME directory {url} failed: {source}")]
    Directory {
        url: String,
        source: instant_acme::Error,
    },
    #[error("the order at {url} did not finish within {} s", waited.as_secs())]
    Timeout {
        url: String,
        waited: std::time::Duration,
    },
    /// The directory said no (a failed challenge, an invalid authorization, a name
    /// it never issues for); the text is its reason and the fix.
    #[error("{0}")]
    Refused(String),
    #[error("cannot use {} as the ACME directory's CA (acme_ca_cert in haloyd.yaml): {source}", path.display())]
    CaCert {
        path: std::path::PathBuf,
        source: instant_acme::Error,
    },
    #[error("cannot set up the ACME client: {0}")]
    Client(#[source] instant_acme::Error),
    #[error("cannot make {what}: {source}")]
    Key { what: String, source: rcgen::Error },
    #[error("cannot encode the ACME account: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A certificate chain (leaf first) and its private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Where certificates come from.
#[async_trait]
pub trait AcmeDirectory: Send + Sync + 'static {
    /// Obtains a certificate carrying `names` for the account of `email`.
    async fn issue(&self, names: &[String], email: &str) -> Result<Issued, AcmeError>;
}

/// A certificate ready for the proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct CertFile {
    pub domain: String,
    /// Hosts served with it (HTTP for them redirects to HTTPS).
    pub names: Vec<String>,
    /// The name the proxy knows it by, and the file it loads after a restart. A new
    /// certificate is moved there once the proxy serves it.
    pub path: PathBuf,
    /// Chain and key.
    pub pem: String,
}

/// Leaves the PEM out: it holds the private key.
impl std::fmt::Debug for CertFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertFile")
            .field("domain", &self.domain)
            .field("names", &self.names)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where certificates go.
#[async_trait]
pub trait Installer: Send + Sync + 'static {
    /// Serves `cert` from now on, replacing an earlier certificate of the domain.
    async fn install_certificate(&self, cert: &CertFile) -> Result<(), InstallError>;
    /// Stops serving the certificate known as `path` for `domain`: its hosts are no
    /// longer redirected to HTTPS and the proxy forgets the certificate. Removing one
    /// that is not there succeeds.
    async fn remove_certificate(&self, domain: &str, path: &Path) -> Result<(), InstallError>;
}

#[derive(Debug, Clone)]
pub struct CertSettings {
    /// Renew this long before expiry; `None` is the default rule (see
    /// [`policy::renewal_window`]).
    pub renew_before: Option<Duration>,
    /// How often the loop looks for certificates to renew.
    pub check_interval: Duration,
}

/// A certificate's state for `haloy status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateStatus {
    pub domain: String,
    pub names: Vec<String>,
    pub not_after: Option<SystemTime>,
    pub serial: Option<String>,
    /// The last issuance or renewal error; empty once one succeeds.
    pub last_error: String,
    /// Attempts to obtain it that failed since haloyd started.
    pub failed_attempts: u64,
}

struct Entry {
    wanted: Wanted,
    current: Option<CertInfo>,
    last_error: String,
    /// Failures in a row, for the back-off.
    failures: u32,
    /// Every failure since haloyd started, for the metrics.
    failed_attempts: u64,
    retry_at: Option<SystemTime>,
}

impl Entry {
    fn new(wanted: Wanted, current: Option<CertInfo>) -> Self {
        Self {
            wanted,
            current,
            last_error: String::new(),
            failures: 0,
            failed_attempts: 0,
            retry_at: None,
        }
    }
}

/// The owner of every certificate's state; [`Certificates::run`] is the one task
/// that requests certificates, so orders never overlap.
pub struct Certificates {
    files: CertDir,
    directory: Arc<dyn AcmeDirectory>,
    installer: Arc<dyn Installer>,
    settings: CertSettings,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Certificates to take out of the proxy, as (domain, path): domains no longer
    /// wanted, and names left behind by earlier releases. Retried until they succeed.
    removals: Mutex<Vec<(String, PathBuf)>>,
    wake: Notify,
}

impl Certificates {
    /// Loads the stored requests and certificates; requests nothing yet.
    pub fn new(
        files: CertDir,
        directory: Arc<dyn AcmeDirectory>,
        installer: Arc<dyn Installer>,
        settings: CertSettings,
    ) -> Self {
        let mut removals = files.migrate();
        let mut entries = BTreeMap::new();
        for wanted in files.load_wanted() {
            let current = files
                .load_certificate(&wanted.domain)
                .and_then(|pem| match x509::leaf_info(&pem) {
                    Ok(info) => Some(info),
                    Err(e) => {
                        tracing::warn!(domain = %wanted.domain, "the stored certificate cannot be read and will be requested again: {e}");
                        None
                    }
                });
            entries.insert(wanted.domain.clone(), Entry::new(wanted, current));
        }
        for domain in files.orphans() {
            let path = files.pem_path(&domain);
            removals.push((domain, path));
        }
        Self {
            files,
            directory,
            installer,
            settings,
            entries: Mutex::new(entries),
            removals: Mutex::new(removals),
            wake: Notify::new(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-written: every
        // update is a single assignment. Keep going with what is there.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn removals(&self) -> std::sync::MutexGuard<'_, Vec<(String, PathBuf)>> {
        // Pushes and takes are single operations; see `entries`.
        self.removals.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue_removal(&self, domain: String, path: PathBuf) {
        let mut removals = self.removals();
        if !removals.iter().any(|(d, p)| *d == domain && *p == path) {
            removals.push((domain, path));
        }
    }

    /// Takes dropped certificates out of the proxy, then deletes their files unless
    /// the domain is wanted again meanwhile.
    async fn remove_dropped(&self) {
        let pending = std::mem::take(&mut *self.removals());
        for (domain, path) in pending {
            let wanted_again = self.entries().contains_key(&domain);
            if wanted_again && path == self.files.pem_path(&domain) {
                continue;
            }
            match self.installer.remove_certificate(&domain, &path).await {
                Ok(()) => {
                    if !self.entries().contains_key(&domain) {
                        self.files.remove_certificate(&domain);
                    }
                    tracing::info!(%domain, file = %path.display(), "certificate removed");
                }
                Err(e) => {
                    tracing::warn!(%domain, "cannot remove the certificate from HAProxy, will retry: {e}");
                    self.queue_removal(domain, path);
                }
            }
        }
    }

    /// The certificates on disk, for the proxy's configuration at start.
    pub fn stored(&self) -> Vec<CertFile> {
        // The files are read after the lock is let go: no I/O under a std mutex.
        let served: Vec<(String, Vec<String>)> = self
            .entries()
            .values()
            .filter(|e| e.current.is_some())
            .map(|e| (e.wanted.domain.clone(), e.wanted.names.clone()))
            .collect();
        served
            .into_iter()
            .filter_map(|(domain, names)| {
                let pem = self.files.load_certificate(&domain)?;
                Some(CertFile {
                    path: self.files.pem_path(&domain),
                    domain,
                    names,
                    pem,
                })
            })
            .collect()
    }

    /// Makes `app`'s certificates exactly `wanted` (one per canonical domain) and
    /// wakes the loop. Requests of the app for other domains are dropped.
    pub fn want(&self, app: &str, wanted: Vec<Wanted>) {
        let mut entries = self.entries();
        let keep: Vec<&str> = wanted.iter().map(|w| w.domain.as_str()).collect();
        let dropped: Vec<String> = entries
            .values()
            .filter(|e| e.wanted.app == app && !keep.contains(&e.wanted.domain.as_str()))
            .map(|e| e.wanted.domain.clone())
            .collect();
        for domain in &dropped {
            entries.remove(domain);
        }
        for wanted in wanted.iter().cloned() {
            match entries.get_mut(&wanted.domain) {
                Some(entry) => {
                    if entry.wanted.names != wanted.names {
                        // New names deserve a fresh attempt, not the old back-off.
                        entry.retry_at = None;
                        entry.failures = 0;
                    }
                    entry.wanted = wanted;
                }
                None => {
                    entries.insert(wanted.domain.clone(), Entry::new(wanted, None));
                }
            }
        }
        drop(entries);
        // Files follow the entries, outside the lock.
        for domain in dropped {
            self.files.remove_wanted(&domain);
            let path = self.files.pem_path(&domain);
            self.queue_removal(domain, path);
        }
        for wanted in &wanted {
            if let Err(e) = self.files.save_wanted(wanted) {
                tracing::error!(domain = %wanted.domain, "cannot store the certificate request: {e}");
            }
        }
        self.wake.notify_one();
    }

    /// The certificates of `app` (empty string: haloyd's API domain).
    pub fn status(&self, app: &str) -> Vec<CertificateStatus> {
        self.statuses(|e| e.wanted.app == app)
    }

    /// Every certificate haloyd manages, apps' and its own API domain's.
    pub fn all(&self) -> Vec<CertificateStatus> {
        self.statuses(|_| true)
    }

    fn statuses(&self, keep: impl Fn(&Entry) -> bool) -> Vec<CertificateStatus> {
        self.entries()
            .values()
            .filter(|e| keep(e))
            .map(|e| CertificateStatus {
                domain: e.wanted.domain.clone(),
                names: e.wanted.names.clone(),
                not_after: e.current.as_ref().map(|c| c.not_after),
                serial: e.current.as_ref().map(|c| c.serial.clone()),
                last_error: e.last_error.clone(),
                failed_attempts: e.failed_attempts,
            })
            .collect()
    }

    /// One pass: requests every certificate that is missing, due or has new names
    /// and is not waiting out a back-off. Returns the domains it obtained.
    pub async fn tick(&self, now: SystemTime) -> Vec<String> {
        // Back-offs count from when an attempt failed, which may be long after `now`.
        let started = tokio::time::Instant::now();
        self.remove_dropped().await;
        let work: Vec<(Wanted, Need)> = self
            .entries()
            .values()
            .filter(|e| e.retry_at.is_none_or(|at| now >= at))
            .filter_map(|e| {
                let need = policy::need(
                    e.current.as_ref(),
                    &e.wanted.names,
                    now,
                    self.settings.renew_before,
                )?;
                Some((e.wanted.clone(), need))
            })
            .collect();
        let mut obtained = Vec::new();
        let attempts = work.len();
        for (wanted, need) in work {
            tracing::info!(domain = %wanted.domain, names = ?wanted.names, reason = need.as_str(), "requesting a certificate");
            match self.obtain(&wanted, now).await {
                Ok(info) => {
                    tracing::info!(domain = %wanted.domain, serial = %info.serial, not_after = ?info.not_after, "certificate installed");
                    let still_wanted = match self.entries().get_mut(&wanted.domain) {
                        Some(entry) => {
                            entry.current = Some(info);
                            entry.last_error.clear();
                            entry.failures = 0;
                            entry.retry_at = None;
                            true
                        }
                        None => false,
                    };
                    if still_wanted {
                        obtained.push(wanted.domain);
                    } else {
                        // Dropped while it was being obtained: it must not stay served.
                        let path = self.files.pem_path(&wanted.domain);
                        self.queue_removal(wanted.domain, path);
                    }
                }
                Err(reason) => {
                    let mut entries = self.entries();
                    let Some(entry) = entries.get_mut(&wanted.domain) else {
                        continue;
                    };
                    entry.failures += 1;
                    entry.failed_attempts += 1;
                    let wait = policy::retry_after(entry.failures);
                    entry.retry_at = Some(now + started.elapsed() + wait);
                    entry.last_error = format!(
                        "{reason} (attempt {}, next in {} s)",
                        entry.failures,
                        wait.as_secs()
                    );
                    tracing::warn!(domain = %wanted.domain, failures = entry.failures, retry_in_secs = wait.as_secs(), "cannot obtain a certificate: {reason}");
                }
            }
        }
        self.remove_dropped().await;
        let served = self
            .entries()
            .values()
            .filter(|e| e.current.is_some())
            .count();
        tracing::info!("certificates checked: {served} served, {attempts} requested");
        obtained
    }

    /// Issues a certificate (or takes the one issued earlier whose install failed:
    /// issuing again would spend the directory's duplicate-certificate limit),
    /// installs it, and only then makes it the file HAProxy loads after a restart.
    async fn obtain(&self, wanted: &Wanted, now: SystemTime) -> Result<CertInfo, ObtainError> {
        let domain = &wanted.domain;
        let staged = self.files.load_staged(domain).and_then(|pem| {
            let info = x509::leaf_info(&pem).ok()?;
            (policy::names_match(&info, &wanted.names) && info.not_after > now)
                .then_some((pem, info))
        });
        let (pem, info) = match staged {
            Some(staged) => {
                tracing::info!(%domain, "installing the certificate issued before, not yet served");
                staged
            }
            None => {
                let issued = self.directory.issue(&wanted.names, &wanted.email).await?;
                let info = x509::leaf_info(&issued.chain_pem)?;
                let pem = self
                    .files
                    .stage_certificate(domain, &issued.chain_pem, &issued.key_pem)
                    .map_err(ObtainError::Store)?;
                (pem, info)
            }
        };
        self.installer
            .install_certificate(&CertFile {
                domain: domain.clone(),
                names: wanted.names.clone(),
                path: self.files.pem_path(domain),
                pem,
            })
            .await
            .map_err(ObtainError::Install)?;
        // HAProxy serves it from memory; the file follows for the next restart.
        self.files.promote(domain).map_err(ObtainError::Store)?;
        Ok(info)
    }

    /// Ticks every `check_interval`, when a back-off ends, and at once when a
    /// request comes in.
    pub async fn run(self: Arc<Self>) {
        loop {
            let now = SystemTime::now();
            self.tick(now).await;
            let retry = self
                .entries()
                .values()
                .filter_map(|e| e.retry_at)
                .min()
                .map(|at| at.duration_since(now).unwrap_or_default());
            let wait = retry.map_or(self.settings.check_interval, |r| {
                r.min(self.settings.check_interval)
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod fakes;
#[cfg(test)]
mod tests;
