//! cert-storage on disk. App and API-domain certificates live in `domains/`, one
//! `<domain>.pem` (chain, then key; the file HAProxy loads) and `<domain>.json` (what
//! was asked for) per canonical domain, so no domain name can collide with haloyd's
//! own files at the top (`default.pem`, `api-selfsigned.pem`, the ACME accounts).
//! A freshly issued certificate waits in `<domain>.pem.new` until HAProxy serves it.
//! Every file is written atomically with mode 0600: it holds a private key or is read
//! back as the truth after a restart.
//!
//! Releases before the move kept `<domain>.pem`/`.json` at the top; [`CertDir::migrate`]
//! moves them into `domains/` at start.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a certificate is for, as stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    /// The canonical domain; the certificate's file name.
    pub domain: String,
    /// Every name the certificate must carry: the domain, then its aliases.
    pub names: Vec<String>,
    /// Contact address for the ACME account.
    pub email: String,
    /// The app it serves; empty for haloyd's own API domain.
    pub app: String,
}

/// Writes through a temporary file created with mode 0600 from the start, so a key
/// is never readable by others, and a crash leaves the previous file whole.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    crate::durable::rename(&tmp, path)
}

/// The certificate files of one directory.
#[derive(Debug, Clone)]
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Where the domains' certificates and requests are.
    pub fn domains_dir(&self) -> PathBuf {
        self.dir.join("domains")
    }

    /// The file HAProxy loads for `domain`.
    pub fn pem_path(&self, domain: &str) -> PathBuf {
        self.domains_dir().join(format!("{domain}.pem"))
    }

    /// A certificate issued for `domain` that HAProxy does not serve yet.
    pub fn staged_path(&self, domain: &str) -> PathBuf {
        self.domains_dir().join(format!("{domain}.pem.new"))
    }

    fn wanted_path(&self, domain: &str) -> PathBuf {
        self.domains_dir().join(format!("{domain}.json"))
    }

    /// The ACME account of `email`: one file per address, named by its SHA-256 so
    /// any address makes a safe file name.
    pub fn account_path(&self, email: &str) -> PathBuf {
        let digest = Sha256::digest(email.as_bytes());
        let name = hex::encode(&digest[..12]);
        self.dir.join(format!("acme-account-{name}.json"))
    }

    /// The single account file of releases that kept one account.
    pub fn legacy_account_path(&self) -> PathBuf {
        self.dir.join("acme-account.json")
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.dir.clone(), self.domains_dir()] {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    pub fn save_wanted(&self, wanted: &Wanted) -> std::io::Result<()> {
        self.ensure_dir()?;
        let text = serde_json::to_string_pretty(wanted).map_err(std::io::Error::other)?;
        write_private(&self.wanted_path(&wanted.domain), text.as_bytes())
    }

    pub fn remove_wanted(&self, domain: &str) {
        let _ = std::fs::remove_file(self.wanted_path(domain));
    }

    /// Deletes the certificate of `domain` (served and staged); its key goes with it.
    pub fn remove_certificate(&self, domain: &str) {
        let _ = std::fs::remove_file(self.pem_path(domain));
        let _ = std::fs::remove_file(self.staged_path(domain));
    }

    /// Every stored request; unreadable ones are logged and skipped.
    pub fn load_wanted(&self) -> Vec<Wanted> {
        let mut all: Vec<Wanted> = files_ending(&self.domains_dir(), ".json")
            .into_iter()
            .filter_map(|path| match read_wanted(&path) {
                Ok(wanted) => Some(wanted),
                Err(e) => {
                    tracing::warn!(file = %path.display(), "ignoring a certificate request that cannot be read: {e}");
                    None
                }
            })
            .collect();
        all.sort_by(|a, b| a.domain.cmp(&b.domain));
        all
    }

    /// Domains with a certificate file but no request: dropped while haloyd was not
    /// there to remove them.
    pub fn orphans(&self) -> Vec<String> {
        let wanted: Vec<String> = self.load_wanted().into_iter().map(|w| w.domain).collect();
        let mut orphans: Vec<String> = files_ending(&self.domains_dir(), ".pem")
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".pem"))
            .filter(|domain| !wanted.iter().any(|w| w == domain))
            .map(str::to_string)
            .collect();
        orphans.sort();
        orphans
    }

    /// Moves requests and certificates kept at the top by earlier releases into
    /// `domains/`. Returns (domain, old certificate path) for each moved certificate,
    /// so the old name can be taken out of a running HAProxy.
    pub fn migrate(&self) -> Vec<(String, PathBuf)> {
        let mut moved = Vec::new();
        for path in files_ending(&self.dir, ".json") {
            let Ok(wanted) = read_wanted(&path) else {
                continue; // an ACME account, or something else that is not ours
            };
            if self.ensure_dir().is_err() {
                return moved;
            }
            let old_pem = self.dir.join(format!("{}.pem", wanted.domain));
            if old_pem.is_file()
                && crate::durable::rename(&old_pem, &self.pem_path(&wanted.domain)).is_ok()
            {
                moved.push((wanted.domain.clone(), old_pem));
            }
            if let Err(e) = crate::durable::rename(&path, &self.wanted_path(&wanted.domain)) {
                tracing::warn!(file = %path.display(), "cannot move the certificate request into domains/: {e}");
            }
        }
        moved
    }

    /// Stores a certificate chain with its key, as HAProxy wants them, in the staged
    /// file; [`CertDir::promote`] makes it the served one.
    pub fn stage_certificate(
        &self,
        domain: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> std::io::Result<String> {
        self.ensure_dir()?;
        let pem = combined_pem(chain_pem, key_pem);
        write_private(&self.staged_path(domain), pem.as_bytes())?;
        Ok(pem)
    }

    /// The staged certificate of `domain` becomes the one HAProxy loads.
    pub fn promote(&self, domain: &str) -> std::io::Result<()> {
        crate::durable::rename(&self.staged_path(domain), &self.pem_path(domain))
    }

    /// The stored chain and key of `domain`, if any.
    pub fn load_certificate(&self, domain: &str) -> Option<String> {
        std::fs::read_to_string(self.pem_path(domain)).ok()
    }

    /// The staged chain and key of `domain`, if any.
    pub fn load_staged(&self, domain: &str) -> Option<String> {
        std::fs::read_to_string(self.staged_path(domain)).ok()
    }
}

/// Why a certificate request file could not be read.
#[derive(Debug, thiserror::Error)]
enum WantedError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

fn read_wanted(path: &Path) -> Result<Wanted, WantedError> {
    let text = std::fs::read_to_string(path)?;
    Ok(serde_json::from_str::<Wanted>(&text)?)
}

/// The files of `dir` whose names end with `suffix` (hidden ones left out).
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix) && !n.starts_with('.'))
        })
        .collect()
}

/// Chain then key, without blank lines: HAProxy's runtime API ends a payload at the
/// first empty line.
pub fn combined_pem(chain_pem: &str, key_pem: &str) -> String {
    let mut out = String::new();
    for line in chain_pem.lines().chain(key_pem.lines()) {
        let line = line.trim_end();
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
