//! Commands in running containers (Docker's exec API, attached) and containers'
//! network addresses, for `haloy exec` and `haloy tunnel`.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::error;
use crate::runtime::{
    ContainerAddress, ExecChunk, ExecCommand, ExecSession, ExecState, RuntimeError,
};

/// Largest piece of output read at once; a TTY's output has no frames and comes in
/// pieces of at most this size.
const OUTPUT_CAPACITY: usize = 64 * 1024;

pub(super) async fn start(
    client: &bollard::Docker,
    id: &str,
    command: &ExecCommand,
) -> Result<ExecSession, RuntimeError> {
    let options = CreateExecOptions {
        attach_stdin: Some(command.stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(command.tty.is_some()),
        cmd: Some(command.argv.clone()),
        ..Default::default()
    };
    let created = client
        .create_exec(id, options)
        .await
        .map_err(|err| exec_error(id, err))?;
    let start = StartExecOptions {
        detach: false,
        tty: command.tty.is_some(),
        output_capacity: Some(OUTPUT_CAPACITY),
    };
    let started = client
        .start_exec(&created.id, Some(start))
        .await
        .map_err(|err| exec_error(id, err))?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(RuntimeError::Other(
            "docker started the command detached; expected an attached session".into(),
        ));
    };
    if let Some((rows, cols)) = command.tty {
        resize(client, &created.id, rows, cols).await?;
    }
    let output = output
        .filter_map(|item| async move {
            match item {
                Ok(LogOutput::StdErr { message }) => Some(Ok(ExecChunk::Stderr(message))),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(ExecChunk::Stdout(message)))
                }
                Ok(LogOutput::StdIn { .. }) => None,
                Err(err) => Some(Err(error::daemon(err))),
            }
        })
        .boxed();
    Ok(ExecSession {
        id: created.id,
        output,
        stdin: input,
    })
}

fn exec_error(id: &str, err: bollard::errors::Error) -> RuntimeError {
    match error::status(&err) {
        Some(404) => RuntimeError::NoSuchContainer(id.to_string()),
        Some(409) => RuntimeError::Other(format!("container {id} is not running")),
        _ => error::doing("cannot run the command", err),
    }
}

pub(super) async fn resize(
    client: &bollard::Docker,
    exec_id: &str,
    rows: u16,
    cols: u16,
) -> Result<(), RuntimeError> {
    let size = ResizeExecOptions {
        height: rows,
        width: cols,
    };
    client
        .resize_exec(exec_id, size)
        .await
        .map_err(|err| error::doing("cannot resize the terminal", err))
}

pub(super) async fn inspect(
    client: &bollard::Docker,
    exec_id: &str,
) -> Result<ExecState, RuntimeError> {
    let response = client
        .inspect_exec(exec_id)
        .await
        .map_err(|err| error::doing("cannot inspect the command", err))?;
    Ok(ExecState {
        running: response.running.unwrap_or(false),
        exit_code: response.exit_code,
        pid: response
            .pid
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid > 0),
    })
}

pub(super) async fn address(
    client: &bollard::Docker,
    id: &str,
) -> Result<ContainerAddress, RuntimeError> {
    let response = client
        .inspect_container(id, None)
        .await
        .map_err(|err| error::container(id, err))?;
    let ip = response
        .network_settings
        .and_then(|settings| settings.networks)
        .unwrap_or_default()
        .into_values()
        .filter_map(|endpoint| endpoint.ip_address)
        .find_map(|ip| ip.parse().ok());
    Ok(ContainerAddress { ip })
}

/// Kills the exec's process with SIGKILL if it still runs. Docker has no call for
/// that, so this signals the host process Docker names, and only after checking that
/// the process is in the container's cgroup: haloyd in a PID namespace of its own
/// would otherwise see another process under that number.
pub(super) async fn kill(
    client: &bollard::Docker,
    exec_id: &str,
    container_id: &str,
) -> Result<(), RuntimeError> {
    let state = inspect(client, exec_id).await?;
    let (true, Some(pid)) = (state.running, state.pid) else {
        return Ok(());
    };
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    if container_id.is_empty() || !cgroup.contains(container_id) {
        return Err(RuntimeError::Other(format!(
            "the command's process {pid} is not visible to haloyd (is it in another PID namespace?); it runs until it ends"
        )));
    }
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| RuntimeError::Other(format!("process id {pid} is out of range")))?;
    // SAFETY: kill(2) takes two integers and touches no memory of this process.
    let result = unsafe { libc::kill(pid, libc::SIGKILL) };
    if result != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(RuntimeError::Other(format!(
                "cannot kill process {pid}: {err}"
            )));
        }
    }
    tracing::debug!(%exec_id, pid, "killed a command whose session ended");
    Ok(())
}
