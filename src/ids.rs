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
    let suffix = instance_suffix(instance);
    // At or after the previous id's millisecond, so the loop below ends at once even
    // when the previous id lies ahead of this clock.
    let ms = previous
        .and_then(|prev| parse_compact(prev.get(..17)?))
        .map_or(ms, |prev_ms| ms.max(prev_ms));
    let mut ms = ms;
    let mut candidate = format!("{}-{suffix}", format_compact(ms));
    while previous.is_some_and(|prev| candidate.as_str() <= prev) {
        ms += 1;
        candidate = format!("{}-{suffix}", format_compact(ms));
    }
    candidate
}

/// The milliseconds since the epoch an id was created at, from its time part.
pub fn created_ms(id: &str) -> Option<u64> {
    parse_compact(id.get(..17)?)
}

/// The inverse of [`format_compact`].
fn parse_compact(time: &str) -> Option<u64> {
    if time.len() != 17 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| time[range].parse::<u64>().ok();
    let (y, mo, d) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (h, mi, s, ms) = (
        field(8..10)?,
        field(10..12)?,
        field(12..14)?,
        field(14..17)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || y < 1970 || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    // Days from civil, the inverse of `civil` below.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms)
}

/// The four hex digits ids issued by `instance` end with.
pub fn instance_suffix(instance: &str) -> String {
    format!("{:04x}", fnv1a(instance.as_bytes()) & 0xffff)
}

/// An id a client proposes for one deploy to several servers, so that every server
/// records it under the same id (and one id rolls them all back): the time `ms` and
/// a suffix that differs from run to run.
pub fn proposed_id(ms: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = format!("{nanos}-{}", std::process::id());
    format!(
        "{}-{:04x}",
        format_compact(ms),
        fnv1a(seed.as_bytes()) & 0xffff
    )
}

/// True for `YYYYMMDDhhmmssSSS-xxxx` with lowercase hex digits.
pub fn is_deployment_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(time, suffix)| {
        parse_compact(time).is_some()
            && suffix.len() == 4
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
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

/// The UTC date, `YYYY-MM-DD`.
pub fn format_date(ms: u64) -> String {
    let (y, mo, d, ..) = civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}")
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
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(1_767_225_600_000), "2026-01-01");
    }

    #[test]
    fn ids_increase_even_within_one_millisecond() {
        let a = deployment_id(1_000, None, "x");
        let b = deployment_id(1_000, Some(&a), "x");
        let c = deployment_id(999, Some(&b), "x");
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn times_read_back() {
        for ms in [0, 951_782_400_000, 1_795_603_591_250, 4_102_444_800_999] {
            assert_eq!(parse_compact(&format_compact(ms)), Some(ms));
        }
        assert_eq!(
            created_ms("20261125104631250-ab12"),
            Some(1_795_603_591_250)
        );
        assert_eq!(created_ms("2026"), None);
    }

    #[test]
    fn an_id_ahead_of_the_clock_does_not_stall_the_next() {
        let ahead = "29990101000000000-abcd";
        let next = deployment_id(1_000, Some(ahead), "x");
        assert!(next.as_str() > ahead && next.starts_with("2999"), "{next}");
    }

    #[test]
    fn ids_are_recognized() {
        assert!(is_deployment_id(&deployment_id(1_000, None, "x")));
        assert!(is_deployment_id(&proposed_id(1_795_603_591_250)));
        for bad in [
            "",
            "20261125104631250",
            "20261125104631250-AB12",
            "2026112510463125-ab12",
            "20261125104631250-ab1",
            "20261325104631250-ab12",
            "20261125994631250-ab12",
            "../../etc-ab12",
        ] {
            assert!(!is_deployment_id(bad), "{bad}");
        }
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
