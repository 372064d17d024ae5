//! `haloy rollback-targets`: earlier versions each target can return to.

use std::io::Write;
use std::time::UNIX_EPOCH;

use haloy_api::status::RollbackTarget;
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

fn when(target: &RollbackTarget) -> String {
    target
        .deployed_at
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| haloy_api::ids::format_rfc3339(d.as_millis() as u64))
        .unwrap_or_else(|| "-".into())
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::RegistryHistory)?;
    let results = report::each_target(&targets, fanout::DEFAULT_CONCURRENCY, out, |target, _| {
        let (server, token) = (target.server.clone(), target.token.clone());
        let spec = target.plan.spec.clone();
        async move {
            let mut client = Client::connect(&server, &token).await?;
            Ok(client.rollback_targets(&spec).await?)
        }
    })
    .await?;
    // Printed in target order once all are done, so tables and JSON lines stay whole.
    for (target, (_, result)) in targets.iter().zip(&results) {
        let Ok((strategy, versions)) = result else {
            continue;
        };
        if args.json {
            let rows: Vec<serde_json::Value> = versions
                .iter()
                .map(|v| serde_json::json!({"deployment_id": v.deployment_id, "image": v.image, "deployed_at": when(v), "live": v.live}))
                .collect();
            let value = serde_json::json!({"target": target.plan.label(), "server": target.server, "strategy": strategy, "targets": rows});
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            continue;
        }
        if targets.len() > 1 {
            writeln!(out, "[{}] {}", target.plan.label(), target.server)?;
        }
        if strategy == "none" {
            writeln!(
                out,
                "image.history.strategy is none: no earlier versions are kept, so there is nothing to roll back to"
            )?;
            continue;
        }
        if strategy == "registry" {
            writeln!(
                out,
                "registry tags matching image.history.pattern, newest first; `haloy rollback <tag>` deploys one"
            )?;
        }
        writeln!(
            out,
            "{:<24}  {:<20}  {:<4}  IMAGE",
            "DEPLOYMENT", "DEPLOYED AT", "LIVE"
        )?;
        for v in versions {
            writeln!(
                out,
                "{:<24}  {:<20}  {:<4}  {}",
                v.deployment_id,
                when(v),
                if v.live { "yes" } else { "" },
                v.image
            )?;
        }
    }
    report::all_succeeded(results)?;
    Ok(())
}
