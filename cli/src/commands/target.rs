//! Resolving the selected targets into plans with a server and token each: the step
//! shared by every command that talks to haloyd.

use anyhow::Context as _;
use haloy_api::spec::Secret;
use haloy_controller::ConfigFile;
use haloy_controller::config::plan::{Plan, TargetPlan};
use haloy_controller::servers::{ServerStore, token_env};

use crate::context::{Env, TargetFlags};

/// One target, ready to connect.
pub struct Connected {
    pub plan: TargetPlan,
    pub server: String,
    pub token: Secret,
}

/// Loads the config, picks targets (`--targets`/`--all`; a multi-target file needs
/// one of them), resolves each and finds its server and token.
pub fn resolve(flags: &TargetFlags, env: &Env) -> anyhow::Result<(Plan, Vec<Connected>)> {
    let config = ConfigFile::load(flags.config.as_deref(), &env.cwd)?;
    let chosen = config.select(&flags.selection(), false)?;
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

/// A prefix for output lines when several targets are involved.
pub fn prefix(target: &Connected, many: bool) -> String {
    if many {
        format!("[{}] ", target.plan.label())
    } else {
        String::new()
    }
}
