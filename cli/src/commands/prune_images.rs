//! `haloy prune-images`: remove the images no deployment in the app's history needs
//! from each target. A dry run unless `--yes`.

use std::io::Write;

use haloy_controller::client::Client;

use super::target;
use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Remove the images; without it, only list what would go.
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON object per target.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = target::resolve(&args.flags, env)?;
    let many = targets.len() > 1;
    for target in &targets {
        let prefix = target::prefix(target, many);
        let app = &target.plan.spec.name;
        let mut client = Client::connect(&target.server, &target.token).await?;
        let (removed, kept) = client.prune_images(app, !args.yes).await?;
        if args.json {
            let value = serde_json::json!({"target": target.plan.label(), "server": target.server, "dry_run": !args.yes, "removed": removed, "kept": kept});
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            continue;
        }
        let verb = if args.yes { "removed" } else { "would remove" };
        if removed.is_empty() {
            writeln!(
                out,
                "{prefix}nothing to prune for {app}: every image belongs to a kept deployment"
            )?;
        }
        for name in &removed {
            writeln!(out, "{prefix}{verb} {name}")?;
        }
        writeln!(
            out,
            "{prefix}kept for rollback: {}",
            if kept.is_empty() {
                "-".to_string()
            } else {
                kept.join(", ")
            }
        )?;
        if !args.yes && !removed.is_empty() {
            writeln!(out, "{prefix}this was a dry run; add --yes to remove them")?;
        }
    }
    Ok(())
}
