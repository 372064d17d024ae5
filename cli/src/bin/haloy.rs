//! `haloy`: the workstation CLI.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use haloy_cli::context::Env;
use haloy_cli::{Cli, Command, commands};

fn main() -> ExitCode {
    // With COMPLETE=<shell> set, answer the shell's completion request and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => haloy_cli::exit_code(Err(e)),
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let env = Env::from_process()?;
    if let Command::Exec(args) = &cli.command {
        // Before stdout is locked here: the command's output is written from other
        // threads. Its exit code becomes haloy's.
        return Ok(commands::exec::main(args, &env));
    }
    let mut out = std::io::stdout().lock();
    // Not locked for the whole run: tasks on other threads report errors on stderr.
    let mut err = std::io::stderr();
    let done = match &cli.command {
        Command::Exec(args) => return Ok(commands::exec::main(args, &env)),
        Command::Deploy(args) => haloy_cli::block_on(commands::deploy::run(args, &env, &mut out)),
        Command::Status(args) => haloy_cli::block_on(commands::status::run(args, &env, &mut out)),
        Command::Logs(args) => haloy_cli::block_on(commands::logs::run(args, &env, &mut out)),
        Command::History(args) => haloy_cli::block_on(commands::history::run(args, &env, &mut out)),
        Command::Stop(args) => haloy_cli::block_on(commands::stop::run(args, &env, &mut out)),
        Command::Tunnel(args) => haloy_cli::block_on(commands::tunnel::run(args, &env, &mut out)),
        Command::PruneImages(args) => {
            haloy_cli::block_on(commands::prune_images::run(args, &env, &mut out))
        }
        Command::RollbackTargets(args) => {
            haloy_cli::block_on(commands::rollback_targets::run(args, &env, &mut out))
        }
        Command::Rollback(args) => {
            haloy_cli::block_on(commands::rollback::run(args, &env, &mut out))
        }
        Command::ValidateConfig(args) => {
            commands::validate_config::run(args, &env, &mut out, &mut err)
        }
        Command::Maintenance(command) => {
            haloy_cli::block_on(commands::maintenance::run(command, &env, &mut out))
        }
        Command::Canary(command) => {
            haloy_cli::block_on(commands::canary::run(command, &env, &mut out))
        }
        Command::Server(command) => commands::server::run(command, &env, &mut out),
        Command::Init(args) => commands::init::run(args, &env, &mut out),
        Command::Schema(args) => commands::schema::run(args, &mut out),
        Command::Completion(args) => commands::completion::run(args, &mut out),
    };
    done.map(|()| ExitCode::SUCCESS)
}
