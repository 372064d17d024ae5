//! `haloy exec -i`: the command gets a terminal. This terminal goes to raw mode for
//! the session (undone on every way out: the guard drops on return, error, panic,
//! and SIGTERM or SIGHUP end the session first), every key goes to the command as
//! a byte (Ctrl-C is byte 3, which the remote terminal turns into SIGINT), and the
//! window size follows SIGWINCH.

use std::io::IsTerminal;

use anyhow::Context as _;
use haloy_controller::client::{Client, ExecEvent, ExecInput, ExecRequest};
use haloy_controller::fanout::Target;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::terminal::{self, RawMode};

pub(super) async fn run(target: &Target, mut request: ExecRequest) -> anyhow::Result<u8> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "--interactive needs a terminal on stdin; without -i, piped input goes to the command"
    );
    request.app = target.plan.spec.name.clone();
    request.tty = Some(terminal::size().unwrap_or((24, 80)));
    let mut client = Client::connect(&target.server, &target.token).await?;
    let mut resized = signal(SignalKind::window_change()).context("cannot watch for SIGWINCH")?;
    let mut terminated = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut hung_up = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
    let (tx, rx) = mpsc::channel(16);
    let raw = RawMode::enter().context("cannot put the terminal in raw mode")?;
    super::forward_stdin(tx.clone(), false);
    let session = client.exec(&request, rx, |event| match event {
        ExecEvent::Stdout(bytes) | ExecEvent::Stderr(bytes) => {
            super::write_all(&mut std::io::stdout(), &bytes);
        }
        ExecEvent::Started { .. } => {}
    });
    tokio::pin!(session);
    let outcome = loop {
        tokio::select! {
            result = &mut session => break Some(result),
            _ = resized.recv() => {
                if let Some((rows, cols)) = terminal::size() {
                    let _ = tx.send(ExecInput::Resize(rows, cols)).await;
                }
            }
            _ = terminated.recv() => break None,
            _ = hung_up.recv() => break None,
        }
    };
    drop(raw);
    match outcome {
        Some(result) => {
            let exit =
                result.with_context(|| format!("exec in {} on {}", request.app, target.server))?;
            Ok(super::code(&exit, request.timeout))
        }
        // Dropping the session killed the command on the server.
        None => anyhow::bail!("stopped by a signal; the command was ended"),
    }
}
