//! `haloy deploy`: ship the configured version to each target's server.

use std::io::Write;
use std::time::Instant;

use haloy_api::spec::ImageSource;
use haloy_controller::client::{Client, ImageChoice, Progress};

use super::target::{self, Connected};
use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Do not show the log lines streamed during the deploy.
    #[arg(long)]
    pub no_logs: bool,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = target::resolve(&args.flags, env)?;
    let many = targets.len() > 1;
    let mut failed = Vec::new();
    for target in &targets {
        if let Err(e) = deploy_one(target, many, args.no_logs, out).await {
            writeln!(out, "{}error: {e:#}", target::prefix(target, many))?;
            failed.push(target.plan.label().to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the deploy failed for {}", failed.join(", "))
    }
}

async fn deploy_one(
    target: &Connected,
    many: bool,
    no_logs: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let prefix = target::prefix(target, many);
    let spec = &target.plan.spec;
    let image = if spec.image.source == ImageSource::Local {
        ImageChoice::Existing
    } else if target.plan.build.is_some() {
        anyhow::bail!(
            "{} is built from a Dockerfile, and building on the workstation is not supported yet; build and load the image on the server and set image.source: local, or push it to a registry and remove the builder",
            spec.image.reference()
        );
    } else {
        ImageChoice::Pull
    };
    let started = Instant::now();
    let mut client = Client::connect(&target.server, &target.token).await?;
    writeln!(
        out,
        "{prefix}deploying {} ({}) to {}",
        spec.name,
        spec.image.reference(),
        client.server()
    )?;
    let report = client
        .deploy(spec, image, |p| {
            let line = match p {
                Progress::Accepted { deployment_id } => Some(format!("deployment {deployment_id}")),
                Progress::Phase { name, message } => Some(format!("==> {name}: {message}")),
                Progress::Log { replica, text } if !no_logs => {
                    Some(format!("    {replica} | {text}"))
                }
                Progress::Log { .. } => None,
                Progress::UploadPlanned { layers: 0, of, .. } => {
                    Some(format!("the server has all {of} layers of the image"))
                }
                Progress::UploadPlanned { layers, of, bytes } => Some(format!(
                    "uploading {layers} of {of} layers ({bytes} bytes); the server has the rest"
                )),
                Progress::Uploading { .. } => None,
                Progress::Uploaded { bytes } => Some(format!("uploaded {bytes} bytes")),
            };
            if let Some(line) = line {
                let _ = writeln!(out, "{prefix}{line}");
            }
        })
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    if report.succeeded {
        writeln!(
            out,
            "{prefix}deployed {} (deployment {}) in {seconds:.1}s",
            spec.name, report.deployment_id
        )?;
        Ok(())
    } else {
        anyhow::bail!(
            "deployment {} {}: {}; the previous version keeps serving",
            report.deployment_id,
            report.status,
            report.reason
        )
    }
}
