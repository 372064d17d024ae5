//! `haloy completion <shell>`: print a completion script.

use clap::CommandFactory;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let mut command = crate::Cli::command();
    clap_complete::generate(args.shell, &mut command, "haloy", out);
    Ok(())
}
