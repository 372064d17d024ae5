//! `haloy validate-config`: check the config and print what each target resolves to.

use std::io::Write;

use anyhow::Context as _;
use haloy_controller::address::ServerAddress;
use haloy_controller::servers::ServerStore;
use haloy_controller::{ConfigFile, Needs};

use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Show secret values (tokens, credentials, values from env or secret providers)
    /// in the resolved config instead of masking them. Use with caution.
    #[arg(long)]
    pub show_resolved_config: bool,
}

pub fn run(args: &Args, env: &Env, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let config = ConfigFile::load(args.flags.config.as_deref(), &env.cwd)?;
    let chosen = config.select(&args.flags.selection(), true)?;
    let haloy_dir = env.haloy_dir();
    let plan = config.plan(
        &chosen,
        Needs::Everything,
        &env.vars,
        &env.cwd,
        haloy_dir.as_deref(),
    )?;
    let server_override = match &args.flags.server {
        Some(server) => Some(
            ServerAddress::parse(server)
                .map_err(|e| anyhow::anyhow!("--server: {e}"))?
                .to_string(),
        ),
        None => None,
    };
    let store = ServerStore::open(haloy_dir.as_deref()).ok();
    let file = config.path.display();

    for (i, target) in plan.targets.iter().enumerate() {
        let mut value = target.to_value(args.show_resolved_config);
        let server = server_override.clone().or_else(|| target.server.clone());
        match (server, &store) {
            (Some(server), _) => value["server"] = server.into(),
            (None, Some(store)) => match store.select(None) {
                Ok(server) => value["server"] = server.into(),
                Err(e) => writeln!(err, "warning: {}: {e}", target.label())?,
            },
            (None, None) => writeln!(
                err,
                "warning: {}: no server is set; set `server:` in the config",
                target.label()
            )?,
        }
        for warning in &target.warnings {
            writeln!(err, "warning: {file}: {warning}")?;
        }
        if i > 0 {
            writeln!(out, "---")?;
        }
        let yaml = serde_yaml::to_string(&value).context("cannot render the resolved config")?;
        write!(out, "{yaml}")?;
    }
    let count = plan.targets.len();
    let what = if plan.targets.iter().any(|t| t.target.is_some()) {
        format!("{count} target{}", if count == 1 { "" } else { "s" })
    } else {
        "single target".to_string()
    };
    writeln!(err, "{file} is valid ({what})")?;
    if !args.show_resolved_config {
        writeln!(
            err,
            "secret values are masked; pass --show-resolved-config to show them"
        )?;
    }
    Ok(())
}
