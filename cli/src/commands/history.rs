//! `haloy history`: the audit log of each target, newest first: every deploy,
//! rollback, stop and canary decision with who ran it from where and how it ended.

use std::io::Write;

use haloy_controller::Needs;
use haloy_controller::client::{AuditRecord, Client};
use haloy_controller::fanout;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

/// Show who deployed, rolled back or stopped the app, when, and how it ended.
///
/// haloyd records each action with the user and host `haloy` reports (grpcurl
/// callers set `x-haloy-user` and `x-haloy-host` themselves) and keeps the newest
/// 1000 entries per server.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Show at most this many entries per target (all the server keeps when 0).
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: u32,
    /// Print one JSON object per target, its entries newest first.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let limit = args.limit;
    let results = report::each_target(&targets, fanout::DEFAULT_CONCURRENCY, out, |target, _| {
        let (server, token) = (target.server.clone(), target.token.clone());
        let app = target.plan.spec.name.clone();
        async move {
            let mut client = Client::connect(&server, &token).await?;
            Ok(client.history(&app, limit).await?)
        }
    })
    .await?;
    let entries = report::all_succeeded(results)?;
    for (i, (target, entries)) in targets.iter().zip(entries).enumerate() {
        if args.json {
            let value = serde_json::json!({
                "target": target.plan.label(),
                "server": target.server,
                "entries": entries,
            });
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            continue;
        }
        if i > 0 {
            writeln!(out)?;
        }
        if let Some(name) = &target.plan.target {
            writeln!(out, "target: {name} ({})", target.server)?;
        }
        if entries.is_empty() {
            writeln!(out, "nothing recorded yet")?;
        }
        for entry in &entries {
            writeln!(out, "{}", line(entry))?;
        }
    }
    Ok(())
}

/// `2026-11-25T10:46:31Z  ann@laptop  deploy 2026...-ab12  finished`.
fn line(entry: &AuditRecord) -> String {
    let mut what = entry.action.clone();
    if !entry.detail.is_empty() {
        what.push(' ');
        what.push_str(&entry.detail);
    }
    let mut line = format!(
        "{}  {}@{}  {what}  {}",
        haloy_api::ids::format_rfc3339(entry.time_ms),
        entry.user,
        entry.host,
        entry.result
    );
    if !entry.error.is_empty() {
        line.push_str(": ");
        line.push_str(&entry.error);
    }
    line
}
