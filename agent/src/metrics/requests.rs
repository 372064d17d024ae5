//! HAProxy's per-request log, read from a unix datagram socket into the response
//! time histogram, and percentiles estimated from that histogram's buckets.
//!
//! HAProxy sends one datagram per HTTP request (`log <socket> format raw`, with the
//! log-format `haloy-request %b %Ta %ST`: a marker, backend, total active time in ms, status). Datagrams are
//! fire and forget: when haloyd is down, slow or its receive buffer is full, HAProxy
//! drops the line and keeps serving. haloyd is never in the data path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixDatagram;

use super::{Metrics, REQUEST_BUCKETS};

/// Longer datagrams are not HAProxy's request lines (a backend name is at most 32
/// characters, two numbers follow); they are cut to this and counted as garbage.
const MAX_DATAGRAM: usize = 256;

/// Binds the socket (replacing a stale one) and reads it until dropped.
pub struct RequestLog {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl RequestLog {
    /// Listens at `path`, counting each app's requests into `metrics`. The socket is
    /// only for the user HAProxy runs as, the same as haloyd's (or root in the
    /// containers): nobody else can make up response times.
    pub fn start(path: &Path, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let task = tokio::spawn(async move {
            // One datagram at a time into a fixed buffer: memory stays bounded
            // whatever arrives, and the kernel's buffer is the only queue.
            let mut buffer = [0u8; MAX_DATAGRAM];
            loop {
                let Ok(len) = socket.recv(&mut buffer).await else {
                    continue;
                };
                match parse(&buffer[..len]) {
                    Line::Request { app, seconds } => metrics.request_answered(app, seconds),
                    Line::NotAnApp => {}
                    Line::Garbage => {
                        metrics.request_log_garbage();
                        let text = String::from_utf8_lossy(&buffer[..len.min(80)]);
                        tracing::debug!(
                            "request log: ignored a datagram that is not a request line: {text:?}"
                        );
                    }
                }
            }
        });
        Ok(Self {
            path: path.to_path_buf(),
            task,
        })
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What one datagram said.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    /// A request to an app's backend that took `seconds`.
    Request { app: &'a str, seconds: f64 },
    /// A request answered by HAProxy itself (unknown host, ACME, maintenance, the
    /// API), one aborted before it had a time (`%Ta` of -1), or one of HAProxy's
    /// own notices to every log of a proxy ("Proxy app_web stopped (...).",
    /// "Server app_web/x is UP", ...), which do not carry [`MARKER`].
    NotAnApp,
    /// A line with [`MARKER`] that is not `<backend> <ms> <status>` after it, or
    /// bytes that are not text.
    Garbage,
}

/// The log-format's first word: request lines begin with it, HAProxy's own
/// messages to the same log never do.
pub(crate) const MARKER: &str = "haloy-request";

fn parse(datagram: &[u8]) -> Line<'_> {
    let Ok(text) = std::str::from_utf8(datagram) else {
        return Line::Garbage;
    };
    let Some(rest) = text.strip_prefix(MARKER) else {
        return Line::NotAnApp;
    };
    let mut fields = rest.trim_end_matches(['\n', '\0']).split(' ');
    let (Some(""), Some(backend), Some(ms), Some(status), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Line::Garbage;
    };
    let (Ok(ms), Ok(_status)) = (ms.parse::<i64>(), status.parse::<i16>()) else {
        return Line::Garbage;
    };
    let Some(app) = backend.strip_prefix("app_") else {
        return Line::NotAnApp;
    };
    if haloy_api::rules::app_name(app).is_err() {
        return Line::Garbage;
    }
    if ms < 0 {
        return Line::NotAnApp;
    }
    Line::Request {
        app,
        seconds: ms as f64 / 1000.0,
    }
}

/// The `q` quantile (0 < q ≤ 1) of the requests counted by `window`: cumulative
/// counts per [`REQUEST_BUCKETS`] bound and the total last, as
/// [`Metrics::request_buckets`] answers them (differences of two such answers
/// work). An estimate: linear within the bucket the quantile falls in, as
/// Prometheus' `histogram_quantile` does; beyond the last bound it is that bound.
/// `None` without requests.
pub fn percentile(window: &[u64], q: f64) -> Option<f64> {
    let total = *window.last()?;
    if total == 0 || window.len() != REQUEST_BUCKETS.len() + 1 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    let mut lower = 0.0;
    for (&count, &upper) in window.iter().zip(REQUEST_BUCKETS) {
        if count as f64 >= rank && count > below {
            let share = (rank - below as f64) / (count - below) as f64;
            return Some(lower + (upper - lower) * share.clamp(0.0, 1.0));
        }
        below = count;
        lower = upper;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_read_and_anything_else_is_garbage() {
        assert_eq!(
            parse(b"haloy-request app_web 1203 200\n"),
            Line::Request {
                app: "web",
                seconds: 1.203
            }
        );
        assert_eq!(
            parse(b"haloy-request haloy_unknown_host 0 404\n"),
            Line::NotAnApp
        );
        assert_eq!(parse(b"haloy-request app_web -1 -1\n"), Line::NotAnApp);
        assert_eq!(parse(b"haloy-request app_web -1 502\n"), Line::NotAnApp);
        // HAProxy's own notices, whatever they say, carry no marker.
        for notice in [
            &b"Proxy app_web stopped (cumulated conns: FE: 0, BE: 1).\n"[..],
            b"Server app_web/web-1 is UP/READY (leaving forced maintenance).\n",
            b"app_web 12 200\n",
            b"",
        ] {
            assert_eq!(parse(notice), Line::NotAnApp, "{notice:?}");
        }
        for garbage in [
            &b"haloy-request"[..],
            b"haloy-request hello",
            b"haloy-request app_web 12",
            b"haloy-request app_web 12 200 extra",
            b"haloy-request app_web twelve 200",
            b"haloy-request app_../x 12 200",
            b"haloy-requestapp_web 12 200",
            b"\xff\xfe 1 200",
        ] {
            assert_eq!(parse(garbage), Line::Garbage, "{garbage:?}");
        }
    }

    /// Cumulative counts for `per_bucket` requests in each bucket (the last one
    /// beyond every bound).
    fn cumulative(per_bucket: &[u64]) -> Vec<u64> {
        per_bucket
            .iter()
            .scan(0, |sum, n| {
                *sum += n;
                Some(*sum)
            })
            .collect()
    }

    #[test]
    fn percentiles_are_linear_within_the_bucket_they_fall_in() {
        // 90 requests in (0.005, 0.01], 10 in (1, 2.5].
        let mut per_bucket = vec![0u64; REQUEST_BUCKETS.len() + 1];
        per_bucket[1] = 90;
        per_bucket[8] = 10;
        let window = cumulative(&per_bucket);
        let p50 = percentile(&window, 0.5).unwrap();
        assert!((p50 - (0.005 + 0.005 * 50.0 / 90.0)).abs() < 1e-9, "{p50}");
        let p95 = percentile(&window, 0.95).unwrap();
        assert!((p95 - 1.75).abs() < 1e-9, "{p95}");
        assert!(percentile(&window, 0.99).unwrap() >= 1.0);
        // Beyond the last bound the estimate is that bound.
        let mut slow = vec![0u64; REQUEST_BUCKETS.len() + 1];
        slow[REQUEST_BUCKETS.len()] = 3;
        assert_eq!(percentile(&cumulative(&slow), 0.99), Some(10.0));
        assert_eq!(percentile(&vec![0; REQUEST_BUCKETS.len() + 1], 0.5), None);
        assert_eq!(percentile(&[], 0.5), None);
    }
}
