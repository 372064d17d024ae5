//! `haloyd`: the Haloy agent. Thin: parse flags, load settings (exit 64 when they are
//! bad), init logging, run the daemon until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use haloyd::config::HaloydConfig;

/// What `--version` prints after the name; tests look for the crash-point note.
const VERSION: &str = if haloyd::engine::failpoint::ENABLED {
    concat!(env!("CARGO_PKG_VERSION"), " (with crash points for tests)")
} else {
    env!("CARGO_PKG_VERSION")
};

/// haloyd, the Haloy agent on each server
#[derive(Debug, Parser)]
#[command(name = "haloyd", version = VERSION)]
struct Args {
    /// The agent's settings (haloyd.yaml); files it names are relative to its directory
    #[arg(long = "config", value_name = "haloyd.yaml")]
    config_path: PathBuf,
    /// Log at debug level (RUST_LOG, when set, wins)
    #[arg(long)]
    debug: bool,
    /// Where the host's root file system is mounted (read-only) when haloyd runs in
    /// a container; bind-mount sources are resolved there
    #[arg(long, value_name = "DIR")]
    host_root: Option<PathBuf>,
}

fn main() -> ExitCode {
    let Args {
        config_path,
        debug,
        host_root,
    } = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors exit 64 (EX_USAGE),
            // like a bad config file.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
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
    // Colours only for a person at a terminal: `docker logs`, journald and
    // haloyd.log get plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour)
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
    match runtime.block_on(haloyd::daemon::run(
        config,
        &config_dir,
        host_root.as_deref(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_flags_parse() {
        Args::command().debug_assert();
        let args =
            Args::try_parse_from(["haloyd", "--config", "/etc/haloy/haloyd.yaml", "--debug"])
                .unwrap();
        assert_eq!(args.config_path, PathBuf::from("/etc/haloy/haloyd.yaml"));
        assert!(args.debug);
        let missing = Args::try_parse_from(["haloyd"]).unwrap_err();
        assert!(missing.to_string().contains("--config"), "{missing}");
        assert!(Args::try_parse_from(["haloyd", "--config", "x", "--bogus"]).is_err());
    }

    #[test]
    fn the_version_names_the_crash_points_when_built_with_them() {
        let version = Args::command().render_version();
        assert!(version.starts_with(concat!("haloyd ", env!("CARGO_PKG_VERSION"))));
        assert_eq!(
            version.contains("(with crash points for tests)"),
            haloyd::engine::failpoint::ENABLED
        );
    }
}
