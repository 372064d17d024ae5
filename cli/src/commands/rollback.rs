//! `haloy rollback <deployment-id>`: return the selected targets to an earlier version
//! through the same zero-downtime path as a deploy. A deploy to several targets
//! records one deployment id on all of them, so one id rolls them all back.

use std::io::Write;

use haloy_api::ids;
use haloy_controller::client::Client;
use haloy_controller::deployment::Progress;
use haloy_controller::fanout;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// The deployment to return to, from `haloy rollback-targets`.
    pub deployment_id: String,
    /// Do not show the log lines streamed during the rollback.
    #[arg(long)]
    pub no_logs: bool,
    /// Allow replacing the running container of a protected app (a database).
    #[arg(long)]
    pub include_protected: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Everything)?;
    // The rollbacks are deployments too: one id for all of them.
    let new_id = ids::proposed_id(ids::now_ms());
    let (no_logs, include_protected) = (args.no_logs, args.include_protected);
    let results = report::each_target(
        &targets,
        fanout::DEFAULT_CONCURRENCY,
        out,
        |target, lines| {
            let (server, token) = (target.server.clone(), target.token.clone());
            let spec = target.plan.spec.clone();
            let (id, new_id) = (args.deployment_id.clone(), new_id.clone());
            async move {
                let mut client = Client::connect(&server, &token).await?;
                client.propose_deployment_id(Some(new_id));
                client.include_protected(include_protected);
                lines.say(format_args!(
                    "rolling {} back to deployment {id} on {}",
                    spec.name,
                    client.server()
                ));
                let report = client
                    .rollback(&spec, &id, |p| match p {
                        Progress::Accepted { deployment_id } => {
                            lines.say(format_args!("deployment {deployment_id}"));
                        }
                        Progress::Phase { name, message } => {
                            lines.say(format_args!("==> {name}: {message}"));
                        }
                        Progress::Agent { text } if !no_logs => {
                            lines.say(format_args!("    haloyd | {text}"));
                        }
                        Progress::Log { replica, text } if !no_logs => {
                            lines.say(format_args!("    {replica} | {text}"));
                        }
                        _ => {}
                    })
                    .await?;
                anyhow::ensure!(
                    report.succeeded,
                    "rollback {} {}: {}; the current version keeps serving",
                    report.deployment_id,
                    report.status,
                    report.reason
                );
                lines.say(format_args!(
                    "rolled back: deployment {} now serves the image of {id}",
                    report.deployment_id
                ));
                Ok(())
            }
        },
    )
    .await?;
    report::all_succeeded(results)?;
    Ok(())
}
