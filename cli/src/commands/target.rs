//! Resolving the selected targets into plans with a server and token each: the step
//! shared by every command that talks to haloyd.

use anyhow::Context as _;
use haloy_api::spec::Secret;
use haloy_controller::config::plan::{Plan, TargetPlan};
use haloy_controller::servers::{ServerStore, token_env};
use haloy_controller::{ConfigError, ConfigFile, TargetSelection};
use std::io::{BufRead, IsTerminal, Write};

use crate::context::{Env, TargetFlags};

/// One target, ready to connect.
pub struct Connected {
    pub plan: TargetPlan,
    pub server: String,
    pub token: Secret,
}

/// Loads the config, picks targets (`--targets`/`--all`; on a multi-target file
/// without either, a prompt on a terminal and an error listing them otherwise),
/// resolves each and finds its server and token.
pub fn resolve(flags: &TargetFlags, env: &Env) -> anyhow::Result<(Plan, Vec<Connected>)> {
    let config = ConfigFile::load(flags.config.as_deref(), &env.cwd)?;
    let chosen = match config.select(&flags.selection(), false) {
        Err(ConfigError::TargetRequired { available, .. }) if std::io::stdin().is_terminal() => {
            let names = pick(&available)?;
            config.select(&TargetSelection { names, all: false }, false)?
        }
        other => other?,
    };
    let haloy_dir = env.haloy_dir();
    let plan = config.plan(&chosen, &env.vars, &env.cwd, haloy_dir.as_deref())?;
    let store = ServerStore::open(haloy_dir.as_deref())?;
    let tokens = token_env(&env.vars, haloy_dir.as_deref());
    let mut targets = Vec::new();
    for target in &plan.targets {
        let (server, token) = store
            .connection(
                flags.server.as_deref(),
                target.server.as_deref(),
                target.api_token.as_ref(),
                &tokens,
            )
            .with_context(|| format!("target {}", target.label()))?;
        targets.push(Connected {
            plan: target.clone(),
            server,
            token,
        });
    }
    Ok((plan, targets))
}

/// Where a job of [`run_each`] says things: lines go to stdout prefixed with the
/// target (when there are several), as they come.
#[derive(Clone)]
pub struct Lines {
    prefix: String,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Lines {
    pub fn say(&self, text: impl std::fmt::Display) {
        let _ = self.tx.send(format!("{}{text}", self.prefix));
    }
}

/// Runs `job` for every target at once, printing the lines each says as they come.
/// With several targets a failing job's error is said on stderr at once (the others
/// may run for long yet) and the result names the failed targets; with one, the
/// result is its error. Returns each job's value, in target order.
pub async fn run_each<T, F, Fut>(
    targets: &[Connected],
    out: &mut dyn Write,
    job: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(&Connected, Lines) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let many = targets.len() > 1;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let jobs: Vec<_> = targets
        .iter()
        .map(|target| {
            let prefix = prefix(target, many);
            let work = job(
                target,
                Lines {
                    prefix: prefix.clone(),
                    tx: tx.clone(),
                },
            );
            let label = target.plan.label().to_string();
            tokio::spawn(async move {
                work.await.map_err(|e| {
                    let message = format!("{prefix}{e:#}");
                    if many {
                        eprintln!("error: {message}");
                    }
                    (label, message)
                })
            })
        })
        .collect();
    drop(tx);
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for job in jobs {
        match job.await? {
            Ok(value) => done.push(value),
            Err(failure) => failed.push(failure),
        }
    }
    match failed.as_slice() {
        [] => Ok(done),
        [(_, message)] if !many => anyhow::bail!("{message}"),
        _ => anyhow::bail!(
            "{} of {} targets failed: {}",
            failed.len(),
            targets.len(),
            failed
                .iter()
                .map(|(label, _)| label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A prefix for output lines when several targets are involved.
pub fn prefix(target: &Connected, many: bool) -> String {
    if many {
        format!("[{}] ", target.plan.label())
    } else {
        String::new()
    }
}

/// Asks which targets to use, by number or name; `all` picks every one.
fn pick(available: &[String]) -> anyhow::Result<Vec<String>> {
    let mut err = std::io::stderr();
    writeln!(err, "this config has several targets:")?;
    for (i, name) in available.iter().enumerate() {
        writeln!(err, "  {}) {name}", i + 1)?;
    }
    write!(
        err,
        "deploy to which? (numbers or names, comma-separated, or all): "
    )?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    parse_pick(&answer, available)
}

/// Turns "1,3", "staging" or "all" into target names.
pub fn parse_pick(answer: &str, available: &[String]) -> anyhow::Result<Vec<String>> {
    let answer = answer.trim();
    if answer.eq_ignore_ascii_case("all") {
        return Ok(available.to_vec());
    }
    let mut names = Vec::new();
    for part in answer.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let name = match part.parse::<usize>() {
            Ok(n) if (1..=available.len()).contains(&n) => available[n - 1].clone(),
            _ if available.iter().any(|a| a == part) => part.to_string(),
            _ => anyhow::bail!(
                "{part:?} is not one of the targets ({}); run again and pick by number or name",
                available.join(", ")
            ),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    anyhow::ensure!(!names.is_empty(), "no target chosen; nothing to do");
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::parse_pick;

    #[test]
    fn picks_by_number_name_or_all() {
        let available = vec![
            "production".to_string(),
            "staging".to_string(),
            "us-east".to_string(),
        ];
        assert_eq!(
            parse_pick("1, 3\n", &available).unwrap(),
            ["production", "us-east"]
        );
        assert_eq!(parse_pick("staging", &available).unwrap(), ["staging"]);
        assert_eq!(parse_pick("ALL", &available).unwrap().len(), 3);
        assert!(
            parse_pick("4", &available)
                .unwrap_err()
                .to_string()
                .contains("not one of the targets")
        );
        assert!(parse_pick("", &available).is_err());
    }
}
