//! `haloy status`: what runs on each target's server.

use std::io::Write;

use haloy_api::status::{
    CertificateInfo, DeploymentInfo, MaintenanceInfo, StatusReport, TrafficInfo,
};
use haloy_api::status::{DeploymentStatus, Health};
use haloy_controller::client::Client;
use haloy_controller::fanout;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Print one JSON object per target.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    // A target that cannot answer is a line of the listing, not a failed job.
    let results = report::each_target(&targets, fanout::DEFAULT_CONCURRENCY, out, |target, _| {
        let (server, token) = (target.server.clone(), target.token.clone());
        let app = target.plan.spec.name.clone();
        async move {
            Ok(match Client::connect(&server, &token).await {
                Ok(mut client) => client.status(&app).await,
                Err(e) => Err(e),
            })
        }
    })
    .await?;
    let reports = report::all_succeeded(results)?;
    let mut failed = 0;
    for (i, (target, report)) in targets.iter().zip(reports).enumerate() {
        if args.json {
            let value = match &report {
                Ok(report) => json(target.plan.label(), &target.server, report),
                Err(e) => {
                    serde_json::json!({"target": target.plan.label(), "server": target.server, "error": e.to_string()})
                }
            };
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            failed += usize::from(report.is_err());
            continue;
        }
        if i > 0 {
            writeln!(out)?;
        }
        if let Some(name) = &target.plan.target {
            writeln!(out, "target:     {name} ({})", target.server)?;
        }
        match report {
            Ok(report) => print_report(&report, out)?,
            Err(e) if targets.len() == 1 => return Err(e.into()),
            Err(e) => {
                writeln!(out, "error:      {e}")?;
                failed += 1;
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "status failed for {failed} of {} targets",
        targets.len()
    );
    Ok(())
}

fn json(target: &str, server: &str, report: &StatusReport) -> serde_json::Value {
    let deployment = |d: &DeploymentInfo| serde_json::json!({"id": d.id, "image": d.image, "status": d.status.to_string(), "phase": d.phase, "reason": d.reason, "note": d.note});
    serde_json::json!({
        "target": target,
        "server": server,
        "app": report.app,
        "activity": report.activity.as_ref().map(|(what, running_for)| serde_json::json!({"what": what, "running_for_ms": u64::try_from(running_for.as_millis()).unwrap_or(u64::MAX)})),
        "problem": report.problem,
        "maintenance": report.maintenance.as_ref().map(|m| serde_json::json!({"since": m.since.map(unix_seconds), "message": m.message, "custom_page": m.custom_page})),
        "current": report.current.as_ref().map(deployment),
        "latest": report.latest.as_ref().map(deployment),
        "domains": report.domains.iter().map(|d| serde_json::json!({"domain": d.canonical, "aliases": d.aliases})).collect::<Vec<_>>(),
        "replicas": report.replicas.iter().map(|r| serde_json::json!({"name": r.name, "deployment_id": r.deployment_id, "state": r.state, "health": r.health.to_string(), "restarts": r.restarts, "last_failure": r.last_failure})).collect::<Vec<_>>(),
        "traffic": report.traffic.map(|t| serde_json::json!({
            "requests": t.requests,
            "errors": t.errors,
            "request_rate": t.request_rate(),
            "error_rate": t.error_rate(),
            "window_ms": u64::try_from(t.window.as_millis()).unwrap_or(u64::MAX),
            "response_ms_avg": u64::try_from(t.response_avg.as_millis()).unwrap_or(u64::MAX),
            "response_ms_percentiles": t.percentiles.map(|p| serde_json::json!({
                "p50": u64::try_from(p.p50.as_millis()).unwrap_or(u64::MAX),
                "p95": u64::try_from(p.p95.as_millis()).unwrap_or(u64::MAX),
                "p99": u64::try_from(p.p99.as_millis()).unwrap_or(u64::MAX),
            })),
        })),
        "certificates": report.certificates.iter().map(|c| serde_json::json!({
            "domain": c.domain,
            "names": c.names,
            "not_after": c.not_after.map(unix_seconds),
            "last_error": c.last_error,
        })).collect::<Vec<_>>(),
    })
}

fn unix_seconds(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// "valid until 2026-02-01 (41 days)", or "not issued yet".
fn certificate_line(c: &CertificateInfo) -> String {
    let mut line = match c.not_after {
        Some(not_after) => {
            let seconds = unix_seconds(not_after);
            let days_left = not_after
                .duration_since(std::time::SystemTime::now())
                .map(|d| d.as_secs() / 86_400)
                .unwrap_or(0);
            format!(
                "{}: valid until {} ({days_left} days left)",
                c.domain,
                haloy_api::ids::format_date(seconds * 1000)
            )
        }
        None => format!("{}: not issued yet, served on HTTP only", c.domain),
    };
    if !c.last_error.is_empty() {
        line.push_str(&format!("; last error: {}", c.last_error));
    }
    line
}

/// "on, domains answer 503 since 2026-11-30T18:30:00Z (own page): Back at 14:00".
fn maintenance_line(m: &MaintenanceInfo) -> String {
    let mut line = "on, domains answer 503".to_string();
    if let Some(since) = m.since {
        let since = haloy_api::ids::format_rfc3339(unix_seconds(since) * 1000);
        line.push_str(&format!(" since {since}"));
    }
    if m.custom_page {
        line.push_str(" (own page)");
    }
    if !m.message.is_empty() {
        line.push_str(&format!(": {}", m.message));
    }
    line
}

/// "2.50 req/s, 0.50 5xx/s (20.0% errors) over 60 s; 3 ms average response;
/// p50 4 ms, p95 180 ms, p99 1200 ms (estimated)". The percentiles are of the window's
/// requests, estimated from histogram buckets; the average is HAProxy's own.
fn traffic_line(t: &TrafficInfo) -> String {
    let mut average = format!("{} ms average response", t.response_avg.as_millis());
    if let Some(p) = t.percentiles {
        average.push_str(&format!(
            "; p50 {} ms, p95 {} ms, p99 {} ms (estimated)",
            p.p50.as_millis(),
            p.p95.as_millis(),
            p.p99.as_millis()
        ));
    }
    match (t.request_rate(), t.error_rate()) {
        (Some(requests), Some(errors)) => {
            let share = if t.window_requests == 0 {
                0.0
            } else {
                t.window_errors as f64 * 100.0 / t.window_requests as f64
            };
            format!(
                "{requests:.2} req/s, {errors:.2} 5xx/s ({share:.1}% errors) over {} s; {average}",
                t.window.as_secs()
            )
        }
        _ => format!(
            "{} requests, {} 5xx so far; req/s and 5xx/s once haloyd has sampled for a second",
            t.requests, t.errors
        ),
    }
}

fn deployment_line(d: &DeploymentInfo) -> String {
    let mut line = format!("{} {} ({})", d.id, d.status, d.image);
    if d.status == DeploymentStatus::InProgress && !d.phase.is_empty() {
        line.push_str(&format!(", at {}", d.phase));
    }
    if !d.reason.is_empty() {
        line.push_str(&format!(": {}", d.reason));
    } else if !d.note.is_empty() {
        line.push_str(&format!("; {}", d.note));
    }
    line
}

fn print_report(report: &StatusReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "app:        {}", report.app)?;
    if let Some((what, running_for)) = &report.activity {
        writeln!(
            out,
            "now:        {what}, running for {} s",
            running_for.as_secs()
        )?;
    }
    if !report.problem.is_empty() {
        writeln!(out, "problem:    {}", report.problem)?;
    }
    if let Some(m) = &report.maintenance {
        writeln!(out, "maintenance: {}", maintenance_line(m))?;
    }
    match &report.current {
        Some(current) => writeln!(out, "deployment: {}", deployment_line(current))?,
        None => writeln!(out, "deployment: none has succeeded yet")?,
    }
    if let Some(latest) = &report.latest {
        writeln!(out, "latest:     {}", deployment_line(latest))?;
    }
    let domains: Vec<String> = report
        .domains
        .iter()
        .map(|d| {
            if d.aliases.is_empty() {
                d.canonical.clone()
            } else {
                format!("{} (aliases: {})", d.canonical, d.aliases.join(", "))
            }
        })
        .collect();
    writeln!(
        out,
        "domains:    {}",
        if domains.is_empty() {
            "none".to_string()
        } else {
            domains.join(", ")
        }
    )?;
    for c in &report.certificates {
        writeln!(out, "tls:        {}", certificate_line(c))?;
    }
    if let Some(traffic) = &report.traffic {
        writeln!(out, "traffic:    {}", traffic_line(traffic))?;
    }
    let healthy = report
        .replicas
        .iter()
        .filter(|r| r.health == Health::Up)
        .count();
    writeln!(
        out,
        "replicas:   {healthy}/{} healthy",
        report.replicas.len()
    )?;
    let width = report
        .replicas
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(out, "  {:<width$}  {:<12}  HEALTH", "NAME", "STATE")?;
    for r in &report.replicas {
        writeln!(out, "  {:<width$}  {:<12}  {}", r.name, r.state, r.health)?;
        if r.restarts > 0 || !r.last_failure.is_empty() {
            writeln!(
                out,
                "  {:<width$}  restarted {} time(s); last failure: {}",
                "",
                r.restarts,
                r.last_failure.replace('\n', "\n    ")
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn traffic_reads_as_rates_over_the_window_or_counts_until_there_is_one() {
        let mut traffic = TrafficInfo {
            requests: 1_000,
            errors: 40,
            window_requests: 25,
            window_errors: 5,
            window: Duration::from_secs(10),
            response_avg: Duration::from_millis(3),
            percentiles: None,
        };
        assert_eq!(
            traffic_line(&traffic),
            "2.50 req/s, 0.50 5xx/s (20.0% errors) over 10 s; 3 ms average response"
        );
        traffic.percentiles = Some(haloy_api::status::ResponsePercentiles {
            p50: Duration::from_millis(4),
            p95: Duration::from_millis(180),
            p99: Duration::from_millis(1_200),
        });
        assert_eq!(
            traffic_line(&traffic),
            "2.50 req/s, 0.50 5xx/s (20.0% errors) over 10 s; 3 ms average response; p50 4 ms, p95 180 ms, p99 1200 ms (estimated)"
        );
        traffic.window = Duration::ZERO;
        assert_eq!(
            traffic_line(&traffic),
            "1000 requests, 40 5xx so far; req/s and 5xx/s once haloyd has sampled for a second"
        );
    }
}
