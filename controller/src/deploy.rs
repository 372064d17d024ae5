//! `deploy` to many targets at once: global hooks around a fan-out of per-target
//! deploys (pre_deploy, deploy, post_deploy). One failing target does not stop the
//! others; every output line is tagged with its target.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use haloy_api::spec::Secret;
use tokio::sync::mpsc;

use crate::client::{Client, ClientError};
use crate::config::plan::TargetPlan;
use crate::deployment::{ImageChoice, Progress};
use crate::fanout::{self, Labelled, Line, Lines};
use crate::hooks::{HookError, HookKind, run_hooks};
use crate::prepare;

/// One target ready to deploy.
#[derive(Clone)]
pub struct Job {
    pub plan: TargetPlan,
    pub server: String,
    pub token: Secret,
    /// Where the server gets the image.
    pub image: ImageChoice,
}

impl Labelled for Job {
    fn label(&self) -> &str {
        self.plan.label()
    }
}

/// How one target's deploy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub target: String,
    pub server: String,
    pub deployment_id: Option<String>,
    pub succeeded: bool,
    /// "deployed", or what failed.
    pub message: String,
    pub duration: Duration,
    pub uploaded_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Targets deployed at the same time.
    pub concurrency: usize,
    /// Stream the app's log lines during the deploy.
    pub show_logs: bool,
    /// Hooks run here (the config file's directory).
    pub config_dir: PathBuf,
    /// The environment hooks run with.
    pub env: HashMap<String, String>,
    /// Report upload progress as `Line::upload` updates (for progress bars) rather
    /// than a text line at each quarter.
    pub upload_bars: bool,
    /// Upload images built here even to a server that shares this machine's Docker
    /// engine (which has them already).
    pub force_upload: bool,
    /// Deploys may replace a protected app's running container.
    pub include_protected: bool,
    /// Deploy as a canary with this share of requests.
    pub canary: Option<u8>,
}

/// The result of a whole run.
#[derive(Debug)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    /// A failing `global_post_deploy`, reported after every target finished.
    pub global_post_error: Option<HookError>,
}

pub const GLOBAL: &str = "global";

/// Runs the global pre hooks, every job (at most `concurrency` at a time), then the
/// global post hooks. A failing global pre hook stops everything before any target.
pub async fn deploy_all(
    global_pre: &[String],
    global_post: &[String],
    jobs: Vec<Job>,
    options: &Options,
    lines: mpsc::UnboundedSender<Line>,
) -> Result<Run, HookError> {
    let global_lines = Lines::new(GLOBAL, lines.clone()).forwarder();
    run_hooks(
        HookKind::GlobalPreDeploy,
        global_pre,
        &options.config_dir,
        &options.env,
        &global_lines,
    )
    .await?;

    // One id for the whole run: every server records it, and one id rolls them back.
    let deployment_id = haloy_api::ids::proposed_id(haloy_api::ids::now_ms());
    let local_engine = if options.force_upload {
        None
    } else {
        prepare::local_engine(jobs.iter().map(|job| &job.image)).await
    };
    let finished = fanout::run(&jobs, options.concurrency, lines, |job, lines| {
        let (job, options) = (job.clone(), options.clone());
        let (id, local_engine) = (deployment_id.clone(), local_engine.clone());
        async move { deploy_one(job, &options, &id, local_engine.as_deref(), lines).await }
    })
    .await;
    let outcomes = finished
        .into_iter()
        .map(|finished| {
            finished.result.unwrap_or_else(|e| Outcome {
                target: finished.target,
                server: String::new(),
                deployment_id: None,
                succeeded: false,
                message: format!("internal error: {e}"),
                duration: Duration::ZERO,
                uploaded_bytes: 0,
            })
        })
        .collect();
    let global_post_error = run_hooks(
        HookKind::GlobalPostDeploy,
        global_post,
        &options.config_dir,
        &options.env,
        &global_lines,
    )
    .await
    .err();
    Ok(Run {
        outcomes,
        global_post_error,
    })
}

async fn deploy_one(
    job: Job,
    options: &Options,
    deployment_id: &str,
    local_engine: Option<&str>,
    lines: Lines,
) -> Outcome {
    let started = Instant::now();
    let label = job.plan.label().to_string();
    let out = lines.forwarder();
    let mut outcome = Outcome {
        target: label.clone(),
        server: job.server.clone(),
        deployment_id: None,
        succeeded: false,
        message: String::new(),
        duration: Duration::ZERO,
        uploaded_bytes: 0,
    };
    let result = async {
        run_hooks(
            HookKind::PreDeploy,
            &job.plan.pre_deploy,
            &options.config_dir,
            &options.env,
            &out,
        )
        .await?;
        let mut client = Client::connect(&job.server, &job.token).await?;
        client.propose_deployment_id(Some(deployment_id.to_string()));
        client.include_protected(options.include_protected);
        client.canary(options.canary);
        let proposed = deployment_id;
        let spec = &job.plan.spec;
        let _ = out.send(format!(
            "deploying {} ({}) to {}",
            spec.name,
            spec.image.reference(),
            client.server()
        ));
        let image = if prepare::shares_engine(&job.image, local_engine, &mut client).await {
            let _ =
                out.send("the server shares this machine's Docker: nothing to upload".to_string());
            ImageChoice::Existing
        } else {
            job.image.clone()
        };
        let show_logs = options.show_logs;
        let upload_started = Instant::now();
        let mut reported_quarter = 0u64;
        let upload_bars = options.upload_bars;
        let report = client
            .deploy(spec, image, |p| {
                let text = match p {
                    Progress::Accepted { deployment_id } if deployment_id != proposed => {
                        Some(format!(
                            "deployment {deployment_id} (not {proposed}: the server has a newer deployment of the app or its clock is over an hour off, so roll it back by this id)"
                        ))
                    }
                    Progress::Accepted { deployment_id } => {
                        Some(format!("deployment {deployment_id}"))
                    }
                    Progress::Phase { name, message } => Some(format!("==> {name}: {message}")),
                    Progress::Log { replica, text } if show_logs => {
                        Some(format!("    {replica} | {text}"))
                    }
                    Progress::Agent { text } if show_logs => Some(format!("    haloyd | {text}")),
                    Progress::Log { .. } | Progress::Agent { .. } => None,
                    Progress::UploadPlanned { layers: 0, of, .. } => {
                        Some(format!("the server has all {of} layers of the image"))
                    }
                    Progress::UploadPlanned { layers, of, bytes } => Some(format!(
                        "uploading {layers} of {of} layers ({bytes} bytes); the server has the rest"
                    )),
                    Progress::Uploading { sent, total } if upload_bars => {
                        lines.upload(sent, total);
                        None
                    }
                    Progress::Uploading { sent, total } if total > 0 => {
                        // A line at each quarter: bytes, rate and time left.
                        let quarter = sent * 4 / total;
                        (quarter > reported_quarter).then(|| {
                            reported_quarter = quarter;
                            upload_line(sent, total, upload_started.elapsed())
                        })
                    }
                    Progress::Uploading { .. } => None,
                    Progress::Uploaded { bytes } => Some(format!("uploaded {bytes} bytes")),
                };
                if let Some(text) = text {
                    let _ = out.send(text);
                }
            })
            .await?;
        Ok::<_, TargetError>(report)
    }
    .await;
    match result {
        Ok(report) => {
            outcome.deployment_id = Some(report.deployment_id.clone());
            outcome.uploaded_bytes = report.uploaded_bytes;
            if report.succeeded {
                match run_hooks(
                    HookKind::PostDeploy,
                    &job.plan.post_deploy,
                    &options.config_dir,
                    &options.env,
                    &out,
                )
                .await
                {
                    Ok(()) => {
                        outcome.succeeded = true;
                        outcome.message = "deployed".into();
                    }
                    Err(e) => outcome.message = format!("deployed, but {e}"),
                }
            } else {
                outcome.message = format!(
                    "deployment {} {}: {}; the previous version keeps serving",
                    report.deployment_id, report.status, report.reason
                );
            }
        }
        Err(e) => outcome.message = e.to_string(),
    }
    outcome.duration = started.elapsed();
    outcome
}

/// Why a deploy to one target did not get as far as a report.
#[derive(Debug, thiserror::Error)]
enum TargetError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// "uploaded 12.0 of 48.0 MiB (25%), 10.2 MiB/s, about 4 s left".
fn upload_line(sent: u64, total: u64, elapsed: Duration) -> String {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let rate = mib(sent) / elapsed.as_secs_f64().max(0.001);
    let left = if rate > 0.0 {
        mib(total.saturating_sub(sent)) / rate
    } else {
        0.0
    };
    format!(
        "uploaded {:.1} of {:.1} MiB ({}%), {rate:.1} MiB/s, about {left:.0} s left",
        mib(sent),
        mib(total),
        sent * 100 / total.max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_lines_show_bytes_rate_and_time_left() {
        let line = upload_line(12 << 20, 48 << 20, Duration::from_secs(2));
        assert_eq!(
            line,
            "uploaded 12.0 of 48.0 MiB (25%), 6.0 MiB/s, about 6 s left"
        );
    }
}
