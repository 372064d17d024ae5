//! `haloyadm api ...`: the API token.

use std::io::Write;

use haloyd::setup;

use super::InstallFlags;
use crate::context::Env;

#[derive(Debug, clap::Subcommand)]
pub enum ApiCommand {
    /// Print the API token for `haloy server add`.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub install: InstallFlags,
}

pub fn run(command: &ApiCommand, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        ApiCommand::Token(args) => {
            let home = env.vars.get("HOME").map(std::path::Path::new);
            let layout = setup::find_layout(args.install.local_install, home)?;
            let token = setup::read_token(&layout)?;
            writeln!(out, "{}", token.expose())?;
        }
    }
    Ok(())
}
