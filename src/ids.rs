//! Deployment ids and timestamps, in UTC.
//!
//! A deployment id is the UTC time it was created, `YYYYMMDDhhmmssSSS`, then `-` and
//! four hex digits derived from the haloyd instance: ids sort by time as plain strings,
//! are readable, fit in container and image tag names, and two servers sharing one
//! Docker never give containers the same name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The last millisecond an id's four year digits can name (9999-12-31T23:59:59.999Z).
const LAST_MS: u64 = 253_402_300_799_999;

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
    // Past the last nameable millisecond there is no later id: give up rather than spin.
    while previous.is_some_and(|prev| candidate.as_str() <= prev) && ms < LAST_MS {
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
fn parse_compact(compact: &str) -> Option<u64> {
    if compact.len() != 17 || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| compact[range].parse::<u16>().ok();
    let date = Date::from_calendar_date(
        i32::from(field(0..4)?),
        Month::try_from(u8::try_from(field(4..6)?).ok()?).ok()?,
        u8::try_from(field(6..8)?).ok()?,
    )
    .ok()?;
    let clock = Time::from_hms_milli(
        u8::try_from(field(8..10)?).ok()?,
        u8::try_from(field(10..12)?).ok()?,
        u8::try_from(field(12..14)?).ok()?,
        field(14..17)?,
    )
    .ok()?;
    let nanos = PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp_nanos();
    // Before 1970 is not a time haloyd ever issued an id at.
    u64::try_from(nanos / 1_000_000).ok()
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
    let t = utc(ms);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The UTC date, `YYYY-MM-DD`.
pub fn format_date(ms: u64) -> String {
    let t = utc(ms);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// RFC 3339 in UTC, second precision, e.g. `2026-11-25T10:46:31Z`.
pub fn format_rfc3339(ms: u64) -> String {
    let t = utc(ms);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_date(ms),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The UTC instant `ms` after the epoch; times past what four year digits hold read
/// as the last millisecond they do.
fn utc(ms: u64) -> OffsetDateTime {
    let ms = ms.min(LAST_MS);
    // In range by the clamp above, so the fallback is never taken.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(PrimitiveDateTime::MAX.assume_utc())
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
    fn the_end_of_four_year_digits_neither_hangs_nor_overflows() {
        let last = "99991231235959999-abcd";
        assert_eq!(created_ms(last), Some(LAST_MS));
        assert_eq!(format_compact(u64::MAX), "99991231235959999");
        assert!(deployment_id(1_000, Some(last), "x").starts_with("99991231235959999-"));
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
            // November has 30 days.
            "20261131104631250-ab12",
            "19691231235959999-ab12",
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
