//! `haloyadm start|stop|restart`: run haloyd and HAProxy as host processes.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use haloy_controller::client::Client;
use haloyd::config::{HaloydConfig, Layout};
use haloyd::process;
use haloyd::proxy::haproxy::Haproxy;
use haloyd::setup;

use super::InstallFlags;
use crate::context::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub install: InstallFlags,
    /// Log at debug level (haloyd.log in the data directory).
    #[arg(long)]
    pub debug: bool,
    /// Accepted for compatibility: haloyd always runs from the binary installed next
    /// to haloyadm.
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub install: InstallFlags,
}

/// How long `start` waits for haloyd and HAProxy to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn load(install: &InstallFlags, env: &Env) -> anyhow::Result<(Layout, HaloydConfig)> {
    let home = env.vars.get("HOME").map(std::path::Path::new);
    let layout = setup::find_layout(install.local_install, home)?;
    let config = HaloydConfig::load(&layout.config_file())?;
    Ok((layout, config))
}

pub async fn start(args: &StartArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.install, env)?;
    let token = setup::read_token(&layout)?;
    let pid = match process::running_pid(&layout.haloyd_pid_file(), "haloyd") {
        Some(pid) => {
            writeln!(out, "haloyd is already running (pid {pid})")?;
            pid
        }
        None => process::spawn_haloyd(&layout, args.debug)?,
    };
    let server = format!("127.0.0.1:{}", config.api_port);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last_error: String;
    loop {
        if !process::exists(pid) {
            anyhow::bail!(
                "haloyd exited during start-up; the end of {}:\n{}",
                layout.haloyd_log().display(),
                process::log_tail(&layout.haloyd_log(), 20)
            );
        }
        match Client::connect(&server, &token).await {
            Ok(mut client) => match client.version().await {
                Ok((_, haproxy, docker)) if !haproxy.is_empty() => {
                    writeln!(out, "haloyd is running (pid {pid}), API on {server}")?;
                    writeln!(
                        out,
                        "HAProxy {haproxy} serves http://{}:{}",
                        config.bind_address, config.http_port
                    )?;
                    writeln!(out, "Docker {docker}")?;
                    writeln!(out, "logs: {}", layout.haloyd_log().display())?;
                    return Ok(());
                }
                Ok(_) => last_error = "HAProxy does not answer yet".into(),
                Err(e) => last_error = e.to_string(),
            },
            Err(e) => last_error = e.to_string(),
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "haloyd did not answer within {} s ({last_error}); see {}",
                START_TIMEOUT.as_secs(),
                layout.haloyd_log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn stop(args: &StopArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.install, env)?;
    match process::running_pid(&layout.haloyd_pid_file(), "haloyd") {
        Some(pid) => {
            process::terminate(pid, "haloyd", Duration::from_secs(20))?;
            writeln!(out, "haloyd stopped")?;
        }
        None => writeln!(out, "haloyd was not running")?,
    }
    let _ = std::fs::remove_file(layout.haloyd_pid_file());
    Haproxy::new(haloyd::daemon::haproxy_settings(&layout, &config))?
        .stop()
        .await
        .context("cannot stop HAProxy")?;
    writeln!(
        out,
        "HAProxy stopped; app containers keep running and come back into service with `haloyadm start`"
    )?;
    Ok(())
}

pub async fn restart(args: &StartArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    stop(
        &StopArgs {
            install: args.install.clone(),
        },
        env,
        out,
    )
    .await?;
    start(args, env, out).await
}
