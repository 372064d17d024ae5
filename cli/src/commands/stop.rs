//! `haloy stop`: stop the app's containers on each target (HAProxy answers 503).

use std::io::Write;

use haloy_controller::client::Client;

use super::target;
use crate::context::{Env, TargetFlags};

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
    let (_, targets) = target::resolve(&args.flags, env)?;
    let many = targets.len() > 1;
    for target in &targets {
        let prefix = target::prefix(target, many);
        let mut client = Client::connect(&target.server, &target.token).await?;
        let (stopped, removed) = client
            .stop(
                &target.plan.spec.name,
                args.remove_containers,
                args.include_protected,
            )
            .await?;
        writeln!(
            out,
            "{prefix}stopped {} container(s) of {}",
            stopped.len(),
            target.plan.spec.name
        )?;
        if args.remove_containers {
            writeln!(out, "{prefix}removed {} container(s)", removed.len())?;
        }
    }
    Ok(())
}
