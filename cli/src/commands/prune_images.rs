//! `haloy prune-images`: remove the images no deployment in the app's history needs
//! from each target. A dry run unless `--yes`.

use std::io::Write;

use haloy_controller::client::Client;
use haloy_controller::fanout;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

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
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let many = targets.len() > 1;
    let dry_run = !args.yes;
    let results = report::each_target(&targets, fanout::DEFAULT_CONCURRENCY, out, |target, _| {
        let (server, token) = (target.server.clone(), target.token.clone());
        let app = target.plan.spec.name.clone();
        async move {
            let mut client = Client::connect(&server, &token).await?;
            Ok(client.prune_images(&app, dry_run).await?)
        }
    })
    .await?;
    // Printed in target order once all are done, so JSON lines stay whole.
    for (target, (_, result)) in targets.iter().zip(&results) {
        let Ok((removed, kept)) = result else {
            continue;
        };
        let prefix = report::prefix(target.label(), many);
        let app = &target.plan.spec.name;
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
        for name in removed {
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
    report::all_succeeded(results)?;
    Ok(())
}
