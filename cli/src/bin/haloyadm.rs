//! `haloyadm`: server set-up and administration.

use std::process::ExitCode;

use clap::Parser;
use haloy_cli::admin::{AdminCli, AdminCommand, api, init, service};
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
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
    };
    match &cli.command {
        AdminCommand::Init(args) => init::run(args, &env, &mut out),
        AdminCommand::Start(args) => runtime()?.block_on(service::start(args, &env, &mut out)),
        AdminCommand::Stop(args) => runtime()?.block_on(service::stop(args, &env, &mut out)),
        AdminCommand::Restart(args) => runtime()?.block_on(service::restart(args, &env, &mut out)),
        AdminCommand::Api(command) => api::run(command, &env, &mut out),
    }
}
