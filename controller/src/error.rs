//! Errors of the workstation side. Every message says what is wrong and how to fix it,
//! names the file and key path involved, and never contains a secret value.

use std::fmt;
use std::path::PathBuf;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Key path such as `targets.production.volumes[1]`; empty for the whole file.
    pub path: String,
    /// 1-based line and column, where the format gives them.
    pub location: Option<(usize, usize)>,
    pub problem: String,
    pub fix: String,
    /// The text of the line `location` is on, shown under the message with a caret.
    pub source_line: Option<String>,
}

impl Issue {
    pub fn new(
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            location: None,
            problem: problem.into(),
            fix: fix.into(),
            source_line: None,
        }
    }

    /// The source line and a caret under the column, the way compilers show them:
    /// `  2 | server example.com` over `    |       ^`.
    pub fn excerpt(&self) -> Option<String> {
        let ((line, column), text) = (self.location?, self.source_line.as_deref()?);
        let number = line.to_string();
        // Tabs are kept so the caret lines up however wide the terminal draws them.
        let pad: String = text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let gutter = " ".repeat(number.len());
        Some(format!("{number} | {text}\n{gutter} | {pad}^"))
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.location {
            write!(f, "{line}:{column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}; {}", self.problem, self.fix)
    }
}

fn list(file: &std::path::Path, issues: &[Issue]) -> String {
    let file = file.display();
    let lines: Vec<String> = issues
        .iter()
        .map(|issue| {
            let mut text = match issue.location {
                // file:line:column reads as a location in editors and terminals.
                Some(_) => format!("  {file}:{issue}"),
                None => format!("  {file}: {issue}"),
            };
            if let Some(excerpt) = issue.excerpt() {
                for line in excerpt.lines() {
                    text.push_str("\n    ");
                    text.push_str(line);
                }
            }
            text
        })
        .collect();
    lines.join("\n")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file {path} does not exist; pass --config with a haloy.yaml, .yml, .json or .toml file or its directory"
    )]
    NotFound { path: PathBuf },
    #[error(
        "no haloy.yaml, haloy.yml, haloy.json or haloy.toml in {dir}; create one there or pass --config <file>"
    )]
    NoConfigInDir { dir: PathBuf },
    #[error(
        "{path} is not a .yaml, .yml, .json or .toml file; rename it with the extension of its format"
    )]
    UnknownFormat { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has {} problem{}:\n{}", file.display(), issues.len(), if issues.len() == 1 { "" } else { "s" }, list(file, issues))]
    Invalid { file: PathBuf, issues: Vec<Issue> },
    #[error("{file}: no target named {name:?}; choose from: {}", available.join(", "))]
    UnknownTarget {
        file: PathBuf,
        name: String,
        available: Vec<String>,
    },
    #[error("{} has no targets, so --targets/--all do not apply; drop the flag or add a `targets:` block", file.display())]
    NoTargets { file: PathBuf },
    #[error(transparent)]
    Dotenv(#[from] DotenvError),
    #[error("{} defines several targets ({}); choose with --targets <name>[,<name>] or --all", file.display(), available.join(", "))]
    TargetRequired {
        file: PathBuf,
        available: Vec<String>,
    },
}

/// A `.env` file that cannot be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{}: {}; write KEY=value, one per line", source.line, source.problem)]
    Syntax { path: PathBuf, source: DotenvSyntax },
}

/// A line of a `.env` file that is not `KEY=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct DotenvSyntax {
    /// 1-based.
    pub line: usize,
    pub problem: DotenvProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvProblem {
    #[error("line has no '=' after {0:?}")]
    NoEquals(String),
    #[error("{0:?} is not a valid variable name")]
    BadName(String),
    #[error("the {0} quote is not closed")]
    Unclosed(char),
}

/// A `from.secret` reference that is not `<provider>:<source>.<field>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    #[error("{0:?} has no provider; write it as onepassword:<source>.<field>")]
    NoProvider(String),
    #[error(
        "unknown secret provider {0:?}; the supported provider is onepassword (onepassword:<source>.<field>)"
    )]
    UnknownProvider(String),
    #[error("{text:?} does not name a source and a field; write it as {provider}:<source>.<field>")]
    NoField { text: String, provider: String },
}

/// Failures of a secret provider. Messages name the reference, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the 1Password CLI `op` was not found on PATH; install it and sign in with `op signin`"
    )]
    OpMissing,
    #[error("the 1Password CLI is not signed in{}; run `op signin` (or set OP_SERVICE_ACCOUNT_TOKEN) and try again", account.as_deref().map(|a| format!(" to account {a:?}")).unwrap_or_default())]
    OpNotSignedIn { account: Option<String> },
    #[error("1Password item {item:?} was not found{}; check secret_providers.onepassword.{source_name}.item and .vault", vault.as_deref().map(|v| format!(" in vault {v:?}")).unwrap_or_default())]
    ItemNotFound {
        source_name: String,
        item: String,
        vault: Option<String>,
    },
    #[error("1Password item {item:?} has no field {field:?}; its fields are: {}", available.join(", "))]
    FieldNotFound {
        item: String,
        field: String,
        available: Vec<String>,
    },
    #[error("`op item get {item:?}` failed ({status}): {stderr}")]
    OpFailed {
        item: String,
        status: String,
        stderr: String,
    },
    #[error("`op item get {item:?}` printed output that is not 1Password item JSON: {problem}")]
    OpOutput { item: String, problem: String },
}
