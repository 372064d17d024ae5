//! `haloy maintenance on|off`: the app's domains answer 503 with a maintenance page
//! on each target while its containers keep running, or serve again.

use std::io::Write;

use haloy_controller::Needs;
use haloy_controller::client::{Client, MaintenanceChange};
use haloy_controller::fanout;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

#[derive(Debug, clap::Subcommand)]
pub enum MaintenanceCommand {
    /// Answer the app's domains with 503 and a maintenance page (the containers keep
    /// running; deploys keep it on).
    On(OnArgs),
    /// Serve the app's domains again.
    Off(OffArgs),
}

#[derive(Debug, clap::Args)]
pub struct OnArgs {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// A sentence for the page, e.g. "Back at 14:00 UTC" (at most 256 characters).
    /// A page of your own (`maintenance.page`) shows it where it says {{message}}.
    #[arg(long, short)]
    pub message: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct OffArgs {
    #[command(flatten)]
    pub flags: TargetFlags,
}

pub async fn run(
    command: &MaintenanceCommand,
    env: &Env,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (flags, message) = match command {
        MaintenanceCommand::On(a) => (&a.flags, Some(a.message.clone().unwrap_or_default())),
        MaintenanceCommand::Off(a) => (&a.flags, None),
    };
    if let Some(message) = &message {
        // Checked before any connection, like every other flag.
        haloy_api::rules::maintenance_message(message)
            .map_err(|v| anyhow::anyhow!("--message: {v}"))?;
    }
    let (_, targets) = targets::resolve(flags, env, Needs::Connection)?;
    let results = report::each_target(
        &targets,
        fanout::DEFAULT_CONCURRENCY,
        out,
        |target, lines| {
            let (server, token) = (target.server.clone(), target.token.clone());
            let app = target.plan.spec.name.clone();
            let change = match &message {
                Some(message) => MaintenanceChange::On {
                    message: message.clone(),
                    page: target.plan.maintenance_page.clone(),
                },
                None => MaintenanceChange::Off,
            };
            async move {
                let mut client = Client::connect(&server, &token).await?;
                match client.maintenance(&app, change).await? {
                    Some(state) => lines.say(format_args!(
                        "{app} is in maintenance: its domains answer 503 with {} page; the containers keep running",
                        if state.custom_page { "its own" } else { "the default" }
                    )),
                    None => lines.say(format_args!(
                        "{app} is out of maintenance: its domains serve again"
                    )),
                }
                Ok(())
            }
        },
    )
    .await?;
    report::all_succeeded(results)?;
    Ok(())
}
