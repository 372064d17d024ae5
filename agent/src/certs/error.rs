//! What goes wrong obtaining and installing a certificate, with its cause kept.

use super::AcmeError;
use super::x509::CertReadError;

/// The proxy could not serve, or stop serving, a certificate. The proxy's own error
/// type is not named here: the proxy depends on this module, not the other way.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InstallError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Why a certificate could not be obtained and installed; the renewal loop retries.
#[derive(Debug, thiserror::Error)]
pub enum ObtainError {
    #[error(transparent)]
    Issue(#[from] AcmeError),
    #[error(transparent)]
    Certificate(#[from] CertReadError),
    #[error("cannot store the certificate: {0}")]
    Store(#[source] std::io::Error),
    #[error("cannot install the certificate into HAProxy: {0}")]
    Install(#[source] InstallError),
}
