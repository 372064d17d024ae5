//! Turning a parser's refusal into issues a person can act on, in one shape for YAML,
//! JSON and TOML: the line and column of the mistake, the key path it concerns, what
//! is wrong and how to fix it, and the source line to show with a caret.

mod json_syntax;
pub(crate) mod keys;
mod serde_message;
mod source;
mod toml_syntax;
mod yaml_line_shape;
mod yaml_lines;

use serde_message::Found;
use source::Source;
use yaml_lines::Outline;

use super::format::Format;
use crate::error::Issue;

/// The issues behind a serde_yaml error: every line the outline finds wrong, and the
/// parser's own complaint when it is about another line.
pub fn yaml(text: &str, path: &str, error: &serde_yaml::Error) -> Vec<Issue> {
    let source = Source::new(text);
    let message = error.to_string();
    let at = error
        .location()
        .map_or((1, 1), |l| source.clamp(l.line(), l.column()));
    let outline = Outline::scan(&source);
    let issue = match serde_message::data_error(&message) {
        None if !outline.findings.is_empty() => None,
        None => Some(yaml_syntax(&source, &outline, &message, at)),
        Some(data) => Some(yaml_data(&source, &outline, path, data, at)),
    };
    let mut issues = outline.findings;
    let lines: Vec<usize> = issues
        .iter()
        .filter_map(|i| i.location)
        .map(|l| l.0)
        .collect();
    let elsewhere = |i: &Issue| i.location.is_none_or(|(line, _)| !lines.contains(&line));
    issues.extend(issue.filter(elsewhere));
    issues.sort_by_key(|i| i.location);
    issues
}

/// A serde data error (wrong type, unknown or duplicate key) in YAML.
fn yaml_data(
    source: &Source<'_>,
    outline: &Outline,
    path: &str,
    data: &str,
    at: (usize, usize),
) -> Issue {
    if data.starts_with("duplicate field ") {
        // serde_yaml places it at the start of the block; the outline knows the line
        // of a key written twice, and of two spellings of one key (`builder` and
        // `build_config`).
        let (path, problem, fix) = serde_message::explain(path, data, Format::Yaml, "");
        let wanted = keys::normalize(&path);
        let second = outline.lines_of(|p| keys::normalize(p) == wanted).nth(1);
        let at = second.map_or(at, |line| {
            let text = source.line(line);
            (line, text.chars().take_while(|c| *c == ' ').count() + 1)
        });
        return source.issue(at, path, problem, fix);
    }
    if let Some(issue) = missing_colon_in_value(source, path, data, at) {
        return issue;
    }
    let written = source.token(at);
    let (path, problem, fix) = serde_message::explain(path, data, Format::Yaml, written);
    source.issue(at, path, problem, fix)
}

/// `image:` followed by `  repository x`: YAML reads `repository x` as text, so the
/// error is a wrong type; the line shows it is a `key value` that lacks its `:`.
fn missing_colon_in_value(
    source: &Source<'_>,
    path: &str,
    data: &str,
    (line, column): (usize, usize),
) -> Option<Issue> {
    let (found, expected) = data
        .strip_prefix("invalid type: ")?
        .split_once(", expected ")?;
    let block = expected.starts_with("struct ") || expected == "a map";
    if !block || !matches!(Found::parse(found), Found::Text(_)) {
        return None;
    }
    let text = source.line(line);
    let start = text
        .char_indices()
        .nth(column - 1)
        .map_or(text.len(), |(i, _)| i);
    let content = text[start..].trim_start_matches("- ");
    let content = content.split(" #").next().unwrap_or(content).trim();
    // `repository x`, or `repository:x` (YAML needs a space after the `:`).
    let (word, rest, problem) = match content.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim(), format!("missing `:` after `{word}`")),
        None => {
            let (word, rest) = content.split_once(':')?;
            (
                word,
                rest,
                format!("`{content}` has no space after the `:`"),
            )
        }
    };
    if word.is_empty()
        || !word
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let key_column = column + (text[start..].len() - text[start..].trim_start_matches("- ").len());
    let block_path = serde_message::clean_path(path);
    let key_path = if block_path.is_empty() {
        word.to_string()
    } else {
        format!("{block_path}.{word}")
    };
    Some(source.issue(
        (line, key_column + word.chars().count()),
        key_path,
        problem,
        format!("write `{word}: {rest}`"),
    ))
}

/// A YAML syntax error the outline found nothing for: libyaml's message in the
/// config's words, placed where libyaml's context points (the opening quote, the key).
fn yaml_syntax(source: &Source<'_>, outline: &Outline, message: &str, at: (usize, usize)) -> Issue {
    let context = message.split_once(", while ").map(|(_, c)| c);
    let context_at = context.and_then(|c| {
        let (_, position) = c.split_once(" at line ")?;
        let (line, column) = position.split_once(" column ")?;
        Some(source.clamp(line.trim().parse().ok()?, column.trim().parse().ok()?))
    });
    let what = message.split(" at line ").next().unwrap_or(message);
    let context = context.unwrap_or("");
    let path_at = |line: usize| outline.path_at(line).to_string();
    let character = source.line(at.0).chars().nth(at.1 - 1).unwrap_or(' ');
    if let (true, Some(opened)) = (context.starts_with("scanning a quoted scalar"), context_at) {
        let quote = source
            .line(opened.0)
            .chars()
            .nth(opened.1 - 1)
            .unwrap_or('"');
        return source.issue(
            opened,
            path_at(opened.0),
            format!("the `{quote}` opened here is never closed"),
            format!("add the closing `{quote}` at the end of the text"),
        );
    }
    if let (true, Some(opened)) = (context.starts_with("parsing a flow"), context_at) {
        let (open, close) = if context.contains("sequence") {
            ('[', ']')
        } else {
            ('{', '}')
        };
        return source.issue(
            opened,
            path_at(opened.0),
            format!("the `{open}` opened here is never closed, or an entry lacks its `,`"),
            format!("separate the entries with `,` and end them with `{close}`"),
        );
    }
    let (place, problem, fix) = match what {
        "could not find expected ':'" => (
            context_at.unwrap_or(at),
            "a key lacks its `:`".to_string(),
            "write `key: value`, with a space after the `:`".to_string(),
        ),
        "found character that cannot start any token" if character == '\t' => (
            at,
            "a tab where YAML expects spaces".to_string(),
            "indent with spaces; YAML does not allow tabs in indentation".to_string(),
        ),
        "found character that cannot start any token" => (
            at,
            format!("`{character}` cannot start a value"),
            "put the value in quotes".to_string(),
        ),
        "mapping values are not allowed in this context" => (
            at,
            "a `:` where no key can start".to_string(),
            "line this key up with its sibling keys, or quote the value if it contains `: `"
                .to_string(),
        ),
        "block sequence entries are not allowed in this context" => (
            at,
            "a `- ` list entry where a value is expected".to_string(),
            "start the list on the line below its key, indented under it".to_string(),
        ),
        "did not find expected key" => (
            at,
            "this line does not line up with the keys above it".to_string(),
            "indent it like its sibling keys".to_string(),
        ),
        "did not find expected '-' indicator" => (
            at,
            "this line does not line up with the list entries above it".to_string(),
            "indent it like the other `- ` entries".to_string(),
        ),
        "found unknown escape character" => (
            at,
            "an unknown `\\` escape in double-quoted text".to_string(),
            "double the backslash (`\\\\`) or use single quotes".to_string(),
        ),
        other => (
            at,
            other.to_string(),
            "fix the YAML syntax at this position".to_string(),
        ),
    };
    source.issue(place, path_at(place.0), problem, fix)
}

/// The issues behind a serde_json error at key `path`.
pub fn json(text: &str, path: &str, error: &serde_json::Error) -> Vec<Issue> {
    let source = Source::new(text);
    let offset = json_offset(&source, error.line(), error.column());
    let message = error.to_string();
    if let Some(data) = serde_message::data_error(&message) {
        let start = json_syntax::value_start(text, offset);
        let at = source.position(start);
        let written = source.token(at);
        let (path, problem, fix) = serde_message::explain(path, data, Format::Json, written);
        return vec![source.issue(at, path, problem, fix)];
    }
    vec![json_syntax::diagnose(&source, offset, &message)]
}

/// serde_json counts columns in bytes from 1, with column 0 for the line break that
/// ends the line before.
fn json_offset(source: &Source<'_>, line: usize, column: usize) -> usize {
    if line == 0 || line > source.line_count() {
        return source.text().len();
    }
    let start = source.offset(line, 1);
    if column == 0 {
        return start.saturating_sub(1);
    }
    // The column may count to the last byte of a multi-byte character.
    let mut offset = (start + column - 1).min(start + source.line(line).len());
    while !source.text().is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The issue behind a TOML syntax error.
pub fn toml_syntax(text: &str, error: &toml::de::Error) -> Vec<Issue> {
    let source = Source::new(text);
    let span = error.span().unwrap_or(0..0);
    let span_text = text.get(span.clone()).unwrap_or("");
    vec![toml_syntax::diagnose(
        &source,
        span.start,
        span_text,
        error.message(),
    )]
}

/// The issue behind a TOML data error at key `path`.
pub fn toml_data(text: &str, path: &str, error: &toml::de::Error) -> Vec<Issue> {
    let source = Source::new(text);
    let at = source.position(error.span().map_or(0, |s| s.start));
    let message = error.message();
    let data = serde_message::data_error(message).unwrap_or(message);
    let written = source.token(at);
    let (path, problem, fix) = serde_message::explain(path, data, Format::Toml, written);
    vec![source.issue(at, path, problem, fix)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;

    /// The keys a block accepts, as serde lists them for an unknown one.
    fn accepted(yaml: &str) -> Vec<String> {
        let err = serde_yaml::from_str::<RawConfig>(yaml)
            .err()
            .map(|e| e.to_string());
        let message = err.unwrap_or_default();
        let list = message.split("expected one of ").nth(1).unwrap_or("");
        list.split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| !k.contains(char::is_uppercase))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_key_the_config_accepts_has_words() {
        let blocks = [
            ("", "zzz: 1\n"),
            ("image.", "image: {zzz: 1}\n"),
            ("image.builder.", "image: {builder: {zzz: 1}}\n"),
            ("image.history.", "image: {history: {zzz: 1}}\n"),
            ("image.registry.", "image: {registry: {zzz: 1}}\n"),
            ("env[0].", "env: [{zzz: 1}]\n"),
            ("health_check.", "health_check: {zzz: 1}\n"),
        ];
        for (prefix, yaml) in blocks {
            let keys = accepted(yaml);
            assert!(keys.len() >= 2, "{yaml}: {keys:?}");
            for key in keys {
                let path = format!("{prefix}{key}");
                assert!(keys::takes(&path).is_some(), "no words for {path}");
            }
        }
        // Serde lists a two-key block as "`a` or `b`", which `accepted` does not read.
        for path in ["resources.memory", "resources.cpus"] {
            assert!(keys::takes(path).is_some(), "no words for {path}");
        }
    }

    #[test]
    fn a_key_written_without_its_colon_is_reported_on_its_line() {
        let issues = yaml_issues("name: a\nimage:\n  repository x\n");
        assert_eq!(issues[0].location, Some((3, 13)));
        assert_eq!(issues[0].path, "image.repository");
        assert_eq!(issues[0].fix, "write `repository: x`");
    }

    fn yaml_issues(text: &str) -> Vec<Issue> {
        let de = serde_yaml::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, RawConfig>(de) {
            Ok(_) => Vec::new(),
            Err(e) => yaml(text, &e.path().to_string(), e.inner()),
        }
    }

    #[test]
    fn json_positions_at_a_line_end_stay_on_that_line() {
        let source = Source::new("{\n  \"a\": 1\n}\n");
        assert_eq!(json_offset(&source, 3, 0), 10);
        assert_eq!(json_offset(&source, 9, 9), source.text().len());
    }
}
