//! `haloyadm upgrade`: haloyd onto the newly installed binary, and with
//! `--haproxy-image` HAProxy onto another image, each without a gap in serving.

use std::io::Write;
use std::path::PathBuf;

use haloyd::setup;

use super::InstallFlags;
use crate::containerised::{self, Install};
use crate::containers::{Engine, Role};
use crate::service::{load, require_docker};
use haloy_cli::context::Env;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub install: InstallFlags,
    /// Also move HAProxy to this image (written to haloyd.yaml as haproxy_image): a
    /// new container starts beside the old one, which finishes its connections.
    #[arg(long, value_name = "IMAGE")]
    pub haproxy_image: Option<String>,
    /// The haloyd binary to run (default: the one installed beside haloyadm).
    #[arg(long, value_name = "PATH")]
    pub haloyd_binary: Option<PathBuf>,
    /// Log at debug level in haloyd's container.
    #[arg(long)]
    pub debug: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (layout, mut config) = load(&args.install, env)?;
    require_docker(&config)?;
    let token = setup::read_token(&layout)?;
    let binary = containerised::haloyd_binary(args.haloyd_binary.as_deref())?;
    let engine = Engine::connect().await?;
    if let Some(image) = &args.haproxy_image {
        config = setup::set_haproxy_image(&layout, image)?;
        let install = Install {
            layout: &layout,
            config: &config,
            engine: &engine,
        };
        if engine.find(&config, Role::Haproxy).await?.is_empty() {
            writeln!(out, "{}", install.start_haproxy().await?)?;
        } else {
            install.replace_haproxy(out).await?;
        }
    }
    let install = Install {
        layout: &layout,
        config: &config,
        engine: &engine,
    };
    let wanted = crate::image::reference(&binary)?;
    let current = engine
        .find(&config, Role::Haloyd)
        .await?
        .into_iter()
        .find(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING));
    if current.as_ref().and_then(|c| c.image.as_deref()) == Some(wanted.as_str()) {
        writeln!(
            out,
            "haloyd already runs {wanted} (from {}); nothing to upgrade",
            binary.display()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "upgrading haloyd to {} ({wanted}); HAProxy keeps serving while it restarts",
        binary.display()
    )?;
    let serving = install
        .replace_haloyd(&binary, &token, args.debug, out)
        .await?;
    writeln!(
        out,
        "haloyd {} serves the API on 127.0.0.1:{}",
        serving.haloyd, config.api_port
    )?;
    Ok(())
}
