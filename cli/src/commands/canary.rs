//! `haloy canary status|promote|abort`: look at and finish a canary release that
//! `haloy deploy --canary <percent>` started.

use std::io::Write;

use haloy_controller::client::{Client, VersionTraffic};

use super::target;
use crate::context::{Env, TargetFlags};

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
    let (_, targets) = target::resolve(&args.flags, env)?;
    let many = targets.len() > 1;
    for target in &targets {
        let prefix = target::prefix(target, many);
        let app = &target.plan.spec.name;
        let mut client = Client::connect(&target.server, &target.token).await?;
        match command {
            CanaryCommand::Status(_) => {
                let report = client.canary_status(app).await?;
                writeln!(
                    out,
                    "{prefix}canary of {app}: {}% of requests",
                    report.percent
                )?;
                writeln!(out, "{prefix}  {}", line("canary:", &report.canary))?;
                match &report.stable {
                    Some(stable) => writeln!(out, "{prefix}  {}", line("stable:", stable))?,
                    None => writeln!(out, "{prefix}  stable: none serves")?,
                }
            }
            CanaryCommand::Promote(_) => {
                writeln!(out, "{prefix}{}", client.canary_finish(app, true).await?)?;
            }
            CanaryCommand::Abort(_) => {
                writeln!(out, "{prefix}{}", client.canary_finish(app, false).await?)?;
            }
        }
    }
    Ok(())
}
