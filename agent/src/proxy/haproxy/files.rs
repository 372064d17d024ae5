//! Writing the rendered files: each one atomically (temporary file, fsync, rename),
//! so HAProxy never reads half a file when it reloads or restarts.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::config::{Files, MAINTENANCE_LUA, Paths};
use crate::proxy::ProxyError;

fn write_error(path: &Path, source: std::io::Error) -> ProxyError {
    ProxyError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// `haproxy.cfg` → `haproxy.cfg.<suffix>`, beside it.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

async fn write_synced(path: &Path, text: &str) -> Result<(), ProxyError> {
    let write = async {
        let mut file = tokio::fs::File::create(path).await?;
        file.write_all(text.as_bytes()).await?;
        file.sync_all().await
    };
    write.await.map_err(|e| write_error(path, e))
}

pub(super) async fn write_atomic(path: &Path, text: &str) -> Result<(), ProxyError> {
    let temporary = sibling(path, "tmp");
    write_synced(&temporary, text).await?;
    crate::durable::rename_async(&temporary, path)
        .await
        .map_err(|e| write_error(path, e))
}

/// Writes the maps, then the configuration (the maps must exist for it to load),
/// creating the directory on a fresh server.
pub(super) async fn write_files(paths: &Paths, files: &Files) -> Result<(), ProxyError> {
    if let Some(dir) = paths.config.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| write_error(dir, e))?;
    }
    write_maps(paths, files).await?;
    write_atomic(&paths.config, &files.config).await
}

/// Everything but the configuration: the maps, the maintenance service and the
/// certificate list.
pub(super) async fn write_maps(paths: &Paths, files: &Files) -> Result<(), ProxyError> {
    write_atomic(&paths.hosts_map, &files.hosts_map).await?;
    write_atomic(&paths.aliases_map, &files.aliases_map).await?;
    write_atomic(&paths.https_map, &files.https_map).await?;
    write_atomic(&paths.maintenance_map, &files.maintenance_map).await?;
    write_atomic(&paths.maintenance_lua, MAINTENANCE_LUA).await?;
    write_atomic(&paths.crt_list, &files.crt_list).await
}

/// Writes the configuration to `<config>.new` for checking before it replaces the
/// real one with [`commit_candidate`].
pub(super) async fn write_candidate(paths: &Paths, config: &str) -> Result<PathBuf, ProxyError> {
    let candidate = sibling(&paths.config, "new");
    write_synced(&candidate, config).await?;
    Ok(candidate)
}

pub(super) async fn commit_candidate(paths: &Paths, candidate: &Path) -> Result<(), ProxyError> {
    crate::durable::rename_async(candidate, &paths.config)
        .await
        .map_err(|e| write_error(&paths.config, e))
}

/// The files as they are on disk, if all of them are there (and the maintenance
/// service is this haloyd's).
pub(super) async fn read_files(paths: &Paths) -> Option<Files> {
    let lua = tokio::fs::read_to_string(&paths.maintenance_lua)
        .await
        .ok()?;
    if lua != MAINTENANCE_LUA {
        return None;
    }
    Some(Files {
        config: tokio::fs::read_to_string(&paths.config).await.ok()?,
        hosts_map: tokio::fs::read_to_string(&paths.hosts_map).await.ok()?,
        aliases_map: tokio::fs::read_to_string(&paths.aliases_map).await.ok()?,
        https_map: tokio::fs::read_to_string(&paths.https_map).await.ok()?,
        maintenance_map: tokio::fs::read_to_string(&paths.maintenance_map)
            .await
            .ok()?,
        crt_list: tokio::fs::read_to_string(&paths.crt_list).await.ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_keep_the_name() {
        let path = Path::new("/x/haproxy.cfg");
        assert_eq!(sibling(path, "tmp"), Path::new("/x/haproxy.cfg.tmp"));
    }
}
