//! Fakes for the certificate seams: a directory that issues self-signed
//! certificates of a chosen lifetime (or fails on demand, or takes a while) and an
//! installer that records what it was given (or fails on demand).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{AcmeDirectory, AcmeError, CertFile, InstallError, Installer, Issued};

pub(crate) struct FakeDirectory {
    pub lifetime: Duration,
    /// Certificates start at this time.
    pub now: Mutex<SystemTime>,
    pub fail: Mutex<Option<String>>,
    /// How long an order takes (in tokio's clock, so paused tests skip it).
    pub delay: Mutex<Duration>,
    pub issued: Mutex<Vec<Vec<String>>>,
}

impl FakeDirectory {
    pub fn new(lifetime: Duration, now: SystemTime) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            now: Mutex::new(now),
            fail: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            issued: Mutex::default(),
        })
    }

    pub fn issued(&self) -> usize {
        self.issued.lock().unwrap().len()
    }
}

#[async_trait]
impl AcmeDirectory for FakeDirectory {
    async fn issue(&self, names: &[String], _email: &str) -> Result<Issued, AcmeError> {
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some(reason) = self.fail.lock().unwrap().clone() {
            return Err(AcmeError::Refused(reason));
        }
        self.issued.lock().unwrap().push(names.to_vec());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(names.to_vec()).unwrap();
        let start = *self.now.lock().unwrap();
        params.not_before = time::OffsetDateTime::from(start);
        params.not_after = time::OffsetDateTime::from(start + self.lifetime);
        let cert = params.self_signed(&key).unwrap();
        Ok(Issued {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

#[derive(Default)]
pub(crate) struct FakeInstaller {
    pub installed: Mutex<Vec<CertFile>>,
    pub removed: Mutex<Vec<(String, PathBuf)>>,
    pub fail: Mutex<Option<String>>,
}

impl FakeInstaller {
    fn failure(&self) -> Result<(), InstallError> {
        match self.fail.lock().unwrap().clone() {
            Some(reason) => Err(InstallError(reason.into())),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Installer for FakeInstaller {
    async fn install_certificate(&self, cert: &CertFile) -> Result<(), InstallError> {
        self.failure()?;
        self.installed.lock().unwrap().push(cert.clone());
        Ok(())
    }

    async fn remove_certificate(&self, domain: &str, path: &Path) -> Result<(), InstallError> {
        self.failure()?;
        self.removed
            .lock()
            .unwrap()
            .push((domain.to_string(), path.to_path_buf()));
        Ok(())
    }
}
