//! `haloy schema`: print the JSON Schema of haloy.yaml for editors and CI checks.

use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    out.write_all(haloy_controller::config::schema::render().as_bytes())?;
    Ok(())
}
