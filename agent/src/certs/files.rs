//! cert-storage on disk: per canonical domain `<domain>.pem` (chain, then key; the
//! file HAProxy loads) and `<domain>.json` (what was asked for), plus the ACME
//! account. Every file is written atomically with mode 0600: it holds a private key
//! or is read back as the truth after a restart.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    std::fs::rename(&tmp, path)
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

    /// The file HAProxy loads for `domain`.
    pub fn pem_path(&self, domain: &str) -> PathBuf {
        self.dir.join(format!("{domain}.pem"))
    }

    fn wanted_path(&self, domain: &str) -> PathBuf {
        self.dir.join(format!("{domain}.json"))
    }

    pub fn account_path(&self) -> PathBuf {
        self.dir.join("acme-account.json")
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
    }

    pub fn save_wanted(&self, wanted: &Wanted) -> std::io::Result<()> {
        self.ensure_dir()?;
        let text = serde_json::to_string_pretty(wanted).map_err(std::io::Error::other)?;
        write_private(&self.wanted_path(&wanted.domain), text.as_bytes())
    }

    pub fn remove_wanted(&self, domain: &str) {
        let _ = std::fs::remove_file(self.wanted_path(domain));
    }

    /// Every stored request; unreadable ones are logged and skipped.
    pub fn load_wanted(&self) -> Vec<Wanted> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().and_then(|e| e.to_str()) != Some("json")
                || path == self.account_path()
            {
                continue;
            }
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Wanted>(&t).map_err(|e| e.to_string()))
            {
                Ok(wanted) => all.push(wanted),
                Err(e) => {
                    tracing::warn!(file = %path.display(), "ignoring a certificate request that cannot be read: {e}")
                }
            }
        }
        all.sort_by(|a, b| a.domain.cmp(&b.domain));
        all
    }

    /// Stores a certificate chain with its key, as HAProxy wants them.
    pub fn save_certificate(
        &self,
        domain: &str,
        chain_pem: &str,
        key_pem: &str,
    ) -> std::io::Result<String> {
        self.ensure_dir()?;
        let pem = combined_pem(chain_pem, key_pem);
        write_private(&self.pem_path(domain), pem.as_bytes())?;
        Ok(pem)
    }

    /// The stored chain and key of `domain`, if any.
    pub fn load_certificate(&self, domain: &str) -> Option<String> {
        std::fs::read_to_string(self.pem_path(domain)).ok()
    }
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
