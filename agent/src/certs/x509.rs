//! What haloyd needs to know about a certificate it holds: names, validity and
//! serial, read from the PEM chain the ACME server returned (rcgen only writes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::error::{PEMError, X509Error};
use x509_parser::extensions::GeneralName;
use x509_parser::nom;

/// The leaf certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names on the certificate, sorted.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Hex, as `openssl x509 -serial` prints it (upper case, no separators).
    pub serial: String,
}

impl CertInfo {
    /// How long the certificate is valid in all.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }
}

/// Why a certificate chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CertReadError {
    #[error("the certificate chain is not PEM: {0}")]
    Pem(#[source] nom::Err<PEMError>),
    #[error("the certificate cannot be parsed: {0}")]
    Parse(#[source] nom::Err<X509Error>),
    #[error("the certificate's names cannot be read: {0}")]
    Names(#[source] X509Error),
}

/// Reads the first certificate of a PEM chain.
pub fn leaf_info(chain_pem: &str) -> Result<CertInfo, CertReadError> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).map_err(CertReadError::Pem)?;
    let cert = pem.parse_x509().map_err(CertReadError::Parse)?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(CertReadError::Names(e)),
    };
    names.sort();
    names.dedup();
    let time = |seconds: i64| UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    let validity = cert.validity();
    Ok(CertInfo {
        names,
        not_before: time(validity.not_before.timestamp()),
        not_after: time(validity.not_after.timestamp()),
        serial: hex::encode_upper(cert.raw_serial())
            .trim_start_matches("00")
            .to_string(),
    })
}
