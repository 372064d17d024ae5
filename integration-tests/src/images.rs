//! App images for the tests: FROM-scratch busybox httpd images, alone or in families
//! that share layers.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::*;

/// A FROM-scratch busybox httpd image whose `/` says `body` and `/health` says ok.
/// With `healthy: false` there is no `/health` (404), so health checks fail.
pub fn build_image(tag: &str, body: &str, healthy: bool) -> String {
    build_image_with(tag, body, healthy, &[])
}

/// Like [`build_image`], plus CGI scripts: (name, shell body) served at
/// `/cgi-bin/<name>` as text/plain.
pub fn build_image_with(tag: &str, body: &str, healthy: bool, cgi: &[(&str, &str)]) -> String {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let reference = format!("haloy-it:{tag}");
    if built.lock().expect("lock").contains(&reference) {
        return reference;
    }
    require("docker", &["info"], "Docker Engine");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (package busybox-static) is required to build test images");
    std::fs::create_dir_all(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/index.html"), body).expect("index");
    if healthy {
        std::fs::write(dir.path().join("www/health"), "ok\n").expect("health");
    }
    if !cgi.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.path().join("www/cgi-bin")).expect("cgi-bin");
        for (name, script) in cgi {
            let path = dir.path().join("www/cgi-bin").join(name);
            let text =
                format!("#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho ''\n{script}\n");
            std::fs::write(&path, text).expect("cgi script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-vv\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .expect("Dockerfile");
    let output = run(Command::new("docker")
        .args([
            "build",
            "-q",
            "--label",
            &format!("{TEST_LABEL}=1"),
            "-t",
            &reference,
        ])
        .arg(dir.path()));
    assert!(
        output.status.success(),
        "docker build failed:\n{}",
        describe(&output)
    );
    built.lock().expect("lock").insert(reference.clone());
    reference
}

/// FROM-scratch busybox httpd images that share their bottom layer and no other image
/// has it: busybox plus a file naming the family. Its images differ only in `/www`,
/// their top layer. Every image of the family goes when it is dropped (drop it after
/// the [`Server`] whose containers use them).
pub struct ImageFamily {
    /// Lowercase and unique per family: the repository of its images.
    pub repository: String,
    dir: tempfile::TempDir,
}

impl ImageFamily {
    pub fn new(name: &str) -> Self {
        require("docker", &["info"], "Docker Engine");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let repository = format!("haloy-it-{name}-{}-{nanos:x}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("bin")).expect("base");
        std::fs::copy("/bin/busybox", base.join("bin/busybox"))
            .expect("/bin/busybox (package busybox-static) is required to build test images");
        std::fs::write(base.join("family"), &repository).expect("family");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY base /\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        )
        .expect("Dockerfile");
        Self { repository, dir }
    }

    /// Builds `<repository>:<tag>` whose `/` says `body` (and `/health` ok).
    pub fn build(&self, tag: &str, body: &str) -> String {
        self.build_with(tag, body, false)
    }

    /// Like [`ImageFamily::build`], plus `/cgi-bin/slow-health`, which answers ok
    /// after a second: a replica checked there takes that long to become healthy.
    pub fn build_slow(&self, tag: &str, body: &str) -> String {
        self.build_with(tag, body, true)
    }

    fn build_with(&self, tag: &str, body: &str, slow_health: bool) -> String {
        let www = self.dir.path().join("www");
        let _ = std::fs::remove_dir_all(&www);
        std::fs::create_dir_all(&www).expect("www");
        std::fs::write(www.join("index.html"), body).expect("index");
        std::fs::write(www.join("health"), "ok\n").expect("health");
        if slow_health {
            use std::os::unix::fs::PermissionsExt;
            let script = www.join("cgi-bin/slow-health");
            std::fs::create_dir_all(www.join("cgi-bin")).expect("cgi-bin");
            std::fs::write(
                &script,
                "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho ''\n/bin/busybox sleep 1\necho ok\n",
            )
            .expect("slow-health");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let reference = format!("{}:{tag}", self.repository);
        // No cache: the base layer comes out the same anyway (Docker's layers depend
        // on content only), and no build leans on another's intermediate images.
        let output = run(Command::new("docker")
            .args(["build", "-q", "--no-cache", "--label"])
            .arg(format!("{TEST_LABEL}=1"))
            .arg("--label")
            .arg(format!("{FAMILY_LABEL}={}", self.repository))
            .args(["-t", &reference])
            .arg(self.dir.path()));
        assert!(
            output.status.success(),
            "docker build failed:\n{}",
            describe(&output)
        );
        reference
    }

    /// `docker save`s the image to `path`.
    pub fn save(&self, reference: &str, path: &Path) {
        let output = run(Command::new("docker")
            .args(["save", "-o"])
            .arg(path)
            .arg(reference));
        assert!(output.status.success(), "{}", describe(&output));
    }

    /// Removes every image of the family from Docker (and so their layers), under
    /// whatever names it was tagged: the images carry the family's label.
    pub fn remove_all(&self) {
        let output = run(Command::new("docker").args([
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={FAMILY_LABEL}={}", self.repository),
        ]));
        let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for ImageFamily {
    fn drop(&mut self) {
        self.remove_all();
    }
}
