//! Self-signed certificates made with rcgen: HAProxy's default certificate (a
//! `crt-list` needs one before any ACME certificate exists) and haloyd's own API
//! certificate, which clients pin by its SHA-256 fingerprint.

use std::path::{Path, PathBuf};

use super::files;

#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("cannot make {what}: {source}")]
    Make {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate in the PEM text")]
    NoCertificate,
    #[error("the certificate is not PEM: {0}")]
    NotPem(#[source] std::io::Error),
}

fn making(what: &'static str) -> impl FnOnce(rcgen::Error) -> SelfSignedError {
    move |source| SelfSignedError::Make { what, source }
}

/// A certificate and its private key, both PEM.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Identity {
    /// The SHA-256 fingerprint of the certificate's DER, as `AA:BB:..`, the form
    /// `openssl x509 -fingerprint -sha256` prints.
    pub fn fingerprint(&self) -> Result<String, SelfSignedError> {
        fingerprint_of_pem(&self.cert_pem)
    }

    /// Certificate then key, the form HAProxy loads.
    pub fn combined(&self) -> String {
        files::combined_pem(&self.cert_pem, &self.key_pem)
    }
}

/// Makes a new self-signed certificate for `names`.
pub fn generate(names: &[String]) -> Result<Identity, SelfSignedError> {
    let key = rcgen::KeyPair::generate().map_err(making("a key"))?;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(making("a certificate"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "haloyd");
    let cert = params
        .self_signed(&key)
        .map_err(making("the certificate's signature"))?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Reads the certificate and key kept in `path` (certificate first), or makes and
/// stores (mode 0600) a new one for `names` when there is none.
pub fn load_or_create(path: &Path, names: &[String]) -> Result<Identity, SelfSignedError> {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some(identity) = split(&text)
    {
        return Ok(identity);
    }
    let identity = generate(names)?;
    files::write_private(path, identity.combined().as_bytes()).map_err(|source| {
        SelfSignedError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(identity)
}

/// Splits a combined PEM file into its first certificate and its key.
fn split(text: &str) -> Option<Identity> {
    let cert_end = "-----END CERTIFICATE-----";
    let end = text.find(cert_end)? + cert_end.len();
    let key_start = text.find("-----BEGIN PRIVATE KEY-----")?;
    Some(Identity {
        cert_pem: format!("{}\n", text[..end].trim()),
        key_pem: format!("{}\n", text[key_start..].trim()),
    })
}

/// The SHA-256 fingerprint of the first certificate in a PEM text.
pub fn fingerprint_of_pem(pem: &str) -> Result<String, SelfSignedError> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    let der = rustls_pemfile::certs(&mut reader)
        .next()
        .ok_or(SelfSignedError::NoCertificate)?
        .map_err(SelfSignedError::NotPem)?;
    Ok(fingerprint_of_der(&der))
}

pub fn fingerprint_of_der(der: &[u8]) -> String {
    use haloy_api::fingerprint::{sha256_hex, with_colons};
    with_colons(&sha256_hex(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_identity_is_reused_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.pem");
        let names = vec!["haloyd".to_string()];
        let first = load_or_create(&path, &names).unwrap();
        let again = load_or_create(&path, &names).unwrap();
        assert_eq!(first.fingerprint().unwrap(), again.fingerprint().unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let fingerprint = first.fingerprint().unwrap();
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    }
}
