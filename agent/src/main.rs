//! `haloyd`: the Haloy agent. For now it checks its settings; serving the API comes
//! with the deploy engine.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let path = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => std::path::PathBuf::from(path),
        (Some("--version"), None) => {
            println!("haloyd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("usage: haloyd --config <haloyd.yaml>");
            return ExitCode::from(64);
        }
    };
    match haloyd::config::HaloydConfig::load(&path) {
        Ok(_) => {
            eprintln!(
                "error: haloyd cannot serve yet: the API and deploy engine are not built; settings in {} are valid",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(64)
        }
    }
}
