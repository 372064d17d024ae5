//! `haloy tunnel`: forward a loopback port on this machine to a port of a running
//! replica, each connection over its own stream of the API connection (TLS when the
//! API is), until Ctrl-C.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use haloy_controller::Needs;
use haloy_controller::client::{Client, TunnelTarget};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::context::{Env, TargetFlags};
use crate::targets;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Local port to listen on at 127.0.0.1 (default: the container port, or a free
    /// one when that is taken).
    #[arg(value_name = "LOCAL_PORT")]
    pub local_port: Option<u16>,
    /// Container port to reach (default: the app's `port`).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Forward to the N-th running replica, counted from 1 as `haloy status` lists
    /// them (default: the first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub container: Option<u32>,
}

pub async fn run(args: &Args, env: &Env, out: &mut dyn Write) -> anyhow::Result<()> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let [target] = targets.as_slice() else {
        anyhow::bail!(
            "a tunnel goes to one target and {} are selected; pick one with -t <name>",
            targets.len()
        );
    };
    let app = target.plan.spec.name.clone();
    let port = args.port.unwrap_or(target.plan.spec.port);
    let listener = listen(args.local_port, port, out).await?;
    let local = listener.local_addr()?;
    let mut client = Client::connect(&target.server, &target.token).await?;
    // Says at once when the app is not there, rather than at the first connection.
    client
        .status(&app)
        .await
        .with_context(|| format!("{app} on {}", target.server))?;
    let client = Arc::new(client);
    let destination = TunnelTarget {
        app: app.clone(),
        replica: args.container.unwrap_or(0),
        port,
    };
    writeln!(
        out,
        "forwarding {local} to port {port} of {app} on {}; Ctrl-C stops",
        target.server
    )?;
    out.flush()?;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        eprintln!("error: cannot accept a connection on {local}: {e}");
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let (client, destination) = (client.clone(), destination.clone());
                connections.spawn(async move {
                    if let Err(e) = client.tunnel(&destination, socket).await {
                        eprintln!("error: connection from {peer}: {e:#}");
                    }
                });
            }
            // Finished connections leave the set.
            Some(_) = connections.join_next() => {}
            stop = tokio::signal::ctrl_c() => {
                stop.context("cannot watch for Ctrl-C")?;
                break;
            }
        }
    }
    // Dropping the set closes every open connection and its stream.
    let open = connections.len();
    connections.shutdown().await;
    writeln!(out, "tunnel closed ({open} connection(s) were open)")?;
    Ok(())
}

/// Listens on 127.0.0.1: the asked-for port (taken is an error), else the container
/// port, else any free port, saying so.
async fn listen(asked: Option<u16>, port: u16, out: &mut dyn Write) -> anyhow::Result<TcpListener> {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if let Some(asked) = asked {
        return TcpListener::bind(at(asked)).await.with_context(|| {
            format!("cannot listen on 127.0.0.1:{asked}; pick another local port or leave it out for a free one")
        });
    }
    match TcpListener::bind(at(port)).await {
        Ok(listener) => Ok(listener),
        Err(e) => {
            let listener = TcpListener::bind(at(0))
                .await
                .context("cannot listen on any port of 127.0.0.1")?;
            writeln!(
                out,
                "127.0.0.1:{port} is not free ({e}); listening on {} instead",
                listener.local_addr()?
            )?;
            Ok(listener)
        }
    }
}
