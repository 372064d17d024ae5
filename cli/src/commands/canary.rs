//! `haloy canary status|promote|abort`: look at and finish a canary release that
//! `haloy deploy --canary <percent>` started.

use std::io::Write;

use haloy_controller::client::{Client, VersionTraffic};
use haloy_controller::fanout;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::{report, targets};

#[derive(Debug, clap::Subcommand)]
pub enum CanaryCommand {
    /// Show both versions' requests and 5xx answers since the canary started.
    Status(Args),
    /// Send every request to the canary and retire the previous version.
    Promote(Args),
    /// Return every request to the previous version and remove the canary.
    Abort(Args),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
}

fn line(label: &str, t: &VersionTraffic) -> String {
    let rate = if t.responses == 0 {
        0.0
    } else {
        t.errors as f64 * 100.0 / t.responses as f64
    };
    format!(
        "{label} {} ({}): {} request(s), {} error(s) (5xx, {rate:.1}%), {} replica(s)",
        t.deployment_id,
        t.image,
        t.responses,
        t.errors,
        t.replicas.len()
    )
}

pub async fn run(command: &CanaryCommand, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let args = match command {
        CanaryCommand::Status(a) | CanaryCommand::Promote(a) | CanaryCommand::Abort(a) => a,
    };
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let results = report::each_target(
        &targets,
        fanout::DEFAULT_CONCURRENCY,
        out,
        |target, lines| {
            let (server, token) = (target.server.clone(), target.token.clone());
            let app = target.plan.spec.name.clone();
            let wanted = match command {
                CanaryCommand::Status(_) => None,
                CanaryCommand::Promote(_) => Some(true),
                CanaryCommand::Abort(_) => Some(false),
            };
            async move {
                let mut client = Client::connect(&server, &token).await?;
                match wanted {
                    None => {
                        let report = client.canary_status(&app).await?;
                        lines.say(format_args!(
                            "canary of {app}: {}% of requests",
                            report.percent
                        ));
                        lines.say(format_args!("  {}", line("canary:", &report.canary)));
                        match &report.stable {
                            Some(stable) => {
                                lines.say(format_args!("  {}", line("stable:", stable)))
                            }
                            None => lines.say(format_args!("  stable: none serves")),
                        }
                    }
                    Some(promote) => {
                        let said = client.canary_finish(&app, promote).await?;
                        lines.say(format_args!("{said}"));
                    }
                }
                Ok(())
            }
        },
    )
    .await?;
    report::all_succeeded(results)?;
    Ok(())
}
