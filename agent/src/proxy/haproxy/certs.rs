//! Certificates into the running HAProxy without a reload, through the admin socket
//! (the master CLI does not pass payloads on): `new ssl cert`, `set ssl cert` with the
//! PEM as payload, `commit ssl cert`, `add ssl crt-list`; a renewal is `set` and
//! `commit` on the same name. The files (`certs.list`, `https.map`) are rewritten
//! too, so a reload or restart serves the same certificates.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::config::Paths;
use super::routing::{Certificate, Routing};
use super::{Haproxy, files, runtime};
use crate::certs::{CertFile, Installer, selfsigned};
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

/// The certificate files the running worker holds.
async fn loaded(paths: &Paths) -> Result<BTreeSet<String>, ProxyError> {
    let answer = admin(&paths.admin_socket, "show ssl cert", None).await?;
    Ok(answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('*').to_string())
        .collect())
}

/// Puts `pem` into the running worker under `path`; `known` says whether the worker
/// has a certificate of that name already (then it is replaced in place).
async fn load(paths: &Paths, path: &Path, pem: &str, known: bool) -> Result<(), ProxyError> {
    let name = path.display().to_string();
    let socket = &paths.admin_socket;
    if !known {
        let command = format!("new ssl cert {name}");
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "New empty certificate store")?;
    }
    let command = format!("set ssl cert {name}");
    let answer = admin(socket, &command, Some(pem)).await?;
    expect(&command, &answer, "Transaction")?;
    let command = format!("commit ssl cert {name}");
    let answer = admin(socket, &command, None).await?;
    if let Err(e) = expect(&command, &answer, "Success!") {
        let _ = admin(socket, &format!("abort ssl cert {name}"), None).await;
        return Err(e);
    }
    if !known {
        let command = format!("add ssl crt-list {} {name}", paths.crt_list.display());
        let answer = admin(socket, &command, None).await?;
        expect(&command, &answer, "Success!")?;
    }
    Ok(())
}

/// Loads the certificates of `routing` that the running worker lacks, e.g. after
/// haloyd was restarted while HAProxy kept running from older files.
pub(super) async fn load_missing(paths: &Paths, routing: &Routing) -> Result<(), ProxyError> {
    let have = loaded(paths).await?;
    for cert in routing.certificates.values() {
        if have.contains(&cert.path.display().to_string()) {
            continue;
        }
        let pem = tokio::fs::read_to_string(&cert.path)
            .await
            .map_err(|e| ProxyError::Other(format!("cannot read {}: {e}", cert.path.display())))?;
        load(paths, &cert.path, &pem, false).await?;
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
        std::fs::create_dir_all(&self.settings.cert_dir).map_err(|e| ProxyError::Write {
            path: self.settings.cert_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        selfsigned::load_or_create(&path, &["haloy-default.invalid".to_string()])
            .map(|_| ())
            .map_err(ProxyError::Other)
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
            let known = loaded(&self.paths)
                .await?
                .contains(&cert.path.display().to_string());
            load(&self.paths, &cert.path, &cert.pem, known).await?;
            runtime::reconcile_map(&self.cli, &self.paths.https_map, &next.https_map()).await?;
        }
        files::write_maps(&self.paths, &self.render(&next)).await?;
        state.routing = next;
        Ok(())
    }
}

#[async_trait]
impl Installer for Haproxy {
    async fn install_certificate(&self, cert: &CertFile) -> Result<(), String> {
        self.install(cert).await.map_err(|e| e.to_string())
    }
}
