//! Starting, checking and signalling the HAProxy master process.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::config::Paths;
use crate::proxy::ProxyError;

/// `haproxy -c` and the daemonizing start both finish well within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `program args`, returning whether it succeeded and what it printed.
async fn run(program: &Path, args: &[&str]) -> Result<(bool, String), ProxyError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            ProxyError::Other(format!(
                "{} {} did not finish within {}s",
                program.display(),
                args.join(" "),
                RUN_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| {
            ProxyError::Other(format!(
                "cannot run {}: {e}; install HAProxy 2.6 or set its path",
                program.display()
            ))
        })?;
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Ok((output.status.success(), text))
}

/// HAProxy's complaints in its output: the `[ALERT]` lines without their prefix, or
/// the whole output when there are none.
pub(super) fn complaints(output: &str) -> String {
    let alerts: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("[ALERT]"))
        .map(|l| l.split_once(" : ").map_or(l, |(_, rest)| rest).trim())
        .collect();
    if alerts.is_empty() {
        output.trim().to_string()
    } else {
        alerts.join("; ")
    }
}

/// `haproxy -c -f <config>`: Err carries HAProxy's complaint.
pub(super) async fn check_config(program: &Path, config: &Path) -> Result<(), ProxyError> {
    let config = config.to_string_lossy();
    match run(program, &["-c", "-f", &config]).await? {
        (true, _) => Ok(()),
        (false, output) => Err(ProxyError::ReloadFailed(format!(
            "{config} is invalid: {}",
            complaints(&output)
        ))),
    }
}

/// Starts HAProxy in master-worker mode, daemonized: it detaches (its own session)
/// and outlives haloyd, which is never in the data path. The master re-executes this
/// same command line on every reload, hence the absolute paths.
pub(super) async fn start(program: &Path, paths: &Paths) -> Result<(), ProxyError> {
    let master_socket = format!("{},mode,600", paths.master_socket.display());
    let pid_file = paths.pid_file.to_string_lossy();
    let config = paths.config.to_string_lossy();
    let args = [
        "-W",
        "-D",
        "-S",
        &master_socket,
        "-p",
        &pid_file,
        "-f",
        &config,
    ];
    // With -D the command returns once the master is forked; the daemon closes the
    // pipes, so waiting for the output does not wait for HAProxy to exit.
    match run(program, &args).await? {
        (true, _) => Ok(()),
        (false, output) => Err(ProxyError::Other(format!(
            "HAProxy did not start: {}",
            complaints(&output)
        ))),
    }
}

/// The master's pid from its pid file, if any.
pub(super) fn read_pid(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live process (a zombie is not).
pub(super) fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "<pid> (<comm>) <state> ...": comm may hold spaces, the state follows its ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Sends `signal` ("TERM", "KILL", ...) with the system's `kill`, which spares
/// haloyd a dependency on libc for one call.
pub(super) async fn signal(pid: u32, signal: &str) -> Result<(), ProxyError> {
    let pid_text = pid.to_string();
    let (ok, output) = run(Path::new("kill"), &["-s", signal, &pid_text]).await?;
    if ok || !is_alive(pid) {
        Ok(())
    } else {
        Err(ProxyError::Other(format!(
            "cannot signal HAProxy (pid {pid}): {}",
            output.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_keep_the_alert_text() {
        let output = "[NOTICE]   (1) : haproxy version is 2.6.12\n\
            [ALERT]    (1) : config : parsing [/x/haproxy.cfg:40] : unknown keyword 'bogus'.\n\
            [ALERT]    (1) : config : Fatal errors found in configuration.\n";
        assert_eq!(
            complaints(output),
            "config : parsing [/x/haproxy.cfg:40] : unknown keyword 'bogus'.; config : Fatal errors found in configuration."
        );
        assert_eq!(complaints("  something else\n"), "something else");
    }

    #[test]
    fn this_process_is_alive_and_a_missing_pid_is_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX));
    }
}
