//! The host-protection policy against the paths and networks a token holder might
//! ask for, and against every bind mount the seed README shows.

use super::*;
use haloy_api::rules;
use haloy_api::spec::ImageSpec;

fn policy(config: ProtectionConfig) -> Protection {
    Protection::new(
        &config,
        Path::new("/etc/haloy"),
        Path::new("/var/lib/haloy"),
    )
}

fn with_volumes(volumes: &[&str]) -> AppSpec {
    AppSpec {
        volumes: volumes
            .iter()
            .map(|v| rules::volume(v).expect("a volume the rules accept"))
            .collect(),
        ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
    }
}

fn refusal(protection: &Protection, volume: &str) -> Refusal {
    protection
        .check(&with_volumes(&["data:/data", volume]))
        .expect_err(volume)
}

#[test]
fn the_seed_readmes_bind_mounts_stay_accepted() {
    let protection = policy(ProtectionConfig::default());
    let seed = [
        "/var/app/data:/app/data",
        "/home/user/logs:/app/logs:ro",
        "/etc/ssl/certs:/app/certs:ro",
        "/var/log/myapp:/app/logs",
        "/etc/ssl/private:/app/ssl:ro",
        "app-data:/app/data",
        "postgres-data:/var/lib/postgresql/data",
    ];
    assert_eq!(protection.check(&with_volumes(&seed)), Ok(()));
}

#[test]
fn mounts_that_hand_over_the_host_are_refused_naming_the_field_and_the_setting() {
    let protection = policy(ProtectionConfig::default());
    for (volume, because) in [
        ("/:/host", "whole file system"),
        (
            "/var/run/docker.sock:/var/run/docker.sock",
            "Docker's socket",
        ),
        ("/run/docker.sock:/docker.sock:ro", "Docker's socket"),
        ("/var/run:/hostrun:ro", "Docker's socket"),
        ("/var:/hostvar:ro", "Docker's socket"),
        ("/etc/haloy:/cfg:ro", "API token"),
        ("/etc/haloy/haloyd.yaml:/cfg.yaml:ro", "API token"),
        ("/var/lib/haloy/db:/db", "deployment database"),
        ("/var/lib:/lib-of-host:ro", "deployment database"),
        ("/proc:/hostproc:ro", "processes"),
        ("/sys/kernel:/k:ro", "kernel"),
        ("/dev/sda:/disk", "devices"),
        ("/boot:/boot:ro", "boot loader"),
        ("/etc:/hostetc:ro", "API token"),
        ("/etc/nginx:/nginx", "writable /etc"),
        ("/etc/cron.d:/cron", "writable /etc"),
    ] {
        let refused = refusal(&protection, volume);
        assert_eq!(refused.field, "volumes[1]", "{volume}");
        assert!(refused.problem.contains(because), "{volume}: {refused}");
        assert!(
            refused.fix.contains("allow_bind_mounts"),
            "{volume}: {refused}"
        );
    }
    let etc = refusal(&protection, "/etc/app:/config");
    assert!(etc.fix.contains("read-only (append :ro)"), "{etc}");
}

#[test]
fn paths_are_normalised_before_they_are_judged() {
    let protection = policy(ProtectionConfig::default());
    for volume in [
        "//var//run/./docker.sock:/d.sock",
        "/proc/:/p:ro",
        "/etc/haloy/./:/cfg:ro",
    ] {
        let spec = AppSpec {
            volumes: vec![haloy_api::spec::VolumeMount {
                source: VolumeSource::Bind(volume.split(':').next().unwrap().into()),
                container_path: "/x".into(),
                options: vec!["ro".into()],
            }],
            ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
        };
        assert!(protection.check(&spec).is_err(), "{volume}");
    }
    let dotted = AppSpec {
        volumes: vec![haloy_api::spec::VolumeMount {
            source: VolumeSource::Bind("/srv/../etc/haloy".into()),
            container_path: "/x".into(),
            options: vec![],
        }],
        ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
    };
    let refused = protection.check(&dotted).expect_err("'..' is refused");
    assert!(
        refused.problem.contains("not a plain absolute path"),
        "{refused}"
    );
}

#[test]
fn a_link_to_a_guarded_path_is_judged_by_where_it_leads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("db")).unwrap();
    let link = dir.path().join("innocent");
    std::os::unix::fs::symlink(data.join("db"), &link).unwrap();
    let protection = Protection::new(&ProtectionConfig::default(), Path::new("/etc/haloy"), &data);
    let volume = format!("{}/inside:/x", link.display());
    let refused = refusal(&protection, &volume);
    assert!(refused.problem.contains("which is"), "{refused}");
    assert!(refused.problem.contains("deployment database"), "{refused}");
}

#[test]
fn haloyd_yaml_widens_and_narrows_the_policy() {
    let widened = policy(ProtectionConfig {
        allow_bind_mounts: vec!["/var/run/docker.sock".into(), "/etc/app".into()],
        ..ProtectionConfig::default()
    });
    assert_eq!(
        widened.check(&with_volumes(&[
            "/var/run/docker.sock:/var/run/docker.sock",
            "/etc/app/conf:/conf"
        ])),
        Ok(())
    );
    // What the allowance does not name stays refused.
    assert!(
        widened
            .check(&with_volumes(&["/etc/haloy:/cfg:ro"]))
            .is_err()
    );

    let narrowed = policy(ProtectionConfig {
        deny_bind_mounts: vec!["/home".into()],
        ..ProtectionConfig::default()
    });
    let refused = refusal(&narrowed, "/home/user/logs:/logs:ro");
    assert!(refused.problem.contains("deny_bind_mounts"), "{refused}");
    assert_eq!(narrowed.check(&with_volumes(&["/srv/data:/data"])), Ok(()));
}

#[test]
fn host_and_none_networks_need_haloyd_yamls_consent() {
    let strict = policy(ProtectionConfig::default());
    for name in ["host", "none"] {
        let spec = AppSpec {
            network: Some(name.into()),
            ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
        };
        let refused = strict.check(&spec).expect_err(name);
        assert_eq!(refused.field, "network");
        assert!(
            refused.fix.contains("protection.allow_networks"),
            "{refused}"
        );
        let lenient = policy(ProtectionConfig {
            allow_networks: vec![SpecialNetwork::Host, SpecialNetwork::None],
            ..ProtectionConfig::default()
        });
        assert_eq!(lenient.check(&spec), Ok(()));
    }
    let joined = AppSpec {
        network: Some("container:db".into()),
        ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
    };
    assert!(strict.check(&joined).is_err());
    let ordinary = AppSpec {
        network: Some("backend".into()),
        ..AppSpec::new("web", ImageSpec::registry("web", "v1"))
    };
    assert_eq!(strict.check(&ordinary), Ok(()));
}

#[test]
fn in_a_container_links_are_followed_in_the_hosts_file_system() {
    // A host root seen at <tmp>/host: /srv/innocent -> /var/run (absolute, as on the
    // host) and /srv/up -> ../etc (relative).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    for made in ["srv", "var/run", "etc", "opt/app"] {
        std::fs::create_dir_all(root.join(made)).unwrap();
    }
    std::os::unix::fs::symlink("/var/run", root.join("srv/innocent")).unwrap();
    std::os::unix::fs::symlink("../etc", root.join("srv/up")).unwrap();
    let protection = Protection::with_host_root(
        &ProtectionConfig::default(),
        Path::new("/etc/haloy"),
        Path::new("/var/lib/haloy"),
        &root,
    );
    let refused = refusal(&protection, "/srv/innocent/docker.sock:/x");
    assert!(
        refused.problem.contains("which is /var/run/docker.sock"),
        "{refused}"
    );
    let refused = refusal(&protection, "/srv/up/shadow:/x");
    assert!(
        refused.problem.contains("which is /etc/shadow"),
        "{refused}"
    );
    // Read-only /etc through the link is fine, and a plain directory is itself.
    assert_eq!(
        protection.check(&with_volumes(&["/srv/up/ssl:/ssl:ro", "/opt/app:/app"])),
        Ok(())
    );
    // A loop of links ends; the path is judged as written.
    std::os::unix::fs::symlink("/srv/loop", root.join("srv/loop")).unwrap();
    assert_eq!(protection.check(&with_volumes(&["/srv/loop:/l"])), Ok(()));
}
