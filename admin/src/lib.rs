//! `haloyadm`: sets up and administers haloyd and HAProxy on a server.

pub mod api;
pub mod containerised;
pub mod containers;
pub mod image;
pub mod init;
pub mod service;
pub mod status;
pub mod upgrade;

use clap::{Parser, Subcommand};

/// Set up and administer haloyd and HAProxy on this server.
#[derive(Debug, Parser)]
#[command(name = "haloyadm", version, propagate_version = true)]
pub struct AdminCli {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create haloyd's settings, data directories and API token (first-time setup).
    Init(init::Args),
    /// Start haloyd and HAProxy as Docker containers (returns once both answer).
    Start(service::StartArgs),
    /// Stop haloyd and HAProxy and remove their containers; app containers keep running.
    Stop(service::StopArgs),
    /// Restart haloyd (a new container); HAProxy keeps serving unless --haproxy.
    Restart(service::RestartArgs),
    /// Run haloyd from the newly installed binary, and HAProxy from another image
    /// with --haproxy-image, without a gap in serving.
    Upgrade(upgrade::Args),
    /// Show haloyd's and HAProxy's containers and where the API answers.
    Status(status::Args),
    /// Manage the haloyd API.
    #[command(subcommand)]
    Api(api::ApiCommand),
}

/// Where the install lives, shared by every command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstallFlags {
    /// Use the user's directories (~/.config/haloy, ~/.local/share/haloy) instead of
    /// /etc/haloy and /var/lib/haloy; for non-root installs.
    #[arg(long)]
    pub local_install: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn haloyadm_cli_definition_is_consistent() {
        super::AdminCli::command().debug_assert();
    }
}
