//! Where `from.env` values come from: the process environment and `.env` files,
//! looked up without touching the process environment, so each target of one run can
//! see its own `.env.<target>`.
//!
//! Precedence, highest first (the most specific source wins, and a variable exported
//! in the shell always beats a file, so CI can override anything):
//! 1. the process environment;
//! 2. `.env.<target>` in the current directory;
//! 3. `.env` in the current directory;
//! 4. `.env` in Haloy's config directory (`~/.config/haloy/.env`, where
//!    `haloy server add` keeps API tokens).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{DotenvError, DotenvProblem, DotenvSyntax};

/// A layered view of environment variables.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    /// Highest precedence first.
    layers: Vec<(String, HashMap<String, String>)>,
}

impl EnvSource {
    /// The process environment on its own.
    pub fn from_process() -> Self {
        Self::default().with_layer("the environment", std::env::vars().collect())
    }

    /// Adds a layer below the existing ones.
    pub fn with_layer(mut self, name: impl Into<String>, vars: HashMap<String, String>) -> Self {
        self.layers.push((name.into(), vars));
        self
    }

    /// Adds a `.env` file below the existing layers, if it exists.
    pub fn with_file(self, path: &Path) -> Result<Self, DotenvError> {
        match read_dotenv(path)? {
            Some(vars) => Ok(self.with_layer(path.display().to_string(), vars)),
            None => Ok(self),
        }
    }

    /// The standard layering for one target (see the module docs).
    pub fn for_target(
        process: &HashMap<String, String>,
        cwd: &Path,
        haloy_config_dir: Option<&Path>,
        target: Option<&str>,
    ) -> Result<Self, DotenvError> {
        let mut source = Self::default().with_layer("the environment", process.clone());
        if let Some(target) = target {
            source = source.with_file(&cwd.join(format!(".env.{target}")))?;
        }
        source = source.with_file(&cwd.join(".env"))?;
        if let Some(dir) = haloy_config_dir {
            source = source.with_file(&dir.join(".env"))?;
        }
        Ok(source)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.layers
            .iter()
            .find_map(|(_, vars)| vars.get(name).map(String::as_str))
    }

    /// Names of the places searched, for "not set" error messages.
    pub fn searched(&self) -> Vec<&str> {
        self.layers.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// Haloy's config directory: `$XDG_CONFIG_HOME/haloy` or `~/.config/haloy`.
pub fn haloy_config_dir(process: &HashMap<String, String>) -> Option<PathBuf> {
    if let Some(xdg) = process.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("haloy"));
    }
    process
        .get("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".config").join("haloy"))
}

/// Reads a `.env` file; `Ok(None)` when it does not exist.
pub fn read_dotenv(path: &Path) -> Result<Option<HashMap<String, String>>, DotenvError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DotenvError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse_dotenv(&text)
        .map(Some)
        .map_err(|source| DotenvError::Syntax {
            path: path.to_path_buf(),
            source,
        })
}

/// Parses `KEY=value` lines: `export ` prefixes, `#` comments, single quotes (literal)
/// and double quotes (with `\n`, `\"` and `\\` escapes). Errors carry the 1-based line.
///
/// Not `dotenvy` (re-checked against 0.15.7, its current release): every reader it
/// offers (`from_path_iter`, `from_read_iter`, ...) substitutes `$VAR` and `${VAR}`
/// in unquoted and double-quoted values, from this process's environment first, and
/// has no switch to turn that off. That breaks these tests here:
/// - `values_are_taken_as_written`: `P=abc$HOME` and `Q="x${HOME}"` would read
///   `abc/home/...` (a `$` in a password silently changes it, and a value depends on
///   the shell running `haloy`); its `T="a\tb"` is an error, as `\t` is not one of
///   dotenvy's escapes;
/// - `parses_the_usual_dotenv_forms`: `export B = two words` is an error (an unquoted
///   value ends at whitespace);
/// - `reports_the_line_of_a_bad_entry`: its errors carry the offending line's text
///   and a character offset within it, not the line number we name in the message.
pub fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, DotenvSyntax> {
    let mut vars = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let at_line = |problem| DotenvSyntax {
            line: line_no,
            problem,
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(at_line(DotenvProblem::NoEquals(
                first_word(line).to_string(),
            )));
        };
        let key = key.trim();
        if haloy_api::rules::env_name(key).is_err() {
            return Err(at_line(DotenvProblem::BadName(key.to_string())));
        }
        vars.insert(key.to_string(), unquote(value.trim()).map_err(at_line)?);
    }
    Ok(vars)
}

fn first_word(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

fn unquote(value: &str) -> Result<String, DotenvProblem> {
    let unterminated = DotenvProblem::Unclosed;
    if let Some(rest) = value.strip_prefix('\'') {
        let end = rest.find('\'').ok_or_else(|| unterminated('\''))?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        return Err(unterminated('"'));
    }
    // Unquoted: a '#' after whitespace starts a comment.
    let value = match value.find(" #") {
        Some(i) => &value[..i],
        None => value,
    };
    Ok(value.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_dotenv_forms() {
        let vars = parse_dotenv(
            "# comment\nA=1\nexport B = two words \nC='lit $x # not comment'\nD=\"line\\nnext \\\"q\\\"\"\nE=val # comment\nF=\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "lit $x # not comment");
        assert_eq!(vars["D"], "line\nnext \"q\"");
        assert_eq!(vars["E"], "val");
        assert_eq!(vars["F"], "");
    }

    #[test]
    fn values_are_taken_as_written() {
        // No `$VAR` expansion: a password with a `$` stays what the file says, and a
        // value never depends on this process's environment. Tabs escape in quotes.
        let vars = parse_dotenv("P=abc$HOME\nQ=\"x${HOME}\"\nT=\"a\\tb\"\n").unwrap();
        assert_eq!(vars["P"], "abc$HOME");
        assert_eq!(vars["Q"], "x${HOME}");
        assert_eq!(vars["T"], "a\tb");
    }

    #[test]
    fn reports_the_line_of_a_bad_entry() {
        assert_eq!(parse_dotenv("A=1\nnonsense\n").unwrap_err().line, 2);
        assert_eq!(parse_dotenv("A=\"open\n").unwrap_err().line, 1);
        assert_eq!(parse_dotenv("1A=x").unwrap_err().line, 1);
    }

    #[test]
    fn higher_layers_win() {
        let env = EnvSource::default()
            .with_layer("top", HashMap::from([("X".to_string(), "top".to_string())]))
            .with_layer(
                "bottom",
                HashMap::from([
                    ("X".to_string(), "bottom".to_string()),
                    ("Y".to_string(), "y".to_string()),
                ]),
            );
        assert_eq!(env.get("X"), Some("top"));
        assert_eq!(env.get("Y"), Some("y"));
        assert_eq!(env.get("Z"), None);
        assert_eq!(env.searched(), vec!["top", "bottom"]);
    }
}
