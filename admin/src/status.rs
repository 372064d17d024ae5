//! `haloyadm status`: haloyd's and HAProxy's containers (image, version, uptime,
//! restarts), and where the API answers.

use std::io::Write;

use haloyd::config::RunAs;
use haloyd::setup::{self, ready};

use super::InstallFlags;
use crate::containerised::container_name;
use crate::containers::{Engine, Role, VERSION_LABEL};
use crate::service::load;
use haloy_cli::context::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub install: InstallFlags,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.install, env)?;
    let token = setup::read_token(&layout)?;
    if config.run_as == RunAs::Docker {
        let engine = Engine::connect().await?;
        for (role, what) in [(Role::Haloyd, "haloyd"), (Role::Haproxy, "HAProxy")] {
            let found = engine.find(&config, role).await?;
            if found.is_empty() {
                writeln!(out, "{what}: no container; start it with `haloyadm start`")?;
            }
            for summary in found {
                let id = summary.id.clone().unwrap_or_default();
                let inspected = engine.docker.inspect_container(&id, None).await?;
                let state = inspected.state.clone().unwrap_or_default();
                let status = state
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into());
                let uptime = state
                    .started_at
                    .as_deref()
                    .and_then(since)
                    .filter(|_| state.running == Some(true))
                    .map(|secs| format!(", up {}", duration(secs)))
                    .unwrap_or_default();
                let version = summary
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(VERSION_LABEL))
                    .cloned()
                    .unwrap_or_default();
                // HAProxy's own version is on the API line: its image names it.
                let version = match role {
                    Role::Haloyd => format!(" (version {version})"),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{what}: container {} {status}{uptime}, restarts {}, image {}{version}",
                    container_name(&summary),
                    inspected.restart_count.unwrap_or_default(),
                    summary.image.unwrap_or_default(),
                )?;
            }
        }
    } else {
        writeln!(
            out,
            "haloyd and HAProxy run as host processes (run_as: processes); haloyd's log: {}",
            layout.haloyd_log().display()
        )?;
    }
    match ready::ask_version(config.api_port, &token).await {
        Ok(serving) => {
            writeln!(
                out,
                "API: 127.0.0.1:{} answers (haloyd {}, HAProxy {}, Docker {})",
                config.api_port, serving.haloyd, serving.haproxy, serving.docker
            )?;
        }
        Err(e) => writeln!(
            out,
            "API: 127.0.0.1:{} does not answer: {e}",
            config.api_port
        )?,
    }
    if let Some(port) = config.api_tls_port {
        writeln!(out, "API over TLS: {}:{port}", config.bind_address)?;
    }
    if let Some(domain) = &config.api_domain {
        writeln!(out, "API domain: https://{domain}{}", config.https_suffix())?;
    }
    Ok(())
}

/// Seconds since an RFC 3339 time as Docker writes it (`2024-05-01T10:00:00.123Z`).
fn since(rfc3339: &str) -> Option<u64> {
    let started = parse_utc(rfc3339)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    now.checked_sub(started)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
fn parse_utc(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_times_read_as_epoch_seconds() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc("2024-05-01T10:00:00.123456789Z"),
            Some(1_714_557_600)
        );
        assert_eq!(parse_utc("garbage"), None);
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3600), "60m");
        assert_eq!(duration(90_000), "25h");
    }
}
