//! The workstation's list of haloyd servers and their API tokens
//! (`haloy server add|list|delete`).
//!
//! `client.yaml` in Haloy's config directory maps each server to the name of an
//! environment variable; the token itself lives in that directory's `.env` (mode 0600),
//! so no config file holds a secret.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use haloy_api::spec::Secret;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::address::{AddressError, ServerAddress};
use crate::env::{EnvSource, parse_dotenv};

/// `HALOY_API_TOKEN_<SERVER>`: the server upper-cased, every other character `_`.
pub fn token_env_name(server: &ServerAddress) -> String {
    let suffix: String = server
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("HALOY_API_TOKEN_{}", suffix.trim_matches('_'))
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Address(AddressError),
    #[error(transparent)]
    Plaintext(#[from] crate::tls::PlaintextRefused),
    #[error("server {server} is already configured; pass --force to replace its token")]
    Exists { server: String },
    #[error(
        "server {server} is not configured; configured servers: {}",
        list_or_none(known)
    )]
    Unknown { server: String, known: Vec<String> },
    #[error(
        "the token is empty or has spaces or line breaks; pass the token printed by `haloyadm api token`"
    )]
    BadToken,
    #[error(
        "no server is configured; add one with `haloy server add <server> <token>` or set `server:` in the config"
    )]
    NoneConfigured,
    #[error("several servers are configured ({}); set `server:` in the config or pass --server <server>", known.join(", "))]
    Ambiguous { known: Vec<String> },
    #[error(
        "no API token for server {server}; run `haloy server add {server} <token>` or set api_token in the config"
    )]
    NoToken { server: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {problem}; fix or delete the file")]
    Corrupt { path: PathBuf, problem: String },
    #[error("Haloy's config directory is unknown because HOME is not set; set HOME")]
    NoHome,
}

fn list_or_none(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientFile {
    #[serde(default)]
    servers: IndexMap<String, ServerEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerEntry {
    pub token_env: String,
    /// SHA-256 fingerprint of haloyd's self-signed API certificate, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// A PEM CA bundle to trust for the server instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Added as `https://…`: TLS even when the address is loopback.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

/// One row of `haloy server list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerListing {
    pub server: String,
    pub token_env: String,
    pub has_token: bool,
}

/// The servers configured on this workstation.
#[derive(Debug)]
pub struct ServerStore {
    dir: PathBuf,
    file: ClientFile,
}

impl ServerStore {
    /// Opens the store in Haloy's config directory (`~/.config/haloy`).
    pub fn open(dir: Option<&Path>) -> Result<Self, ServerError> {
        let dir = dir.ok_or(ServerError::NoHome)?.to_path_buf();
        let path = dir.join("client.yaml");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => ClientFile::default(),
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| ServerError::Corrupt {
                path: path.clone(),
                problem: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ClientFile::default(),
            Err(source) => return Err(ServerError::Read { path, source }),
        };
        Ok(Self { dir, file })
    }

    pub fn client_yaml(&self) -> PathBuf {
        self.dir.join("client.yaml")
    }

    pub fn dotenv(&self) -> PathBuf {
        self.dir.join(".env")
    }

    pub fn servers(&self) -> Vec<String> {
        self.file.servers.keys().cloned().collect()
    }

    pub fn entry(&self, server: &str) -> Option<&ServerEntry> {
        self.file.servers.get(server)
    }

    /// The TLS settings recorded for `server` (none when it is not configured).
    pub fn tls_options(&self, server: &str) -> crate::tls::TlsOptions {
        let key = ServerAddress::parse(server)
            .map(|a| a.to_string())
            .unwrap_or_else(|_| server.to_string());
        self.entry(&key)
            .map(|e| crate::tls::TlsOptions {
                fingerprint: e.fingerprint.clone(),
                ca_cert: e.ca_cert.clone(),
                tls: e.tls,
            })
            .unwrap_or_default()
    }

    /// Adds or (with `force`) replaces a server and its token.
    pub fn add(&mut self, server: &str, token: &str, force: bool) -> Result<String, ServerError> {
        self.add_with_tls(server, token, force, crate::tls::TlsOptions::default())
    }

    /// Adds a server with the TLS settings to reach it: a pinned fingerprint of
    /// haloyd's self-signed certificate, or a CA bundle (an absolute path).
    pub fn add_with_tls(
        &mut self,
        server: &str,
        token: &str,
        force: bool,
        tls: crate::tls::TlsOptions,
    ) -> Result<String, ServerError> {
        let address = ServerAddress::parse(server).map_err(ServerError::Address)?;
        crate::tls::refuse_plaintext(server, &address).map_err(ServerError::Plaintext)?;
        let key = address.to_string();
        if token.is_empty() || token.chars().any(char::is_whitespace) {
            return Err(ServerError::BadToken);
        }
        if self.file.servers.contains_key(&key) && !force {
            return Err(ServerError::Exists { server: key });
        }
        let token_env = match self.file.servers.get(&key) {
            Some(entry) => entry.token_env.clone(),
            None => self.unique_env_name(&address),
        };
        self.update_dotenv(&token_env, Some(token))?;
        self.file.servers.insert(
            key.clone(),
            ServerEntry {
                token_env,
                fingerprint: tls.fingerprint,
                ca_cert: tls.ca_cert,
                tls: tls.tls || server.trim().starts_with("https://"),
            },
        );
        self.save()?;
        Ok(key)
    }

    pub fn delete(&mut self, server: &str) -> Result<String, ServerError> {
        let key = ServerAddress::parse(server)
            .map(|a| a.to_string())
            .unwrap_or_else(|_| server.to_string());
        let Some(entry) = self.file.servers.shift_remove(&key) else {
            return Err(ServerError::Unknown {
                server: key,
                known: self.servers(),
            });
        };
        self.update_dotenv(&entry.token_env, None)?;
        self.save()?;
        Ok(key)
    }

    pub fn list(&self, env: &EnvSource) -> Vec<ServerListing> {
        self.file
            .servers
            .iter()
            .map(|(server, entry)| ServerListing {
                server: server.clone(),
                token_env: entry.token_env.clone(),
                has_token: env.get(&entry.token_env).is_some_and(|t| !t.is_empty()),
            })
            .collect()
    }

    /// The server to talk to: the one given (flag or config), else the only one
    /// configured, else an error listing them.
    pub fn select(&self, given: Option<&str>) -> Result<String, ServerError> {
        if let Some(server) = given {
            let address = ServerAddress::parse(server).map_err(ServerError::Address)?;
            crate::tls::refuse_plaintext(server, &address).map_err(ServerError::Plaintext)?;
            return Ok(address.to_string());
        }
        match self.file.servers.len() {
            0 => Err(ServerError::NoneConfigured),
            1 => Ok(self.servers().remove(0)),
            _ => Err(ServerError::Ambiguous {
                known: self.servers(),
            }),
        }
    }

    /// The API token for `server`: the app config's `api_token` first, then the
    /// variable `haloy server add` recorded for the server.
    pub fn token(
        &self,
        server: &str,
        from_app_config: Option<&Secret>,
        env: &EnvSource,
    ) -> Result<Secret, ServerError> {
        if let Some(token) = from_app_config {
            return Ok(token.clone());
        }
        self.entry(server)
            .and_then(|entry| env.get(&entry.token_env))
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| ServerError::NoToken {
                server: server.to_string(),
            })
    }

    /// The server and token for a target: `--server` over the config's `server` over
    /// the only configured server, and the config's `api_token` over the stored one.
    pub fn connection(
        &self,
        server_flag: Option<&str>,
        target_server: Option<&str>,
        app_token: Option<&Secret>,
        env: &EnvSource,
    ) -> Result<(String, Secret), ServerError> {
        let server = self.select(server_flag.or(target_server))?;
        let token = self.token(&server, app_token, env)?;
        Ok((server, token))
    }

    /// Distinct servers can map to the same variable name (`a-b.com` and `a.b.com`);
    /// number the later ones so their tokens never overwrite each other.
    fn unique_env_name(&self, address: &ServerAddress) -> String {
        let base = token_env_name(address);
        let taken = |name: &str| self.file.servers.values().any(|e| e.token_env == name);
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|name| !taken(name))
            .unwrap_or(base)
    }

    fn ensure_dir(&self) -> Result<(), ServerError> {
        let write_err = |source| ServerError::Write {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(write_err)?;
        set_mode(&self.dir, 0o700).map_err(write_err)
    }

    fn save(&self) -> Result<(), ServerError> {
        self.ensure_dir()?;
        let path = self.client_yaml();
        let text = serde_yaml::to_string(&self.file).map_err(|e| ServerError::Corrupt {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        write_atomically(&path, text.as_bytes(), 0o644)
            .map_err(|source| ServerError::Write { path, source })
    }

    /// Sets (or with `None` removes) one variable in the config directory's `.env`,
    /// keeping every other line as it was.
    fn update_dotenv(&self, name: &str, value: Option<&str>) -> Result<(), ServerError> {
        self.ensure_dir()?;
        let path = self.dotenv();
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ServerError::Read { path, source }),
        };
        let mut lines: Vec<String> = existing
            .lines()
            .filter(|line| {
                let single = parse_dotenv(line).unwrap_or_default();
                !single.contains_key(name)
            })
            .map(str::to_string)
            .collect();
        if let Some(value) = value {
            lines.push(format!("{name}={value}"));
        }
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        write_atomically(&path, text.as_bytes(), 0o600)
            .map_err(|source| ServerError::Write { path, source })
    }
}

/// Reads tokens as `haloy` sees them: process environment over the config `.env`.
pub fn token_env(process: &HashMap<String, String>, dir: Option<&Path>) -> EnvSource {
    let source = EnvSource::default().with_layer("the environment", process.clone());
    match dir {
        // An unreadable .env only hides tokens; `server list` shows them missing.
        Some(dir) => source
            .clone()
            .with_file(&dir.join(".env"))
            .unwrap_or(source),
        None => source,
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes through a temporary file created with `mode` from the start, so a token is
/// never readable by others, not even for a moment, and a crash leaves the old file.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    set_mode(&tmp, mode)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_variables_differ_per_port() {
        let a = token_env_name(&ServerAddress::parse("127.0.0.1:9999").unwrap());
        let b = token_env_name(&ServerAddress::parse("127.0.0.1:9998").unwrap());
        assert_eq!(a, "HALOY_API_TOKEN_127_0_0_1_9999");
        assert_ne!(a, b);
        assert_eq!(
            token_env_name(&ServerAddress::parse("production.haloy.com").unwrap()),
            "HALOY_API_TOKEN_PRODUCTION_HALOY_COM"
        );
    }
}
