//! `haloy completion <shell>`: print the script that registers haloy's completions.
//!
//! Completions are dynamic: the shell asks `haloy` itself (with `COMPLETE=<shell>`
//! set) for candidates, so `--targets` completes the target names of the config in
//! the current directory.

use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The environment variable that switches `haloy` into completion mode.
pub const COMPLETE_VAR: &str = "COMPLETE";

pub fn run(args: &Args, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    // The registration script is what `COMPLETE=<shell> haloy` prints; asking our own
    // binary keeps the two in step.
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .env(COMPLETE_VAR, args.shell.to_string())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "cannot generate the {} completion script: {}",
        args.shell,
        String::from_utf8_lossy(&output.stderr)
    );
    out.write_all(&output.stdout)?;
    Ok(())
}
