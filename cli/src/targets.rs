//! Choosing targets and resolving them into plans with a server and token each: the
//! step shared by every command that talks to haloyd.

use anyhow::Context as _;
use haloy_controller::config::plan::Plan;
use haloy_controller::fanout::Target;
use haloy_controller::servers::{ServerStore, token_env};
use haloy_controller::{ConfigError, ConfigFile, Needs, TargetSelection};
use std::io::{BufRead, IsTerminal, Write};

use crate::context::{Env, TargetFlags};

/// Loads the config, picks targets (`--targets`/`--all`; on a multi-target file
/// without either, a prompt on a terminal and an error listing them otherwise),
/// resolves what the command `needs` of each and finds its server and token.
pub fn resolve(
    flags: &TargetFlags,
    env: &Env,
    needs: Needs,
) -> anyhow::Result<(Plan, Vec<Target>)> {
    let config = ConfigFile::load(flags.config.as_deref(), &env.cwd)?;
    let chosen = match config.select(&flags.selection(), false) {
        Err(ConfigError::TargetRequired { available, .. }) if std::io::stdin().is_terminal() => {
            let names = pick(&available)?;
            config.select(&TargetSelection { names, all: false }, false)?
        }
        other => other?,
    };
    let haloy_dir = env.haloy_dir();
    let plan = config.plan(&chosen, needs, &env.vars, &env.cwd, haloy_dir.as_deref())?;
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
        targets.push(Target {
            plan: target.clone(),
            server,
            token,
        });
    }
    Ok((plan, targets))
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
