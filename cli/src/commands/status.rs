//! `haloy status`: what runs on each target's server.

use std::io::Write;

use haloy_controller::client::{Client, DeploymentInfo, StatusReport};

use super::target;
use crate::context::{Env, TargetFlags};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = target::resolve(&args.flags, env)?;
    for (i, target) in targets.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if let Some(name) = &target.plan.target {
            writeln!(out, "target:     {name} ({})", target.server)?;
        }
        let mut client = Client::connect(&target.server, &target.token).await?;
        let report = client.status(&target.plan.spec.name).await?;
        print_report(&report, out)?;
    }
    Ok(())
}

fn deployment_line(d: &DeploymentInfo) -> String {
    let mut line = format!("{} {} ({})", d.id, d.status, d.image);
    if !d.reason.is_empty() {
        line.push_str(&format!(": {}", d.reason));
    }
    line
}

fn print_report(report: &StatusReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "app:        {}", report.app)?;
    match &report.current {
        Some(current) => writeln!(out, "deployment: {}", deployment_line(current))?,
        None => writeln!(out, "deployment: none has succeeded yet")?,
    }
    if let Some(latest) = &report.latest {
        writeln!(out, "latest:     {}", deployment_line(latest))?;
    }
    let domains: Vec<String> = report
        .domains
        .iter()
        .map(|d| {
            if d.aliases.is_empty() {
                d.canonical.clone()
            } else {
                format!("{} (aliases: {})", d.canonical, d.aliases.join(", "))
            }
        })
        .collect();
    writeln!(
        out,
        "domains:    {}",
        if domains.is_empty() {
            "none".to_string()
        } else {
            domains.join(", ")
        }
    )?;
    let healthy = report.replicas.iter().filter(|r| r.health == "up").count();
    writeln!(
        out,
        "replicas:   {healthy}/{} healthy",
        report.replicas.len()
    )?;
    let width = report
        .replicas
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(out, "  {:<width$}  {:<12}  HEALTH", "NAME", "STATE")?;
    for r in &report.replicas {
        writeln!(out, "  {:<width$}  {:<12}  {}", r.name, r.state, r.health)?;
    }
    Ok(())
}
