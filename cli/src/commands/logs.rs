//! `haloy logs`: the app's log lines from every replica, prefixed with the replica.

use std::io::Write;

use haloy_controller::client::Client;

use super::target;
use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Lines to show from each replica before following.
    #[arg(long, default_value_t = 100)]
    pub tail: u32,
    /// Print the recent lines and exit instead of following new ones.
    #[arg(long)]
    pub no_follow: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = target::resolve(&args.flags, env)?;
    let [target] = targets.as_slice() else {
        anyhow::bail!("logs follows one target at a time; choose it with --targets <name>");
    };
    let mut client = Client::connect(&target.server, &target.token).await?;
    client
        .logs(
            &target.plan.spec.name,
            args.tail,
            !args.no_follow,
            |entry| {
                let _ = writeln!(out, "{} | {}", entry.replica, entry.text);
                let _ = out.flush();
            },
        )
        .await?;
    Ok(())
}
