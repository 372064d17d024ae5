//! haloyd's image, built by haloyadm FROM scratch out of an installed haloyd binary,
//! the libraries its loader names (`ldd`) and the system's CA roots; no registry and
//! no base image is needed, so a server with only Docker can build it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};

use crate::containers::{ROLE_LABEL, Role};

/// Where the binary sits in the image.
pub const HALOYD_IN_IMAGE: &str = "/usr/local/bin/haloyd";

/// Where the CA roots are looked for on the host and put in the image (Debian's and
/// Red Hat's bundles); rustls-native-certs reads the first one that exists.
const CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The image's reference for `binary`: its version and the first 12 hex digits of
/// its SHA-256, so another binary (an upgrade, a `--dev` build) is another image and
/// the same binary builds once.
pub fn reference(binary: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(binary)
        .with_context(|| format!("cannot read haloyd at {}", binary.display()))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    Ok(format!(
        "haloy-haloyd:{}-{}",
        env!("CARGO_PKG_VERSION"),
        &digest[..12]
    ))
}

/// Builds the image for `binary` unless it exists; returns its reference.
pub async fn ensure(docker: &Docker, binary: &Path) -> anyhow::Result<String> {
    let reference = reference(binary)?;
    if docker.inspect_image(&reference).await.is_ok() {
        return Ok(reference);
    }
    let context = context(binary)?;
    let options = BuildImageOptionsBuilder::new()
        .t(&reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut answer = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(item) = answer.next().await {
        let info = item.with_context(|| format!("docker could not build {reference}"))?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            bail!("docker could not build {reference}: {error}\n{log}");
        }
        if let Some(text) = info.stream {
            log.push_str(&text);
        }
    }
    docker
        .inspect_image(&reference)
        .await
        .with_context(|| format!("docker built {reference} but does not know it:\n{log}"))?;
    Ok(reference)
}

/// The build context: a Dockerfile and `rootfs/` with haloyd, its libraries and loader,
/// the CA roots and an empty /tmp, as a tar archive in memory (a few tens of MB).
fn context(binary: &Path) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    // Docker's tar reader refuses GNU sparse entries, which a linked binary may get.
    tar.sparse(false);
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nLABEL {ROLE_LABEL}={}\nENTRYPOINT [\"{HALOYD_IN_IMAGE}\"]\n",
        Role::HaloydImage.as_str()
    );
    append_bytes(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    tar.append_path_with_name(binary, format!("rootfs{HALOYD_IN_IMAGE}"))
        .with_context(|| format!("cannot read {}", binary.display()))?;
    for library in libraries(binary)? {
        tar.append_path_with_name(&library, format!("rootfs{}", library.display()))
            .with_context(|| format!("cannot read {}", library.display()))?;
    }
    if let Some(bundle) = CA_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
        tar.append_path_with_name(bundle, format!("rootfs{}", bundle.display()))
            .with_context(|| format!("cannot read {}", bundle.display()))?;
    }
    let mut tmp = tar::Header::new_gnu();
    tmp.set_entry_type(tar::EntryType::Directory);
    tmp.set_mode(0o1777);
    tmp.set_size(0);
    tmp.set_cksum();
    tar.append_data(&mut tmp, "rootfs/tmp/", std::io::empty())
        .context("cannot write the build context")?;
    tar.into_inner().context("cannot write the build context")
}

fn append_bytes(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .context("cannot write the build context")
}

/// The shared libraries and the loader `binary` needs, as `ldd` names them; none for
/// a static binary.
fn libraries(binary: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd to find haloyd's libraries; install libc-bin")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&output.stderr).contains("not a dynamic executable")
        {
            return Ok(BTreeSet::new());
        }
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(parse_ldd(&text))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` give paths; the vDSO has none.
fn parse_ldd(text: &str) -> BTreeSet<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let found: Vec<String> = parse_ldd(text)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            found,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
    }

    #[test]
    fn the_reference_follows_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"two").unwrap();
        assert_ne!(reference(&a).unwrap(), reference(&b).unwrap());
        assert!(reference(&a).unwrap().starts_with("haloy-haloyd:"));
        assert!(reference(&dir.path().join("missing")).is_err());
    }
}
