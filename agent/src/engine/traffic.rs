//! Request and error rates per app, from HAProxy's counters sampled over time: the
//! numbers `haloy status` shows and the metrics' rate gauges. HAProxy itself only
//! keeps rates over the last second; haloyd keeps samples of its counters for a
//! minute and divides the difference.

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

/// One reading of an app's counters: (ms, requests, errors).
type Sample = (u64, u64, u64);

/// Samples per app, oldest first.
#[derive(Default)]
pub(super) struct Meter {
    samples: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl Meter {
    /// Records `read` at `now_ms` and answers each app's traffic over the window.
    fn record(&self, now_ms: u64, read: Vec<BackendTraffic>) -> Vec<AppTraffic> {
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
                    .is_some_and(|&(_, r, e)| r > now.requests || e > now.errors)
                {
                    kept.clear();
                }
                kept.push_back((now_ms, now.requests, now.errors));
                while kept.len() > 2 && kept[1].0 + window_ms <= now_ms {
                    kept.pop_front();
                }
                let (since, requests, errors) = kept[0];
                let window = Duration::from_millis(now_ms.saturating_sub(since));
                if window < Duration::from_secs(1) {
                    return AppTraffic {
                        now,
                        ..AppTraffic::default()
                    };
                }
                AppTraffic {
                    window_requests: now.requests - requests,
                    window_errors: now.errors - errors,
                    window,
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
        Ok(self.traffic_meter.record(self.clock.now_ms(), read))
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

    #[test]
    fn rates_are_the_difference_over_the_window_and_start_again_after_a_reload() {
        let meter = Meter::default();
        let first = meter.record(1_000, read("web", 100, 10));
        assert_eq!(
            (first[0].window, first[0].request_rate()),
            (Duration::ZERO, 0.0)
        );
        let later = meter.record(11_000, read("web", 300, 30));
        assert_eq!(later[0].window, Duration::from_secs(10));
        assert_eq!(
            (later[0].request_rate(), later[0].error_rate()),
            (20.0, 2.0)
        );
        // Older samples leave the window.
        meter.record(41_000, read("web", 600, 30));
        let much_later = meter.record(101_000, read("web", 1_200, 30));
        assert_eq!(much_later[0].window, Duration::from_secs(60));
        assert_eq!(much_later[0].window_requests, 600);
        assert_eq!(much_later[0].error_rate(), 0.0);
        // A reload started the counts again: no negative rates, a new window.
        let reloaded = meter.record(106_000, read("web", 5, 0));
        assert_eq!(
            (reloaded[0].window, reloaded[0].now.requests),
            (Duration::ZERO, 5)
        );
        // An app without a backend any more is forgotten.
        meter.record(107_000, read("api", 1, 0));
        assert!(!meter.samples.lock().unwrap().contains_key("web"));
    }
}
