//! What every command reads from the process: the environment, the working directory
//! and Haloy's config directory, plus the flags shared by commands that act on targets.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap_complete::engine::CompletionCandidate;
use haloy_controller::TargetSelection;

/// The process as commands see it. Built once in `main`, passed down, so tests can
/// run commands with a scrubbed environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub vars: HashMap<String, String>,
    pub cwd: PathBuf,
}

impl Env {
    pub fn from_process() -> anyhow::Result<Self> {
        Ok(Self {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().context("cannot read the current directory")?,
        })
    }

    /// `~/.config/haloy` (or `$XDG_CONFIG_HOME/haloy`).
    pub fn haloy_dir(&self) -> Option<PathBuf> {
        haloy_controller::env::haloy_config_dir(&self.vars)
    }
}

/// `--config`, `--server`, `--targets` and `--all`, shared by target commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetFlags {
    /// Path to the config file or its directory (default: current directory).
    #[arg(short, long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Haloy server to use instead of the one in the config, e.g. haloy.example.com.
    #[arg(short, long, value_name = "SERVER")]
    pub server: Option<String>,
    /// Act on these targets (comma-separated).
    #[arg(
        short = 't',
        long = "targets",
        visible_alias = "target",
        value_name = "NAMES",
        value_delimiter = ',',
        add = clap_complete::engine::ArgValueCompleter::new(complete_targets)
    )]
    pub targets: Vec<String>,
    /// Act on every target.
    #[arg(short, long, conflicts_with = "targets")]
    pub all: bool,
}

impl TargetFlags {
    pub fn selection(&self) -> TargetSelection {
        TargetSelection {
            names: self
                .targets
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            all: self.all,
        }
    }
}

/// Target names from the config in the current directory that start with what was
/// typed (clap splits comma-separated lists and completes the last name).
pub fn complete_targets(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let Ok(config) = haloy_controller::ConfigFile::load(None::<&Path>, &cwd) else {
        return Vec::new();
    };
    config
        .target_names()
        .into_iter()
        .filter(|name| name.starts_with(current))
        .map(CompletionCandidate::new)
        .collect()
}
