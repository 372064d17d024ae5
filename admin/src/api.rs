//! `haloyadm api ...`: the API token and how the API is reached over TLS.

use std::io::Write;

use haloyd::setup;

use super::InstallFlags;
use haloy_cli::context::Env;

#[derive(Debug, clap::Subcommand)]
pub enum ApiCommand {
    /// Print the API token for `haloy server add` (and, on stderr, the fingerprint of
    /// haloyd's self-signed API certificate when api_tls_port is set).
    Token(TokenArgs),
    /// Serve the API at a domain over HTTPS through HAProxy, with an ACME
    /// certificate; takes effect at the next `haloyadm restart`.
    Domain(DomainArgs),
}

#[derive(Debug, clap::Args)]
pub struct DomainArgs {
    /// The API's domain, e.g. haloy.example.com; it must point at this server.
    pub domain: String,
    /// Contact e-mail for the certificate's ACME account.
    pub email: String,
    #[command(flatten)]
    pub install: InstallFlags,
}

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Replace the token with a new one and print it; the old one stops working
    /// with haloyd's next call (update `haloy server add` and CI secrets).
    #[arg(long)]
    pub rotate: bool,
    #[command(flatten)]
    pub install: InstallFlags,
}

pub fn run(command: &ApiCommand, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        ApiCommand::Token(args) => {
            let home = env.vars.get("HOME").map(std::path::Path::new);
            let layout = setup::find_layout(args.install.local_install, home)?;
            let token = if args.rotate {
                let token = setup::rotate_token(&layout)?;
                // On stderr, so `$(haloyadm api token --rotate)` is the token alone.
                eprintln!(
                    "the API token was replaced; the previous one no longer works. Update each workstation with `haloy server add <server> <token> --force` and your CI secrets."
                );
                token
            } else {
                setup::read_token(&layout)?
            };
            writeln!(out, "{}", token.expose())?;
            let config = haloyd::config::HaloydConfig::load(&layout.config_file())?;
            if config.api_tls_port.is_some() {
                let fingerprint = setup::api_identity(&layout)?.fingerprint()?;
                // On stderr, so `$(haloyadm api token)` stays the token alone.
                eprintln!(
                    "api certificate sha256 fingerprint: {fingerprint}\npin it with: haloy server add <server>:{} <token> --fingerprint {fingerprint}",
                    config.api_tls_port.unwrap_or_default()
                );
            }
        }
        ApiCommand::Domain(args) => {
            let home = env.vars.get("HOME").map(std::path::Path::new);
            let layout = setup::find_layout(args.install.local_install, home)?;
            let config = setup::set_api_domain(&layout, &args.domain, &args.email)?;
            writeln!(
                out,
                "the API will be served at https://{}:{} once haloyd restarts (`haloyadm restart{}`); it gets its certificate from {}",
                args.domain,
                config.https_port,
                if args.install.local_install {
                    " --local-install"
                } else {
                    ""
                },
                config.acme_directory_url()
            )?;
            let port = config.https_suffix();
            writeln!(
                out,
                "on your workstation: haloy server add {}{port} <api token>",
                args.domain
            )?;
        }
    }
    Ok(())
}
