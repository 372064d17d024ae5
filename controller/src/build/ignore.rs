//! `.dockerignore`: which files of the build context stay on the workstation.
//!
//! Follows Docker's rules: one pattern a line, `#` starts a comment, a leading `!`
//! makes an exception, the last matching line wins, and a pattern that matches a
//! directory excludes everything under it. Within a path segment `*` matches any
//! run of characters, `?` one character, `[a-z]`/`[^a-z]` a class and `\` escapes;
//! `**` matches any number of segments.

/// The parsed patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub(crate) struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    segments: Vec<String>,
    /// `false` for `!` exceptions, which bring a path back.
    exclude: bool,
}

impl IgnoreRules {
    pub(crate) fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (exclude, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (false, rest.trim()),
                    None => (true, line),
                };
                let segments = clean(pattern);
                (!segments.is_empty()).then_some(Rule { segments, exclude })
            })
            .collect();
        Self { rules }
    }

    /// Whether `path` (relative to the context, `/`-separated) stays out of the context.
    pub(crate) fn is_ignored(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut ignored = false;
        for rule in &self.rules {
            // A rule on a directory covers everything below it, so try every prefix.
            let hit = (1..=segments.len()).any(|n| matches(&rule.segments, &segments[..n]));
            if hit {
                ignored = rule.exclude;
            }
        }
        ignored
    }

    /// Whether any `!` exception exists: then an ignored directory must still be
    /// walked, since something inside it may come back.
    pub(crate) fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|rule| !rule.exclude)
    }
}

/// Like Go's `filepath.Clean` on a pattern, relative to the context root.
fn clean(pattern: &str) -> Vec<String> {
    let mut segments: Vec<String> = Vec::new();
    for segment in pattern.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other.to_string()),
        }
    }
    segments
}

fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((name, tail)) => glob(first.as_bytes(), name.as_bytes()) && matches(rest, tail),
            None => false,
        },
    }
}

/// One path segment against one pattern segment.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob(rest, &name[1..]),
        Some((b'[', rest)) => match (class(rest, name.first().copied()), name.split_first()) {
            (Some((true, after)), Some((_, tail))) => glob(after, tail),
            _ => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            name.first() == Some(&rest[0]) && glob(&rest[1..], &name[1..])
        }
        Some((c, rest)) => name.first() == Some(c) && glob(rest, &name[1..]),
    }
}

/// A `[...]` class (the opening bracket already consumed) against one byte: whether
/// it matched, and the pattern after the closing bracket. `None` when the class is
/// unterminated or there is no byte to match.
fn class(pattern: &[u8], byte: Option<u8>) -> Option<(bool, &[u8])> {
    let byte = byte?;
    let (negated, mut rest) = match pattern.first() {
        Some(b'^' | b'!') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let mut hit = false;
    let mut first = true;
    loop {
        let (&c, after) = rest.split_first()?;
        if c == b']' && !first {
            return Some((hit != negated, after));
        }
        first = false;
        match after {
            [b'-', end, tail @ ..] if *end != b']' => {
                hit |= (c..=*end).contains(&byte);
                rest = tail;
            }
            _ => {
                hit |= c == byte;
                rest = after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(rules: &str, path: &str) -> bool {
        IgnoreRules::parse(rules).is_ignored(path)
    }

    #[test]
    fn plain_names_match_at_the_root_and_cover_directories() {
        assert!(ignored("secret.txt", "secret.txt"));
        assert!(!ignored("secret.txt", "sub/secret.txt"));
        assert!(ignored("node_modules", "node_modules/a/b.js"));
        assert!(ignored("/build/", "build/out.o"));
        assert!(ignored("./logs", "logs"));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let rules = IgnoreRules::parse("# notes.md\n\n   \nnotes.md\n");
        assert_eq!(rules.rules.len(), 1);
        assert!(rules.is_ignored("notes.md"));
        assert!(!ignored("# keep", "# keep"));
    }

    #[test]
    fn stars_stay_within_one_segment_and_double_stars_span_many() {
        assert!(ignored("*.log", "debug.log"));
        assert!(!ignored("*.log", "logs/debug.log"));
        assert!(ignored("*/*.log", "logs/debug.log"));
        assert!(ignored("**/*.log", "a/b/c/debug.log"));
        assert!(ignored("**/*.log", "debug.log"));
        assert!(ignored("docs/**", "docs/a/b"));
        assert!(ignored("file?.txt", "file1.txt"));
        assert!(!ignored("file?.txt", "file10.txt"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(ignored("v[0-9].txt", "v7.txt"));
        assert!(!ignored("v[0-9].txt", "vx.txt"));
        assert!(ignored("v[^0-9].txt", "vx.txt"));
        assert!(ignored("v[ab].txt", "vb.txt"));
        assert!(ignored(r"star\*", "star*"));
        assert!(!ignored(r"star\*", "stars"));
        assert!(!ignored("broken[", "broken["));
    }

    #[test]
    fn the_last_matching_line_wins() {
        let rules = "*.md\n!README.md\n";
        assert!(ignored(rules, "CHANGES.md"));
        assert!(!ignored(rules, "README.md"));
        assert!(ignored("!README.md\n*.md\n", "README.md"));
        let rules = IgnoreRules::parse("docs\n!docs/keep.txt\n");
        assert!(rules.has_exceptions());
        assert!(rules.is_ignored("docs/drop.txt"));
        assert!(!rules.is_ignored("docs/keep.txt"));
    }
}
