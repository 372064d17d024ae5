//! What a deploy may not do to the server: bind mounts and networks that would hand
//! a container the host. haloyd checks every spec it runs against this policy,
//! whatever the client checked; `protection` in haloyd.yaml widens or narrows it.

use std::path::{Component, Path, PathBuf};

use haloy_api::spec::{AppSpec, VolumeSource};
use serde::{Deserialize, Serialize};

/// The `protection` block of haloyd.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    /// Host paths that bind mounts may use (with everything below them) although
    /// the built-in policy refuses them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_bind_mounts: Vec<PathBuf>,
    /// Host paths refused besides the built-in ones: the path, what is below it and
    /// what holds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_bind_mounts: Vec<PathBuf>,
    /// Docker networks that change what a container can reach and that apps may
    /// name anyway: `host`, `none`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_networks: Vec<SpecialNetwork>,
}

/// The networks that are not a network of containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecialNetwork {
    /// The server's own network stack: every port on its loopback, no isolation,
    /// and the app is not published through loopback-only ports.
    Host,
    /// No network at all (HAProxy cannot reach the app).
    None,
}

impl SpecialNetwork {
    fn named(name: &str) -> Option<Self> {
        match name {
            "host" => Some(Self::Host),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::None => "none",
        }
    }

    fn danger(self) -> &'static str {
        match self {
            Self::Host => {
                "the container would share the server's network stack and reach every service on its loopback"
            }
            Self::None => "the container would have no network, so HAProxy could not reach it",
        }
    }
}

/// How a guarded path is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The path and everything below it.
    Below,
    /// The path, everything below it, and every directory that holds it.
    BelowAndAbove,
    /// Like `Below`, but only mounts the container can write to.
    WritableBelow,
}

#[derive(Debug, Clone)]
struct Guard {
    path: PathBuf,
    reach: Reach,
    why: &'static str,
}

/// A refused part of a spec: which field, why, and what would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; {}", self.field, self.problem, self.fix)
    }
}

/// The policy in force: built-in guards, the server's own directories and
/// haloyd.yaml's lists.
#[derive(Debug, Clone)]
pub struct Protection {
    /// Where the host's file system is seen from haloyd: `/` for a host process, a
    /// read-only view of the host's root when haloyd runs in a container. Bind-mount
    /// sources are host paths, so their links are followed there.
    host_root: PathBuf,
    guards: Vec<Guard>,
    allowed: Vec<PathBuf>,
    networks: Vec<SpecialNetwork>,
}

/// Where Docker's socket is on Linux (one is usually a link to the other).
const DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

impl Protection {
    /// The policy for a haloyd whose config and data live in `config_dir` and
    /// `data_dir`.
    pub fn new(config: &ProtectionConfig, config_dir: &Path, data_dir: &Path) -> Self {
        Self::with_host_root(config, config_dir, data_dir, Path::new("/"))
    }

    /// Like [`Protection::new`] for a haloyd that sees the host's root at `host_root`
    /// (a container): links in bind-mount sources are followed in the host's file
    /// system, not haloyd's own.
    pub fn with_host_root(
        config: &ProtectionConfig,
        config_dir: &Path,
        data_dir: &Path,
        host_root: &Path,
    ) -> Self {
        let mut guards = Vec::new();
        for socket in DOCKER_SOCKETS {
            guards.push(Guard {
                path: PathBuf::from(socket),
                reach: Reach::BelowAndAbove,
                why: "it holds Docker's socket, and whoever reaches Docker owns the server",
            });
        }
        guards.push(Guard {
            path: normalize(config_dir).unwrap_or_else(|| config_dir.to_path_buf()),
            reach: Reach::BelowAndAbove,
            why: "it holds haloyd's configuration and its API token",
        });
        guards.push(Guard {
            path: normalize(data_dir).unwrap_or_else(|| data_dir.to_path_buf()),
            reach: Reach::BelowAndAbove,
            why: "it holds haloyd's data: keys, certificates and the deployment database",
        });
        for (path, why) in [
            (
                "/proc",
                "it exposes the server's processes and kernel settings",
            ),
            ("/sys", "it exposes the server's kernel and devices"),
            ("/dev", "it exposes the server's devices"),
            ("/boot", "it holds the server's kernel and boot loader"),
        ] {
            guards.push(Guard {
                path: PathBuf::from(path),
                reach: Reach::Below,
                why,
            });
        }
        guards.push(Guard {
            path: PathBuf::from("/etc"),
            reach: Reach::WritableBelow,
            why: "a writable /etc lets the container change the server's users, services and settings",
        });
        for path in &config.deny_bind_mounts {
            guards.push(Guard {
                path: normalize(path).unwrap_or_else(|| path.clone()),
                reach: Reach::BelowAndAbove,
                why: "deny_bind_mounts in haloyd.yaml refuses it",
            });
        }
        Self {
            host_root: host_root.to_path_buf(),
            guards,
            // An allowance covers the path as written and where it leads.
            allowed: config
                .allow_bind_mounts
                .iter()
                .filter_map(|p| normalize(p))
                .flat_map(|p| {
                    let resolved = resolve(host_root, &p);
                    [p, resolved]
                })
                .collect(),
            networks: config.allow_networks.clone(),
        }
    }

    /// The first part of `spec` the policy refuses.
    pub fn check(&self, spec: &AppSpec) -> Result<(), Refusal> {
        for (index, volume) in spec.volumes.iter().enumerate() {
            let VolumeSource::Bind(source) = &volume.source else {
                continue;
            };
            let writable = !volume.options.iter().any(|o| o == "ro");
            self.check_bind(source, writable)
                .map_err(|(problem, fix)| Refusal {
                    field: format!("volumes[{index}]"),
                    problem,
                    fix,
                })?;
        }
        if let Some(name) = &spec.network {
            self.check_network(name).map_err(|(problem, fix)| Refusal {
                field: "network".into(),
                problem,
                fix,
            })?;
        }
        Ok(())
    }

    fn check_bind(&self, source: &str, writable: bool) -> Result<(), (String, String)> {
        let Some(path) = normalize(Path::new(source)) else {
            return Err((
                format!("bind mount source {source:?} is not a plain absolute path"),
                "write an absolute path without '..'".into(),
            ));
        };
        // A link may lead somewhere guarded: judge where it leads too.
        let resolved = resolve(&self.host_root, &path);
        let seen: Vec<&Path> = if resolved == path {
            vec![&path]
        } else {
            vec![&path, &resolved]
        };
        if seen
            .iter()
            .all(|p| self.allowed.iter().any(|a| p.starts_with(a)))
        {
            return Ok(());
        }
        let allow_fix = format!(
            "if this app must have it, add {} to protection.allow_bind_mounts in haloyd.yaml on the server",
            path.display()
        );
        if path == Path::new("/") {
            return Err((
                "a bind mount of / would give the container the server's whole file system".into(),
                allow_fix,
            ));
        }
        for guard in &self.guards {
            let hit = seen.iter().any(|p| match guard.reach {
                Reach::Below => p.starts_with(&guard.path),
                Reach::BelowAndAbove => p.starts_with(&guard.path) || guard.path.starts_with(p),
                Reach::WritableBelow => writable && p.starts_with(&guard.path),
            });
            if hit {
                let fix = if guard.reach == Reach::WritableBelow {
                    format!("mount it read-only (append :ro), or {allow_fix}")
                } else {
                    allow_fix
                };
                let shown = if resolved == path {
                    path.display().to_string()
                } else {
                    format!("{} (which is {})", path.display(), resolved.display())
                };
                return Err((
                    format!(
                        "a bind mount of {shown} is refused: {} ({})",
                        guard.why,
                        guard.path.display()
                    ),
                    fix,
                ));
            }
        }
        Ok(())
    }

    fn check_network(&self, name: &str) -> Result<(), (String, String)> {
        if let Some(rest) = name.strip_prefix("container:") {
            return Err((
                format!("network {name:?} would join the network stack of container {rest}"),
                "use a Docker network the apps share instead".into(),
            ));
        }
        match SpecialNetwork::named(name) {
            Some(special) if !self.networks.contains(&special) => Err((
                format!("network {name} is refused: {}", special.danger()),
                format!(
                    "use a Docker network, or add {} to protection.allow_networks in haloyd.yaml on the server",
                    special.as_str()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// `path` without `.`, empty components or a trailing slash; `None` unless it is
/// absolute and free of `..`.
fn normalize(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Where `path` leads once the links in its longest existing part are followed
/// (Docker creates what is missing, as directories), in the file system whose root
/// haloyd sees at `root`.
fn resolve(root: &Path, path: &Path) -> PathBuf {
    if root != Path::new("/") {
        return resolve_below(root, path);
    }
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            return missing.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// How many links one resolution follows before it gives up, as the kernel does
/// (ELOOP after 40).
const MAX_LINKS: usize = 40;

/// [`resolve`] in a file system mounted at `root`: each component is looked up below
/// `root`, and a link's absolute target starts again at `root`, as it would on the
/// host. Past [`MAX_LINKS`], or at anything unreadable, the rest is kept as written.
fn resolve_below(root: &Path, path: &Path) -> PathBuf {
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            _ => None,
        })
        .rev()
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let on_host = root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match std::fs::read_link(&on_host) {
            Ok(target) if links < MAX_LINKS => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for component in target.components().rev() {
                    match component {
                        Component::Normal(p) => pending.push(p.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    resolved
}

#[cfg(test)]
mod tests;
