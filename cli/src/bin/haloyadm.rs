//! `haloyadm`: server set-up and administration.

use std::process::ExitCode;

use clap::Parser;
use haloy_cli::admin::{AdminCli, AdminCommand, api, init};
use haloy_cli::context::Env;

fn main() -> ExitCode {
    let cli = AdminCli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &AdminCli) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let mut out = std::io::stdout().lock();
    match &cli.command {
        AdminCommand::Init(args) => init::run(args, &env, &mut out),
        AdminCommand::Api(command) => api::run(command, &env, &mut out),
    }
}
