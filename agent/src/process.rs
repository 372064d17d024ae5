//! haloyd as a host process, for `haloyadm start|stop`: spawn it detached with its
//! pid file and log, find it again, and stop it.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Layout;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {program}: {reason}; is haloyd installed next to haloyadm or on PATH?")]
    Spawn { program: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("process {pid} did not exit after SIGTERM and SIGKILL")]
    Stuck { pid: u32 },
}

/// The haloyd binary: next to the running executable, else on PATH.
pub fn haloyd_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("haloyd")))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("haloyd"))
}

/// Starts haloyd in its own process group, detached from the caller's terminal, with
/// output appended to its log; records its pid.
pub fn spawn_haloyd(layout: &Layout, debug: bool) -> Result<u32, ProcessError> {
    let log_path = layout.haloyd_log();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| ProcessError::Write {
            path: log_path.display().to_string(),
            reason: e.to_string(),
        })?;
    let log_err = log.try_clone().map_err(|e| ProcessError::Write {
        path: log_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let program = haloyd_program();
    let mut command = Command::new(&program);
    command
        .arg("--config")
        .arg(layout.config_file())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    if debug {
        command.arg("--debug");
    }
    let child = command.spawn().map_err(|e| ProcessError::Spawn {
        program: program.display().to_string(),
        reason: e.to_string(),
    })?;
    let pid = child.id();
    let pid_file = layout.haloyd_pid_file();
    std::fs::write(&pid_file, format!("{pid}\n")).map_err(|e| ProcessError::Write {
        path: pid_file.display().to_string(),
        reason: e.to_string(),
    })?;
    // The child is not waited for here: it outlives haloyadm. Reaping falls to init.
    std::mem::forget(child);
    Ok(pid)
}

/// The pid in `pid_file` if that process is alive and is `name`.
pub fn running_pid(pid_file: &Path, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_alive(pid, name).then_some(pid)
}

/// Whether `pid` runs a program whose command line mentions `name` (guards against a
/// recycled pid) and is not a zombie.
pub fn is_alive(pid: u32, name: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    exists(pid) && String::from_utf8_lossy(&cmdline).contains(name)
}

/// Whether process `pid` exists and is not a zombie, whatever it runs. Right after
/// a spawn the child may still show its parent's command line until it execs.
pub fn exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// SIGTERM, wait up to `grace`, then SIGKILL. Returns once the process is gone.
pub fn terminate(pid: u32, name: &str, grace: Duration) -> Result<(), ProcessError> {
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while is_alive(pid, name) {
        if Instant::now() >= deadline {
            signal(pid, libc::SIGKILL);
            let kill_deadline = Instant::now() + Duration::from_secs(5);
            while is_alive(pid, name) {
                if Instant::now() >= kill_deadline {
                    return Err(ProcessError::Stuck { pid });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn signal(pid: u32, signal: i32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid yields ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
