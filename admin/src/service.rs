//! `haloyadm start|stop|restart|upgrade`: haloyd and HAProxy as Docker containers
//! (`run_as: docker`, what `init` sets up), or as host processes (`run_as:
//! processes`, for test suites running many haloyd instances).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use haloyd::config::{HaloydConfig, Layout, RunAs};
use haloyd::process;
use haloyd::proxy::haproxy::Haproxy;
use haloyd::setup::{self, ready};

use super::InstallFlags;
use crate::containerised::{self, Install};
use crate::containers::{Engine, Role};
use haloy_cli::context::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub install: InstallFlags,
    /// Log at debug level (haloyd's container log, or haloyd.log for host processes).
    #[arg(long)]
    pub debug: bool,
    /// Development: build haloyd's image from --haloyd-binary (default: the haloyd
    /// beside haloyadm, as without --dev).
    #[arg(long)]
    pub dev: bool,
    /// The haloyd binary to build haloyd's image from (default: the one installed
    /// beside haloyadm).
    #[arg(long, value_name = "PATH")]
    pub haloyd_binary: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub start: StartArgs,
    /// Also replace HAProxy, with a new container beside the old one (no request is
    /// refused); without it only haloyd restarts and HAProxy keeps serving.
    #[arg(long)]
    pub haproxy: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub install: InstallFlags,
}

/// How long `start` waits for haloyd and HAProxy to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn load(install: &InstallFlags, env: &Env) -> anyhow::Result<(Layout, HaloydConfig)> {
    let home = env.vars.get("HOME").map(std::path::Path::new);
    let layout = setup::find_layout(install.local_install, home)?;
    let config = HaloydConfig::load(&layout.config_file())?;
    Ok((layout, config))
}

pub async fn start(args: &StartArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.install, env)?;
    let token = setup::read_token(&layout)?;
    if config.run_as == RunAs::Processes {
        return start_processes(args, &layout, &config, &token, out).await;
    }
    let binary = containerised::haloyd_binary(args.haloyd_binary.as_deref())?;
    let engine = Engine::connect().await?;
    let install = Install {
        layout: &layout,
        config: &config,
        engine: &engine,
    };
    writeln!(out, "{}", install.start_haproxy().await?)?;
    let serving = install
        .start_haloyd(&binary, &token, args.debug, out)
        .await?;
    report(&config, &serving, out)?;
    writeln!(
        out,
        "Docker restarts both after a crash or a reboot; `haloyadm status` shows them"
    )?;
    Ok(())
}

fn report(
    config: &HaloydConfig,
    serving: &ready::Serving,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "haloyd {} serves the API on 127.0.0.1:{}",
        serving.haloyd, config.api_port
    )?;
    report_proxy_and_docker(config, serving, out)
}

/// What serves beside haloyd, once it answers.
fn report_proxy_and_docker(
    config: &HaloydConfig,
    serving: &ready::Serving,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "HAProxy {} serves http://{}:{}",
        serving.haproxy, config.bind_address, config.http_port
    )?;
    writeln!(out, "Docker {}", serving.docker)?;
    Ok(())
}

async fn start_processes(
    args: &StartArgs,
    layout: &Layout,
    config: &HaloydConfig,
    token: &haloy_api::spec::Secret,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let pid = match process::running_pid(&layout.haloyd_pid_file(), "haloyd") {
        Some(pid) => {
            writeln!(out, "haloyd is already running (pid {pid})")?;
            pid
        }
        None => process::spawn_haloyd(layout, args.debug)?,
    };
    let serving = ready::wait_until_serving(layout, config, token, pid, START_TIMEOUT).await?;
    writeln!(
        out,
        "haloyd is running (pid {pid}), API on 127.0.0.1:{}",
        config.api_port
    )?;
    report_proxy_and_docker(config, &serving, out)?;
    writeln!(out, "logs: {}", layout.haloyd_log().display())?;
    Ok(())
}

pub async fn stop(args: &StopArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.install, env)?;
    if config.run_as == RunAs::Docker {
        let engine = Engine::connect().await?;
        let install = Install {
            layout: &layout,
            config: &config,
            engine: &engine,
        };
        let haloyd = install.remove_all(Role::Haloyd).await?;
        writeln!(
            out,
            "{}",
            if haloyd > 0 {
                "haloyd stopped (its container removed)"
            } else {
                "haloyd was not running"
            }
        )?;
        install.remove_all(Role::Haproxy).await?;
        writeln!(
            out,
            "HAProxy stopped (its container removed); app containers keep running and come back into service with `haloyadm start`"
        )?;
        return Ok(());
    }
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

/// haloyd only, unless `--haproxy`: HAProxy serves throughout either way when it
/// runs in a container (a new one starts beside the old).
pub async fn restart(args: &RestartArgs, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, config) = load(&args.start.install, env)?;
    if config.run_as == RunAs::Processes {
        stop(
            &StopArgs {
                install: args.start.install.clone(),
            },
            env,
            out,
        )
        .await?;
        return start(&args.start, env, out).await;
    }
    let token = setup::read_token(&layout)?;
    let engine = Engine::connect().await?;
    let install = Install {
        layout: &layout,
        config: &config,
        engine: &engine,
    };
    if args.haproxy {
        writeln!(
            out,
            "restarting HAProxy: a new container beside the old one"
        )?;
        if engine.find(&config, Role::Haproxy).await?.is_empty() {
            writeln!(out, "{}", install.start_haproxy().await?)?;
        } else {
            install.replace_haproxy(out).await?;
        }
    }
    writeln!(
        out,
        "restarting haloyd only{}",
        if args.haproxy {
            ""
        } else {
            "; HAProxy keeps serving (`haloyadm restart --haproxy` replaces it too)"
        }
    )?;
    let binary = containerised::haloyd_binary(args.start.haloyd_binary.as_deref())?;
    let serving = install
        .replace_haloyd(&binary, &token, args.start.debug, out)
        .await?;
    report(&config, &serving, out)
}

/// Fails for host-process installs, which `upgrade` does not manage.
pub fn require_docker(config: &HaloydConfig) -> anyhow::Result<()> {
    if config.run_as != RunAs::Docker {
        bail!(
            "this install runs haloyd and HAProxy as host processes (run_as: processes in haloyd.yaml); stop them with `haloyadm stop`, install the new binaries and `haloyadm start`, or move to containers with `haloyadm init --force`"
        );
    }
    Ok(())
}
