//! `haloy stop`: stop the app's containers on each target (HAProxy answers 503).

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
    /// Remove the containers after stopping them.
    #[arg(long)]
    pub remove_containers: bool,
    /// Allow removing the containers of a protected app (a database).
    #[arg(long)]
    pub include_protected: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let (remove, include_protected) = (args.remove_containers, args.include_protected);
    let results = report::each_target(
        &targets,
        fanout::DEFAULT_CONCURRENCY,
        out,
        |target, lines| {
            let (server, token) = (target.server.clone(), target.token.clone());
            let app = target.plan.spec.name.clone();
            async move {
                let mut client = Client::connect(&server, &token).await?;
                let (stopped, removed) = client.stop(&app, remove, include_protected).await?;
                lines.say(format_args!(
                    "stopped {} container(s) of {app}",
                    stopped.len()
                ));
                if remove {
                    lines.say(format_args!("removed {} container(s)", removed.len()));
                }
                Ok(())
            }
        },
    )
    .await?;
    report::all_succeeded(results)?;
    Ok(())
}
