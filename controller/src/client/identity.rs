//! Who is calling: the workstation's user and host names, sent with every call as
//! `x-haloy-user` and `x-haloy-host` for haloyd's audit log.

use tonic::metadata::AsciiMetadataValue;

/// The longest name sent, in characters (haloyd keeps no more either).
const MAX: usize = 64;

/// A name as a metadata value: visible ASCII only (others become `?`), bounded.
fn value(name: &str) -> Option<AsciiMetadataValue> {
    let clean: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.is_empty() {
        return None;
    }
    clean.parse().ok()
}

fn first_env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// The user running `haloy`: `$USER`, `$LOGNAME` or `$USERNAME`.
pub fn user() -> Option<AsciiMetadataValue> {
    value(&first_env(&["USER", "LOGNAME", "USERNAME"])?)
}

/// The workstation's host name, from the kernel or the environment.
pub fn host() -> Option<AsciiMetadataValue> {
    let from_file = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .filter(|s| !s.trim().is_empty())
        });
    value(&from_file.or_else(|| first_env(&["HOSTNAME", "COMPUTERNAME"]))?)
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn names_become_bounded_visible_ascii() {
        assert_eq!(value(" ann\n").unwrap(), "ann");
        assert_eq!(value("jörg").unwrap(), "j?rg");
        assert_eq!(value(&"x".repeat(200)).unwrap().len(), 64);
        assert!(value("\t").is_none());
    }
}
