//! Volumes from the app spec as Docker mounts: a named volume becomes a `volume`
//! mount, an absolute host path a `bind` mount, and the options say how.

use bollard::models::{Mount, MountType, MountVolumeOptions};
use haloy_api::spec::{VolumeMount, VolumeSource};

use crate::runtime::RuntimeError;

/// The two ways a volume reaches Docker.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Volumes {
    /// Typed mounts: everything that the Mounts API can express.
    pub mounts: Vec<Mount>,
    /// `source:target:options` strings, for SELinux relabelling (`z`, `Z`), which
    /// only the older Binds API offers.
    pub binds: Vec<String>,
}

pub(super) fn mounts(volumes: &[VolumeMount]) -> Result<Volumes, RuntimeError> {
    let mut out = Volumes::default();
    for volume in volumes {
        if volume.options.iter().any(|o| o == "z" || o == "Z") {
            // Docker parses these the same way as `docker run -v`.
            out.binds.push(volume.to_string());
        } else {
            out.mounts.push(mount(volume)?);
        }
    }
    Ok(out)
}

fn mount(volume: &VolumeMount) -> Result<Mount, RuntimeError> {
    let (typ, source) = match &volume.source {
        VolumeSource::Named(name) => (MountType::VOLUME, name),
        VolumeSource::Bind(path) => (MountType::BIND, path),
    };
    let mut mount = Mount {
        typ: Some(typ),
        source: Some(source.clone()),
        target: Some(volume.container_path.clone()),
        ..Default::default()
    };
    for option in &volume.options {
        let misplaced = |applies_to: &str| {
            RuntimeError::Other(format!(
                "volume {volume}: option {option} only applies to {applies_to}; remove it from the volume"
            ))
        };
        match option.as_str() {
            "ro" => mount.read_only = Some(true),
            "rw" => mount.read_only = Some(false),
            "consistent" | "cached" | "delegated" => mount.consistency = Some(option.clone()),
            "nocopy" => {
                if typ != MountType::VOLUME {
                    return Err(misplaced("named volumes"));
                }
                mount.volume_options = Some(MountVolumeOptions {
                    no_copy: Some(true),
                    ..Default::default()
                });
            }
            // "z" and "Z" go through binds; the rules refuse everything else
            // (propagation modes among them), so this is a client that skipped them.
            other => {
                return Err(RuntimeError::Other(format!(
                    "volume {volume}: unknown option {other}; use ro, rw, z, Z, nocopy, consistent, cached or delegated"
                )));
            }
        }
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(source: VolumeSource, target: &str, options: &[&str]) -> VolumeMount {
        VolumeMount {
            source,
            container_path: target.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn named_volumes_and_host_paths_become_typed_mounts() {
        let got = mounts(&[
            volume(VolumeSource::Named("data".into()), "/data", &["nocopy"]),
            volume(VolumeSource::Bind("/etc/app".into()), "/config", &["ro"]),
        ])
        .unwrap();
        assert!(got.binds.is_empty());
        let [named, bind] = got.mounts.as_slice() else {
            panic!("two mounts expected: {got:?}")
        };
        assert_eq!(named.typ, Some(MountType::VOLUME));
        assert_eq!(named.source.as_deref(), Some("data"));
        assert_eq!(named.target.as_deref(), Some("/data"));
        assert_eq!(named.read_only, None);
        assert_eq!(named.volume_options.as_ref().unwrap().no_copy, Some(true));
        assert_eq!(bind.typ, Some(MountType::BIND));
        assert_eq!(bind.read_only, Some(true));
    }

    #[test]
    fn selinux_relabelling_goes_through_binds() {
        let got = mounts(&[volume(
            VolumeSource::Bind("/srv/app".into()),
            "/app",
            &["ro", "Z"],
        )])
        .unwrap();
        assert!(got.mounts.is_empty());
        assert_eq!(got.binds, ["/srv/app:/app:ro,Z"]);
    }

    #[test]
    fn options_for_the_other_kind_of_volume_are_refused() {
        let err = mounts(&[volume(VolumeSource::Bind("/srv".into()), "/x", &["nocopy"])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only applies to named volumes"), "{err}");
        let err = mounts(&[volume(VolumeSource::Named("d".into()), "/x", &["rshared"])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown option rshared"), "{err}");
    }
}
