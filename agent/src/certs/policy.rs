//! When a certificate is requested again, as pure functions of the time so the
//! renewal loop's decisions are unit-tested without waiting.

use std::time::{Duration, SystemTime};

use super::x509::CertInfo;

/// The default renewal window: certificates with less left are renewed.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The first retry after a failure; each further failure doubles it.
pub const FIRST_RETRY: Duration = Duration::from_secs(60);
/// Retries never wait longer than this.
pub const MAX_RETRY: Duration = Duration::from_secs(6 * 3600);

/// Why a certificate is (re)requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// There is none yet.
    Missing,
    /// The names asked for differ from the ones on the certificate.
    NamesChanged,
    /// It expires within the renewal window.
    Expiring,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "no certificate yet",
            Self::NamesChanged => "the domain's names changed",
            Self::Expiring => "the certificate is due for renewal",
        }
    }
}

/// The window before expiry in which `cert` is renewed: `configured` when set,
/// otherwise 30 days, or a third of the lifetime for certificates shorter-lived
/// than 90 days (a 6-day certificate is renewed with 2 days left, not at once).
pub fn renewal_window(cert: &CertInfo, configured: Option<Duration>) -> Duration {
    match configured {
        Some(window) => window,
        None => DEFAULT_RENEW_BEFORE.min(cert.lifetime() / 3),
    }
}

/// Whether a certificate with `names` wanted needs requesting at `now`.
pub fn need(
    cert: Option<&CertInfo>,
    names: &[String],
    now: SystemTime,
    configured_window: Option<Duration>,
) -> Option<Need> {
    let Some(cert) = cert else {
        return Some(Need::Missing);
    };
    if !names_match(cert, names) {
        return Some(Need::NamesChanged);
    }
    let left = cert.not_after.duration_since(now).unwrap_or_default();
    (left < renewal_window(cert, configured_window)).then_some(Need::Expiring)
}

/// Whether `cert` carries exactly `names`, in any order.
pub fn names_match(cert: &CertInfo, names: &[String]) -> bool {
    let mut wanted: Vec<String> = names.to_vec();
    wanted.sort();
    wanted.dedup();
    wanted == cert.names
}

/// How long to wait after the `failures`-th failure in a row (1 for the first).
pub fn retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1u32 << doublings).min(MAX_RETRY)
}
