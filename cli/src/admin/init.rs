//! `haloyadm init`: first-time setup of a server.

use std::io::Write;

use anyhow::Context as _;
use haloyd::config::Layout;
use haloyd::setup::{self, InitOptions};

use super::InstallFlags;
use crate::context::Env;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub install: InstallFlags,
    /// Domain that will serve the Haloy API over HTTPS, e.g. haloy.example.com.
    #[arg(long, value_name = "DOMAIN", requires = "acme_email")]
    pub api_domain: Option<String>,
    /// Contact e-mail for Let's Encrypt; also the default for apps that set none.
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// HAProxy's HTTP port.
    #[arg(long, default_value_t = 80)]
    pub http_port: u16,
    /// HAProxy's HTTPS port.
    #[arg(long, default_value_t = 443)]
    pub https_port: u16,
    /// Port of haloyd's gRPC API on 127.0.0.1.
    #[arg(long, default_value_t = 9999)]
    pub api_port: u16,
    /// Address HAProxy listens on for HTTP and HTTPS.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// Rewrite the settings of an existing install (the API token is kept).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let layout = if args.install.local_install {
        let home = env
            .vars
            .get("HOME")
            .context("HOME is not set; set it or install system-wide without --local-install")?;
        Layout::local(home.as_ref())
    } else {
        Layout::system()
    };
    let (config, token) = setup::init(&InitOptions {
        layout: layout.clone(),
        api_port: args.api_port,
        http_port: args.http_port,
        https_port: args.https_port,
        api_domain: args.api_domain.clone(),
        acme_email: args.acme_email.clone(),
        bind_address: args.bind_address,
        force: args.force,
    })?;
    writeln!(out, "haloyd initialized")?;
    writeln!(out, "  settings:  {}", layout.config_file().display())?;
    writeln!(out, "  data:      {}", layout.data_dir.display())?;
    writeln!(out, "  api token: {}", token.expose())?;
    let server = config
        .api_domain
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{}", config.api_port));
    writeln!(
        out,
        "on your workstation: haloy server add {server} <api token>"
    )?;
    Ok(())
}
