//! `haloy logs`: the app's log lines from every replica of every selected target,
//! prefixed with the replica (and the target, when there are several).

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
    let many = targets.len() > 1;
    // Every target streams at once; lines interleave as they arrive.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut streams = Vec::new();
    for target in &targets {
        let prefix = target::prefix(target, many);
        let (server, token, app) = (
            target.server.clone(),
            target.token.clone(),
            target.plan.spec.name.clone(),
        );
        let (tail, follow, tx) = (args.tail, !args.no_follow, tx.clone());
        streams.push(tokio::spawn(async move {
            let result = async {
                let mut client = Client::connect(&server, &token).await?;
                client
                    .logs(&app, tail, follow, |entry| {
                        let _ = tx.send(format!("{prefix}{} | {}", entry.replica, entry.text));
                    })
                    .await
            }
            .await;
            // Said at once: the other targets may follow for a long time yet.
            result.map_err(|e| {
                let message = format!("{prefix}{e:#}");
                eprintln!("error: {message}");
                message
            })
        }));
    }
    drop(tx);
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let mut failed = Vec::new();
    for stream in streams {
        if let Err(e) = stream.await? {
            failed.push(e);
        }
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}
