//! The config text seen as lines: converting the positions the parsers report (byte
//! offsets, or line and column) into the 1-based line and character column a person
//! counts, always inside the file.

use crate::error::Issue;

pub struct Source<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        // A final newline ends the last line; it does not start an empty one.
        if starts.len() > 1 && starts.last() == Some(&text.len()) {
            starts.pop();
        }
        Self { text, starts }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// The text of a 1-based line, without its line break; empty past the end.
    pub fn line(&self, line: usize) -> &'a str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        self.text[start..end.max(start)].trim_end_matches(['\r', '\n'])
    }

    /// 1-based line and character column of a byte offset, clamped into the file: an
    /// offset at the very end points just past the last character of the last line.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        let width = self.line(line).chars().count();
        (line, column.min(width + 1))
    }

    /// Byte offset of a 1-based line and character column (clamped to the line).
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let line = line.clamp(1, self.line_count());
        let start = self.starts[line - 1];
        self.line(line)
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(start + self.line(line).len(), |(i, _)| start + i)
    }

    /// The scalar written at a line and column: `1.10` in `tag: 1.10 # old`.
    pub fn token(&self, (line, column): (usize, usize)) -> &'a str {
        let text = self.line(line);
        let start = self.offset(line, column) - self.offset(line, 1);
        let rest = text.get(start..).unwrap_or("");
        let end = rest
            .find([' ', '\t', ',', '#', ']', '}'])
            .unwrap_or(rest.len());
        &rest[..end]
    }

    /// Clamps a line and column reported by a parser (which may point past the last
    /// line at end of input) into the file.
    pub fn clamp(&self, line: usize, column: usize) -> (usize, usize) {
        if line > self.line_count() || line == 0 {
            let last = self.line_count();
            return (last, self.line(last).chars().count() + 1);
        }
        (line, column.clamp(1, self.line(line).chars().count() + 1))
    }

    /// An issue at a 1-based line and column, with that line to show under it.
    pub fn issue(
        &self,
        (line, column): (usize, usize),
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Issue {
        let (line, column) = self.clamp(line, column);
        let mut issue = Issue::new(path, problem, fix);
        issue.location = Some((line, column));
        issue.source_line = Some(self.line(line).to_string());
        issue
    }
}

/// "1 space", "4 spaces", or "no indentation".
pub fn spaces(count: usize) -> String {
    match count {
        0 => "no indentation".to_string(),
        1 => "1 space".to_string(),
        n => format!("{n} spaces"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let source = Source::new("a\nβc\n");
        assert_eq!(source.line_count(), 2);
        assert_eq!(source.position(0), (1, 1));
        assert_eq!(source.position(4), (2, 2));
        assert_eq!(source.offset(2, 2), 4);
        assert_eq!(source.line(2), "βc");
    }

    #[test]
    fn the_end_of_input_is_a_position_on_the_last_line() {
        let source = Source::new("a: 1\nb: 2\n");
        assert_eq!(source.position(10), (2, 5));
        assert_eq!(source.clamp(3, 1), (2, 5));
        assert_eq!(source.clamp(0, 0), (2, 5));
        assert_eq!(Source::new("").clamp(1, 1), (1, 1));
    }
}
