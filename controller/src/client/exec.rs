//! `Exec`: a command in a running replica, with the caller's stdin, terminal size
//! and output handling; the exit code comes back last.

use std::time::Duration;

use futures_util::StreamExt;
use haloy_api::v1::{self, exec_input, exec_output};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Client, ClientError};

/// What to run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub app: String,
    /// 1-based running replica; 0 is the first.
    pub replica: u32,
    pub command: Vec<String>,
    /// A pseudo-terminal of this size (rows, columns).
    pub tty: Option<(u16, u16)>,
    /// Forward [`ExecInput::Stdin`]; without it the command's stdin is closed.
    pub stdin: bool,
    /// Kill the command after this long; `None` is no limit.
    pub timeout: Option<Duration>,
}

/// What the caller sends while the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    Stdin(Vec<u8>),
    /// The caller's stdin ended.
    StdinClose,
    /// The terminal's new size (rows, columns).
    Resize(u16, u16),
}

/// What comes back while the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// The command started in `replica`, one of `replicas` running ones.
    Started {
        replica: String,
        replicas: u32,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecExit {
    pub code: i32,
    /// It ran past its timeout and was killed (`code` is 124 then).
    pub timed_out: bool,
}

impl Client {
    /// Runs `request.command` and reports its output to `on_event` until it ends.
    /// `input` carries stdin and window sizes; when it closes, so does the command's
    /// stdin. Dropping the returned future kills the command on the server.
    pub async fn exec(
        &mut self,
        request: &ExecRequest,
        input: mpsc::Receiver<ExecInput>,
        mut on_event: impl FnMut(ExecEvent) + Send,
    ) -> Result<ExecExit, ClientError> {
        let start = exec_input::Input::Start(v1::ExecStart {
            app: request.app.clone(),
            replica: request.replica,
            command: request.command.clone(),
            tty: request.tty.is_some(),
            window: request.tty.map(|(rows, cols)| window(rows, cols)),
            stdin: request.stdin,
            timeout_ms: request
                .timeout
                .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        });
        let later = ReceiverStream::new(input).map(|input| match input {
            ExecInput::Stdin(bytes) => exec_input::Input::Stdin(bytes),
            ExecInput::StdinClose => exec_input::Input::StdinClose(v1::StdinClose {}),
            ExecInput::Resize(rows, cols) => exec_input::Input::Resize(window(rows, cols)),
        });
        let requests = futures_util::stream::once(async { start })
            .chain(later)
            .map(|input| v1::ExecInput { input: Some(input) });
        let mut output = self
            .inner
            .exec(requests)
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        loop {
            let message = output.message().await.map_err(|s| self.error(s))?;
            let Some(message) = message.and_then(|m| m.output) else {
                return Err(self.no_result("exec"));
            };
            match message {
                exec_output::Output::Started(started) => on_event(ExecEvent::Started {
                    replica: started.replica,
                    replicas: started.replicas,
                }),
                exec_output::Output::Stdout(bytes) => on_event(ExecEvent::Stdout(bytes)),
                exec_output::Output::Stderr(bytes) => on_event(ExecEvent::Stderr(bytes)),
                exec_output::Output::Exit(exit) => {
                    return Ok(ExecExit {
                        code: exit.code,
                        timed_out: exit.timed_out,
                    });
                }
            }
        }
    }
}

fn window(rows: u16, cols: u16) -> v1::WindowSize {
    v1::WindowSize {
        rows: u32::from(rows),
        cols: u32::from(cols),
    }
}
