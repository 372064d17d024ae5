//! Finding the config file and parsing YAML, JSON or TOML into [`RawConfig`], with the
//! key path and, where the format gives it, line and column of any error.

use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use crate::error::{ConfigError, Issue};

/// File names tried, in order, when `--config` names a directory.
pub const CONFIG_FILE_NAMES: &[&str] = &["haloy.yaml", "haloy.yml", "haloy.json", "haloy.toml"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }
}

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
    parse_config(&text, format).map_err(|issue| ConfigError::Invalid {
        file: path.to_path_buf(),
        issues: vec![issue],
    })
}

/// Parses config text; the error is one issue located as precisely as the format allows.
pub fn parse_config(text: &str, format: Format) -> Result<RawConfig, Issue> {
    match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                return Err(empty_file());
            }
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|err| {
                let location = err.inner().location().map(|loc| (loc.line(), loc.column()));
                issue_from_serde(err.path().to_string(), &err.inner().to_string(), location)
            })
        }
        Format::Json => {
            let json_issue = |path: String, inner: &serde_json::Error| {
                let location = (inner.line() > 0).then(|| (inner.line(), inner.column()));
                issue_from_serde(path, &inner.to_string(), location)
            };
            let mut de = serde_json::Deserializer::from_str(text);
            let config = serde_path_to_error::deserialize(&mut de)
                .map_err(|err| json_issue(err.path().to_string(), err.inner()))?;
            de.end().map_err(|err| json_issue(String::new(), &err))?;
            Ok(config)
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|err| {
                let location = err.span().map(|span| line_col(text, span.start));
                issue_from_serde(".".into(), err.message(), location)
            })?;
            serde_path_to_error::deserialize(de).map_err(|err| {
                let inner = err.inner();
                let location = inner.span().map(|span| line_col(text, span.start));
                issue_from_serde(err.path().to_string(), inner.message(), location)
            })
        }
    }
}

fn empty_file() -> Issue {
    Issue::new(
        "",
        "the config file is empty",
        "add at least `name: my-app`",
    )
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Rewrites serde's messages into a problem and a fix.
fn issue_from_serde(path: String, message: &str, location: Option<(usize, usize)>) -> Issue {
    let mut path = if path == "." { String::new() } else { path };
    // serde_yaml prefixes the path and appends " at line X column Y"; we print our own.
    let start = SERDE_PHRASES
        .iter()
        .filter_map(|phrase| message.find(phrase))
        .min()
        .unwrap_or(0);
    let message = message[start..]
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .trim()
        .to_string();
    if message.starts_with("unknown field ") {
        // The path ends with the unknown key itself; report the block it is in.
        path = parent_path(&path);
    }
    let (problem, mut fix) = explain(&message);
    if path.starts_with("targets.") && message.starts_with("unknown field `global_") {
        fix = "global hooks run once for all targets: move it to the top level of the file".into();
    }
    let mut issue = Issue::new(path, problem, fix);
    issue.location = location;
    issue
}

const SERDE_PHRASES: &[&str] = &[
    "unknown field ",
    "unknown variant ",
    "missing field ",
    "duplicate field ",
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
];

/// `targets.prod.replica` → `targets.prod`; `env[0].x` → `env[0]`.
fn parent_path(path: &str) -> String {
    match path.rfind(['.', '[']) {
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn explain(message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let names = backticked(rest);
        let (unknown, expected) = names.split_first().map_or(("", &[][..]), |(u, e)| (*u, e));
        let known: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|k| !k.contains(char::is_uppercase))
            .collect();
        let fix = match crate::suggest::closest(unknown, &known) {
            Some(best) => format!(
                "did you mean `{best}`? known keys here: {}",
                known.join(", ")
            ),
            None if known.is_empty() => "remove it; this block takes no keys".to_string(),
            None => format!("remove it or use one of: {}", known.join(", ")),
        };
        return (format!("unknown key `{unknown}`"), fix);
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let names = backticked(rest);
        if let Some((bad, expected)) = names.split_first() {
            return (
                format!("`{bad}` is not an accepted value"),
                format!("use one of: {}", expected.join(", ")),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = backticked(rest)
            .first()
            .copied()
            .unwrap_or(rest)
            .to_string();
        return (
            format!("required key `{field}` is missing"),
            format!("add `{field}`"),
        );
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        let field = backticked(rest)
            .first()
            .copied()
            .unwrap_or(rest)
            .to_string();
        return (
            format!("key `{field}` is given twice"),
            "keep one of them (builder and build_config, or snake_case and camelCase spellings, are the same key)".to_string(),
        );
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        {
            let hint = if expected.contains("string") && found.starts_with("floating point") {
                " (quote the value)"
            } else {
                ""
            };
            return (
                format!("{found} is the wrong type"),
                format!("write {expected} here{hint}"),
            );
        }
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid value: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        {
            return (
                format!("{found} is out of range"),
                format!("write {expected}"),
            );
        }
    }
    (
        message.to_string(),
        "fix the syntax at this position".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("a\nbc\n", 0), (1, 1));
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
    }

    #[test]
    fn explains_unknown_fields_with_a_suggestion() {
        let (problem, fix) =
            explain("unknown field `acme_emial`, expected one of `name`, `acme_email`, `server`");
        assert_eq!(problem, "unknown key `acme_emial`");
        assert!(fix.starts_with("did you mean `acme_email`?"), "{fix}");
    }
}
