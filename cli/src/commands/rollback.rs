//! `haloy rollback <deployment-id>`: return the selected targets to an earlier version
//! through the same zero-downtime path as a deploy. A deploy to several targets
//! records one deployment id on all of them, so one id rolls them all back.

use std::io::Write;

use haloy_api::ids;
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
    let many = targets.len() > 1;
    // The rollbacks are deployments too: one id for all of them.
    let new_id = ids::proposed_id(ids::now_ms());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut running = Vec::new();
    for target in &targets {
        let prefix = target::prefix(target, many);
        let (server, token) = (target.server.clone(), target.token.clone());
        let spec = target.plan.spec.clone();
        let (id, new_id, no_logs, tx) = (
            args.deployment_id.clone(),
            new_id.clone(),
            args.no_logs,
            tx.clone(),
        );
        running.push(tokio::spawn(async move {
            let result = async {
                let mut client = Client::connect(&server, &token).await?;
                client.propose_deployment_id(Some(new_id));
                let _ = tx.send(format!(
                    "{prefix}rolling {} back to deployment {id} on {}",
                    spec.name,
                    client.server()
                ));
                client
                    .rollback(&spec, &id, |p| {
                        let line = match p {
                            Progress::Accepted { deployment_id } => {
                                Some(format!("deployment {deployment_id}"))
                            }
                            Progress::Phase { name, message } => {
                                Some(format!("==> {name}: {message}"))
                            }
                            Progress::Log { replica, text } if !no_logs => {
                                Some(format!("    {replica} | {text}"))
                            }
                            _ => None,
                        };
                        if let Some(line) = line {
                            let _ = tx.send(format!("{prefix}{line}"));
                        }
                    })
                    .await
                    .map_err(anyhow::Error::from)
            }
            .await;
            let message = match result {
                Ok(report) if report.succeeded => {
                    return Ok(format!(
                        "{prefix}rolled back: deployment {} now serves the image of {id}",
                        report.deployment_id
                    ));
                }
                Ok(report) => format!(
                    "{prefix}rollback {} {}: {}; the current version keeps serving",
                    report.deployment_id, report.status, report.reason
                ),
                Err(e) => format!("{prefix}{e:#}"),
            };
            Err(message)
        }));
    }
    drop(tx);
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}")?;
    }
    let mut failed = Vec::new();
    for rollback in running {
        match rollback.await? {
            Ok(line) => writeln!(out, "{line}")?,
            Err(message) => failed.push(message),
        }
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}
