//! FROM-scratch images from small recipes: host files (with the shared libraries a
//! binary needs) and generated files copied in, and an entrypoint. The images carry
//! [`TEST_LABEL`] so `scripts/test` removes them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::{TEST_LABEL, describe, require, run};

/// What goes into an image.
#[derive(Default)]
pub struct Recipe {
    /// Host paths copied to the same path in the image, with the libraries
    /// `ldd` says they load.
    pub binaries: Vec<String>,
    /// (path in the image, contents, executable).
    pub files: Vec<(String, String, bool)>,
    /// Empty directories to create.
    pub dirs: Vec<String>,
    /// Symbolic links (path in the image, what it points to), e.g. busybox applets.
    pub links: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
}

impl Recipe {
    /// busybox as /bin/busybox, and `script` run by its shell as the entrypoint.
    pub fn busybox_sh(script: &str) -> Self {
        Self {
            binaries: vec!["/bin/busybox".into()],
            entrypoint: vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                script.into(),
            ],
            ..Self::default()
        }
    }

    /// busybox httpd in the foreground on port 8080, serving `/www` (files and
    /// `cgi-bin/` scripts the test adds).
    pub fn busybox_httpd() -> Self {
        Self {
            binaries: vec!["/bin/busybox".into()],
            entrypoint: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
                .map(String::from)
                .to_vec(),
            ..Self::default()
        }
    }

    /// Debian's redis-server on port 6379, data in /data, reachable from other
    /// containers (protected mode off), with `extra` arguments.
    pub fn redis_server(extra: &[&str]) -> Self {
        let args = [
            "/usr/bin/redis-server",
            "--port",
            "6379",
            "--protected-mode",
            "no",
            "--dir",
            "/data",
        ];
        Self {
            binaries: vec!["/usr/bin/redis-server".into()],
            dirs: vec!["/data".into()],
            entrypoint: args.iter().chain(extra).map(|a| a.to_string()).collect(),
            ..Self::default()
        }
    }
}

/// Builds `haloy-it:<tag>` from `recipe`.
pub fn build(tag: &str, recipe: &Recipe) -> String {
    require("docker", &["info"], "Docker Engine");
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    for binary in &recipe.binaries {
        copy_in(&root, binary);
        for library in libraries(binary) {
            copy_in(&root, &library);
        }
    }
    for (path, text, executable) in &recipe.files {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write");
        if *executable {
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
    }
    for d in &recipe.dirs {
        std::fs::create_dir_all(root.join(d.trim_start_matches('/'))).expect("mkdir");
    }
    for (path, to) in &recipe.links {
        let link = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(to, &link).expect("symlink");
    }
    std::fs::create_dir_all(root.join("tmp")).expect("tmp");
    let entrypoint = serde_json::to_string(&recipe.entrypoint).expect("json");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM scratch\nCOPY root /\nENTRYPOINT {entrypoint}\n"),
    )
    .expect("Dockerfile");
    let reference = format!("haloy-it:{tag}");
    let output = run(Command::new("docker")
        .args(["build", "-q", "--label"])
        .arg(format!("{TEST_LABEL}=1"))
        .args(["-t", &reference])
        .arg(dir.path()));
    assert!(
        output.status.success(),
        "docker build failed:\n{}",
        describe(&output)
    );
    reference
}

fn copy_in(root: &Path, host: &str) {
    let target = root.join(host.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::copy(host, &target).unwrap_or_else(|e| panic!("copy {host}: {e}"));
}

/// The shared libraries (and the loader) `ldd` lists for `binary`; none for a
/// static one.
fn libraries(binary: &str) -> Vec<String> {
    let output = run(Command::new("ldd").arg(binary));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}
