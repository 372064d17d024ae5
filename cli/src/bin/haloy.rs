//! `haloy`: the workstation CLI.

use std::process::ExitCode;

use clap::Parser;
use haloy_cli::context::Env;
use haloy_cli::{Cli, Command, commands};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    match &cli.command {
        Command::ValidateConfig(args) => {
            commands::validate_config::run(args, &env, &mut out, &mut err)
        }
        Command::Server(command) => commands::server::run(command, &env, &mut out),
        Command::Completion(args) => commands::completion::run(args, &mut out),
    }
}
