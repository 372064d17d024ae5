//! `Exec`: a command in a running replica, its stdin, stdout and stderr carried over
//! one bidirectional stream, its exit code last. The command never outlives its
//! session: when the client goes away or the timeout passes it is killed.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use haloy_api::v1::{self, exec_input, exec_output};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::audit::{Audit, Caller};
use super::session::{Sessions, replica};
use super::{AgentError, app_name};
use crate::engine::{Engine, EngineError};
use crate::runtime::{ExecChunk, ExecCommand, ExecSession, RuntimeError};

pub(super) type OutputStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<v1::ExecOutput, Status>> + Send>>;

/// Arguments a command may have, and their total size.
const MAX_ARGS: usize = 1024;
const MAX_COMMAND_BYTES: usize = 128 * 1024;
/// The exit code of a command killed at its timeout, as timeout(1) reports it.
pub const TIMED_OUT: i32 = 124;

pub(super) async fn start(
    engine: &Arc<Engine>,
    sessions: &Sessions,
    mut input: Streaming<v1::ExecInput>,
    caller: Caller,
) -> Result<OutputStream, Status> {
    let permit = sessions.exec()?;
    let first = input
        .message()
        .await?
        .ok_or_else(|| protocol("the Exec stream closed before its ExecStart"))?;
    let Some(exec_input::Input::Start(start)) = first.input else {
        return Err(protocol("the first Exec message must be ExecStart"));
    };
    let app = app_name(&start.app)?.to_string();
    let argv = command(&start.command)?;
    let audit = Audit::new(engine, caller, &app, "exec");
    // The program's name only: arguments and environment may hold secrets.
    let program = argv[0].clone();
    let tty = start.tty.then(|| window(start.window.as_ref()));
    let (container, replicas) = match replica(engine, &app, start.replica).await {
        Ok(found) => found,
        Err(status) => {
            audit.record(&program, Err(status.message()));
            return Err(status);
        }
    };
    tracing::info!(%app, replica = %container.name, %program, tty = tty.is_some(), "exec");
    let detail = format!("{program} in {}", container.name);
    let session = engine
        .runtime()
        .exec(
            &container.id,
            &ExecCommand {
                argv,
                tty,
                stdin: start.stdin,
            },
        )
        .await
        .map_err(|e| AgentError::from(EngineError::from(e)));
    let session = match session {
        Ok(session) => session,
        Err(e) => {
            audit.record(&detail, Err(&e.to_string()));
            return Err(e.into());
        }
    };
    let (tx, rx) = mpsc::channel(16);
    let started = exec_output::Output::Started(v1::ExecStarted {
        replica: container.name.clone(),
        replicas,
    });
    // The receiver is alive and the channel empty: this cannot fail.
    let _ = tx.send(Ok(message(started))).await;
    let timeout = (start.timeout_ms > 0).then(|| Duration::from_millis(start.timeout_ms));
    let run = Run {
        engine: engine.clone(),
        container: container.id,
        tx,
        audit,
        detail,
        _permit: permit,
    };
    tokio::spawn(run.drive(session, input, timeout));
    Ok(ReceiverStream::new(rx).boxed())
}

fn protocol(message: &str) -> Status {
    AgentError::Protocol(message.to_string()).into()
}

/// The command as given, checked: not empty, bounded, without NUL bytes.
fn command(argv: &[String]) -> Result<Vec<String>, Status> {
    let invalid = |why: String| Status::invalid_argument(format!("ExecStart.command: {why}"));
    if argv.first().is_none_or(String::is_empty) {
        return Err(invalid(
            "is empty; name a program, e.g. `haloy exec -- ls /`".into(),
        ));
    }
    if argv.len() > MAX_ARGS {
        return Err(invalid(format!("has over {MAX_ARGS} arguments")));
    }
    if argv.iter().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
        return Err(invalid(format!("is over {MAX_COMMAND_BYTES} bytes")));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(invalid("contains a NUL byte".into()));
    }
    Ok(argv.to_vec())
}

/// A terminal size that fits Docker's: 24x80 when not given.
fn window(size: Option<&v1::WindowSize>) -> (u16, u16) {
    let clamp = |v: u32, default: u16| match u16::try_from(v) {
        Ok(0) | Err(_) => default,
        Ok(v) => v,
    };
    size.map_or((24, 80), |s| (clamp(s.rows, 24), clamp(s.cols, 80)))
}

fn message(output: exec_output::Output) -> v1::ExecOutput {
    v1::ExecOutput {
        output: Some(output),
    }
}

/// Why the copying ended.
enum Ended {
    /// The command closed its output.
    Exited,
    TimedOut,
    /// The client cancelled or disconnected.
    ClientGone,
    Failed(Status),
}

struct Run {
    engine: Arc<Engine>,
    container: String,
    tx: mpsc::Sender<Result<v1::ExecOutput, Status>>,
    /// Recorded once the command is over: the program, the replica, how it ended.
    audit: Audit,
    detail: String,
    /// Held until the command is over.
    _permit: OwnedSemaphorePermit,
}

impl Run {
    async fn drive(
        self,
        session: ExecSession,
        input: Streaming<v1::ExecInput>,
        timeout: Option<Duration>,
    ) {
        let ExecSession {
            id,
            mut output,
            stdin,
        } = session;
        // Stdin is written by its own task: a command that does not read its input
        // must not stop its output from flowing.
        let mut pump = tokio::spawn(pump(input, stdin, self.engine.clone(), id.clone()));
        let mut pump_done = false;
        let deadline = async {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let ended = loop {
            tokio::select! {
                chunk = output.next() => {
                    let chunk = match chunk {
                        Some(Ok(ExecChunk::Stdout(b))) => exec_output::Output::Stdout(b.to_vec()),
                        Some(Ok(ExecChunk::Stderr(b))) => exec_output::Output::Stderr(b.to_vec()),
                        Some(Err(e)) => break Ended::Failed(AgentError::from(EngineError::from(e)).into()),
                        None => break Ended::Exited,
                    };
                    if self.tx.send(Ok(message(chunk))).await.is_err() {
                        break Ended::ClientGone;
                    }
                }
                () = &mut deadline => break Ended::TimedOut,
                () = self.tx.closed() => break Ended::ClientGone,
                pumped = &mut pump, if !pump_done => {
                    pump_done = true;
                    match pumped {
                        Ok(Ok(())) => {}
                        Ok(Err(status)) => break Ended::Failed(status),
                        Err(_) => break Ended::ClientGone,
                    }
                }
            }
        };
        pump.abort();
        drop(output);
        let runtime = self.engine.runtime();
        let detail = &self.detail;
        match ended {
            Ended::Exited => {
                let code = exit_code(runtime.as_ref(), &id, &self.tx).await;
                match code {
                    Ok(code) => {
                        self.audit
                            .record(&format!("{detail}, exit code {code}"), Ok(()));
                        self.exit(code, false).await;
                    }
                    Err(e) => {
                        self.audit.record(detail, Err(e.message()));
                        kill(runtime.as_ref(), &id, &self.container).await;
                        let _ = self.tx.send(Err(e)).await;
                    }
                }
            }
            Ended::TimedOut => {
                self.audit.record(detail, Err("killed at its timeout"));
                kill(runtime.as_ref(), &id, &self.container).await;
                self.exit(TIMED_OUT, true).await;
            }
            Ended::ClientGone => {
                self.audit
                    .record(detail, Err("killed: the client ended the session"));
                kill(runtime.as_ref(), &id, &self.container).await;
            }
            Ended::Failed(status) => {
                self.audit.record(detail, Err(status.message()));
                kill(runtime.as_ref(), &id, &self.container).await;
                let _ = self.tx.send(Err(status)).await;
            }
        }
    }

    async fn exit(&self, code: i32, timed_out: bool) {
        let exit = exec_output::Output::Exit(v1::ExecExit { code, timed_out });
        let _ = self.tx.send(Ok(message(exit))).await;
    }
}

/// Copies the client's stdin and window sizes to the command until the client's
/// stream ends; an error when the client broke the protocol.
async fn pump(
    mut input: Streaming<v1::ExecInput>,
    mut stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    engine: Arc<Engine>,
    exec_id: String,
) -> Result<(), Status> {
    let mut open = true;
    loop {
        let message = match input.message().await {
            Ok(Some(message)) => message,
            // The client closed its side: the command's stdin ends too.
            Ok(None) => {
                let _ = stdin.shutdown().await;
                // Wait here; the command's output decides when the session ends.
                std::future::pending::<()>().await;
                return Ok(());
            }
            Err(status) => return Err(status),
        };
        match message.input {
            Some(exec_input::Input::Stdin(bytes)) if open => {
                // A command that closed its stdin gets no more; that is its choice.
                if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
                    open = false;
                }
            }
            Some(exec_input::Input::Stdin(_)) => {}
            Some(exec_input::Input::StdinClose(_)) => {
                open = false;
                let _ = stdin.shutdown().await;
            }
            Some(exec_input::Input::Resize(size)) => {
                let (rows, cols) = window(Some(&size));
                if let Err(e) = engine.runtime().resize_exec(&exec_id, rows, cols).await {
                    tracing::debug!(error = %e, "could not resize an exec's terminal");
                }
            }
            Some(exec_input::Input::Start(_)) | None => {
                return Err(protocol(
                    "ExecStart comes once, first; later messages carry stdin, stdin_close or resize",
                ));
            }
        }
    }
}

/// The command's exit code once Docker has it. Output ends a moment before Docker
/// marks the exec as finished; a command that closed its output but runs on is
/// waited for as long as the client stays.
async fn exit_code(
    runtime: &dyn crate::runtime::ContainerRuntime,
    exec_id: &str,
    tx: &mpsc::Sender<Result<v1::ExecOutput, Status>>,
) -> Result<i32, Status> {
    let mut pause = Duration::from_millis(10);
    loop {
        let state = runtime
            .inspect_exec(exec_id)
            .await
            .map_err(|e| AgentError::from(EngineError::from(e)))?;
        if !state.running {
            let code = state.exit_code.unwrap_or(-1);
            return Ok(i32::try_from(code).unwrap_or(-1));
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = tx.closed() => return Err(Status::cancelled("the client went away")),
        }
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Kills a command that may still run; a failure is logged (the command then runs
/// until it ends by itself).
async fn kill(runtime: &dyn crate::runtime::ContainerRuntime, exec_id: &str, container: &str) {
    match runtime.kill_exec(exec_id, container).await {
        Ok(()) => {}
        Err(RuntimeError::NoSuchContainer(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not kill a command whose session ended"),
    }
}
