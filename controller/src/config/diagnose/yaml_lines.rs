//! Reading a YAML file line by line, the way a person sees it, to find the line a
//! syntax error is really on. libyaml reports where it gave up, often the line after a
//! missing `:`; this outline knows which block each line belongs to, so it can name
//! the key that lacks its `:`, the key indented unlike its siblings, a tab used for
//! indentation, and a quote or bracket that is never closed.
//!
//! It is a heuristic: it is only consulted when the parser has already refused the file.

use super::source::{Source, spaces};
use super::yaml_line_shape::{Open, Shape, is_document_marker, is_item, shape_of};
use crate::error::Issue;

/// What the outline found: problems, and the key path of each key or list entry line.
pub struct Outline {
    pub findings: Vec<Issue>,
    paths: Vec<(usize, String)>,
}

impl Outline {
    pub fn scan(source: &Source<'_>) -> Self {
        let mut reader = Reader::default();
        for line in 1..=source.line_count() {
            reader.line(source, line);
        }
        reader.finish(source);
        Outline {
            findings: reader.findings,
            paths: reader.paths,
        }
    }

    /// The lines whose key path matches.
    pub fn lines_of(&self, matches: impl Fn(&str) -> bool) -> impl Iterator<Item = usize> {
        self.paths
            .iter()
            .filter(move |(_, p)| matches(p))
            .map(|(line, _)| *line)
    }

    /// The key path of the key or entry on `line`, or of the nearest one above it.
    pub fn path_at(&self, line: usize) -> &str {
        path_at(&self.paths, line)
    }
}

fn path_at(paths: &[(usize, String)], line: usize) -> &str {
    paths
        .iter()
        .rev()
        .find(|(l, _)| *l <= line)
        .map_or("", |(_, p)| p.as_str())
}

/// A block mapping or block sequence: its column, and what it holds so far.
struct Block {
    indent: usize,
    seq: bool,
    path: String,
    keys: Vec<(String, usize)>,
    items: usize,
}

impl Block {
    fn new(indent: usize, seq: bool, path: String) -> Self {
        Self {
            indent,
            seq,
            path,
            keys: Vec::new(),
            items: 0,
        }
    }

    /// "the keys under `image`", "the top-level keys", "the entries of `env`".
    fn described(&self) -> String {
        match (self.seq, self.path.is_empty()) {
            (true, _) => format!("the entries of `{}`", self.path),
            (false, true) => "the top-level keys".into(),
            (false, false) => format!("the keys under `{}`", self.path),
        }
    }
}

#[derive(Default)]
struct Reader {
    stack: Vec<Block>,
    /// A key or `-` with nothing after it: its indentation and key path.
    pending: Option<(usize, String)>,
    /// Inside a `|` or `>` block: the indentation its lines must exceed.
    block_scalar: Option<usize>,
    open: Open,
    started: bool,
    findings: Vec<Issue>,
    paths: Vec<(usize, String)>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader {
    fn line(&mut self, source: &Source<'_>, n: usize) {
        let raw = source.line(n);
        let content = raw.trim_start_matches([' ', '\t']);
        let lead = &raw[..raw.len() - content.len()];
        if let Some(parent) = self.block_scalar {
            if content.is_empty() || lead.len() > parent {
                return;
            }
            self.block_scalar = None;
        }
        if self.open.inside() {
            self.shape(raw, n, 0);
            return;
        }
        if content.is_empty() || content.starts_with('#') || is_document_marker(content) {
            return;
        }
        if let Some(tab) = lead.find('\t') {
            let key = self.shape(content, n, lead.len()).key;
            let parent = self
                .pending
                .as_ref()
                .map_or(self.top_path(), |(_, p)| p.as_str());
            let path = join(parent, key.unwrap_or(""));
            self.findings.push(source.issue(
                (n, tab + 1),
                path,
                "this line is indented with a tab",
                "indent with spaces; YAML does not allow tabs in indentation",
            ));
            return;
        }
        self.place(source, n, lead.len(), content);
    }

    fn top_path(&self) -> &str {
        self.stack.last().map_or("", |b| b.path.as_str())
    }

    /// Finds the block a line belongs to by its indentation, then reads it there.
    fn place(&mut self, source: &Source<'_>, n: usize, indent: usize, content: &str) {
        let item = is_item(content);
        if let Some((opener, path)) = self.pending.take() {
            let under_key = self.stack.last().is_some_and(|b| !b.seq);
            if indent > opener || (indent == opener && item && under_key) {
                if !item && self.peek_key(content).is_none() {
                    // The value itself, written on the next line.
                    self.shape(content, n, indent);
                    return;
                }
                self.stack.push(Block::new(indent, item, path));
                return self.entry(source, n, indent, content);
            }
        }
        let mut closed = Vec::new();
        while self.stack.last().is_some_and(|b| b.indent > indent) {
            closed.extend(self.stack.pop());
        }
        // A list written at its key's own indentation (`env:` then `- name: A`) ends
        // at the next key of that indentation.
        while let [.., below, top] = self.stack.as_slice() {
            if top.indent == indent && below.indent == indent && top.seq != item {
                closed.extend(self.stack.pop());
            } else {
                break;
            }
        }
        match self.stack.last() {
            None if !self.started => {
                self.started = true;
                self.stack.push(Block::new(indent, item, String::new()));
                self.entry(source, n, indent, content);
            }
            Some(top) if top.indent == indent && top.seq == item => {
                self.entry(source, n, indent, content);
            }
            Some(top) if top.indent < indent && !item && self.peek_key(content).is_none() => {
                // A plain value continued on a deeper line.
                self.shape(content, n, indent);
            }
            _ if item && self.stack.last().is_some_and(|b| b.indent == indent) => {
                // A list entry where keys are expected: left to the parser's message.
                self.shape(content, n, indent);
            }
            _ => self.misplaced(source, n, indent, content, closed),
        }
    }

    fn peek_key<'a>(&self, content: &'a str) -> Option<&'a str> {
        let mut open = Open::default();
        shape_of(content, &mut open, 0, 0).key
    }

    /// Scans a line's characters, keeping track of quotes and brackets left open.
    fn shape<'a>(&mut self, content: &'a str, n: usize, indent: usize) -> Shape<'a> {
        shape_of(content, &mut self.open, n, indent)
    }

    /// Reads a line that belongs to the top block.
    fn entry(&mut self, source: &Source<'_>, n: usize, indent: usize, content: &str) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        if top.seq {
            let path = format!("{}[{}]", top.path, top.items);
            top.items += 1;
            self.paths.push((n, path.clone()));
            let rest = content.get(1..).unwrap_or("");
            let inner = rest.trim_start();
            let column = indent + 1 + (rest.len() - inner.len());
            if inner.is_empty() || inner.starts_with('#') {
                self.pending = Some((indent, path));
                return;
            }
            let shape = self.shape(inner, n, column);
            if let Some(key) = shape.key {
                self.stack.push(Block::new(column, false, path));
                self.key(source, n, column, key, &shape);
            } else if shape.block_scalar {
                self.block_scalar = Some(indent);
            }
            return;
        }
        let shape = self.shape(content, n, indent);
        match shape.key {
            Some(key) => self.key(source, n, indent, key, &shape),
            None => self.missing_colon(source, n, indent, content),
        }
    }

    fn key(&mut self, source: &Source<'_>, n: usize, indent: usize, key: &str, shape: &Shape) {
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        let key = key.trim_matches(['"', '\'']);
        let path = join(&top.path, key);
        if let Some((_, first)) = top.keys.iter().find(|(k, _)| k == key) {
            let problem = format!("`{key}` is given twice (first on line {first})");
            self.findings.push(source.issue(
                (n, indent + 1),
                path.clone(),
                problem,
                "keep one of them",
            ));
        }
        top.keys.push((key.to_string(), n));
        self.paths.push((n, path.clone()));
        if shape.block_scalar {
            self.block_scalar = Some(indent);
        } else if shape.value.is_empty() && !self.open.inside() {
            self.pending = Some((indent, path));
        }
    }

    /// `server example.com` where `server: example.com` was meant.
    fn missing_colon(&mut self, source: &Source<'_>, n: usize, indent: usize, content: &str) {
        let text = content.split(" #").next().unwrap_or(content).trim_end();
        let word_end = text.find([' ', '\t']).unwrap_or(text.len());
        let (word, rest) = (&text[..word_end], text[word_end..].trim());
        let keylike = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let (key, value, column, problem) = match word.split_once(':') {
            Some((key, value)) if keylike(key) && rest.is_empty() => (
                key,
                value,
                indent + key.chars().count() + 2,
                format!("`{word}` has no space after the `:`"),
            ),
            _ if keylike(word) => (
                word,
                rest,
                indent + word.chars().count() + 1,
                format!("missing `:` after `{word}`"),
            ),
            _ => return,
        };
        let fix = if value.is_empty() {
            format!("write `{key}:` followed by its value")
        } else {
            format!("write `{key}: {value}`")
        };
        let path = join(self.top_path(), key);
        self.findings
            .push(source.issue((n, column), path, problem, fix));
        let shape = Shape {
            key: Some(key),
            value,
            block_scalar: false,
        };
        self.key(source, n, indent, key, &shape);
    }

    /// A line whose indentation matches no open block: name the blocks it falls
    /// between and put it in the nearer one, so the lines after it read normally.
    fn misplaced(
        &mut self,
        source: &Source<'_>,
        n: usize,
        indent: usize,
        content: &str,
        mut closed: Vec<Block>,
    ) {
        let item = is_item(content);
        let Some(subject) = self.subject(content) else {
            self.shape(content, n, indent);
            return;
        };
        let deeper = closed
            .iter()
            .rposition(|b| b.seq == item && b.indent > indent);
        let shallower = self
            .stack
            .iter()
            .rposition(|b| b.seq == item && b.indent < indent);
        let line_up = |b: &Block| match (b.seq, b.keys.first()) {
            (false, Some((key, _))) => format!("line up with `{key}`"),
            _ => "line up with the other entries".to_string(),
        };
        let indent_to = |b: &Block, name: &str| match b.indent {
            0 if name == "it" => "remove its indentation".to_string(),
            0 => format!("remove the indentation of {name}"),
            n => format!("indent {name} {}", spaces(n)),
        };
        let is_indented = match indent {
            0 => "is not indented".to_string(),
            n => format!("is indented {}", spaces(n)),
        };
        let (problem, fix, into_closed) = match (deeper.map(|i| &closed[i]), shallower) {
            (Some(d), Some(s)) => {
                let s = &self.stack[s];
                let problem = format!(
                    "{subject} {is_indented}, which matches neither {} ({}) nor {} ({})",
                    d.described(),
                    spaces(d.indent),
                    s.described(),
                    spaces(s.indent)
                );
                let fix = format!(
                    "{} to keep it with {}, or {} to make it one of {}",
                    indent_to(d, &subject),
                    d.described(),
                    indent_to(s, "it"),
                    s.described()
                );
                (problem, fix, d.indent - indent <= indent - s.indent)
            }
            (Some(_), None) | (None, Some(_)) => {
                let (only, into_closed) = match (deeper, shallower) {
                    (Some(d), _) => (&closed[d], true),
                    (_, Some(s)) => (&self.stack[s], false),
                    (None, None) => return,
                };
                let problem = format!(
                    "{subject} {is_indented} but {} {}",
                    only.described(),
                    has_indent(only.indent)
                );
                let fix = format!("{} to {}", indent_to(only, &subject), line_up(only));
                (problem, fix, into_closed)
            }
            (None, None) => {
                self.shape(content, n, indent);
                return;
            }
        };
        if let (true, Some(d)) = (into_closed, deeper) {
            // Reopen the blocks down to the one the line is taken to belong to.
            self.stack.extend(closed.drain(d..).rev());
        } else if let Some(s) = shallower {
            self.stack.truncate(s + 1);
        }
        let path = self.line_path(content);
        self.findings
            .push(source.issue((n, indent + 1), path, problem, fix));
        self.entry(source, n, indent, content);
    }

    /// How a misplaced line is named: "`tag`" or "the entry `- name: B`".
    fn subject(&self, content: &str) -> Option<String> {
        if is_item(content) {
            let shown: String = content.chars().take(30).collect();
            return Some(format!("the entry `{}`", shown.trim_end()));
        }
        self.peek_key(content)
            .map(|key| format!("`{}`", key.trim_matches(['"', '\''])))
    }

    fn line_path(&self, content: &str) -> String {
        match self.peek_key(content).filter(|_| !is_item(content)) {
            Some(key) => join(self.top_path(), key.trim_matches(['"', '\''])),
            None => self.top_path().to_string(),
        }
    }

    /// A quote or bracket still open at the end of the file.
    fn finish(&mut self, source: &Source<'_>) {
        if let Some((quote, line, column)) = self.open.quote {
            let path = path_at(&self.paths, line).to_string();
            self.findings.push(source.issue(
                (line, column),
                path,
                format!("the `{quote}` opened here is never closed"),
                format!("add the closing `{quote}` at the end of the text"),
            ));
        } else if let Some(&(bracket, line, column)) = self.open.brackets.last() {
            let close = if bracket == '[' { ']' } else { '}' };
            let path = path_at(&self.paths, line).to_string();
            self.findings.push(source.issue(
                (line, column),
                path,
                format!("the `{bracket}` opened here is never closed"),
                format!("add `{close}` after its last entry"),
            ));
        }
    }
}

/// "have no indentation", "are indented 2 spaces".
fn has_indent(indent: usize) -> String {
    match indent {
        0 => "have no indentation".to_string(),
        n => format!("are indented {}", spaces(n)),
    }
}

#[cfg(test)]
#[path = "yaml_lines_tests.rs"]
mod tests;
