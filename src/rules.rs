//! The rules a deploy spec must obey, shared by the workstation's config validation and
//! haloyd's re-validation of every request (the server never trusts the client).
//!
//! Each rule returns a [`Violation`]: what is wrong and how to fix it. Callers add the
//! key path (`targets.production.volumes[1]`) or the request field it came from.

use std::fmt;

use crate::spec::{VolumeMount, VolumeSource};

mod maintenance;
mod values;
pub use maintenance::*;
pub use values::*;

/// One broken rule: the problem and the fix, both lowercase without a trailing period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub problem: String,
    pub fix: String,
}

/// The longest problem text kept: problems quote the offending value, and an error
/// must not echo a megabyte back (or into a log).
const MAX_PROBLEM: usize = 240;

impl Violation {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: shorten(problem.into()),
            fix: fix.into(),
        }
    }
}

fn shorten(mut text: String) -> String {
    if text.len() <= MAX_PROBLEM {
        return text;
    }
    let total = text.chars().count();
    let mut cut = MAX_PROBLEM;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let kept = text.chars().count();
    text.push_str(&format!("… ({} more characters)", total - kept));
    text
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

impl std::error::Error for Violation {}

type Rule<T = ()> = Result<T, Violation>;

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// App names become container, network and HAProxy backend names.
pub fn app_name(name: &str) -> Rule {
    let fix = "use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit";
    if name.is_empty() {
        return Err(Violation::new("the app name is empty", fix));
    }
    let starts_well = name.chars().next().is_some_and(is_alnum);
    let chars_ok = name.chars().all(|c| is_alnum(c) || c == '-' || c == '_');
    if !starts_well || !chars_ok || name.len() > 63 {
        return Err(Violation::new(format!("invalid app name {name:?}"), fix));
    }
    Ok(())
}

/// Target names are used on the command line and in file names (`.env.<target>`).
pub fn target_name(name: &str) -> Rule {
    app_name(name).map_err(|v| {
        Violation::new(
            v.problem.replace("app name", "target name"),
            "use letters, digits, '-' or '_', starting with a letter or digit",
        )
    })
}

/// A DNS host name as HAProxy and ACME will see it. Wildcards are not supported.
pub fn domain_name(domain: &str) -> Rule {
    let fix = "use a plain host name such as my-app.com, without scheme, port or path";
    if domain.is_empty() {
        return Err(Violation::new("the domain is empty", fix));
    }
    if domain.contains("://") || domain.contains('/') || domain.contains(':') {
        return Err(Violation::new(
            format!("{domain:?} is not a bare domain"),
            fix,
        ));
    }
    if domain.starts_with("*.") {
        return Err(Violation::new(
            format!("wildcard domain {domain:?} is not supported"),
            "list each host name explicitly",
        ));
    }
    if domain != domain.to_ascii_lowercase() {
        return Err(Violation::new(
            format!("domain {domain:?} has upper-case letters"),
            format!("write it in lower case: {}", domain.to_ascii_lowercase()),
        ));
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| is_alnum(c) || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !labels_ok || domain.len() > 253 {
        return Err(Violation::new(
            format!("{domain:?} is not a valid domain name"),
            fix,
        ));
    }
    Ok(())
}

/// A plausible e-mail address for the ACME account.
pub fn email(address: &str) -> Rule {
    let fix = "give an address such as you@example.com";
    match address.split_once('@') {
        Some((local, host))
            if !local.is_empty()
                && host.contains('.')
                && domain_name(host).is_ok()
                && address.len() <= 254
                && !address.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(Violation::new(
            format!("{address:?} is not a valid e-mail address"),
            fix,
        )),
    }
}

/// A TCP port; zero is not a port an app can listen on.
pub fn port(port: i64) -> Rule<u16> {
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Violation::new(
            format!("port {port} is out of range"),
            "use a port between 1 and 65535, e.g. 8080",
        )),
    }
}

/// Parses a port written as a string (`"8080"`).
pub fn port_str(text: &str) -> Rule<u16> {
    match text.trim().parse::<i64>() {
        Ok(n) => port(n),
        Err(_) => Err(Violation::new(
            format!("port {text:?} is not a number"),
            "use a port between 1 and 65535, e.g. 8080",
        )),
    }
}

pub const MAX_REPLICAS: i64 = 100;

pub fn replicas(count: i64) -> Rule<u32> {
    if (1..=MAX_REPLICAS).contains(&count) {
        // In range 1..=100, so the conversion cannot fail.
        Ok(count as u32)
    } else {
        Err(Violation::new(
            format!("replicas is {count}"),
            format!("use a whole number from 1 to {MAX_REPLICAS}"),
        ))
    }
}

/// Longest health check path accepted.
pub const MAX_HEALTH_CHECK_PATH: usize = 1024;

/// An absolute URL path (with an optional query) made only of characters that mean
/// nothing to HAProxy's config parser or an HTTP request line: no spaces, quotes,
/// backslashes, `#` (a comment to HAProxy, a fragment to HTTP), `$` or control
/// characters.
pub fn health_check_path(path: &str) -> Rule {
    if !path.starts_with('/') {
        return Err(Violation::new(
            format!("health check path {path:?} is not an absolute URL path"),
            "start it with '/', e.g. /health",
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._~%!&()*+,;=:@?".contains(c);
    if let Some(bad) = path.chars().find(|c| !allowed(*c)) {
        return Err(Violation::new(
            format!("health check path {path:?} contains {bad:?}"),
            "use letters, digits and /-._~%!&()*+,;=:@? (percent-encode anything else)",
        ));
    }
    if path.len() > MAX_HEALTH_CHECK_PATH {
        return Err(Violation::new(
            format!("health check path is {} characters long", path.len()),
            format!("use at most {MAX_HEALTH_CHECK_PATH}"),
        ));
    }
    Ok(())
}

/// Environment variable names as POSIX shells accept them.
pub fn env_name(name: &str) -> Rule {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !name.chars().all(|c| is_alnum(c) || c == '_') {
        return Err(Violation::new(
            format!("{name:?} is not a valid environment variable name"),
            "use letters, digits and '_', not starting with a digit",
        ));
    }
    Ok(())
}

/// Docker network names.
pub fn network_name(name: &str) -> Rule {
    let starts_well = name.chars().next().is_some_and(is_alnum);
    let chars_ok = name
        .chars()
        .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'));
    if !starts_well || !chars_ok || name.len() > 64 {
        return Err(Violation::new(
            format!("{name:?} is not a valid Docker network name"),
            "use letters, digits, '-', '_' or '.', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// An image repository such as `ghcr.io/org/app`, `org/app` or `localhost:5000/app`.
pub fn image_repository(repository: &str) -> Rule {
    let fix = "use a lower-case name such as my-app or ghcr.io/org/my-app, without a tag";
    if repository.is_empty() {
        return Err(Violation::new("the image repository is empty", fix));
    }
    if repository.len() > 255 {
        return Err(Violation::new(
            format!(
                "the image repository is {} characters long",
                repository.len()
            ),
            "Docker allows at most 255",
        ));
    }
    if repository.contains('@') {
        return Err(Violation::new(
            format!("image repository {repository:?} contains a digest"),
            fix,
        ));
    }
    let mut parts = repository.split('/').peekable();
    let mut first = true;
    while let Some(part) = parts.next() {
        let is_registry_host = first
            && parts.peek().is_some()
            && (part.contains('.') || part.contains(':') || part == "localhost");
        first = false;
        let ok = if is_registry_host {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| is_alnum(c) || matches!(c, '.' | '-' | ':'))
        } else {
            !part.is_empty()
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        };
        if !ok {
            let problem = if part.contains(':') && !is_registry_host {
                format!("image repository {repository:?} includes a tag")
            } else {
                format!("{repository:?} is not a valid image repository")
            };
            let fix = if part.contains(':') {
                "put the tag in image.tag, not in the repository"
            } else {
                fix
            };
            return Err(Violation::new(problem, fix));
        }
    }
    Ok(())
}

/// A Docker image tag.
pub fn image_tag(tag: &str) -> Rule {
    let starts_well = tag.chars().next().is_some_and(|c| is_alnum(c) || c == '_');
    let chars_ok = tag
        .chars()
        .all(|c| is_alnum(c) || matches!(c, '_' | '.' | '-'));
    if !starts_well || !chars_ok || tag.len() > 128 {
        return Err(Violation::new(
            format!("{tag:?} is not a valid image tag"),
            "use up to 128 letters, digits, '_', '.' or '-', e.g. v1.2.3",
        ));
    }
    Ok(())
}

/// Tags that usually move to newer images; the `registry` history strategy needs tags
/// that always name the same image.
const MUTABLE_TAGS: &[&str] = &[
    "latest",
    "main",
    "master",
    "dev",
    "develop",
    "development",
    "edge",
    "nightly",
    "stable",
    "staging",
    "prod",
    "production",
    "test",
    "head",
];

pub fn immutable_tag(tag: &str) -> Rule {
    if MUTABLE_TAGS.contains(&tag.to_ascii_lowercase().as_str()) {
        return Err(Violation::new(
            format!(
                "tag {tag:?} moves to newer images, so the registry history strategy could not roll back to it"
            ),
            "deploy an immutable tag such as v1.2.3 or a commit hash, or use history strategy local",
        ));
    }
    Ok(())
}

const VOLUME_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "consistent",
    "cached",
    "delegated",
];

/// Mount propagation modes: with them a container sees, or makes, mounts on the
/// host. Refused.
const PROPAGATION_OPTIONS: &[&str] = &[
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// Parses `name:/container/path[:opts]` or `/host/path:/container/path[:opts]`.
pub fn volume(spec: &str) -> Rule<VolumeMount> {
    if spec.len() > MAX_VOLUME || spec.chars().any(char::is_control) {
        return Err(Violation::new(
            "the volume is too long or has control characters",
            format!("write source:target[:options] in at most {MAX_VOLUME} printable characters"),
        ));
    }
    let format_fix =
        "write volume-name:/container/path or /absolute/host/path:/container/path[:ro]";
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, container_path, options) = match parts.as_slice() {
        [source, target] => (*source, *target, ""),
        [source, target, options] => (*source, *target, *options),
        _ => {
            return Err(Violation::new(
                format!("volume {spec:?} is not in source:target[:options] form"),
                format_fix,
            ));
        }
    };
    if source.is_empty() || container_path.is_empty() {
        return Err(Violation::new(
            format!("volume {spec:?} has an empty source or target"),
            format_fix,
        ));
    }
    let source = if source.starts_with('/') {
        if source.split('/').any(|seg| seg == "..") {
            return Err(Violation::new(
                format!("host path {source:?} contains '..'"),
                "write the absolute path without '..'",
            ));
        }
        VolumeSource::Bind(source.to_string())
    } else if source.starts_with('.') || source.starts_with('~') || source.contains('/') {
        return Err(Violation::new(
            format!("relative host path {source:?} is not supported"),
            "use an absolute host path (starting with /) or a named volume: haloyd resolves paths on the server, not next to your config, so a relative path would mount the wrong directory",
        ));
    } else {
        let chars_ok = source
            .chars()
            .all(|c| is_alnum(c) || matches!(c, '_' | '.' | '-'));
        if !chars_ok || !source.starts_with(is_alnum) {
            return Err(Violation::new(
                format!("{source:?} is not a valid volume name"),
                "use letters, digits, '_', '.' or '-' for named volumes, or an absolute host path",
            ));
        }
        VolumeSource::Named(source.to_string())
    };
    if !container_path.starts_with('/') {
        return Err(Violation::new(
            format!("container path {container_path:?} is not absolute"),
            "start the container path with '/', e.g. app-data:/app/data",
        ));
    }
    let options: Vec<String> = if options.is_empty() {
        Vec::new()
    } else {
        options.split(',').map(str::to_string).collect()
    };
    if let Some(mode) = options
        .iter()
        .find(|o| PROPAGATION_OPTIONS.contains(&o.as_str()))
    {
        return Err(Violation::new(
            format!(
                "volume option {mode:?} sets mount propagation, which lets the container see or make mounts on the server"
            ),
            "remove it; Haloy does not allow mount propagation",
        ));
    }
    if let Some(bad) = options
        .iter()
        .find(|o| !VOLUME_OPTIONS.contains(&o.as_str()))
    {
        return Err(Violation::new(
            format!("unknown volume option {bad:?}"),
            format!("use one of {}", VOLUME_OPTIONS.join(", ")),
        ));
    }
    Ok(VolumeMount {
        source,
        container_path: container_path.to_string(),
        options,
    })
}

/// Each host name may appear once across all domains and aliases of an app.
pub fn distinct_hosts(domains: &[crate::spec::DomainSpec]) -> Rule {
    let mut seen = std::collections::HashSet::new();
    for host in domains
        .iter()
        .flat_map(|d| std::iter::once(&d.canonical).chain(&d.aliases))
    {
        if !seen.insert(host.as_str()) {
            return Err(Violation::new(
                format!("{host:?} is listed more than once"),
                "list each host name once, either as a domain or as an alias",
            ));
        }
    }
    Ok(())
}

/// The registry host an image reference points at, as `docker login` would use it.
pub fn registry_server_of(repository: &str) -> String {
    match repository.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "index.docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests;
