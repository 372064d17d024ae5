//! Certificates into the running HAProxy without a reload, through the admin socket
//! (the master CLI does not pass payloads on): `new ssl cert`, `set ssl cert` with the
//! PEM as payload, `commit ssl cert`, `add ssl crt-list`; a renewal is `set` and
//! `commit` on the same name; a removal is `del ssl crt-list` and `del ssl cert`. The
//! files (`certs.list`, `https.map`) are rewritten too, so a reload or restart serves
//! the same certificates.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::config::Paths;
use super::routing::{Certificate, Routing};
use super::{Haproxy, files, runtime};
use crate::certs::{CertFile, InstallError, Installer, selfsigned, x509};
use crate::proxy::ProxyError;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// One command (and its payload) on the admin socket; returns the whole answer.
async fn admin(socket: &Path, command: &str, payload: Option<&str>) -> Result<String, ProxyError> {
    let mut text = command.to_string();
    if let Some(payload) = payload {
        // The payload ends at the first empty line; combined_pem has none.
        text.push_str(" <<\n");
        text.push_str(payload.trim_end());
        text.push_str("\n\n");
    } else {
        text.push('\n');
    }
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let unavailable = |reason: String| ProxyError::Unavailable {
        socket: socket.display().to_string(),
        reason,
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(_) => Err(unavailable(format!("no answer to `{command}` in time"))),
    }
}

fn expect(command: &str, answer: &str, ok: &str) -> Result<(), ProxyError> {
    if answer.contains(ok) {
        Ok(())
    } else {
        Err(ProxyError::Refused {
            command: command.to_string(),
            answer: answer.trim().to_string(),
        })
    }
}

/// What `show ssl cert` lists: the certificate names the running worker holds, and
/// the one with an open transaction (marked `*`), if any. HAProxy allows one
/// transaction at a time: while one is open every other `set ssl cert` fails.
async fn loaded(paths: &Paths) -> Result<(BTreeSet<String>, Option<String>), ProxyError> {
    let answer = admin(&paths.admin_socket, "show ssl cert", None).await?;
    let mut names = BTreeSet::new();
    let mut open = None;
    for line in answer.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix('*') {
            Some(name) => open = Some(name.to_string()),
            None => {
                names.insert(line.to_string());
            }
        }
    }
    Ok((names, open))
}

/// Whether the crt-list HTTPS serves from lists `name`. A certificate that exists in
/// the worker but is not on the list is never presented.
async fn listed(paths: &Paths, name: &str) -> Result<bool, ProxyError> {
    let command = format!("show ssl crt-list {}", paths.crt_list.display());
    let answer = admin(&paths.admin_socket, &command, None).await?;
    Ok(answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .any(|first| first == name))
}

/// The serial of the certificate the worker holds as `name`, without leading zeros.
async fn serial(paths: &Paths, name: &str) -> Result<Option<String>, ProxyError> {
    let answer = admin(&paths.admin_socket, &format!("show ssl cert {name}"), None).await?;
    Ok(answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("Serial:"))
        .map(|s| normalize_serial(s.trim())))
}

fn normalize_serial(serial: &str) -> String {
    serial.trim_start_matches('0').to_ascii_uppercase()
}

/// Puts `pem` into the running worker under `path` and onto the crt-list. Each step
/// is decided by what the worker holds, not by what an earlier attempt did, so an
/// attempt that failed half-way is finished by the next one.
async fn load(paths: &Paths, path: &Path, pem: &str) -> Result<(), ProxyError> {
    let name = path.display().to_string();
    let socket = &paths.admin_socket;
    let (have, open) = loaded(paths).await?;
    if let Some(open) = open {
        // Left by a failed attempt (or a hand on the socket); it blocks every update.
        tracing::warn!(certificate = %open, "aborting an unfinished HAProxy certificate transaction");
        admin(socket, &format!("abort ssl cert {open}"), None).await?;
    }
    if !have.contains(&name) {
        let command = format!("new ssl cert {name}");
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "New empty certificate store")?;
    }
    let update = async {
        let command = format!("set ssl cert {name}");
        let answer = admin(socket, &command, Some(pem)).await?;
        // "Transaction created/updated for certificate <name>!": another name would
        // mean someone else's transaction took the payload.
        expect(&command, &answer, &format!("for certificate {name}!"))?;
        let command = format!("commit ssl cert {name}");
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "Success!")
    };
    if let Err(e) = update.await {
        // Socket errors included: an open transaction would block every later install.
        let _ = admin(socket, &format!("abort ssl cert {name}"), None).await;
        return Err(e);
    }
    if !listed(paths, &name).await? {
        let command = format!("add ssl crt-list {} {name}", paths.crt_list.display());
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "Success!")?;
    }
    Ok(())
}

/// Takes `path` off the crt-list and out of the running worker.
async fn unload(paths: &Paths, path: &Path) -> Result<(), ProxyError> {
    let name = path.display().to_string();
    let socket = &paths.admin_socket;
    if listed(paths, &name).await? {
        let command = format!("del ssl crt-list {} {name}", paths.crt_list.display());
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "deleted in crtlist")?;
    }
    let (have, open) = loaded(paths).await?;
    if open.as_deref() == Some(name.as_str()) {
        admin(socket, &format!("abort ssl cert {name}"), None).await?;
    }
    if have.contains(&name) {
        let command = format!("del ssl cert {name}");
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "deleted!")?;
    }
    Ok(())
}

/// Loads the certificates of `routing` that the running worker lacks or holds in an
/// older version than the file, e.g. after haloyd was restarted while HAProxy kept
/// running from older files.
pub(super) async fn load_missing(paths: &Paths, routing: &Routing) -> Result<(), ProxyError> {
    let (have, _) = loaded(paths).await?;
    for cert in routing.certificates.values() {
        let name = cert.path.display().to_string();
        let read: Result<_, Box<dyn std::error::Error + Send + Sync>> =
            match tokio::fs::read_to_string(&cert.path).await {
                Ok(pem) => x509::leaf_info(&pem)
                    .map(|info| (info.serial, pem))
                    .map_err(Into::into),
                Err(e) => Err(e.into()),
            };
        let (on_disk, pem) = match read {
            Ok(read) => read,
            Err(e) => {
                // HAProxy keeps whatever it serves; the renewal loop replaces the file.
                tracing::warn!(file = %cert.path.display(), "cannot read the certificate: {e}");
                continue;
            }
        };
        if have.contains(&name)
            && serial(paths, &name).await? == Some(normalize_serial(&on_disk))
            && listed(paths, &name).await?
        {
            continue;
        }
        load(paths, &cert.path, &pem).await?;
    }
    Ok(())
}

impl Haproxy {
    /// Writes HAProxy's self-signed default certificate unless it exists.
    pub(super) fn ensure_default_cert(&self) -> Result<(), ProxyError> {
        let path = self.settings.default_cert();
        if path.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.settings.cert_dir).map_err(|source| ProxyError::Write {
            path: self.settings.cert_dir.clone(),
            source,
        })?;
        selfsigned::load_or_create(&path, &["haloy-default.invalid".to_string()])
            .map(|_| ())
            .map_err(ProxyError::from)
    }

    /// Certificates found on disk at start: the first files written name them, with
    /// no runtime change (HAProxy is started or synced afterwards).
    pub async fn preload_certificates(&self, certs: &[CertFile]) {
        let mut state = self.lock().await;
        for cert in certs {
            state.routing.certificates.insert(
                cert.domain.clone(),
                Certificate {
                    path: cert.path.clone(),
                    names: cert.names.clone(),
                },
            );
        }
    }

    async fn install(&self, cert: &CertFile) -> Result<(), ProxyError> {
        self.ensure_default_cert()?;
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        next.certificates.insert(
            cert.domain.clone(),
            Certificate {
                path: cert.path.clone(),
                names: cert.names.clone(),
            },
        );
        let running = self.is_running().await;
        if running {
            load(&self.paths, &cert.path, &cert.pem).await?;
            runtime::reconcile_map(&self.cli, &self.paths.https_map, &next.https_map()).await?;
        }
        files::write_maps(&self.paths, &self.render(&next)).await?;
        state.routing = next;
        Ok(())
    }

    async fn remove(&self, domain: &str, path: &Path) -> Result<(), ProxyError> {
        let mut state = self.lock().await;
        let mut next = state.routing.clone();
        // A stale name of a domain that is still served leaves the domain alone.
        if next
            .certificates
            .get(domain)
            .is_some_and(|c| c.path == path)
        {
            next.certificates.remove(domain);
        }
        if self.is_running().await {
            // Plain HTTP stops redirecting first: HTTPS is about to lose the name.
            runtime::reconcile_map(&self.cli, &self.paths.https_map, &next.https_map()).await?;
            unload(&self.paths, path).await?;
        }
        files::write_maps(&self.paths, &self.render(&next)).await?;
        state.routing = next;
        Ok(())
    }
}

#[async_trait]
impl Installer for Haproxy {
    async fn install_certificate(&self, cert: &CertFile) -> Result<(), InstallError> {
        self.install(cert)
            .await
            .map_err(|e| InstallError(Box::new(e)))
    }

    async fn remove_certificate(&self, domain: &str, path: &Path) -> Result<(), InstallError> {
        self.remove(domain, path)
            .await
            .map_err(|e| InstallError(Box::new(e)))
    }
}
