//! The families read when Prometheus scrapes: replicas by state (Docker and
//! HAProxy), certificates (expiry, failed attempts) and each app's traffic from
//! HAProxy's statistics (requests, 5xx, rates, response times).
//!
//! HAProxy 2.6's statistics carry averages over the last 1,024 requests and maxima,
//! not percentiles; those are exposed here, named for what they are. Percentiles
//! come from `haloy_http_request_duration_seconds`, the histogram haloyd fills from
//! HAProxy's request log (`requests.rs`).

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, TextEncoder};

use crate::engine::Engine;
use crate::runtime::{ContainerState, labels};

/// The content type of Prometheus' text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric, counted and read now, in Prometheus' text format.
pub async fn exposition(engine: &Engine) -> String {
    let mut families = engine.metrics().counted();
    families.extend(replicas(engine).await);
    families.extend(certificates(engine));
    families.extend(traffic(engine).await);
    families.retain(|f| !f.get_metric().is_empty());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    // The families are well formed (built here from valid names), so encoding into
    // a String cannot fail; an empty answer would show it did.
    TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default()
}

/// `haloy_replicas{app,state}`: Docker's state for containers that do not run,
/// HAProxy's view (up, down, drain, maint, as `haloy status` words it) or
/// `unrouted` for those that do.
async fn replicas(engine: &Engine) -> Vec<MetricFamily> {
    let gauge = int_gauge(
        "haloy_replicas",
        "Replicas by app and state: HAProxy's view of running ones (up, down, drain, maint) or unrouted, Docker's state of the others (exited, created, ...).",
        &["app", "state"],
    );
    let instance = engine.settings().instance.clone();
    let Ok(containers) = engine
        .runtime()
        .list(&[(labels::INSTANCE, instance.as_str())])
        .await
    else {
        return Vec::new();
    };
    let mut by_app: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for container in &containers {
        if let Some(app) = container.labels.get(labels::APP) {
            by_app.entry(app).or_default().push(container);
        }
    }
    for (app, containers) in by_app {
        let servers = engine.proxy().servers(app).await.unwrap_or_default();
        for container in containers {
            let state = if container.state == ContainerState::Running {
                servers
                    .iter()
                    .find(|s| s.name == container.name)
                    .map_or_else(|| "unrouted".to_string(), |s| s.state.clone())
            } else {
                container.state.as_str()
            };
            gauge.with_label_values(&[app, state.as_str()]).inc();
        }
    }
    gauge.collect()
}

/// Expiry of issued certificates and failed attempts to obtain them, by domain.
fn certificates(engine: &Engine) -> Vec<MetricFamily> {
    let Some(certificates) = engine.certificates() else {
        return Vec::new();
    };
    let expiry = gauge(
        "haloy_certificate_expiry_timestamp_seconds",
        "When each domain's served certificate expires, in seconds since the Unix epoch.",
        &["domain"],
    );
    let failures = counter(
        "haloy_certificate_renewal_failures_total",
        "Failed attempts to obtain or renew each domain's certificate since haloyd started.",
        &["domain"],
    );
    for status in certificates.all() {
        let domain = status.domain.as_str();
        failures
            .with_label_values(&[domain])
            .inc_by(status.failed_attempts);
        if let Some(seconds) = status
            .not_after
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            expiry
                .with_label_values(&[domain])
                .set(seconds.as_secs_f64());
        }
    }
    [expiry.collect(), failures.collect()].concat()
}

/// Each app's traffic through HAProxy, and whether HAProxy answered at all.
async fn traffic(engine: &Engine) -> Vec<MetricFamily> {
    let up = int_gauge(
        "haloy_haproxy_up",
        "1 when HAProxy's statistics could be read for this scrape, 0 when not.",
        &[],
    );
    let requests = counter(
        "haloy_app_requests_total",
        "HTTP requests HAProxy passed to each app's backend (HAProxy's req_tot; a reload of HAProxy starts it again).",
        &["app"],
    );
    let errors = counter(
        "haloy_app_responses_5xx_total",
        "Responses with a 5xx status to each app's requests, its replicas' or HAProxy's own (hrsp_5xx).",
        &["app"],
    );
    let request_rate = gauge(
        "haloy_app_request_rate",
        "Requests per second to each app over haloyd's last minute of samples (less just after a start or a reload of HAProxy), as `haloy status` shows it.",
        &["app"],
    );
    let error_rate = gauge(
        "haloy_app_error_rate",
        "5xx responses per second to each app over haloyd's last minute of samples (less just after a start or a reload of HAProxy), as `haloy status` shows it.",
        &["app"],
    );
    let response_avg = gauge(
        "haloy_app_response_time_average_seconds",
        "Average time to the response headers over each app's last 1,024 requests (HAProxy's rtime; percentiles: haloy_http_request_duration_seconds).",
        &["app"],
    );
    let response_max = gauge(
        "haloy_app_response_time_max_seconds",
        "Longest time to the response headers of each app's requests (HAProxy's rtime_max).",
        &["app"],
    );
    let total_avg = gauge(
        "haloy_app_total_time_average_seconds",
        "Average time of whole requests over each app's last 1,024 requests (HAProxy's ttime).",
        &["app"],
    );
    match engine.traffic().await {
        Ok(apps) => {
            up.with_label_values::<&str>(&[]).set(1);
            for app in apps {
                let name = [app.now.app.as_str()];
                requests.with_label_values(&name).inc_by(app.now.requests);
                errors.with_label_values(&name).inc_by(app.now.errors);
                request_rate
                    .with_label_values(&name)
                    .set(app.request_rate());
                error_rate.with_label_values(&name).set(app.error_rate());
                let seconds = |ms: u64| ms as f64 / 1000.0;
                response_avg
                    .with_label_values(&name)
                    .set(seconds(app.now.response_ms_avg));
                response_max
                    .with_label_values(&name)
                    .set(seconds(app.now.response_ms_max));
                total_avg
                    .with_label_values(&name)
                    .set(seconds(app.now.total_ms_avg));
            }
        }
        Err(e) => {
            tracing::debug!("metrics: cannot read HAProxy's statistics: {e}");
            up.with_label_values::<&str>(&[]).set(0);
        }
    }
    let mut families = up.collect();
    families.extend(requests.collect());
    families.extend(errors.collect());
    for gauge in [
        request_rate,
        error_rate,
        response_avg,
        response_max,
        total_avg,
    ] {
        families.extend(gauge.collect());
    }
    families
}

// The constructors below take the constant names and labels of this file, which
// are valid: construction cannot fail.

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

fn int_gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric")
}
