//! `haloy deploy`: ship the configured version to the selected targets, concurrently,
//! with hooks, prefixed output and a summary.

use std::io::Write;

use haloy_api::spec::ImageSource;
use haloy_controller::client::ImageChoice;
use haloy_controller::config::plan::TargetPlan;
use haloy_controller::fanout::{self, Job, Options, Outcome};
use tokio::sync::mpsc;

use super::target;
use crate::context::{Env, TargetFlags};

/// Targets deployed at the same time.
const CONCURRENCY: usize = 8;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Do not show the log lines streamed during the deploy.
    #[arg(long)]
    pub no_logs: bool,
    /// Print one JSON object per target result on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Where the server gets the image for a target.
fn image_for(plan: &TargetPlan) -> anyhow::Result<ImageChoice> {
    if plan.spec.image.source == ImageSource::Local {
        return Ok(ImageChoice::Existing);
    }
    if plan.build.is_some() {
        anyhow::bail!(
            "{} is built from a Dockerfile, and building on the workstation is not supported yet; build and load the image on the server and set image.source: local, or push it to a registry and remove the builder",
            plan.spec.image.reference()
        );
    }
    Ok(ImageChoice::Pull)
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (plan, targets) = target::resolve(&args.flags, env)?;
    let mut jobs = Vec::new();
    for target in targets {
        let image = image_for(&target.plan)?;
        jobs.push(Job {
            plan: target.plan,
            server: target.server,
            token: target.token,
            image,
        });
    }
    let many = jobs.len() > 1;
    let options = Options {
        concurrency: CONCURRENCY,
        show_logs: !args.no_logs,
        config_dir: plan
            .config_file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| env.cwd.clone()),
        env: env.vars.clone(),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (pre, post) = (
        plan.global_pre_deploy.clone(),
        plan.global_post_deploy.clone(),
    );
    let runner =
        tokio::spawn(async move { fanout::deploy_all(&pre, &post, jobs, &options, tx).await });
    let mut err = std::io::stderr();
    while let Some(line) = rx.recv().await {
        let prefix = if many || line.target == fanout::GLOBAL {
            format!("[{}] ", line.target)
        } else {
            String::new()
        };
        let sink: &mut dyn Write = if args.json { &mut err } else { &mut *out };
        writeln!(sink, "{prefix}{}", line.text)?;
    }
    let run = runner.await??;

    if args.json {
        for outcome in &run.outcomes {
            writeln!(out, "{}", serde_json::to_string(&json(outcome))?)?;
        }
    } else if many {
        summary(&run.outcomes, out)?;
    } else if let Some(outcome) = run.outcomes.first().filter(|o| o.succeeded) {
        let id = outcome.deployment_id.as_deref().unwrap_or("?");
        writeln!(
            out,
            "deployed {} (deployment {id}) in {:.1}s",
            outcome.target,
            outcome.duration.as_secs_f64()
        )?;
    }
    let failed: Vec<&Outcome> = run.outcomes.iter().filter(|o| !o.succeeded).collect();
    if let Some(e) = run.global_post_error {
        anyhow::bail!("{e}");
    }
    match failed.as_slice() {
        [] => Ok(()),
        [one] if !many => anyhow::bail!("{}", one.message),
        _ => anyhow::bail!(
            "{} of {} targets failed: {}",
            failed.len(),
            run.outcomes.len(),
            failed
                .iter()
                .map(|o| o.target.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn json(outcome: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "target": outcome.target,
        "server": outcome.server,
        "deployment_id": outcome.deployment_id,
        "result": if outcome.succeeded { "succeeded" } else { "failed" },
        "message": outcome.message,
        "duration_secs": (outcome.duration.as_secs_f64() * 10.0).round() / 10.0,
        "uploaded_bytes": outcome.uploaded_bytes,
    })
}

fn summary(outcomes: &[Outcome], out: &mut dyn Write) -> anyhow::Result<()> {
    let w_target = outcomes
        .iter()
        .map(|o| o.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let w_server = outcomes
        .iter()
        .map(|o| o.server.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(out)?;
    writeln!(
        out,
        "{:<w_target$}  {:<w_server$}  {:<17}  {:<8}  RESULT",
        "TARGET", "SERVER", "DEPLOYMENT", "DURATION"
    )?;
    for o in outcomes {
        let result = if o.succeeded {
            "succeeded".to_string()
        } else {
            format!("failed: {}", o.message)
        };
        writeln!(
            out,
            "{:<w_target$}  {:<w_server$}  {:<17}  {:<8}  {result}",
            o.target,
            o.server,
            o.deployment_id.as_deref().unwrap_or("-"),
            format!("{:.1}s", o.duration.as_secs_f64()),
        )?;
    }
    Ok(())
}
