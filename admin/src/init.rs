//! `haloyadm init`: first-time setup of a server.

use std::io::Write;

use anyhow::Context as _;
use haloyd::config::Layout;
use haloyd::setup::{self, InitOptions};

use super::InstallFlags;
use haloy_cli::context::Env;

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
    /// ACME directory URL for certificates (default: Let's Encrypt production).
    #[arg(long, value_name = "URL", conflicts_with = "acme_staging")]
    pub acme_directory: Option<String>,
    /// Use Let's Encrypt's staging directory (untrusted certificates, for trials).
    #[arg(long)]
    pub acme_staging: bool,
    /// A PEM CA certificate to trust for the ACME directory's HTTPS (a private or
    /// test ACME server).
    #[arg(long, value_name = "PEM_FILE")]
    pub acme_ca_cert: Option<std::path::PathBuf>,
    /// Also serve the API over TLS with haloyd's own self-signed certificate on this
    /// port of --bind-address; clients pin it with `haloy server add --fingerprint`.
    #[arg(long, value_name = "PORT")]
    pub api_tls_port: Option<u16>,
    /// Rewrite the settings of an existing install (the API token is kept).
    #[arg(long)]
    pub force: bool,
    /// HAProxy's image (default: the official haproxy:2.8). Without a registry,
    /// build one with scripts/haproxy-image and name it here.
    #[arg(long, value_name = "IMAGE")]
    pub haproxy_image: Option<String>,
    /// Run haloyd and HAProxy as host processes instead of Docker containers: for
    /// test suites that run many haloyd instances; needs HAProxy installed on the host
    /// and nothing restarts haloyd.
    #[arg(long, hide = true)]
    pub host_processes: bool,
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
    let acme_ca_cert = match &args.acme_ca_cert {
        Some(path) => Some(haloy_cli::pem::checked_pem(
            "--acme-ca-cert",
            path,
            "the ACME server's CA certificate (PEM)",
        )?),
        None => None,
    };
    let (config, token) = setup::init(&InitOptions {
        layout: layout.clone(),
        api_port: args.api_port,
        http_port: args.http_port,
        https_port: args.https_port,
        api_domain: args.api_domain.clone(),
        acme_email: args.acme_email.clone(),
        bind_address: args.bind_address,
        acme_directory: args.acme_directory.clone(),
        acme_staging: args.acme_staging,
        acme_ca_cert,
        api_tls_port: args.api_tls_port,
        force: args.force,
        run_as: if args.host_processes {
            haloyd::config::RunAs::Processes
        } else {
            haloyd::config::RunAs::Docker
        },
        haproxy_image: args.haproxy_image.clone(),
    })?;
    writeln!(out, "haloyd initialized")?;
    writeln!(out, "  settings:  {}", layout.config_file().display())?;
    writeln!(out, "  data:      {}", layout.data_dir.display())?;
    writeln!(out, "  api token: {}", token.expose())?;
    if config.run_as == haloyd::config::RunAs::Docker {
        writeln!(out, "  haproxy:   {}", config.haproxy_image)?;
        writeln!(
            out,
            "start haloyd and HAProxy (Docker containers) with: haloyadm start{}",
            if args.install.local_install {
                " --local-install"
            } else {
                ""
            }
        )?;
    }
    if config.api_tls_port.is_some() {
        let fingerprint = setup::api_identity(&layout)?.fingerprint()?;
        writeln!(out, "  api certificate sha256 fingerprint: {fingerprint}")?;
    }
    match (&config.api_domain, config.api_tls_port) {
        (Some(domain), _) => writeln!(
            out,
            "on your workstation: haloy server add {domain}{} <api token>",
            config.https_suffix()
        )?,
        (None, Some(port)) => writeln!(
            out,
            "on your workstation: haloy server add <this server's address>:{port} <api token> --fingerprint <fingerprint>"
        )?,
        (None, None) => writeln!(
            out,
            "on your workstation: haloy server add 127.0.0.1:{} <api token> (through an SSH tunnel), or set up TLS with `haloyadm api domain <domain> <email>`",
            config.api_port
        )?,
    }
    Ok(())
}
