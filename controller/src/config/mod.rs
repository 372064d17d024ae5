//! The configuration engine: find and parse the file, apply target inheritance,
//! validate every rule and resolve value sources into a [`plan::Plan`].

mod diagnose;
pub mod format;
pub mod load;
pub mod merge;
pub mod plan;
pub mod raw;
mod raw_rollout;
pub mod resolve;
pub mod schema;
pub mod starter;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::env::EnvSource;
use crate::error::{ConfigError, Issue};
use crate::secrets::SecretResolver;
use plan::Plan;
use raw::RawConfig;

/// Which targets a command acts on.
#[derive(Debug, Clone, Default)]
pub struct TargetSelection {
    /// `--targets a,b` (already split on commas).
    pub names: Vec<String>,
    /// `--all`.
    pub all: bool,
}

/// Which value sources a command reads while planning. The command chooses: only
/// commands that start containers need the app's secrets, so the rest work without
/// them (and never call a secret provider for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Every value source: app env, build arguments, registry credentials (`deploy`,
    /// `rollback`, `validate-config`).
    Everything,
    /// The server and its API token only. App env values, build arguments and
    /// registry credentials are checked for shape but not read: the plan's `spec.env`
    /// and build arguments are empty and `spec.image.registry` is `None`.
    Connection,
    /// [`Needs::Connection`] plus the registry credentials when
    /// `image.history.strategy` is `registry` (`rollback-targets` lists the
    /// registry's tags).
    RegistryHistory,
}

impl Needs {
    /// Whether app env values and build arguments are read.
    pub fn app_secrets(self) -> bool {
        self == Self::Everything
    }
}

/// A parsed config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub raw: RawConfig,
}

impl ConfigFile {
    /// Loads `--config` (file, directory or the current directory).
    pub fn load(given: Option<&Path>, cwd: &Path) -> Result<Self, ConfigError> {
        let path = load::find_config_file(given, cwd)?;
        let raw = load::read_config(&path)?;
        let file = Self { path, raw };
        file.check_structure()?;
        Ok(file)
    }

    /// The directory build contexts and hooks are relative to.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Target names in file order; empty for a single-target file.
    pub fn target_names(&self) -> Vec<String> {
        self.raw
            .targets
            .as_ref()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Resolves a selection to target names (`None` for a file without targets).
    /// With no flags on a multi-target file, `all_by_default` picks every target;
    /// otherwise the caller must choose.
    pub fn select(
        &self,
        selection: &TargetSelection,
        all_by_default: bool,
    ) -> Result<Vec<Option<String>>, ConfigError> {
        let available = self.target_names();
        if available.is_empty() {
            if selection.all || !selection.names.is_empty() {
                return Err(ConfigError::NoTargets {
                    file: self.path.clone(),
                });
            }
            return Ok(vec![None]);
        }
        if selection.all || (selection.names.is_empty() && all_by_default) {
            return Ok(available.into_iter().map(Some).collect());
        }
        if selection.names.is_empty() {
            return Err(ConfigError::TargetRequired {
                file: self.path.clone(),
                available,
            });
        }
        let mut chosen = Vec::new();
        for name in &selection.names {
            if !available.contains(name) {
                return Err(ConfigError::UnknownTarget {
                    file: self.path.clone(),
                    name: name.clone(),
                    available,
                });
            }
            if !chosen.contains(&Some(name.clone())) {
                chosen.push(Some(name.clone()));
            }
        }
        Ok(chosen)
    }

    /// Validates the chosen targets and resolves the value sources `needs` names.
    /// `process_env` is the environment `from.env` reads first; `.env` files are
    /// found from `cwd` and `haloy_dir`.
    pub fn plan(
        &self,
        targets: &[Option<String>],
        needs: Needs,
        process_env: &HashMap<String, String>,
        cwd: &Path,
        haloy_dir: Option<&Path>,
    ) -> Result<Plan, ConfigError> {
        let mut secrets = SecretResolver::new(
            self.raw
                .secret_providers
                .as_ref()
                .and_then(|p| p.onepassword.as_ref()),
            process_env.clone(),
        );
        let mut issues: Vec<Issue> = Vec::new();
        let mut plans = Vec::new();
        for target in targets {
            let env = EnvSource::for_target(process_env, cwd, haloy_dir, target.as_deref())?;
            let raw_target = target
                .as_deref()
                .and_then(|name| Some((name, self.raw.targets.as_ref()?.get(name)?)));
            let merged = merge::merge(&self.raw, raw_target);
            let mut ctx = resolve::Context {
                env: &env,
                secrets: &mut secrets,
                config_dir: self.dir(),
                needs,
            };
            match resolve::plan_target(
                self.raw.name.as_deref(),
                &merged,
                target.as_deref(),
                &mut ctx,
            ) {
                Ok(plan) => plans.push(plan),
                Err(found) => {
                    // A base value shared by several targets is reported once.
                    for issue in found {
                        if !issues.contains(&issue) {
                            issues.push(issue);
                        }
                    }
                }
            }
        }
        if !issues.is_empty() {
            return Err(ConfigError::Invalid {
                file: self.path.clone(),
                issues,
            });
        }
        Ok(Plan {
            config_file: self.path.clone(),
            global_pre_deploy: self.raw.global_pre_deploy.clone().unwrap_or_default(),
            global_post_deploy: self.raw.global_post_deploy.clone().unwrap_or_default(),
            targets: plans,
        })
    }

    /// Rules about the file as a whole, independent of the chosen targets.
    fn check_structure(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        if let Some(targets) = &self.raw.targets {
            if targets.is_empty() {
                issues.push(Issue::new(
                    "targets",
                    "targets is empty",
                    "define at least one target or remove the targets key",
                ));
            }
            for name in targets.keys() {
                if let Err(v) = haloy_api::rules::target_name(name) {
                    issues.push(Issue::new(format!("targets.{name}"), v.problem, v.fix));
                }
            }
        }
        for (key, hooks) in [
            ("global_pre_deploy", &self.raw.global_pre_deploy),
            ("global_post_deploy", &self.raw.global_post_deploy),
        ] {
            for (i, command) in hooks.iter().flatten().enumerate() {
                if command.trim().is_empty() {
                    issues.push(Issue::new(
                        format!("{key}[{i}]"),
                        "the command is empty",
                        "write a shell command or remove the entry",
                    ));
                }
            }
        }
        let sources = self
            .raw
            .secret_providers
            .iter()
            .flat_map(|p| p.onepassword.iter().flatten());
        for (name, source) in sources {
            if source.item.as_deref().is_some_and(|i| i.trim().is_empty()) {
                issues.push(Issue::new(
                    format!("secret_providers.onepassword.{name}.item"),
                    "the item is empty",
                    "name the 1Password item, e.g. item: \"Database Credentials\"",
                ));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: self.path.clone(),
                issues,
            })
        }
    }
}
