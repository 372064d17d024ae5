//! `haloyadm`: server set-up and administration.

use std::process::ExitCode;

use clap::Parser;
use haloy_admin::{AdminCli, AdminCommand, api, init, service, status, upgrade};
use haloy_cli::context::Env;

fn main() -> ExitCode {
    let cli = AdminCli::parse();
    haloy_cli::exit_code(run(&cli))
}

fn run(cli: &AdminCli) -> anyhow::Result<()> {
    let env = Env::from_process()?;
    let mut out = std::io::stdout().lock();
    match &cli.command {
        AdminCommand::Init(args) => init::run(args, &env, &mut out),
        AdminCommand::Start(args) => haloy_cli::block_on(service::start(args, &env, &mut out)),
        AdminCommand::Stop(args) => haloy_cli::block_on(service::stop(args, &env, &mut out)),
        AdminCommand::Restart(args) => haloy_cli::block_on(service::restart(args, &env, &mut out)),
        AdminCommand::Upgrade(args) => haloy_cli::block_on(upgrade::run(args, &env, &mut out)),
        AdminCommand::Status(args) => haloy_cli::block_on(status::run(args, &env, &mut out)),
        AdminCommand::Api(command) => api::run(command, &env, &mut out),
    }
}
