//! `haloyd`: the Haloy agent. Thin: parse flags, load settings (exit 64 when they are
//! bad), init logging, run the daemon until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use haloyd::config::HaloydConfig;

const USAGE: &str = "usage: haloyd --config <haloyd.yaml> [--debug]";

fn main() -> ExitCode {
    let mut config_path: Option<PathBuf> = None;
    let mut debug = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_path = args.next().map(PathBuf::from),
            "--debug" => debug = true,
            "--version" => {
                let failpoints = if haloyd::engine::failpoint::ENABLED {
                    " (with crash points for tests)"
                } else {
                    ""
                };
                println!("haloyd {}{failpoints}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("error: unknown argument {arg:?}\n{USAGE}");
                return ExitCode::from(64);
            }
        }
    }
    let Some(config_path) = config_path else {
        eprintln!("error: --config is required\n{USAGE}");
        return ExitCode::from(64);
    };
    let config = match HaloydConfig::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(64);
        }
    };
    let filter = std::env::var("RUST_LOG")
        .unwrap_or_else(|_| if debug { "haloyd=debug,info" } else { "info" }.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let config_dir = config_path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(haloyd::daemon::run(config, &config_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
