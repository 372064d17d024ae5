//! What the runtime offers for running a command in a container and for reaching a
//! container's ports: the types of [`super::ContainerRuntime::exec`] and friends.

use std::net::IpAddr;
use std::pin::Pin;

use futures_util::stream::BoxStream;
use tokio::io::AsyncWrite;

use super::RuntimeError;

/// A command to run in a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Allocate a pseudo-terminal of this size (rows, columns).
    pub tty: Option<(u16, u16)>,
    /// Attach stdin; without it the command's stdin is closed.
    pub stdin: bool,
}

/// A piece of a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecChunk {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// A started command: its output until it ends, and its stdin.
pub struct ExecSession {
    /// The exec instance's id, for resizing, inspecting and killing.
    pub id: String,
    pub output: BoxStream<'static, Result<ExecChunk, RuntimeError>>,
    /// Shutting it down closes the command's stdin.
    pub stdin: Pin<Box<dyn AsyncWrite + Send>>,
}

/// What Docker says about an exec instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
    /// The command's process id on the host, when Docker knows it.
    pub pid: Option<u32>,
}

/// Where a container can be reached from haloyd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerAddress {
    /// Its address on its Docker network.
    pub ip: Option<IpAddr>,
}
