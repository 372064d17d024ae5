//! `haloy rollback <deployment-id>`: return a target to an earlier version through the
//! same zero-downtime path as a deploy.

use std::io::Write;

use haloy_controller::client::{Client, Progress};

use super::target;
use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// The deployment to return to, from `haloy rollback-targets`.
    pub deployment_id: String,
    /// Do not show the log lines streamed during the rollback.
    #[arg(long)]
    pub no_logs: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = target::resolve(&args.flags, env)?;
    let [target] = targets.as_slice() else {
        anyhow::bail!(
            "deployment ids belong to one server; choose one target with --targets <name>"
        );
    };
    let mut client = Client::connect(&target.server, &target.token).await?;
    writeln!(
        out,
        "rolling {} back to deployment {} on {}",
        target.plan.spec.name,
        args.deployment_id,
        client.server()
    )?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let no_logs = args.no_logs;
    let spec = target.plan.spec.clone();
    let id = args.deployment_id.clone();
    let running = tokio::spawn(async move {
        client
            .rollback(&spec, &id, |p| {
                let line = match p {
                    Progress::Accepted { deployment_id } => {
                        Some(format!("deployment {deployment_id}"))
                    }
                    Progress::Phase { name, message } => Some(format!("==> {name}: {message}")),
                    Progress::Log { replica, text } if !no_logs => {
                        Some(format!("    {replica} | {text}"))
                    }
                    _ => None,
                };
                if let Some(line) = line {
                    let _ = tx.send(line);
                }
            })
            .await
    });
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}")?;
    }
    let report = running.await??;
    anyhow::ensure!(
        report.succeeded,
        "rollback {} {}: {}; the current version keeps serving",
        report.deployment_id,
        report.status,
        report.reason
    );
    writeln!(
        out,
        "rolled back: deployment {} now serves the image of {}",
        report.deployment_id, args.deployment_id
    )?;
    Ok(())
}
