//! Deployment ids and timestamps without a date library.
//!
//! A deployment id is the UTC time it was created, `YYYYMMDDhhmmssSSS`, then `-` and
//! four hex digits derived from the haloyd instance: ids sort by time as plain strings,
//! are readable, fit in container and image tag names, and two servers sharing one
//! Docker never give containers the same name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The id for a deployment created at `ms` by `instance`; `previous` is the newest id
/// already issued, so two deployments in the same millisecond still get increasing ids.
pub fn deployment_id(ms: u64, previous: Option<&str>, instance: &str) -> String {
    let suffix = format!("{:04x}", fnv1a(instance.as_bytes()) & 0xffff);
    let mut ms = ms;
    let mut candidate = format!("{}-{suffix}", format_compact(ms));
    while previous.is_some_and(|prev| candidate.as_str() <= prev) {
        ms += 1;
        candidate = format!("{}-{suffix}", format_compact(ms));
    }
    candidate
}

/// FNV-1a, a stable little hash for the id suffix.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `YYYYMMDDhhmmssSSS` in UTC.
pub fn format_compact(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}{:03}", ms % 1000)
}

/// RFC 3339 in UTC, second precision, e.g. `2026-11-25T10:46:31Z`.
pub fn format_rfc3339(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the epoch to (year, month, day, hour, minute, second), using the
/// days-to-civil algorithm for the proleptic Gregorian calendar.
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_compact(0), "19700101000000000");
        // 2026-11-25T10:46:31.250Z
        let ms = 1_795_603_591_250;
        assert_eq!(format_compact(ms), "20261125104631250");
        assert_eq!(format_rfc3339(ms), "2026-11-25T10:46:31Z");
        // A leap day.
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn ids_increase_even_within_one_millisecond() {
        let a = deployment_id(1_000, None, "x");
        let b = deployment_id(1_000, Some(&a), "x");
        let c = deployment_id(999, Some(&b), "x");
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn instances_sharing_a_docker_get_different_ids() {
        let a = deployment_id(1_000, None, "server-a");
        let b = deployment_id(1_000, None, "server-b");
        assert_ne!(a, b);
        assert_eq!(&a[..17], &b[..17], "the time part is the same");
        assert_eq!(
            a,
            deployment_id(1_000, None, "server-a"),
            "stable per instance"
        );
    }
}
