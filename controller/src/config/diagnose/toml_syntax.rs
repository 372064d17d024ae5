//! TOML syntax errors with the key they concern: the toml parser says what is wrong
//! and where; the lines before that point tell which table and key it is in, and where
//! a list that swallowed the next line was opened.

use super::source::Source;
use crate::error::Issue;

/// The table a line is in: `image` under `[image]`, `env[1]` under the second `[[env]]`.
fn table_at(source: &Source<'_>, line: usize) -> String {
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    for n in 1..line.min(source.line_count() + 1) {
        let text = source.line(n).trim();
        if let Some(name) = text.strip_prefix("[[").and_then(|t| t.split("]]").next()) {
            let name = clean_key(name);
            let count = match arrays.iter_mut().find(|(a, _)| *a == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    arrays.push((name.clone(), 0));
                    0
                }
            };
            table = format!("{name}[{count}]");
        } else if let Some(name) = text.strip_prefix('[').and_then(|t| t.split(']').next()) {
            table = clean_key(name);
        }
    }
    table
}

/// `"a" . b` → `a.b`.
fn clean_key(key: &str) -> String {
    let parts: Vec<&str> = key
        .split('.')
        .map(|p| p.trim().trim_matches(['"', '\'']))
        .collect();
    parts.join(".")
}

/// The key written at the start of a line (`name` in `name = "a"`), if any.
fn key_on(line: &str) -> Option<String> {
    let text = line.trim_start();
    if text.starts_with(['[', '#']) || text.is_empty() {
        return None;
    }
    let end = text.find(['=', ' ', '\t']).unwrap_or(text.len());
    Some(clean_key(&text[..end]))
}

fn join(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => table.to_string(),
        _ => format!("{table}.{key}"),
    }
}

/// The line before `line` that opened a list still open at `line`: its number and key.
fn open_list_before(source: &Source<'_>, line: usize) -> Option<(usize, usize, String)> {
    let mut open: Option<(usize, usize, String)> = None;
    let mut depth = 0usize;
    for n in 1..line {
        let text = source.line(n);
        let mut quote = None;
        for (column, c) in text.chars().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[') if depth > 0 || text[..text.find('[').unwrap_or(0)].contains('=') => {
                    if depth == 0 {
                        open = Some((n, column + 1, key_on(text).unwrap_or_default()));
                    }
                    depth += 1;
                }
                (None, ']') if depth > 0 => depth -= 1,
                _ => {}
            }
        }
    }
    open.filter(|_| depth > 0)
}

/// The issue for a TOML syntax error at byte `offset`.
pub fn diagnose(source: &Source<'_>, offset: usize, span_text: &str, message: &str) -> Issue {
    let (line, column) = source.position(offset);
    let text = source.line(line);
    let table = table_at(source, line);
    let key = key_on(text).unwrap_or_default();
    let here = join(&table, &key);
    if message.starts_with("duplicate key") {
        let duplicate = clean_key(span_text);
        if text.trim_start().starts_with('[') {
            let name = clean_key(text.trim().trim_start_matches('[').trim_end_matches(']'));
            return source.issue(
                (line, column),
                name.clone(),
                format!("table `[{name}]` is defined twice"),
                format!("merge the two `[{name}]` tables into one"),
            );
        }
        let first = (1..line)
            .rev()
            .take_while(|n| !source.line(*n).trim_start().starts_with('['))
            .filter(|n| key_on(source.line(*n)).as_deref() == Some(duplicate.as_str()))
            .last();
        let first = first.map_or(String::new(), |n| format!(" (first on line {n})"));
        return source.issue(
            (line, column),
            join(&table, &duplicate),
            format!("`{duplicate}` is given twice{first}"),
            "keep one of them",
        );
    }
    if message.starts_with("unclosed table") || message.starts_with("unclosed array table") {
        let header = text.trim().trim_end_matches(']');
        let close = if header.starts_with("[[") { "]]" } else { "]" };
        let name = clean_key(header.trim_start_matches('['));
        return source.issue(
            (line, column),
            name.clone(),
            format!("the table header `{header}` has no closing `{close}`"),
            format!("write `{header}{close}`"),
        );
    }
    if message.starts_with("missing comma between array elements")
        || message.starts_with("unclosed array")
    {
        if let Some((opened, open_column, list)) = open_list_before(source, line) {
            let list = join(&table_at(source, opened), &list);
            let next_is_new = text.trim_start().starts_with('[')
                || key_on(text).is_some_and(|k| text.contains(&format!("{k} =")));
            if next_is_new || message.starts_with("unclosed array") {
                return source.issue(
                    (opened, open_column),
                    list.clone(),
                    format!("the list `{list}` opened here is never closed"),
                    "add `]` after its last entry",
                );
            }
            return source.issue(
                (line, column),
                list.clone(),
                format!("missing `,` between the entries of `{list}`"),
                "put a `,` after each entry but the last",
            );
        }
        let problem = if message.starts_with("unclosed array") {
            format!("the list `{here}` is never closed")
        } else {
            format!("missing `,` between the entries of `{here}`")
        };
        return source.issue(
            (line, column),
            here,
            problem,
            "put a `,` after each entry but the last, and `]` after the last",
        );
    }
    let trimmed = text.trim();
    if trimmed.ends_with(']') && !trimmed.starts_with('[') && !trimmed.contains('=') {
        let close = if trimmed.ends_with("]]") { "[[" } else { "[" };
        let name = clean_key(trimmed.trim_end_matches(']'));
        return source.issue(
            (line, column),
            name,
            format!("the table header `{trimmed}` has no opening `{close}`"),
            format!("write `{close}{trimmed}`"),
        );
    }
    if message.starts_with("key with no value") || message.starts_with("missing assignment") {
        let rest = text.trim_start().get(key.len()..).unwrap_or("").trim();
        let fix = if rest.is_empty() {
            format!("write `{key} = ` followed by its value")
        } else {
            format!("write `{key} = {rest}`")
        };
        return source.issue(
            (line, column),
            here,
            format!("missing `=` after `{key}`"),
            fix,
        );
    }
    if message.starts_with("invalid basic string") || message.starts_with("invalid literal string")
    {
        let quote = if message.contains("basic") { '"' } else { '\'' };
        let opening = text
            .find('=')
            .and_then(|eq| text[eq..].find(quote).map(|q| eq + q));
        let column = opening.map_or(column, |i| text[..i].chars().count() + 1);
        return source.issue(
            (line, column),
            here,
            format!("the `{quote}` opened here is never closed"),
            format!("add the closing `{quote}` on the same line"),
        );
    }
    if message.starts_with("missing opening quote") {
        return source.issue(
            (line, column),
            here,
            format!("the text of `{key}` has no opening `\"`"),
            "put `\"` before the value",
        );
    }
    if message.starts_with("unexpected key or value") {
        return source.issue(
            (line, column),
            here,
            format!("something follows the value of `{key}` on its line"),
            "put each key on its own line, and `#` before a comment",
        );
    }
    if message.starts_with("invalid boolean")
        || message.starts_with("invalid float")
        || message.starts_with("invalid integer")
    {
        let value = text.split_once('=').map_or("", |(_, v)| v.trim());
        let value: String = value.chars().take(30).collect();
        return source.issue(
            (line, column),
            here,
            format!("`{value}` is not a TOML value"),
            "put text in double quotes, or write a number, `true` or `false`",
        );
    }
    if message.starts_with("string values must be quoted") {
        return source.issue(
            (line, column),
            here,
            "text without quotes",
            format!("put the value of `{key}` in double quotes"),
        );
    }
    source.issue(
        (line, column),
        here,
        message.to_string(),
        "fix the TOML syntax at this position",
    )
}
