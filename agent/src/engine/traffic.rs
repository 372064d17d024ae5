//! Request and error rates per app, from HAProxy's counters sampled over time: the
//! numbers `haloy status` shows and the metrics' rate gauges. HAProxy itself only
//! keeps rates over the last second; haloyd keeps samples of its counters for a
//! minute and divides the difference. Response-time percentiles come the same way
//! from haloyd's own histogram of HAProxy's request log: its bucket counts are
//! sampled with the counters, and the window's percentiles are estimated from the
//! difference (linear within a bucket).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Engine;
use crate::proxy::{BackendTraffic, ProxyError};

/// How far back rates look.
pub const WINDOW: Duration = Duration::from_secs(60);

/// How often the sampler reads HAProxy's counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// An app's traffic now and over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppTraffic {
    /// HAProxy's counters and response times as read now.
    pub now: BackendTraffic,
    /// Requests and 5xx responses over `window`; `window` is zero until two samples
    /// at least a second apart exist.
    pub window_requests: u64,
    pub window_errors: u64,
    pub window: Duration,
    /// Estimated from the histogram's buckets over `window`; `None` without a
    /// window or without logged requests in it.
    pub percentiles: Option<Percentiles>,
}

/// Response times (HAProxy's `%Ta`) over a window, estimated from bucket counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

impl Percentiles {
    /// From the difference of two [`crate::metrics::Metrics::request_buckets`].
    fn estimate(window: &[u64]) -> Option<Self> {
        let at = |q| crate::metrics::percentile(window, q).map(Duration::from_secs_f64);
        Some(Self {
            p50: at(0.5)?,
            p95: at(0.95)?,
            p99: at(0.99)?,
        })
    }
}

impl AppTraffic {
    /// Requests per second over the window (0 without one).
    pub fn request_rate(&self) -> f64 {
        per_second(self.window_requests, self.window)
    }

    /// 5xx responses per second over the window.
    pub fn error_rate(&self) -> f64 {
        per_second(self.window_errors, self.window)
    }
}

fn per_second(count: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        count as f64 / window.as_secs_f64()
    }
}

/// One reading of an app's counters at a time in ms, and its response-time
/// histogram's cumulative bucket counts then.
#[derive(Debug, Clone, Default)]
struct Sample {
    at_ms: u64,
    requests: u64,
    errors: u64,
    buckets: Vec<u64>,
}

/// Samples per app, oldest first.
#[derive(Default)]
pub(super) struct Meter {
    samples: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl Meter {
    /// Records `read` and each app's `buckets` at `now_ms`, and answers each app's
    /// traffic over the window.
    fn record(
        &self,
        now_ms: u64,
        read: Vec<BackendTraffic>,
        buckets: impl Fn(&str) -> Vec<u64>,
    ) -> Vec<AppTraffic> {
        // A panic while holding this lock leaves the samples usable.
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.retain(|app, _| read.iter().any(|t| &t.app == app));
        let window_ms = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        read.into_iter()
            .map(|now| {
                let kept = samples.entry(now.app.clone()).or_default();
                // Counts that went down belong to a new HAProxy worker (a reload).
                if kept
                    .back()
                    .is_some_and(|s| s.requests > now.requests || s.errors > now.errors)
                {
                    kept.clear();
                }
                kept.push_back(Sample {
                    at_ms: now_ms,
                    requests: now.requests,
                    errors: now.errors,
                    buckets: buckets(&now.app),
                });
                while kept.len() > 2 && kept[1].at_ms + window_ms <= now_ms {
                    kept.pop_front();
                }
                let first = &kept[0];
                let last = &kept[kept.len() - 1];
                let window = Duration::from_millis(now_ms.saturating_sub(first.at_ms));
                if window < Duration::from_secs(1) {
                    return AppTraffic {
                        now,
                        ..AppTraffic::default()
                    };
                }
                // haloyd's histogram only grows while haloyd runs, and so do the
                // samples; a reload of HAProxy does not touch it.
                let in_window: Vec<u64> = last
                    .buckets
                    .iter()
                    .zip(first.buckets.iter().chain(std::iter::repeat(&0)))
                    .map(|(now, then)| now.saturating_sub(*then))
                    .collect();
                AppTraffic {
                    window_requests: now.requests - first.requests,
                    window_errors: now.errors - first.errors,
                    window,
                    percentiles: Percentiles::estimate(&in_window),
                    now,
                }
            })
            .collect()
    }
}

impl Engine {
    /// Reads every app's traffic from the proxy now, and its rates over the window.
    pub async fn traffic(&self) -> Result<Vec<AppTraffic>, ProxyError> {
        let read = self.proxy.traffic().await?;
        let metrics = &self.metrics;
        Ok(self.traffic_meter.record(self.clock.now_ms(), read, |app| {
            metrics.request_buckets(app)
        }))
    }

    /// Samples the traffic every [`SAMPLE_EVERY`], so rates are there when asked for.
    pub fn spawn_traffic_sampler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                // HAProxy may be restarting; the next sample will do.
                let _ = engine.traffic().await;
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(app: &str, requests: u64, errors: u64) -> Vec<BackendTraffic> {
        vec![BackendTraffic {
            app: app.into(),
            requests,
            errors,
            ..BackendTraffic::default()
        }]
    }

    fn no_buckets(_: &str) -> Vec<u64> {
        Vec::new()
    }

    #[test]
    fn percentiles_come_from_the_buckets_counted_within_the_window() {
        let meter = Meter::default();
        let buckets = |counts: Vec<u64>| move |_: &str| counts.clone();
        let bounds = crate::metrics::REQUEST_BUCKETS.len();
        // 5 requests before the window's first sample, then 10 of about 1.5 s.
        let before = [vec![5; bounds], vec![5]].concat();
        let after = [vec![5; 8], vec![15; bounds - 8], vec![15]].concat();
        let first = meter.record(1_000, read("web", 5, 0), buckets(before));
        assert_eq!(first[0].percentiles, None);
        let later = meter.record(6_000, read("web", 15, 0), buckets(after));
        let p = later[0].percentiles.expect("percentiles");
        assert!(p.p50 >= Duration::from_secs(1) && p.p50 <= p.p95, "{p:?}");
        assert!(p.p99 <= Duration::from_millis(2_500), "{p:?}");
    }

    #[test]
    fn rates_are_the_difference_over_the_window_and_start_again_after_a_reload() {
        let meter = Meter::default();
        let first = meter.record(1_000, read("web", 100, 10), no_buckets);
        assert_eq!(
            (first[0].window, first[0].request_rate()),
            (Duration::ZERO, 0.0)
        );
        let later = meter.record(11_000, read("web", 300, 30), no_buckets);
        assert_eq!(later[0].window, Duration::from_secs(10));
        assert_eq!(
            (later[0].request_rate(), later[0].error_rate()),
            (20.0, 2.0)
        );
        // Older samples leave the window.
        meter.record(41_000, read("web", 600, 30), no_buckets);
        let much_later = meter.record(101_000, read("web", 1_200, 30), no_buckets);
        assert_eq!(much_later[0].window, Duration::from_secs(60));
        assert_eq!(much_later[0].window_requests, 600);
        assert_eq!(much_later[0].error_rate(), 0.0);
        // A reload started the counts again: no negative rates, a new window.
        let reloaded = meter.record(106_000, read("web", 5, 0), no_buckets);
        assert_eq!(
            (reloaded[0].window, reloaded[0].now.requests),
            (Duration::ZERO, 5)
        );
        // An app without a backend any more is forgotten.
        meter.record(107_000, read("api", 1, 0), no_buckets);
        assert!(!meter.samples.lock().unwrap().contains_key("web"));
    }
}
