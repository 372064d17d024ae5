//! haloyd's Prometheus metrics: what the engine counts as it works (deploys by app
//! and result, deploy and phase durations, health-check failures) and what is read
//! when Prometheus scrapes (`scrape.rs`: replicas by state, certificates, HAProxy's
//! per-app traffic), served at `metrics_address` in haloyd.yaml (`serve.rs`).
//!
//! The exposition is Prometheus' text format 0.0.4, the one `promtool check metrics`
//! reads. Every metric is haloyd's own: the registry lives in the engine, not in a
//! process-wide global, so engines in one test process never share counts.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use crate::engine::{Event, Events, Phase};
use crate::store::Status;

pub(crate) mod requests;
mod scrape;
pub mod serve;

pub use requests::{RequestLog, percentile};

pub use scrape::{CONTENT_TYPE, exposition};

/// Deploy and phase durations, in seconds: from a quick local image swap to a slow
/// pull with a long health check.
const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Response times of requests through HAProxy, in seconds: from a static file on
/// loopback to a request near HAProxy's server timeout.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a deploy's health check failure happened during.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckedDuring {
    /// A new replica never became healthy; the deploy failed.
    Deploy,
    /// A serving replica failed and the watchdog took it out to restart it.
    Serving,
}

impl CheckedDuring {
    fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Serving => "serving",
        }
    }
}

/// The counters and histograms the engine updates as it works.
pub struct Metrics {
    registry: Registry,
    deploys: IntCounterVec,
    deploy_seconds: HistogramVec,
    phase_seconds: HistogramVec,
    health_failures: IntCounterVec,
    request_seconds: HistogramVec,
    request_log_garbage: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let deploys = counter(
            &registry,
            "haloy_deploys_total",
            "Deploys that finished, by app and result (succeeded, failed, cancelled, canary).",
            &["app", "result"],
        );
        let deploy_seconds = histogram(
            &registry,
            "haloy_deploy_duration_seconds",
            "How long deploys took from acceptance to their end, by app and result.",
            &["app", "result"],
            DURATION_BUCKETS,
        );
        let phase_seconds = histogram(
            &registry,
            "haloy_deploy_phase_duration_seconds",
            "How long each phase of a deploy took, by app and phase.",
            &["app", "phase"],
            DURATION_BUCKETS,
        );
        let health_failures = counter(
            &registry,
            "haloy_health_check_failures_total",
            "Replicas that failed their health check: during a deploy (never became healthy) or while serving (taken out and restarted by the watchdog).",
            &["app", "during"],
        );
        let request_seconds = histogram(
            &registry,
            "haloy_http_request_duration_seconds",
            "Time of each HTTP request to an app through HAProxy, from its first byte to the last byte of the response (HAProxy's %Ta), from HAProxy's per-request log.",
            &["app"],
            REQUEST_BUCKETS,
        );
        let request_log_garbage = IntCounter::new(
            "haloy_request_log_malformed_total",
            "Datagrams on haloyd's request log socket that were not HAProxy's request lines; they were ignored.",
        )
        .expect("a valid metric");
        registry
            .register(Box::new(request_log_garbage.clone()))
            .expect("a new metric");
        Self {
            registry,
            deploys,
            deploy_seconds,
            phase_seconds,
            health_failures,
            request_seconds,
            request_log_garbage,
        }
    }

    /// Counts a replica that failed its health check.
    pub fn health_check_failed(&self, app: &str, during: CheckedDuring) {
        self.health_failures
            .with_label_values(&[app, during.as_str()])
            .inc();
    }

    /// Counts one request to `app` that took `seconds`.
    pub fn request_answered(&self, app: &str, seconds: f64) {
        self.request_seconds
            .with_label_values(&[app])
            .observe(seconds);
    }

    /// Counts a datagram on the request log that was not a request line.
    pub fn request_log_garbage(&self) {
        self.request_log_garbage.inc();
    }

    /// `app`'s requests so far by [`REQUEST_BUCKETS`], cumulative as Prometheus
    /// counts them, and all of them last (the `+Inf` bucket).
    pub fn request_buckets(&self, app: &str) -> Vec<u64> {
        let Ok(histogram) = self.request_seconds.get_metric_with_label_values(&[app]) else {
            return Vec::new();
        };
        // One snapshot, so the buckets and the total agree.
        let metric = prometheus::core::Metric::metric(&histogram);
        let snapshot = metric.get_histogram();
        let mut counts: Vec<u64> = snapshot
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        counts.push(snapshot.get_sample_count());
        counts
    }

    /// Passes a deploy's events on to `events` and times them: each phase until the
    /// next one (or the end), and the whole deploy from `Accepted` to `Finished`,
    /// which also counts it by result.
    pub fn tap(self: &Arc<Self>, app: &str, events: Events) -> Events {
        let (tx, mut rx) = mpsc::channel(events.max_capacity());
        let metrics = self.clone();
        let app = app.to_string();
        tokio::spawn(async move {
            let mut timing = DeployTiming::default();
            while let Some(event) = rx.recv().await {
                metrics.observe(&app, &mut timing, &event);
                // A client that left does not stop the timing.
                let _ = events.send(event).await;
            }
        });
        tx
    }

    fn observe(&self, app: &str, timing: &mut DeployTiming, event: &Event) {
        let now = Instant::now();
        match event {
            Event::Accepted(_) => timing.started = Some(now),
            Event::Phase(phase, _) => {
                self.end_phase(app, timing, now);
                timing.phase = Some((*phase, now));
            }
            Event::Finished(outcome) => {
                self.end_phase(app, timing, now);
                let result = result_name(outcome.status);
                self.deploys.with_label_values(&[app, result]).inc();
                if let Some(started) = timing.started.take() {
                    self.deploy_seconds
                        .with_label_values(&[app, result])
                        .observe((now - started).as_secs_f64());
                }
            }
            _ => {}
        }
    }

    fn end_phase(&self, app: &str, timing: &mut DeployTiming, now: Instant) {
        if let Some((phase, since)) = timing.phase.take() {
            self.phase_seconds
                .with_label_values(&[app, phase_name(phase)])
                .observe((now - since).as_secs_f64());
        }
    }

    /// The families counted so far.
    fn counted(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

/// Where a deploy is, for its durations.
#[derive(Default)]
struct DeployTiming {
    started: Option<Instant>,
    phase: Option<(Phase, Instant)>,
}

/// A deploy's result as a label value.
fn result_name(status: Status) -> &'static str {
    match status {
        Status::InProgress => "in_progress",
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::Cancelled => "cancelled",
        Status::Canary => "canary",
    }
}

/// A phase's label value.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::ReceivingImage => "receiving_image",
        Phase::PullingImage => "pulling_image",
        Phase::LoadingImage => "loading_image",
        Phase::StoppingOld => "stopping_old",
        Phase::Starting => "starting",
        Phase::HealthChecking => "health_checking",
        Phase::SwitchingTraffic => "switching_traffic",
        Phase::RetiringOld => "retiring_old",
        Phase::Certificates => "certificates",
        Phase::CleaningUp => "cleaning_up",
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // The names and labels are the constants above, valid and distinct: neither
    // construction nor registration can fail.
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("a new metric");
    vec
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    // As for `counter`: constant, valid and distinct names and buckets.
    let vec = HistogramVec::new(opts, labels).expect("a valid metric");
    registry
        .register(Box::new(vec.clone()))
        .expect("a new metric");
    vec
}

#[cfg(test)]
mod tests;
