//! Installing from a release archive: `scripts/release` packages the built binaries with
//! a SHA256SUMS that `sha256sum -c` accepts; the `deploy/` install scripts put a good
//! archive's binaries into the prefix (from a file and from the download location) and
//! refuse a tampered one, installing nothing.

use std::path::Path;
use std::process::Command;

use integration_tests::release::{install, package, repo_root};
use integration_tests::{describe, run};

fn assert_installed(prefix: &Path, names: &[&str]) {
    for name in names {
        let path = prefix.join("bin").join(name);
        let output = run(Command::new(&path).arg("--version"));
        assert!(
            output.status.success(),
            "{} does not run:\n{}",
            path.display(),
            describe(&output)
        );
    }
}

#[test]
fn a_release_archive_installs_and_a_tampered_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let archive = package(&dist);
    let name = archive.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("haloy-") && name.ends_with("-x86_64-unknown-linux-gnu.tar.gz"),
        "archive name: {name}"
    );
    let check = run(Command::new("sha256sum")
        .arg("-c")
        .arg("SHA256SUMS")
        .current_dir(&dist));
    assert!(
        check.status.success(),
        "sha256sum -c:\n{}",
        describe(&check)
    );

    // A local file, SHA256SUMS beside it.
    let workstation = dir.path().join("workstation");
    let output = install("install-haloy.sh", &[&archive], &workstation, &[]);
    assert!(
        output.status.success(),
        "install-haloy.sh:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("next: haloy server add"),
        "the next step is printed:\n{}",
        describe(&output)
    );
    assert_installed(&workstation, &["haloy"]);

    // No argument: SHA256SUMS and the archive from the download location.
    let server = dir.path().join("server");
    let url = format!("file://{}", dist.display());
    let output = install(
        "install-haloyadm.sh",
        &[],
        &server,
        &[("HALOY_DOWNLOAD_URL", url.as_str())],
    );
    assert!(
        output.status.success(),
        "install-haloyadm.sh:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("next: haloyadm init"),
        "the next step is printed:\n{}",
        describe(&output)
    );
    assert_installed(&server, &["haloyadm", "haloyd"]);

    // One changed byte: refused with the reason, nothing installed.
    let tampered_dir = dir.path().join("tampered");
    std::fs::create_dir(&tampered_dir).unwrap();
    let tampered = tampered_dir.join(&name);
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&tampered, bytes).unwrap();
    std::fs::copy(dist.join("SHA256SUMS"), tampered_dir.join("SHA256SUMS")).unwrap();
    let refused = dir.path().join("refused");
    let output = install("install-haloyadm.sh", &[&tampered], &refused, &[]);
    assert!(
        !output.status.success(),
        "a tampered archive installs:\n{}",
        describe(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("checksum mismatch"),
        "the refusal says why:\n{}",
        describe(&output)
    );
    assert!(
        !refused.join("bin/haloyadm").exists() && !refused.join("bin/haloyd").exists(),
        "a refused archive installed binaries"
    );
}

/// Each install script runs alone (piped from curl), so each carries the shared part;
/// the two copies must not drift apart.
#[test]
fn both_install_scripts_share_the_same_installer() {
    let shared = |script: &str| {
        let text = std::fs::read_to_string(repo_root().join("deploy").join(script)).unwrap();
        let start = text.find("# --- shared by").expect("shared part starts");
        let end = text
            .find("# --- end of the shared part")
            .expect("shared part ends");
        text[start..end].to_string()
    };
    assert_eq!(shared("install-haloy.sh"), shared("install-haloyadm.sh"));
}
