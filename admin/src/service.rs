//! `haloyadm start|stop|restart`: run haloyd and HAProxy as host processes.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use haloyd::config::{HaloydConfig, Layout};
use haloyd::process;
use haloyd::proxy::haproxy::Haproxy;
use haloyd::setup::{self, ready};

use super::InstallFlags;
use haloy_cli::context::Env;

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
    let serving = ready::wait_until_serving(&layout, &config, &token, pid, START_TIMEOUT).await?;
    writeln!(
        out,
        "haloyd is running (pid {pid}), API on 127.0.0.1:{}",
        config.api_port
    )?;
    writeln!(
        out,
        "HAProxy {} serves http://{}:{}",
        serving.haproxy, config.bind_address, config.http_port
    )?;
    writeln!(out, "Docker {}", serving.docker)?;
    writeln!(out, "logs: {}", layout.haloyd_log().display())?;
    Ok(())
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
