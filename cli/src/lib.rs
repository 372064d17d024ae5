//! The `haloy` command line: argument parsing and presentation only. Everything it
//! does is in `haloy-controller`. `haloyadm` (crate `haloy-admin`) shares `Env`,
//! `block_on`, `exit_code` and `pem` with it.

pub mod commands;
pub mod context;
pub mod pem;
pub mod report;
pub mod targets;
pub mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs an async command to completion on a fresh runtime.
pub fn block_on(future: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// Prints an error with its causes and turns the outcome into the exit code.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Deploy containerized apps to your own servers with zero downtime, automatic TLS and
/// horizontal scaling.
#[derive(Debug, Parser)]
#[command(name = "haloy", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy the app to its targets with zero downtime.
    Deploy(commands::deploy::Args),
    /// Show what runs on each target: deployment, replicas and their health, request
    /// and error rates, response-time percentiles.
    Status(commands::status::Args),
    /// Show the app's logs from every replica.
    Logs(commands::logs::Args),
    /// Stop the app's containers.
    Stop(commands::stop::Args),
    /// Run a command in a running replica (`-i` for a shell with a terminal).
    Exec(commands::exec::Args),
    /// Forward a local port to a port of a running replica (a database, an admin page).
    Tunnel(commands::tunnel::Args),
    /// List earlier deployments each target can roll back to.
    #[command(name = "rollback-targets")]
    RollbackTargets(commands::rollback_targets::Args),
    /// Show the audit log: deploys, rollbacks, execs, stops and maintenance switches.
    History(commands::history::Args),
    /// Roll a target back to an earlier deployment, with zero downtime.
    Rollback(commands::rollback::Args),
    /// Remove images no deployment in the app's history needs (dry run unless --yes).
    #[command(name = "prune-images")]
    PruneImages(commands::prune_images::Args),
    /// Check a config file and show the resolved configuration per target.
    #[command(name = "validate-config")]
    ValidateConfig(commands::validate_config::Args),
    /// Put the app in maintenance (its domains answer 503 with a page) or take it out.
    #[command(subcommand)]
    Maintenance(commands::maintenance::MaintenanceCommand),
    /// Look at or finish a canary release (`haloy deploy --canary <percent>`).
    #[command(subcommand)]
    Canary(commands::canary::CanaryCommand),
    /// Manage the haloyd servers this workstation deploys to.
    #[command(subcommand)]
    Server(commands::server::ServerCommand),
    /// Write a starter haloy.yaml for the app in the current directory.
    Init(commands::init::Args),
    /// Print the JSON Schema of haloy.yaml (for editors and CI checks).
    Schema(commands::schema::Args),
    /// Print a shell completion script.
    Completion(commands::completion::Args),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn haloy_cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
