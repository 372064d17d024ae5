//! Deploy hooks: `pre_deploy`/`post_deploy` per target and `global_pre_deploy`/
//! `global_post_deploy` once per run. Each command runs with `sh -c` in the config
//! file's directory; its output is streamed line by line as it comes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Which hook list a command belongs to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    GlobalPreDeploy,
    PreDeploy,
    PostDeploy,
    GlobalPostDeploy,
}

impl HookKind {
    pub fn key(self) -> &'static str {
        match self {
            Self::GlobalPreDeploy => "global_pre_deploy",
            Self::PreDeploy => "pre_deploy",
            Self::PostDeploy => "post_deploy",
            Self::GlobalPostDeploy => "global_post_deploy",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook `{command}` failed with {status}{}", tail_text(output))]
    Failed {
        kind: &'static str,
        command: String,
        status: String,
        /// The last lines it printed.
        output: Vec<String>,
    },
    #[error("{kind} hook `{command}` could not start: {reason}")]
    Spawn {
        kind: &'static str,
        command: String,
        reason: String,
    },
}

fn tail_text(output: &[String]) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", output.join("\n"))
    }
}

/// How many trailing output lines a failure reports.
const TAIL: usize = 20;

/// Runs `commands` in order in `dir`, sending each output line to `lines`; stops at
/// the first command that fails.
pub async fn run_hooks(
    kind: HookKind,
    commands: &[String],
    dir: &Path,
    env: &HashMap<String, String>,
    lines: &mpsc::UnboundedSender<String>,
) -> Result<(), HookError> {
    // The failure report shows the last lines of the whole list, since an earlier
    // command often explains why a later one failed.
    let mut tail: Vec<String> = Vec::new();
    for command in commands {
        let _ = lines.send(format!("$ {command}"));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HookError::Spawn {
                kind: kind.key(),
                command: command.clone(),
                reason: e.to_string(),
            })?;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(forward(BufReader::new(stdout), tx.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(forward(BufReader::new(stderr), tx.clone())));
        }
        drop(tx);
        while let Some(line) = rx.recv().await {
            let _ = lines.send(line.clone());
            tail.push(line);
            if tail.len() > TAIL {
                tail.remove(0);
            }
        }
        for reader in readers {
            let _ = reader.await;
        }
        let status = child.wait().await.map_err(|e| HookError::Spawn {
            kind: kind.key(),
            command: command.clone(),
            reason: e.to_string(),
        })?;
        if !status.success() {
            let status = match status.code() {
                Some(code) => format!("exit code {code}"),
                None => "a signal".to_string(),
            };
            return Err(HookError::Failed {
                kind: kind.key(),
                command: command.clone(),
                status,
                output: std::mem::take(&mut tail),
            });
        }
    }
    Ok(())
}

async fn forward<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    tx: mpsc::UnboundedSender<String>,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send(line).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(commands: &[&str], dir: &Path) -> (Result<(), HookError>, Vec<String>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let env = HashMap::from([
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("GREETING".to_string(), "hi".to_string()),
        ]);
        let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
        let result = run_hooks(HookKind::PreDeploy, &commands, dir, &env, &tx).await;
        drop(tx);
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        (result, lines)
    }

    #[tokio::test]
    async fn runs_in_order_in_the_config_directory_with_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker"), "here").unwrap();
        let (result, lines) = run(
            &["cat marker", "echo $GREETING", "echo err >&2"],
            dir.path(),
        )
        .await;
        result.unwrap();
        assert_eq!(
            lines,
            [
                "$ cat marker",
                "here",
                "$ echo $GREETING",
                "hi",
                "$ echo err >&2",
                "err"
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_command_stops_the_list_with_its_code_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let (result, lines) = run(&["echo before; exit 3", "echo never"], dir.path()).await;
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("pre_deploy hook `echo before; exit 3` failed with exit code 3"),
            "{err}"
        );
        assert!(err.ends_with("its last output:\nbefore"), "{err}");
        assert!(!lines.iter().any(|l| l.contains("never")));
    }
}
