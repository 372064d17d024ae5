//! The build context as the tar archive Docker's build API reads: the context
//! directory minus `.git` and whatever `.dockerignore` excludes, plus the
//! Dockerfile when it lives outside the context.

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header, HeaderMode};

use super::ignore::IgnoreRules;

/// The name a Dockerfile from outside the context gets inside the archive.
const OUTSIDE_DOCKERFILE: &str = ".haloy.Dockerfile";

/// What goes into the archive.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub root: PathBuf,
    pub rules: IgnoreRules,
    pub dockerfile: Dockerfile,
}

#[derive(Debug, Clone)]
pub(crate) enum Dockerfile {
    /// Inside the context: its `/`-separated path there. Always sent, even when
    /// `.dockerignore` names it, as `docker build` does.
    Inside(String),
    /// Elsewhere: copied into the archive as [`OUTSIDE_DOCKERFILE`].
    Outside(PathBuf),
}

impl Dockerfile {
    /// Where the Dockerfile is relative to the context root, for the `dockerfile`
    /// parameter of the build API.
    pub(crate) fn locate(context: &Path, dockerfile: &Path) -> Self {
        match dockerfile.strip_prefix(context) {
            Ok(relative) if relative.components().next().is_some() => {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                Self::Inside(parts.join("/"))
            }
            _ => Self::Outside(dockerfile.to_path_buf()),
        }
    }

    pub(crate) fn name_in_archive(&self) -> &str {
        match self {
            Self::Inside(name) => name,
            Self::Outside(_) => OUTSIDE_DOCKERFILE,
        }
    }
}

/// A failure while reading the context, naming the file.
#[derive(Debug)]
pub(crate) struct ContextError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl Context {
    /// Writes the archive to `out` and returns it.
    pub(crate) fn write<W: Write>(&self, out: W) -> Result<W, ContextError> {
        let mut archive = tar::Builder::new(out);
        self.walk(&mut archive, &self.root, "")?;
        if let Dockerfile::Outside(path) = &self.dockerfile {
            let meta = fs::metadata(path).map_err(|source| at(path, source))?;
            let file = File::open(path).map_err(|source| at(path, source))?;
            let mut header = header_for(&meta);
            archive
                .append_data(&mut header, OUTSIDE_DOCKERFILE, file)
                .map_err(|source| at(path, source))?;
        }
        archive
            .into_inner()
            .map_err(|source| at(&self.root, source))
    }

    fn walk<W: Write>(
        &self,
        archive: &mut tar::Builder<W>,
        dir: &Path,
        relative: &str,
    ) -> Result<(), ContextError> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .map_err(|source| at(dir, source))?;
        // Sorted, so the same tree always gives the same archive.
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Version control history is never part of an image.
            if name == ".git" {
                continue;
            }
            let path = entry.path();
            let inner = if relative.is_empty() {
                name.into_owned()
            } else {
                format!("{relative}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(|source| at(&path, source))?;
            let ignored = self.rules.is_ignored(&inner) && !self.always_sent(&inner);
            if meta.is_dir() {
                if ignored && !self.may_hold_kept(&inner) {
                    continue;
                }
                if !ignored {
                    self.append(archive, &path, &inner, &meta)?;
                }
                self.walk(archive, &path, &inner)?;
            } else if !ignored {
                self.append(archive, &path, &inner, &meta)?;
            }
        }
        Ok(())
    }

    /// The Dockerfile and `.dockerignore` go along even when excluded: Docker reads
    /// them from the archive and drops them from what `COPY` sees itself.
    fn always_sent(&self, inner: &str) -> bool {
        inner == ".dockerignore" || matches!(&self.dockerfile, Dockerfile::Inside(d) if d == inner)
    }

    /// Whether an ignored directory may still contain something that is sent.
    fn may_hold_kept(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.rules.has_exceptions()
            || matches!(&self.dockerfile, Dockerfile::Inside(d) if d.starts_with(&prefix))
    }

    fn append<W: Write>(
        &self,
        archive: &mut tar::Builder<W>,
        path: &Path,
        inner: &str,
        meta: &Metadata,
    ) -> Result<(), ContextError> {
        let mut header = header_for(meta);
        let kind = meta.file_type();
        let written = if kind.is_dir() {
            archive.append_data(&mut header, inner, io::empty())
        } else if kind.is_symlink() {
            let target = fs::read_link(path).map_err(|source| at(path, source))?;
            header.set_size(0);
            archive.append_link(&mut header, inner, target)
        } else if kind.is_file() {
            let file = File::open(path).map_err(|source| at(path, source))?;
            archive.append_data(&mut header, inner, file)
        } else {
            // Sockets, FIFOs and devices cannot be copied into an image.
            tracing::debug!(path = %path.display(), "skipping special file in build context");
            return Ok(());
        };
        written.map_err(|source| at(path, source))
    }
}

/// Mode, size, type and times from the file; owned by root, as `docker build`
/// sends them.
fn header_for(meta: &Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    header.set_uid(0);
    header.set_gid(0);
    if meta.is_dir() {
        header.set_entry_type(EntryType::Directory);
        header.set_size(0);
    }
    header
}

fn at(path: &Path, source: io::Error) -> ContextError {
    ContextError {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn names(archive: Vec<u8>) -> BTreeSet<String> {
        let mut archive = tar::Archive::new(archive.as_slice());
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect()
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, file).expect("write");
        }
        dir
    }

    fn archive(dir: &Path, ignore: &str, dockerfile: Dockerfile) -> BTreeSet<String> {
        let context = Context {
            root: dir.to_path_buf(),
            rules: IgnoreRules::parse(ignore),
            dockerfile,
        };
        names(context.write(Vec::new()).expect("archive"))
    }

    #[test]
    fn git_and_ignored_files_stay_home_while_the_dockerfile_goes() {
        let dir = tree(&[
            "Dockerfile",
            ".dockerignore",
            ".git/HEAD",
            "src/main.rs",
            "target/debug/app",
            "secret.env",
        ]);
        let got = archive(
            dir.path(),
            "target\n*.env\nDockerfile\n.dockerignore\n",
            Dockerfile::Inside("Dockerfile".into()),
        );
        let want: BTreeSet<String> = ["Dockerfile", ".dockerignore", "src", "src/main.rs"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn exceptions_reach_into_ignored_directories() {
        let dir = tree(&["docs/a.md", "docs/keep.md", "deploy/Dockerfile"]);
        let got = archive(
            dir.path(),
            "docs\n!docs/keep.md\ndeploy\n",
            Dockerfile::Inside("deploy/Dockerfile".into()),
        );
        assert!(got.contains("docs/keep.md"), "{got:?}");
        assert!(got.contains("deploy/Dockerfile"), "{got:?}");
        assert!(!got.contains("docs/a.md"), "{got:?}");
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_added_under_its_own_name() {
        let outside = tree(&["Dockerfile"]);
        let context = tree(&["app.txt"]);
        let dockerfile = Dockerfile::locate(context.path(), &outside.path().join("Dockerfile"));
        assert_eq!(dockerfile.name_in_archive(), OUTSIDE_DOCKERFILE);
        let got = archive(context.path(), "", dockerfile);
        assert!(got.contains(OUTSIDE_DOCKERFILE) && got.contains("app.txt"));
        let inside = Dockerfile::locate(context.path(), &context.path().join("ops/Dockerfile"));
        assert_eq!(inside.name_in_archive(), "ops/Dockerfile");
    }
}
