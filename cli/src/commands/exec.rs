//! `haloy exec`: run a command in a running replica of the app. Its stdout and
//! stderr come back apart, piped stdin goes in, and its exit code becomes haloy's;
//! with several targets or `--all-containers` each run's lines are prefixed.

mod interactive;
mod prefixed;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use haloy_controller::Needs;
use haloy_controller::client::{Client, ExecEvent, ExecExit, ExecInput, ExecRequest};
use haloy_controller::fanout::Target;
use tokio::sync::mpsc;

use crate::context::{Env, TargetFlags};
use crate::targets;

/// haloy's own failures (no server, no such app) exit with this code, as
/// `docker exec` does, so they are told apart from the command's.
const FAILED: u8 = 125;
/// Without `--timeout`, a command that is not interactive is killed after this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: TargetFlags,
    /// Run in the N-th running replica, counted from 1 as `haloy status` lists them
    /// (default: the first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub container: Option<u32>,
    /// Run in every running replica, one after the other, each line prefixed with
    /// the replica.
    #[arg(long, conflicts_with_all = ["container", "interactive"])]
    pub all_containers: bool,
    /// Give the command a terminal: this one in raw mode, its size and resizes
    /// forwarded, Ctrl-C sent to the command (for `sh` or a REPL).
    #[arg(short, long)]
    pub interactive: bool,
    /// Kill the command after this long (`30s`, `5m`, `1h`; `0` for no limit).
    /// Default: 10m, and no limit with --interactive.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .or_else(|_| text.trim().parse::<u64>().map(Duration::from_secs))
        .map_err(|_| format!("{text:?} is not a duration; write it like 30s, 5m or 1h"))
}

/// Runs the command and returns its exit code as haloy's.
pub fn main(args: &Args, env: &Env) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return failed(&anyhow::Error::new(e)),
    };
    let result = runtime.block_on(run(args, env));
    // A thread may still wait on stdin; the process ends without it.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => failed(&e),
    }
}

fn failed(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(FAILED)
}

async fn run(args: &Args, env: &Env) -> anyhow::Result<u8> {
    let (_, targets) = targets::resolve(&args.flags, env, Needs::Connection)?;
    let timeout = match args.timeout {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(t),
        None if args.interactive => None,
        None => Some(DEFAULT_TIMEOUT),
    };
    let request = ExecRequest {
        app: String::new(),
        replica: args.container.unwrap_or(0),
        command: args.command.clone(),
        tty: None,
        // A terminal's input is only forwarded to a terminal (--interactive).
        stdin: args.interactive || !std::io::stdin().is_terminal(),
        timeout,
    };
    if args.interactive {
        let [target] = targets.as_slice() else {
            anyhow::bail!(
                "--interactive talks to one target and {} are selected ({}); pick one with -t <name>",
                targets.len(),
                labels(&targets)
            );
        };
        return interactive::run(target, request).await;
    }
    if let ([target], false) = (targets.as_slice(), args.all_containers) {
        return direct(target, request).await;
    }
    prefixed::run(&targets, request, args.all_containers).await
}

fn labels(targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| t.label().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One target, one replica: bytes pass through untouched, stdin streams.
async fn direct(target: &Target, mut request: ExecRequest) -> anyhow::Result<u8> {
    request.app = target.plan.spec.name.clone();
    let mut client = Client::connect(&target.server, &target.token).await?;
    let (tx, rx) = mpsc::channel(16);
    if request.stdin {
        forward_stdin(tx, true);
    }
    let exit = client
        .exec(&request, rx, |event| match event {
            ExecEvent::Stdout(bytes) => write_all(&mut std::io::stdout(), &bytes),
            ExecEvent::Stderr(bytes) => write_all(&mut std::io::stderr(), &bytes),
            ExecEvent::Started { .. } => {}
        })
        .await
        .with_context(|| format!("exec in {} on {}", request.app, target.server))?;
    Ok(code(&exit, request.timeout))
}

fn write_all(out: &mut dyn Write, bytes: &[u8]) {
    // A closed stdout (`| head`) is not the command's failure.
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// Reads this process's stdin on a thread of its own (a blocking read cannot be
/// cancelled; the process ends without waiting for it) and sends it in pieces;
/// with `close`, its end is sent as the end of the command's stdin.
fn forward_stdin(tx: mpsc::Sender<ExecInput>, close: bool) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(ExecInput::Stdin(buffer[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        if close {
            let _ = tx.blocking_send(ExecInput::StdinClose);
        }
    });
}

/// haloy's exit code for the command's: its own (0-255), 124 at the timeout.
fn code(exit: &ExecExit, timeout: Option<Duration>) -> u8 {
    if exit.timed_out {
        let limit = timeout.map_or_else(String::new, |t| {
            format!(" of {}", humantime::format_duration(t))
        });
        eprintln!(
            "error: the command ran past its timeout{limit} and was killed; give it longer with --timeout"
        );
    }
    u8::try_from(exit.code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_durations() {
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        assert!(parse_timeout("soon").unwrap_err().contains("30s"));
    }

    #[test]
    fn exit_codes_pass_through_and_odd_ones_fail() {
        let exit = |code| ExecExit {
            code,
            timed_out: false,
        };
        assert_eq!(code(&exit(7), None), 7);
        assert_eq!(code(&exit(0), None), 0);
        assert_eq!(code(&exit(-1), None), 1);
        assert_eq!(code(&exit(300), None), 1);
    }
}
