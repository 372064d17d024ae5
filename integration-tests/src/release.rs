//! The release archive as users get it: `scripts/release` packages the binaries this
//! test run was built with (no new build), and the `deploy/` install scripts are run
//! from the checkout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{bin, describe, run};

/// The checkout's root (scripts/, deploy/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the checkout")
        .to_path_buf()
}

/// Runs `scripts/release --no-build` on the already built binaries, writing the archive
/// and SHA256SUMS into `dist`; returns the archive's path.
pub fn package(dist: &Path) -> PathBuf {
    let profile_dir = bin("haloyd").parent().expect("profile dir").to_path_buf();
    let profile = profile_dir.file_name().expect("profile name").to_owned();
    let target_dir = profile_dir.parent().expect("target dir");
    let output = run(Command::new(repo_root().join("scripts/release"))
        .arg("--no-build")
        .env("CARGO_TARGET_DIR", target_dir)
        .env("HALOY_RELEASE_PROFILE", profile)
        .env("HALOY_DIST_DIR", dist));
    assert!(
        output.status.success(),
        "scripts/release:\n{}",
        describe(&output)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    let archive = PathBuf::from(printed.lines().last().unwrap_or_default().trim());
    assert!(
        archive.is_file() && archive.starts_with(dist),
        "scripts/release prints the archive's path last:\n{printed}"
    );
    archive
}

/// Runs `deploy/<script>` with `args`, binaries going to `prefix`/bin, and the given
/// extra environment.
pub fn install(script: &str, args: &[&Path], prefix: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(repo_root().join("deploy").join(script));
    command.args(args).env("PREFIX", prefix);
    for (name, value) in env {
        command.env(name, value);
    }
    run(&mut command)
}
