//! Finding the config file and parsing YAML, JSON or TOML into [`RawConfig`]; errors
//! are explained by [`super::diagnose`] with line, column, key path and fix.

use std::path::{Path, PathBuf};

use super::diagnose;
use super::format::Format;
use super::raw::RawConfig;
use crate::error::{ConfigError, Issue};

/// File names tried, in order, when `--config` names a directory.
pub const CONFIG_FILE_NAMES: &[&str] = &["haloy.yaml", "haloy.yml", "haloy.json", "haloy.toml"];

/// Turns `--config` (a file, a directory, or nothing for the current directory) into
/// the config file's path.
pub fn find_config_file(given: Option<&Path>, cwd: &Path) -> Result<PathBuf, ConfigError> {
    let path = match given {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => cwd.join(p),
        None => cwd.to_path_buf(),
    };
    if path.is_dir() {
        return CONFIG_FILE_NAMES
            .iter()
            .map(|name| path.join(name))
            .find(|candidate| candidate.is_file())
            .ok_or(ConfigError::NoConfigInDir { dir: path });
    }
    if !path.exists() {
        return Err(ConfigError::NotFound { path });
    }
    if Format::of(&path).is_none() {
        return Err(ConfigError::UnknownFormat { path });
    }
    Ok(path)
}

/// Reads and parses a config file.
pub fn read_config(path: &Path) -> Result<RawConfig, ConfigError> {
    let format = Format::of(path).ok_or_else(|| ConfigError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text, format).map_err(|issues| ConfigError::Invalid {
        file: path.to_path_buf(),
        issues,
    })
}

/// Parses config text. Every issue has a line and column inside the text, except the
/// one for an empty file.
pub fn parse_config(text: &str, format: Format) -> Result<RawConfig, Vec<Issue>> {
    if text.trim().is_empty() && format != Format::Toml {
        return Err(vec![Issue::new(
            "",
            "the config file is empty",
            "add at least `name: my-app`",
        )]);
    }
    match format {
        Format::Yaml => {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de)
                .map_err(|err| diagnose::yaml(text, &err.path().to_string(), err.inner()))
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let config = serde_path_to_error::deserialize(&mut de)
                .map_err(|err| diagnose::json(text, &err.path().to_string(), err.inner()))?;
            de.end().map_err(|err| diagnose::json(text, "", &err))?;
            Ok(config)
        }
        Format::Toml => {
            let de =
                toml::Deserializer::parse(text).map_err(|err| diagnose::toml_syntax(text, &err))?;
            serde_path_to_error::deserialize(de)
                .map_err(|err| diagnose::toml_data(text, &err.path().to_string(), err.inner()))
        }
    }
}
