//! `haloy logs`: the app's log lines from every replica of every selected target,
//! prefixed with the replica (and the target, when there are several).

use std::io::Write;

use haloy_controller::client::Client;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

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
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    // Every target streams at once, however many (a follow never ends, so a limit
    // would starve the rest); lines interleave as they arrive.
    let (tail, follow) = (args.tail, !args.no_follow);
    let results = report::each_target(&targets, targets.len(), out, |target, lines| {
        let (server, token, app) = (
            target.server.clone(),
            target.token.clone(),
            target.plan.spec.name.clone(),
        );
        async move {
            let mut client = Client::connect(&server, &token).await?;
            client
                .logs(&app, tail, follow, |entry| {
                    lines.say(format_args!("{} | {}", entry.replica, entry.text));
                })
                .await?;
            Ok(())
        }
    })
    .await?;
    report::all_succeeded(results)?;
    Ok(())
}
