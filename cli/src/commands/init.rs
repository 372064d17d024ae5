//! `haloy init`: write a starter haloy.yaml in the current directory.

use std::io::Write;

use anyhow::Context as _;
use haloy_controller::config::load::CONFIG_FILE_NAMES;
use haloy_controller::config::starter;

use crate::context::Env;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replace an existing haloy.yaml (a haloy.yml, .json or .toml is left alone).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let path = env.cwd.join("haloy.yaml");
    for name in CONFIG_FILE_NAMES {
        let existing = env.cwd.join(name);
        let replaceable = args.force && *name == "haloy.yaml";
        if existing.exists() && !replaceable {
            let hint = if *name == "haloy.yaml" {
                "; add --force to replace it"
            } else {
                "; edit it, or remove it first"
            };
            anyhow::bail!(
                "{} already exists, not overwriting it{hint}",
                existing.display()
            );
        }
    }
    let dir_name = env
        .cwd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = starter::app_name_from(&dir_name);
    let dockerfile = env.cwd.join("Dockerfile").is_file();
    std::fs::write(&path, starter::render(&name, dockerfile))
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "wrote {} for app {name}", path.display())?;
    writeln!(
        out,
        "next: replace {} and run `haloy validate-config`",
        starter::PLACEHOLDERS.join(", ")
    )?;
    Ok(())
}
