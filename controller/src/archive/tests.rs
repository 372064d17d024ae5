use std::path::Path;

use sha2::{Digest, Sha256};

use super::*;

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// What goes into a test archive, laid out like Docker 20.10's `docker save`.
struct Saved {
    /// (directory, layer contents); `None` contents make `layer.tar` a symlink to the
    /// first layer's file, as Docker writes a layer that occurs twice.
    layers: Vec<(&'static str, Option<&'static [u8]>)>,
    /// Extra regular files: (path, contents).
    extra: Vec<(String, Vec<u8>)>,
    images: usize,
}

impl Saved {
    fn two_layers() -> Self {
        Self {
            layers: vec![
                ("aaa", Some(b"busybox bytes".as_slice())),
                ("bbb", Some(b"www")),
            ],
            extra: vec![],
            images: 1,
        }
    }

    fn contents(&self, n: usize) -> &'static [u8] {
        self.layers[n]
            .1
            .unwrap_or_else(|| self.layers[0].1.unwrap())
    }

    fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = (0..self.layers.len())
            .map(|n| digest(self.contents(n)))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap()
    }

    fn write(&self, path: &Path) {
        let config = self.config();
        let config_name = format!("{}.json", &digest(&config)[7..]);
        let mut builder = tar::Builder::new(File::create(path).unwrap());
        let file = |builder: &mut tar::Builder<File>, name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, data).unwrap();
        };
        file(&mut builder, &config_name, &config);
        for (dir, contents) in &self.layers {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{dir}/"), io::empty())
                .unwrap();
            file(&mut builder, &format!("{dir}/VERSION"), b"1.0");
            file(&mut builder, &format!("{dir}/json"), b"{}");
            match contents {
                Some(data) => file(&mut builder, &format!("{dir}/layer.tar"), data),
                None => {
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    let target = format!("../{}/layer.tar", self.layers[0].0);
                    builder
                        .append_link(&mut header, format!("{dir}/layer.tar"), target)
                        .unwrap();
                }
            }
        }
        for (name, data) in &self.extra {
            file(&mut builder, name, data);
        }
        let entry = serde_json::json!({
            "Config": config_name,
            "RepoTags": ["app:1"],
            "Layers": self.layers.iter().map(|(dir, _)| format!("{dir}/layer.tar")).collect::<Vec<_>>(),
        });
        let manifest = vec![entry; self.images];
        file(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        builder.into_inner().unwrap();
    }
}

fn names(path: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(File::open(path).unwrap());
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_image_id_and_layers_come_from_the_manifest_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let saved = Saved::two_layers();
    saved.write(&path);
    let archive = ImageArchive::open(&path).unwrap();
    assert_eq!(archive.image_id(), digest(&saved.config()));
    assert_eq!(archive.repo_tags(), ["app:1"]);
    assert_eq!(
        archive.layers(),
        [
            Layer {
                diff_id: digest(b"busybox bytes"),
                file: "aaa/layer.tar".into(),
                size: 13,
            },
            Layer {
                diff_id: digest(b"www"),
                file: "bbb/layer.tar".into(),
                size: 3,
            },
        ]
    );
    assert_eq!(archive.size(), std::fs::metadata(&path).unwrap().len());
    assert!(archive.all_wanted(&archive.diff_ids()));
    assert!(!archive.all_wanted(&[digest(b"www")]));
}

#[test]
fn a_partial_copy_leaves_out_only_the_unwanted_layer_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    Saved::two_layers().write(&path);
    let archive = ImageArchive::open(&path).unwrap();
    let out = dir.path().join("partial.tar");
    let size = archive.write_partial(&[digest(b"www")], &out).unwrap();
    assert_eq!(size, std::fs::metadata(&out).unwrap().len());
    let all = names(&path);
    let kept = names(&out);
    let dropped: Vec<&String> = all.iter().filter(|n| !kept.contains(n)).collect();
    assert_eq!(dropped, ["aaa/layer.tar"]);
    // The copy still describes the whole image: the server supplies the rest.
    let mut copy = tar::Archive::new(File::open(&out).unwrap());
    let mut layer = Vec::new();
    for entry in copy.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("bbb/layer.tar") {
            entry.read_to_end(&mut layer).unwrap();
        }
    }
    assert_eq!(layer, b"www");

    let none = archive.write_partial(&[], &out).unwrap();
    assert!(!names(&out).iter().any(|n| n.ends_with("layer.tar")));
    assert!(none < size);
    let every = archive.write_partial(&archive.diff_ids(), &out).unwrap();
    assert_eq!(names(&out), all);
    assert!(
        every >= archive.size() - 1024,
        "{every} vs {}",
        archive.size()
    );
}

#[test]
fn a_layer_that_occurs_twice_keeps_the_file_its_link_points_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let saved = Saved {
        layers: vec![
            ("aaa", Some(b"same".as_slice())),
            ("bbb", Some(b"www")),
            ("ccc", None),
        ],
        extra: vec![],
        images: 1,
    };
    saved.write(&path);
    let archive = ImageArchive::open(&path).unwrap();
    assert_eq!(archive.layers()[2].file, "aaa/layer.tar");
    assert_eq!(archive.layers()[2].diff_id, archive.layers()[0].diff_id);

    // The server has the first two layers and lacks only the third, which is the
    // first one's file under a link.
    let out = dir.path().join("partial.tar");
    let same = archive.layers()[2].diff_id.clone();
    archive.write_partial(&[same], &out).unwrap();
    let kept = names(&out);
    assert!(kept.contains(&"ccc/layer.tar".to_string()), "{kept:?}");
    assert!(kept.contains(&"aaa/layer.tar".to_string()), "{kept:?}");
    assert!(!kept.contains(&"bbb/layer.tar".to_string()), "{kept:?}");
}

#[test]
fn long_names_survive_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    let long = format!("blobs/sha256/{}", "f".repeat(150));
    let mut saved = Saved::two_layers();
    saved.extra.push((long.clone(), b"blob".to_vec()));
    saved.write(&path);
    let archive = ImageArchive::open(&path).unwrap();
    let out = dir.path().join("partial.tar");
    archive.write_partial(&[], &out).unwrap();
    assert!(names(&out).contains(&long));
}

#[test]
fn what_is_not_a_single_image_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");

    std::fs::write(&path, b"not a tar at all, certainly not an image").unwrap();
    let err = ImageArchive::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("docker save") || err.contains("cannot read"),
        "{err}"
    );

    let mut two = Saved::two_layers();
    two.images = 2;
    two.write(&path);
    let err = ImageArchive::open(&path).unwrap_err().to_string();
    assert!(err.contains("holds 2 images"), "{err}");

    Saved::two_layers().write(&path);
    let archive = ImageArchive::open(&path).unwrap();
    let err = archive
        .write_partial(&[digest(b"elsewhere")], &dir.path().join("p.tar"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("which the image lacks"), "{err}");
}

#[test]
fn paths_are_compared_in_one_form() {
    assert_eq!(normalize("./a/../b/c/"), "b/c");
    assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
    assert_eq!(normalize("manifest.json"), "manifest.json");
}
