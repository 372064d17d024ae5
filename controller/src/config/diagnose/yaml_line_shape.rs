//! One YAML line split at its key's `:` the way YAML reads it: quotes, flow brackets
//! and comments are skipped over, and quotes or brackets left open carry over to the
//! next line.

/// Quotes and flow brackets still open at the end of a line.
#[derive(Default)]
pub struct Open {
    pub quote: Option<(char, usize, usize)>,
    pub brackets: Vec<(char, usize, usize)>,
}

impl Open {
    pub fn inside(&self) -> bool {
        self.quote.is_some() || !self.brackets.is_empty()
    }
}

/// A line's content split at its key's `:`.
#[derive(Default)]
pub struct Shape<'a> {
    pub key: Option<&'a str>,
    pub value: &'a str,
    pub block_scalar: bool,
}

/// A block sequence entry: `- x` or a lone `-`.
pub fn is_item(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

/// `---` or `...` between documents.
pub fn is_document_marker(content: &str) -> bool {
    content == "---" || content == "..." || content.starts_with("--- ")
}

/// Splits `content` (starting at 0-based column `indent` of line `n`) at its key's
/// `:`, tracking quotes and flow brackets across lines in `open`.
pub fn shape_of<'a>(content: &'a str, open: &mut Open, n: usize, indent: usize) -> Shape<'a> {
    let mut shape = Shape::default();
    let mut value_start = !open.inside();
    let mut key_colon = None;
    let mut end = content.len();
    let mut chars = content.char_indices().peekable();
    let mut previous = ' ';
    let mut column = indent;
    while let Some((i, c)) = chars.next() {
        column += 1;
        let next = chars.peek().map(|&(_, c)| c);
        if let Some((quote, ..)) = open.quote {
            // `\x` in double quotes and `''` in single quotes do not end the text.
            let escaped =
                (c == '\\' && quote == '"') || (c == '\'' && quote == c && next == Some(c));
            if escaped {
                chars.next();
                column += 1;
            } else if c == quote {
                open.quote = None;
            }
            previous = c;
            continue;
        }
        match c {
            '#' if previous == ' ' || previous == '\t' || i == 0 => {
                end = i;
                break;
            }
            '"' | '\'' if value_start => {
                open.quote = Some((c, n, column));
                value_start = false;
            }
            '[' | '{' if value_start || !open.brackets.is_empty() => {
                open.brackets.push((c, n, column));
                value_start = true;
            }
            ']' | '}' if !open.brackets.is_empty() => {
                open.brackets.pop();
                value_start = false;
            }
            ',' if !open.brackets.is_empty() => value_start = true,
            ':' if next.is_none_or(|c| c == ' ' || c == '\t') => {
                if open.brackets.is_empty() && key_colon.is_none() {
                    key_colon = Some(i);
                }
                value_start = true;
            }
            '|' | '>' if value_start && open.brackets.is_empty() => {
                shape.block_scalar = true;
                end = i;
                break;
            }
            ' ' | '\t' => {}
            '-' | '?' if value_start && next.is_none_or(|c| c == ' ') => {}
            '&' | '!' | '*' if value_start => {
                // An anchor, tag or alias: skip to the next space, a value may follow.
                while chars.peek().is_some_and(|&(_, c)| c != ' ') {
                    chars.next();
                    column += 1;
                }
            }
            _ => value_start = false,
        }
        previous = c;
    }
    match key_colon {
        Some(i) => {
            shape.key = Some(content[..i].trim());
            shape.value = content.get(i + 1..end).unwrap_or("").trim();
        }
        None => shape.value = content[..end].trim(),
    }
    shape
}
