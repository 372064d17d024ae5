//! Renames that survive a power cut: the caller syncs the file's data before the
//! rename, these sync the directory after it, so the new name is on disk too.

use std::path::Path;

/// Renames `from` to `to`, then syncs the directory that holds `to`.
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir_of(to)
}

/// [`rename`] off the async workers.
pub async fn rename_async(from: &Path, to: &Path) -> std::io::Result<()> {
    let (from, to) = (from.to_path_buf(), to.to_path_buf());
    tokio::task::spawn_blocking(move || rename(&from, &to))
        .await
        .map_err(std::io::Error::other)?
}

/// Syncs the directory holding `path`, making a rename or creation in it durable.
pub fn sync_dir_of(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renames_replace_the_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, target) = (dir.path().join(".a.tmp"), dir.path().join("a"));
        std::fs::write(&target, "old").unwrap();
        std::fs::write(&tmp, "new").unwrap();
        rename_async(&tmp, &target).await.unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(!tmp.exists());
        let missing = rename(&dir.path().join("gone"), &target).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
