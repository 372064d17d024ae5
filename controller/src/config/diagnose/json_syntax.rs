//! JSON syntax errors placed at the mistake: serde_json stops on the character after
//! it (the `}` after a trailing comma, the key after a missing comma), so the text up
//! to that point is walked again to find the value or key before it and its key path.

use super::source::Source;
use crate::error::Issue;

/// An object or array still open at the walk's end.
struct Frame {
    object: bool,
    start: usize,
    path: String,
    key: Option<String>,
    expect_key: bool,
    index: usize,
}

impl Frame {
    /// The key path of the value being read in this frame.
    fn value_path(&self) -> String {
        if self.object {
            let key = self.key.as_deref().unwrap_or("");
            if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            }
        } else {
            format!("{}[{}]", self.path, self.index)
        }
    }
}

/// A key or value the walk read: its path and byte range.
#[derive(Clone, Default)]
struct Token {
    path: String,
    start: usize,
    end: usize,
}

#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    last_value: Option<Token>,
    last_key: Option<Token>,
    /// A string that runs past the walk's end (or a line break).
    open_string: Option<Token>,
}

impl Walk {
    fn path(&self) -> String {
        self.stack.last().map_or(String::new(), Frame::value_path)
    }

    fn over(text: &str, until: usize) -> Self {
        let mut walk = Walk::default();
        let bytes = text.as_bytes();
        let until = until.min(bytes.len());
        let mut i = 0;
        while i < until {
            let c = bytes[i];
            match c {
                b'{' | b'[' => {
                    let path = walk.path();
                    walk.stack.push(Frame {
                        object: c == b'{',
                        start: i,
                        path,
                        key: None,
                        expect_key: c == b'{',
                        index: 0,
                    });
                }
                b'}' | b']' => {
                    if let Some(frame) = walk.stack.pop() {
                        walk.last_value = Some(Token {
                            path: frame.path,
                            start: frame.start,
                            end: i + 1,
                        });
                    }
                }
                b',' => {
                    if let Some(frame) = walk.stack.last_mut() {
                        frame.index += 1;
                        frame.expect_key = frame.object;
                    }
                }
                b'"' => {
                    let end = string_end(bytes, i);
                    let is_key = walk.stack.last().is_some_and(|f| f.object && f.expect_key);
                    let token = |walk: &Walk, end| {
                        let path = match (is_key, walk.stack.last()) {
                            (true, Some(frame)) => {
                                let key = text.get(i + 1..end - 1).unwrap_or("");
                                join(&frame.path, key)
                            }
                            _ => walk.path(),
                        };
                        Token {
                            path,
                            start: i,
                            end,
                        }
                    };
                    match end {
                        Some(end) if end <= until => {
                            let token = token(&walk, end);
                            if is_key {
                                if let Some(frame) = walk.stack.last_mut() {
                                    frame.key = text.get(i + 1..end - 1).map(str::to_string);
                                    frame.expect_key = false;
                                }
                                walk.last_key = Some(token);
                            } else {
                                walk.last_value = Some(token);
                            }
                            i = end;
                            continue;
                        }
                        _ => {
                            walk.open_string = Some(token(&walk, i + 1));
                            break;
                        }
                    }
                }
                c if c.is_ascii_whitespace() || c == b':' => {}
                _ => {
                    let end = word_end(bytes, i);
                    let path = walk.path();
                    walk.last_value = Some(Token {
                        path,
                        start: i,
                        end,
                    });
                    i = end.max(i + 1);
                    continue;
                }
            }
            i += 1;
        }
        walk
    }
}

fn key_name(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The offset just past the closing quote of the string starting at `start`, or
/// `None` when a line break or the end comes first.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

fn word_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || b"_-.+$".contains(&bytes[i])) {
        i += 1;
    }
    i
}

/// How a key path is named in a sentence: `repository`, `volumes[1]`, or "the file".
fn named(path: &str) -> String {
    if let Some((list, _)) = path.rsplit_once('[').filter(|_| path.ends_with(']')) {
        return format!("the last entry of `{list}`");
    }
    match path.rsplit('.').next() {
        Some(key) if !key.is_empty() => format!("`{key}`"),
        _ => "the file's opening `{`".to_string(),
    }
}

/// A value as written, or just its closing bracket when it spans lines.
fn shown(text: &str, token: &Token) -> String {
    let value = text.get(token.start..token.end).unwrap_or("");
    if value.contains('\n') {
        return format!("the `{}`", value.chars().last().unwrap_or('}'));
    }
    format!("`{}`", value.chars().take(30).collect::<String>())
}

/// Where the value ends at `offset` starts: serde_json reports a wrong type at the
/// value's last character, the caret belongs under its first.
pub fn value_start(text: &str, offset: usize) -> usize {
    if matches!(text.as_bytes().get(offset), Some(b'{' | b'[') | None) {
        return offset;
    }
    let walk = Walk::over(text, offset + 1);
    [walk.last_value, walk.last_key]
        .into_iter()
        .flatten()
        .find(|token| token.end == offset + 1)
        .map_or(offset, |token| token.start)
}

/// The issue for a syntax error serde_json reported at byte `offset`.
pub fn diagnose(source: &Source<'_>, offset: usize, message: &str) -> Issue {
    let text = source.text();
    let bytes = text.as_bytes();
    let at = |offset: usize| source.position(offset);
    let message = message.split(" at line ").next().unwrap_or(message);
    let char_at = bytes.get(offset).copied().unwrap_or(b' ') as char;
    if message == "trailing comma" {
        let comma = text[..offset.min(text.len())].rfind(',').unwrap_or(offset);
        let walk = Walk::over(text, comma);
        let before = walk.last_value.unwrap_or_default();
        return source.issue(
            at(comma),
            before.path.clone(),
            format!("trailing `,` after {}", named(&before.path)),
            format!("remove the `,`; JSON allows no comma before `{char_at}`"),
        );
    }
    if message.starts_with("expected `,` or") {
        let walk = Walk::over(text, offset);
        if let Some(before) = walk.last_value {
            let next = if walk.stack.last().is_some_and(|f| f.object) {
                "key"
            } else {
                "entry"
            };
            return source.issue(
                at(before.end),
                before.path.clone(),
                format!("missing `,` after `{}`", key_name(&before.path)),
                format!(
                    "add `,` after {} to separate it from the next {next}",
                    shown(text, &before)
                ),
            );
        }
    }
    if message == "key must be a string" {
        let walk = Walk::over(text, offset);
        let word = &text[offset..word_end(bytes, offset).max(offset)];
        let container = walk.stack.last().map_or("", |f| f.path.as_str());
        let (problem, fix) = if char_at == '\'' {
            (
                "a key in single quotes".to_string(),
                "JSON keys go in double quotes: replace `'` with `\"`".to_string(),
            )
        } else {
            (
                format!("key `{word}` is not in double quotes"),
                format!("write `\"{word}\"`; JSON keys are quoted"),
            )
        };
        return source.issue(at(offset), join(container, word), problem, fix);
    }
    if message == "expected `:`" {
        let walk = Walk::over(text, offset);
        if let Some(key) = walk.last_key {
            return source.issue(
                at(key.end),
                key.path.clone(),
                format!("missing `:` after the key {}", shown(text, &key)),
                format!("write `{}: …`", text.get(key.start..key.end).unwrap_or("")),
            );
        }
    }
    if message.starts_with("EOF while parsing an object")
        || message.starts_with("EOF while parsing a list")
    {
        let walk = Walk::over(text, text.len());
        if let Some(frame) = walk.stack.last() {
            let (open, close) = if frame.object { ('{', '}') } else { ('[', ']') };
            let whose = if frame.path.is_empty() {
                String::new()
            } else {
                format!(" of `{}`", frame.path)
            };
            return source.issue(
                at(frame.start),
                frame.path.clone(),
                format!("the `{open}`{whose} opened here is never closed"),
                format!("add `{close}` after its last entry"),
            );
        }
    }
    if message.starts_with("EOF while parsing a string") || message.starts_with("control character")
    {
        let walk = Walk::over(text, offset);
        if let Some(string) = walk.open_string {
            return source.issue(
                at(string.start),
                string.path.clone(),
                "the `\"` opened here is never closed",
                "add the closing `\"` on the same line",
            );
        }
    }
    let walk = Walk::over(text, offset);
    let path = walk.path();
    let (problem, fix) = match message {
        "expected value" if char_at == '\'' => (
            "text in single quotes".to_string(),
            "JSON text goes in double quotes: replace `'` with `\"`".to_string(),
        ),
        "expected value" if matches!(char_at, ',' | '}' | ']') => (
            format!("{} has no value", named(&path)),
            "write a value after the `:`, or remove the key".to_string(),
        ),
        "expected value" | "expected ident" | "invalid number" => {
            let start = walk
                .last_value
                .as_ref()
                .map_or(offset, |t| t.start.min(offset));
            let word: String = text[start..word_end(bytes, start).max(start)]
                .chars()
                .take(30)
                .collect();
            (
                format!("`{word}` is not a JSON value"),
                "put text in double quotes, or write a number, true, false or null".to_string(),
            )
        }
        "invalid escape" | "invalid unicode code point" => (
            "an unknown `\\` escape in text".to_string(),
            "write `\\\\` for a backslash, or one of `\\n`, `\\t`, `\\\"`".to_string(),
        ),
        "trailing characters" => (
            "there is text after the end of the JSON document".to_string(),
            "remove it, or move it inside the outer `{…}`".to_string(),
        ),
        _ => (
            message.to_string(),
            "fix the JSON syntax at this position".to_string(),
        ),
    };
    source.issue(at(offset), path, problem, fix)
}
