//! Clean-up of what earlier test processes left behind when they died.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::*;

/// Removes the containers of one haloyd instance.
pub(crate) fn remove_instance(instance: &str) {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.haloy.instance={instance}"),
        ])
        .output();
    if let Ok(output) = output {
        let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// Containers and networks of earlier test processes that died before cleaning up.
pub(crate) fn remove_debris() {
    engine::remove_debris();
    stop_orphans();
    let Ok(output) = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=dev.haloy.instance",
            "--format",
            "{{.Label \"dev.haloy.instance\"}}",
        ])
        .output()
    else {
        return;
    };
    let stale: HashSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|instance| {
            instance
                .strip_prefix("it-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
                })
        })
        .map(str::to_string)
        .collect();
    for instance in stale {
        remove_instance(&instance);
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("haloy-{instance}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Stops haloyd and HAProxy processes that tests killed before they could clean up:
/// those whose test HOME is gone, or whose instance (`it-<pid>-…`) names a test
/// process that has exited.
pub(crate) fn stop_orphans() {
    let temp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let program = args.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        if !matches!(program, Some("haloyd" | "haproxy")) {
            continue;
        }
        // The test HOME: the temporary directory a config path of the process is in.
        let Some(home) = args
            .iter()
            .map(Path::new)
            .filter(|a| a.starts_with(&temp))
            .find_map(|a| a.strip_prefix(&temp).ok()?.components().next())
            .map(|first| temp.join(first))
        else {
            continue;
        };
        let settings = home.join(".config/haloy/haloyd.yaml");
        // Test HOMEs are tempfile directories (`.tmp…`); anything else is not ours.
        let ours = home
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".tmp"));
        if !ours {
            continue;
        }
        let orphan = match std::fs::read_to_string(&settings) {
            Err(_) => !home.exists(),
            Ok(text) => text
                .lines()
                .find_map(|l| l.strip_prefix("instance: it-"))
                .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
                .is_some_and(|owner| {
                    owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists()
                }),
        };
        if orphan {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}
