//! `haloy server add|list|delete`: the servers this workstation deploys to.

use std::io::Write;

use haloy_controller::servers::{ServerStore, token_env};

use crate::context::Env;

#[derive(Debug, clap::Subcommand)]
pub enum ServerCommand {
    /// Add a server and its API token (from `haloyadm api token` on the server).
    Add(AddArgs),
    /// List configured servers and whether their tokens are set.
    List(ListArgs),
    /// Remove a server and its stored token.
    Delete(DeleteArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Server domain or address, optionally with a port: haloy.example.com,
    /// 127.0.0.1:9999. Loopback addresses speak plaintext unless written https://…
    /// or given --fingerprint or --ca-cert; every other server speaks TLS.
    pub server: String,
    /// The server's API token.
    pub token: String,
    /// Replace the token if the server is already configured.
    #[arg(long)]
    pub force: bool,
    /// Pin haloyd's self-signed API certificate by its SHA-256 fingerprint (printed
    /// by `haloyadm api token`); for servers without an API domain.
    #[arg(long, value_name = "SHA256", conflicts_with = "ca_cert")]
    pub fingerprint: Option<String>,
    /// Trust the CA certificates in this PEM file for the server's TLS instead of
    /// the system's roots.
    #[arg(long, value_name = "PEM_FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The server to remove, as listed by `haloy server list`.
    pub server: String,
}

pub fn run(command: &ServerCommand, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = env.haloy_dir();
    let mut store = ServerStore::open(dir.as_deref())?;
    match command {
        ServerCommand::Add(args) => {
            let fingerprint = match &args.fingerprint {
                Some(text) => Some(haloy_controller::tls::normalize_fingerprint(text)?),
                None => None,
            };
            let ca_cert = match &args.ca_cert {
                Some(path) => Some(crate::pem::checked_pem(
                    "--ca-cert",
                    path,
                    "a PEM file of CA certificates",
                )?),
                None => None,
            };
            let server = store.add_with_tls(
                &args.server,
                &args.token,
                args.force,
                haloy_controller::tls::TlsOptions {
                    fingerprint,
                    ca_cert,
                    tls: false,
                },
            )?;
            let entry = store
                .entry(&server)
                .map(|e| e.token_env.clone())
                .unwrap_or_default();
            writeln!(
                out,
                "added server {server}; its token is stored as {entry} in {}",
                store.dotenv().display()
            )?;
        }
        ServerCommand::List(args) => {
            let listing = store.list(&token_env(&env.vars, dir.as_deref()));
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&listing)?)?;
            } else if listing.is_empty() {
                writeln!(
                    out,
                    "no servers configured; add one with `haloy server add <server> <token>`"
                )?;
            } else {
                let width = listing
                    .iter()
                    .map(|s| s.server.len())
                    .max()
                    .unwrap_or(6)
                    .max(6);
                writeln!(out, "{:<width$}  {:<7}  TOKEN VARIABLE", "SERVER", "TOKEN")?;
                for row in listing {
                    let state = if row.has_token { "set" } else { "missing" };
                    writeln!(out, "{:<width$}  {state:<7}  {}", row.server, row.token_env)?;
                }
            }
        }
        ServerCommand::Delete(args) => {
            let server = store.delete(&args.server)?;
            writeln!(out, "removed server {server} and its token")?;
        }
    }
    Ok(())
}
