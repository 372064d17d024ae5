//! Bounds on what a client may send: sizes, counts, and characters that would reach
//! a process environment, an HTTP header or a registry request.

use super::{Rule, Violation, is_alnum};

/// Longest env value accepted: certificates and keys fit, a flood does not.
pub const MAX_ENV_VALUE: usize = 128 * 1024;
/// Most env variables, volumes, domains and aliases (each) one app may have.
pub const MAX_ITEMS: usize = 256;
/// Longest registry user name or password.
pub const MAX_CREDENTIAL: usize = 4096;
/// Longest registry tag pattern.
pub const MAX_TAG_PATTERN: usize = 128;
/// Longest volume, as `source:target:options`.
pub const MAX_VOLUME: usize = 4096;

/// At most [`MAX_ITEMS`] of something an app lists.
pub fn item_count(count: usize, what: &str) -> Rule {
    if count > MAX_ITEMS {
        return Err(Violation::new(
            format!("{count} {what} is more than an app may have"),
            format!("list at most {MAX_ITEMS}"),
        ));
    }
    Ok(())
}

/// An env value: any text (line breaks too: keys and certificates have them) but
/// NUL, which no process environment can hold, of at most [`MAX_ENV_VALUE`] bytes.
pub fn env_value(value: &str) -> Rule {
    if value.contains('\0') {
        return Err(Violation::new(
            "the value contains a NUL character",
            "remove it; a process environment cannot hold NUL",
        ));
    }
    if value.len() > MAX_ENV_VALUE {
        return Err(Violation::new(
            format!("the value is {} bytes long", value.len()),
            format!(
                "keep values under {} KiB; mount larger data as a volume",
                MAX_ENV_VALUE / 1024
            ),
        ));
    }
    Ok(())
}

/// A registry host as images name it: `host`, `host:port`, no scheme or path.
pub fn registry_server(server: &str) -> Rule {
    let chars_ok = server
        .chars()
        .all(|c| is_alnum(c) || matches!(c, '-' | '.' | ':' | '[' | ']'));
    if server.is_empty() || server.len() > 255 || !chars_ok {
        return Err(Violation::new(
            format!("{server:?} is not a registry host"),
            "write the registry's host (and port), e.g. ghcr.io or localhost:5000",
        ));
    }
    Ok(())
}

/// A registry user name or password: printable, at most [`MAX_CREDENTIAL`] bytes.
pub fn credential(value: &str) -> Rule {
    if value.chars().any(char::is_control) || value.len() > MAX_CREDENTIAL {
        return Err(Violation::new(
            "the credential has control characters or is too long",
            format!("use printable characters, at most {MAX_CREDENTIAL} bytes"),
        ));
    }
    Ok(())
}

/// A registry tag pattern (`*` matches any run of characters).
pub fn tag_pattern(pattern: &str) -> Rule {
    let fix = format!("use 1 to {MAX_TAG_PATTERN} printable characters without spaces, e.g. v*");
    if pattern.len() > MAX_TAG_PATTERN {
        return Err(Violation::new(
            format!("the tag pattern is too long ({} characters)", pattern.len()),
            fix,
        ));
    }
    if pattern.is_empty() || !pattern.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Violation::new(
            format!("tag pattern {pattern:?} is empty or has spaces or control characters"),
            fix,
        ));
    }
    Ok(())
}
