//! `docker save` archives: which image and layers one holds, and partial copies that
//! leave out the layer files a server already has.
//!
//! Docker's load accepts such a copy: for each layer it first looks up the chain of
//! layers up to it in its layer store and only opens the layer's file when that chain
//! is missing (moby `image/tarexport/load.go`). Checked by hand on Docker 20.10: an
//! archive without the bottom layer's `layer.tar` loads when an image starting with
//! that layer is present, and fails with "open …/layer.tar: no such file or
//! directory" when none is. So a partial archive must keep `manifest.json`, the config
//! and every layer file from the first one the server lacks upwards.
//!
//! Everything here is blocking file I/O; async callers use `spawn_blocking`.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read image archive {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not an image archive written by `docker save`: {reason}")]
    Format { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error(
        "the server asked for layer {layer}, which the image lacks; check that haloy and haloyd are the same version"
    )]
    UnknownLayer { layer: String },
    #[error("cannot export image {reference} from the local Docker: {reason}")]
    Export { reference: String, reason: String },
}

/// One layer of an image, as the archive holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Digest of the uncompressed layer, `sha256:…` (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// The layer's file in the archive, after following symlinks (Docker links a
    /// layer that occurs twice to its first copy).
    pub file: String,
    /// Size of that file in bytes.
    pub size: u64,
}

/// A `docker save` archive of exactly one image.
#[derive(Debug, Clone)]
pub struct ImageArchive {
    path: PathBuf,
    image_id: String,
    repo_tags: Vec<String>,
    /// Bottom first.
    layers: Vec<Layer>,
    /// Per layer: its path in the manifest, then each symlink target up to its file.
    paths: Vec<Vec<String>>,
    size: u64,
}

/// An image's entry in `manifest.json`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(serde::Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// The archive's entries by normalized path, and the contents of `manifest.json`.
struct Contents {
    items: BTreeMap<String, Item>,
    manifest: Option<Vec<u8>>,
}

/// What the archive's table of contents says about one path.
enum Item {
    File(u64),
    Link(String),
    Other,
}

/// How many symlinks to follow from a layer path before giving up.
const MAX_LINKS: usize = 8;

impl ImageArchive {
    /// Reads the image id (the digest of its config) and its layers from `path`.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        let read = |e: io::Error| ArchiveError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let format = |reason: String| ArchiveError::Format {
            path: path.display().to_string(),
            reason,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        let Contents { items, manifest } = table_of_contents(path).map_err(read)?;
        let manifest = manifest.ok_or_else(|| format("it has no manifest.json".into()))?;
        let mut images: Vec<ManifestEntry> =
            serde_json::from_slice(&manifest).map_err(|e| format(format!("manifest.json: {e}")))?;
        if images.len() != 1 {
            return Err(format(format!(
                "it holds {} images; save exactly one image per archive",
                images.len()
            )));
        }
        let image = images.remove(0);
        let config_path = normalize(&image.config);
        let config = read_file(path, &config_path)
            .map_err(read)?
            .ok_or_else(|| format(format!("its config {} is missing", image.config)))?;
        let image_id = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
        let config: Config = serde_json::from_slice(&config)
            .map_err(|e| format(format!("config {}: {e}", image.config)))?;
        if config.rootfs.diff_ids.len() != image.layers.len() {
            return Err(format(format!(
                "manifest.json lists {} layers, the config {}",
                image.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(image.layers.len());
        let mut paths = Vec::with_capacity(image.layers.len());
        for (diff_id, layer_path) in config.rootfs.diff_ids.into_iter().zip(image.layers) {
            let mut chain = vec![normalize(&layer_path)];
            let size = loop {
                match chain.last().and_then(|file| items.get(file)) {
                    Some(Item::File(size)) => break *size,
                    Some(Item::Link(target)) if chain.len() <= MAX_LINKS => {
                        chain.push(target.clone());
                    }
                    _ => return Err(format(format!("layer {layer_path} is missing"))),
                }
            };
            layers.push(Layer {
                diff_id,
                file: chain.last().cloned().unwrap_or_default(),
                size,
            });
            paths.push(chain);
        }
        Ok(Self {
            path: path.to_path_buf(),
            image_id,
            repo_tags: image.repo_tags.unwrap_or_default(),
            layers,
            paths,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `sha256:…` of the image's config, which is what Docker calls the image id.
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// The references the archive tags the image with when loaded.
    pub fn repo_tags(&self) -> &[String] {
        &self.repo_tags
    }

    /// Bottom first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// Size of the whole archive in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when `wanted` names every layer, so the archive itself can be sent.
    pub fn all_wanted(&self, wanted: &[String]) -> bool {
        self.layers.iter().all(|l| wanted.contains(&l.diff_id))
    }

    /// Writes to `out` a copy of the archive without the layer files of layers not in
    /// `wanted`, and returns its size. `wanted` must name layers of this image.
    pub fn write_partial(&self, wanted: &[String], out: &Path) -> Result<u64, ArchiveError> {
        if let Some(unknown) = wanted
            .iter()
            .find(|w| !self.layers.iter().any(|l| &l.diff_id == *w))
        {
            return Err(ArchiveError::UnknownLayer {
                layer: unknown.clone(),
            });
        }
        // Layers may share files through links: keep whatever a wanted layer needs,
        // drop the other layer files.
        let (mut keep, mut layer_files) = (HashSet::new(), HashSet::new());
        for (layer, chain) in self.layers.iter().zip(&self.paths) {
            layer_files.extend(chain.iter().cloned());
            if wanted.contains(&layer.diff_id) {
                keep.extend(chain.iter().cloned());
            }
        }
        let written = copy_without(&self.path, out, |entry| {
            !layer_files.contains(entry) || keep.contains(entry)
        });
        written.map_err(|e| ArchiveError::Write {
            path: out.display().to_string(),
            reason: e.to_string(),
        })
    }
}

/// Every entry's kind by normalized path, and the contents of `manifest.json`.
fn table_of_contents(path: &Path) -> io::Result<Contents> {
    let mut archive = tar::Archive::new(File::open(path)?);
    let mut items = BTreeMap::new();
    let mut manifest = None;
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        let item = if kind.is_file() {
            Item::File(entry.size())
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            // Symlinks are relative to their directory, hard links to the root.
            let base = if kind.is_symlink() {
                name.rsplit_once('/').map_or("", |(dir, _)| dir).to_string()
            } else {
                String::new()
            };
            Item::Link(normalize(&format!("{base}/{target}")))
        } else {
            Item::Other
        };
        if name == "manifest.json" && kind.is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            manifest = Some(data);
        }
        items.insert(name, item);
    }
    Ok(Contents { items, manifest })
}

/// The contents of the regular file at `name`, if the archive has one.
fn read_file(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut archive = tar::Archive::new(File::open(path)?);
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file()
            && normalize(&String::from_utf8_lossy(&entry.path_bytes())) == name
        {
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// Copies the entries of the archive at `from` for which `keep(path)` holds into a new
/// archive at `to`; returns the new archive's size.
fn copy_without(from: &Path, to: &Path, keep: impl Fn(&str) -> bool) -> io::Result<u64> {
    let mut archive = tar::Archive::new(File::open(from)?);
    let mut builder = tar::Builder::new(io::BufWriter::new(File::create(to)?));
    for entry in archive.entries_with_seek()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !keep(&normalize(&name)) {
            continue;
        }
        let mut header = entry.header().clone();
        let kind = header.entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            builder.append_link(&mut header, &name, &target)?;
        } else {
            // The builder writes the name itself, with a long-name entry when needed.
            builder.append_data(&mut header, &name, &mut entry)?;
        }
    }
    let mut out = builder.into_inner()?;
    io::Write::flush(&mut out)?;
    let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// `./a/../b/c/` → `b/c`: the form paths are compared in.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests;
