//! `haloy deploy`: ship the configured version to the selected targets, concurrently,
//! with hooks, prefixed output and a summary.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use haloy_controller::deploy::{self, Job, Options, Outcome};
use haloy_controller::{fanout, prepare};
use tokio::sync::mpsc;

use haloy_controller::Needs;

use crate::context::{Env, TargetFlags};
use crate::targets;

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
    /// Allow replacing the running container of a protected app (a database).
    #[arg(long)]
    pub include_protected: bool,
    /// Start the new version beside the old one and send it this percentage of
    /// requests (1-99); finish with `haloy canary promote` or `haloy canary abort`.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
    pub canary: Option<u8>,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (plan, targets) = targets::resolve(&args.flags, env, Needs::Everything)?;
    let mut err = std::io::stderr();

    // Build each distinct image once and push it once per registry, before any
    // target starts.
    let plans: Vec<_> = targets.iter().map(|t| t.plan.clone()).collect();
    let (prep_tx, mut prep_rx) = mpsc::unbounded_channel();
    let preparing = tokio::spawn(async move { prepare::prepare(&plans, &prep_tx).await });
    while let Some((stage, text)) = prep_rx.recv().await {
        let sink: &mut dyn Write = if args.json { &mut err } else { &mut *out };
        writeln!(sink, "[{stage}] {text}")?;
    }
    let images = preparing.await??;
    let mut jobs = Vec::new();
    for (target, image) in targets.into_iter().zip(images) {
        jobs.push(Job {
            plan: target.plan,
            server: target.server,
            token: target.token,
            image,
        });
    }
    let many = jobs.len() > 1;
    // Progress bars on a terminal; plain lines (a line per quarter) otherwise.
    let bars = !args.json && std::io::stdout().is_terminal();
    let options = Options {
        concurrency: fanout::DEFAULT_CONCURRENCY,
        show_logs: !args.no_logs,
        config_dir: plan
            .config_file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| env.cwd.clone()),
        env: env.vars.clone(),
        // A server on this machine's Docker already has what was built here;
        // HALOY_FORCE_UPLOAD=1 uploads anyway (tests and benchmarks use it).
        force_upload: env.vars.get("HALOY_FORCE_UPLOAD").is_some_and(|v| v == "1"),
        upload_bars: bars,
        include_protected: args.include_protected,
        canary: args.canary,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (pre, post) = (
        plan.global_pre_deploy.clone(),
        plan.global_post_deploy.clone(),
    );
    let runner =
        tokio::spawn(async move { deploy::deploy_all(&pre, &post, jobs, &options, tx).await });
    let mut uploads = Uploads::default();
    while let Some(line) = rx.recv().await {
        let prefix = if many || line.target == deploy::GLOBAL {
            format!("[{}] ", line.target)
        } else {
            String::new()
        };
        if let Some((sent, total)) = line.upload {
            uploads.update(&line.target, sent, total);
            continue;
        }
        let text = format!("{prefix}{}", line.text);
        if uploads.active() {
            uploads.println(&text);
        } else {
            let sink: &mut dyn Write = if args.json { &mut err } else { &mut *out };
            writeln!(sink, "{text}")?;
        }
    }
    uploads.finish();
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
        "{:<w_target$}  {:<w_server$}  {:<22}  {:<8}  RESULT",
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
            "{:<w_target$}  {:<w_server$}  {:<22}  {:<8}  {result}",
            o.target,
            o.server,
            o.deployment_id.as_deref().unwrap_or("-"),
            format!("{:.1}s", o.duration.as_secs_f64()),
        )?;
    }
    Ok(())
}

/// One progress bar per target uploading an image: bytes, rate and ETA.
#[derive(Default)]
struct Uploads {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl Uploads {
    fn active(&self) -> bool {
        self.bars.values().any(|bar| !bar.is_finished())
    }

    fn update(&mut self, target: &str, sent: u64, total: u64) {
        let multi = self
            .multi
            .get_or_insert_with(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        let bar = self.bars.entry(target.to_string()).or_insert_with(|| {
            let style = ProgressStyle::with_template(
                "[{prefix}] upload {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = multi.add(ProgressBar::new(total).with_style(style));
            bar.set_prefix(target.to_string());
            bar
        });
        bar.set_length(total);
        bar.set_position(sent);
        if sent >= total {
            bar.finish();
        }
    }

    /// Prints above the bars so they stay intact.
    fn println(&self, text: &str) {
        if let Some(multi) = &self.multi {
            let _ = multi.println(text);
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}
