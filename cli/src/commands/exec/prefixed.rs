//! `haloy exec` on several targets or every replica: each run's output in lines
//! prefixed with its target (`[production] `) and replica (`web-…-1 | `), targets
//! at once, replicas of a target one after the other. Piped stdin is read once and
//! given to every run.

use std::io::Read;

use anyhow::Context as _;
use haloy_controller::client::{Client, ExecEvent, ExecInput, ExecRequest};
use haloy_controller::fanout::{self, Target};
use tokio::sync::mpsc;

use crate::report;

/// Most stdin kept in memory to hand to several runs.
const MAX_SHARED_STDIN: u64 = 16 * 1024 * 1024;

pub(super) async fn run(targets: &[Target], request: ExecRequest, all: bool) -> anyhow::Result<u8> {
    let input = if request.stdin {
        Some(read_stdin()?)
    } else {
        None
    };
    let many = targets.len() > 1;
    let mut out = std::io::stdout();
    let results = report::each_target(
        targets,
        fanout::DEFAULT_CONCURRENCY,
        &mut out,
        |target, lines| {
            let (server, token) = (target.server.clone(), target.token.clone());
            let mut request = request.clone();
            request.app = target.plan.spec.name.clone();
            let input = input.clone();
            let label = report::prefix(target.label(), many);
            async move {
                let mut client = Client::connect(&server, &token).await?;
                let mut first_failure = 0;
                let mut index = request.replica.max(1);
                loop {
                    if all {
                        request.replica = index;
                    }
                    let (tx, rx) = mpsc::channel(4);
                    if let Some(input) = input.clone() {
                        tokio::spawn(async move {
                            for piece in input.chunks(64 * 1024) {
                                if tx.send(ExecInput::Stdin(piece.to_vec())).await.is_err() {
                                    return;
                                }
                            }
                            let _ = tx.send(ExecInput::StdinClose).await;
                        });
                    }
                    let (mut replica, mut replicas) = (String::new(), 1);
                    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
                    let prefix = |replica: &str| match all {
                        true => format!("{replica} | "),
                        false => String::new(),
                    };
                    let exit = client
                        .exec(&request, rx, |event| match event {
                            ExecEvent::Started {
                                replica: name,
                                replicas: count,
                            } => (replica, replicas) = (name, count),
                            ExecEvent::Stdout(bytes) => {
                                for line in complete_lines(&mut stdout, &bytes) {
                                    lines.say(format_args!("{}{line}", prefix(&replica)));
                                }
                            }
                            ExecEvent::Stderr(bytes) => {
                                for line in complete_lines(&mut stderr, &bytes) {
                                    eprintln!("{label}{}{line}", prefix(&replica));
                                }
                            }
                        })
                        .await
                        .with_context(|| format!("exec in {}", request.app))?;
                    if !stdout.is_empty() {
                        lines.say(format_args!(
                            "{}{}",
                            prefix(&replica),
                            String::from_utf8_lossy(&stdout)
                        ));
                    }
                    if !stderr.is_empty() {
                        eprintln!(
                            "{label}{}{}",
                            prefix(&replica),
                            String::from_utf8_lossy(&stderr)
                        );
                    }
                    if exit.timed_out {
                        eprintln!(
                            "{label}{replica}: killed at its timeout; give it longer with --timeout"
                        );
                    } else if exit.code != 0 {
                        eprintln!("{label}{replica}: exited with code {}", exit.code);
                    }
                    if first_failure == 0 {
                        first_failure = u8::try_from(exit.code).unwrap_or(1);
                    }
                    if !all || index >= replicas {
                        return Ok(first_failure);
                    }
                    index += 1;
                }
            }
        },
    )
    .await?;
    let codes = report::all_succeeded(results)?;
    Ok(codes.into_iter().find(|c| *c != 0).unwrap_or(0))
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_SHARED_STDIN + 1)
        .read_to_end(&mut input)
        .context("cannot read stdin")?;
    anyhow::ensure!(
        input.len() as u64 <= MAX_SHARED_STDIN,
        "stdin is over {} MiB; with several targets or --all-containers it is held in memory for each run, so pipe less or run on one replica",
        MAX_SHARED_STDIN / 1024 / 1024
    );
    Ok(input)
}

/// Appends `bytes` to `pending` and takes out the complete lines, without their
/// line ends.
fn complete_lines(pending: &mut Vec<u8>, bytes: &[u8]) -> Vec<String> {
    pending.extend_from_slice(bytes);
    let Some(last) = pending.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let rest = pending.split_off(last + 1);
    let done = std::mem::replace(pending, rest);
    String::from_utf8_lossy(&done)
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::complete_lines;

    #[test]
    fn lines_are_cut_where_they_end_and_the_rest_waits() {
        let mut pending = Vec::new();
        assert!(complete_lines(&mut pending, b"hal").is_empty());
        assert_eq!(
            complete_lines(&mut pending, b"f\none\r\ntw"),
            ["half", "one"]
        );
        assert_eq!(pending, b"tw");
    }
}
