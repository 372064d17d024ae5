//! Serde's data errors (unknown key, wrong type, missing key, …) rewritten as a problem
//! and a fix in the config's words: no Rust type names, no `?` in key paths.

use super::keys::{self, Takes};
use crate::config::format::Format;

const SERDE_PHRASES: &[&str] = &[
    "unknown field ",
    "unknown variant ",
    "missing field ",
    "duplicate field ",
    "invalid type: ",
    "invalid value: ",
    "invalid length ",
];

/// The data error inside a parser's message (serde_yaml prefixes the key path and
/// appends " at line X column Y"); `None` for a syntax error.
pub fn data_error(message: &str) -> Option<&str> {
    let start = SERDE_PHRASES.iter().filter_map(|p| message.find(p)).min()?;
    let message = &message[start..];
    Some(message.split(" at line ").next().unwrap_or(message).trim())
}

/// A key path as serde_path_to_error prints it, without its unknown (`?`) parts:
/// `image.?` → `image`, `.` → ``.
pub fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .collect();
    parts.join(".")
}

/// What a wrong value is, as serde describes it after "invalid type: ".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// Text, with its quotes.
    Text(&'a str),
    Number(&'a str),
    Decimal(&'a str),
    Bool(&'a str),
    Block,
    List,
    Empty,
    Other,
}

impl<'a> Found<'a> {
    pub fn parse(found: &'a str) -> Self {
        let ticked = |rest: &'a str| rest.trim_matches('`');
        if let Some(text) = found.strip_prefix("string ") {
            return Self::Text(text);
        }
        if let Some(n) = found.strip_prefix("integer ") {
            return Self::Number(ticked(n));
        }
        if let Some(n) = found.strip_prefix("floating point ") {
            return Self::Decimal(ticked(n));
        }
        if let Some(b) = found.strip_prefix("boolean ") {
            return Self::Bool(ticked(b));
        }
        match found {
            "map" => Self::Block,
            "sequence" => Self::List,
            "unit value" | "unit" | "null" => Self::Empty,
            _ => Self::Other,
        }
    }

    fn describe(self, format: Format) -> String {
        match self {
            Self::Text(text) => format!("{text} is text"),
            Self::Number(n) => format!("`{n}` is a number"),
            Self::Decimal(n) => format!("`{n}` is a decimal number"),
            Self::Bool(b) => format!("`{b}` is a true/false value"),
            Self::Block => format!("{} is given", keys::block_noun(format)),
            Self::List => "a list is given".into(),
            Self::Empty => "the value is empty".into(),
            Self::Other => "the value has the wrong type".into(),
        }
    }

    /// The value as it would be written in quotes.
    fn literal(self) -> Option<&'a str> {
        match self {
            Self::Number(v) | Self::Decimal(v) | Self::Bool(v) => Some(v),
            _ => None,
        }
    }
}

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

/// The key path to report, the problem and the fix for a data error at `path`;
/// `written` is the value as it stands in the file (`1.10`, which serde reads as 1.1).
pub fn explain(
    path: &str,
    message: &str,
    format: Format,
    written: &str,
) -> (String, String, String) {
    let path = clean_path(path);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        // The path ends with the unknown key itself; report the block it is in.
        let parent = parent_path(&path);
        let (problem, mut fix) = unknown_key(rest);
        if parent.starts_with("targets.") && rest.starts_with("`global_") {
            fix = "global hooks run once for all targets: move it to the top level of the file"
                .into();
        }
        return (parent, problem, fix);
    }
    let variant = message.strip_prefix("unknown variant ").map(backticked);
    if let Some((bad, expected)) = variant.as_deref().and_then(<[&str]>::split_first) {
        return (
            path,
            format!("`{bad}` is not an accepted value"),
            format!("use one of: {}", expected.join(", ")),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = backticked(rest)
            .first()
            .copied()
            .unwrap_or(rest)
            .to_string();
        return (
            path,
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
        let key_path = if path.is_empty() {
            field.clone()
        } else {
            format!("{path}.{field}")
        };
        return (
            key_path,
            format!("key `{field}` is given twice"),
            format!("keep one of them{}", same_key(&field)),
        );
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let found = Found::parse(found);
        let fix = wrong_type_fix(&path, found, expected, format, written);
        return (path, found.describe(format), fix);
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid value: ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let found = found.split_once(' ').map_or(found, |(_, value)| value);
        let takes = keys::takes(&path).map_or_else(
            || {
                let key = keys::key_name(&path);
                format!("{key} takes {}", keys::expected_words(expected, format))
            },
            |takes| keys::sentence(&path, takes, format),
        );
        return (path, format!("{found} is out of range"), takes);
    }
    (
        path,
        message.to_string(),
        "correct the value at this position".into(),
    )
}

/// Why a key can be given twice without being written twice.
fn same_key(field: &str) -> String {
    if field == "builder" {
        return " (builder and build_config are the same key)".into();
    }
    let mut camel = String::new();
    let mut upper = false;
    for c in field.chars() {
        match (c, upper) {
            ('_', _) => upper = true,
            (c, true) => {
                camel.extend(c.to_uppercase());
                upper = false;
            }
            (c, false) => camel.push(c),
        }
    }
    if camel == field {
        String::new()
    } else {
        format!(" ({field} and {camel} are the same key)")
    }
}

fn unknown_key(rest: &str) -> (String, String) {
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
    (format!("unknown key `{unknown}`"), fix)
}

fn wrong_type_fix(
    path: &str,
    found: Found<'_>,
    expected: &str,
    format: Format,
    written: &str,
) -> String {
    let key = keys::key_name(path);
    let takes = keys::takes(path);
    if let (Some(Takes::Text(what, _)), Some(read)) = (takes, found.literal()) {
        let value = if written.is_empty() { read } else { written };
        // `tag: 1.10` is read as a number; quoting keeps it text.
        let quoted = keys::written(key, &format!("\"{value}\""), format);
        let what = if what == "text" {
            what.to_string()
        } else {
            format!("{what} (text)")
        };
        return format!("{key} takes {what}; put the value in quotes: `{quoted}`");
    }
    match takes {
        Some(takes) => keys::sentence(path, takes, format),
        None => {
            let subject = if key.is_empty() { "the file" } else { key };
            format!("{subject} takes {}", keys::expected_words(expected, format))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_unknown_fields_with_a_suggestion() {
        let (path, problem, fix) = explain(
            "acme_emial",
            "unknown field `acme_emial`, expected one of `name`, `acme_email`, `server`",
            Format::Yaml,
            "",
        );
        assert_eq!(path, "");
        assert_eq!(problem, "unknown key `acme_emial`");
        assert!(fix.starts_with("did you mean `acme_email`?"), "{fix}");
    }

    #[test]
    fn wrong_types_are_explained_without_rust_names() {
        let (path, problem, fix) = explain(
            "replicas",
            "invalid type: string \"three\", expected i64",
            Format::Yaml,
            "",
        );
        assert_eq!(path, "replicas");
        assert_eq!(problem, "\"three\" is text");
        assert_eq!(fix, "replicas takes a whole number, e.g. `replicas: 3`");

        let (_, problem, fix) = explain(
            "image.tag",
            "invalid type: floating point `1.5`, expected a string",
            Format::Json,
            "",
        );
        assert_eq!(problem, "`1.5` is a decimal number");
        assert!(
            fix.ends_with("put the value in quotes: `\"tag\": \"1.5\"`"),
            "{fix}"
        );
    }

    #[test]
    fn syntax_errors_are_not_data_errors() {
        assert_eq!(
            data_error("could not find expected ':' at line 3 column 1"),
            None
        );
        assert_eq!(
            data_error("env: invalid type: map, expected a sequence at line 3 column 3"),
            Some("invalid type: map, expected a sequence")
        );
    }
}
