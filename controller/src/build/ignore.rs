//! `.dockerignore`: which files of the build context stay on the workstation.
//!
//! Follows Docker's rules: one pattern a line, `#` starts a comment, a leading `!`
//! makes an exception, the last matching line wins, and a pattern that matches a
//! directory excludes everything under it. Within a path segment `*` matches any
//! run of characters, `?` one character, `[a-z]`/`[^a-z]` a class and `\` escapes;
//! `**` matches any number of segments.

use globset::{Candidate, GlobBuilder, GlobMatcher};

/// The parsed patterns of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// `None` for a pattern that is not a valid glob (an unclosed `[`): it matches
    /// nothing.
    matcher: Option<GlobMatcher>,
    /// `false` for `!` exceptions, which bring a path back.
    exclude: bool,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (exclude, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (false, rest.trim()),
                    None => (true, line),
                };
                let pattern = clean(pattern);
                (!pattern.is_empty()).then(|| Rule {
                    matcher: compile(&pattern),
                    exclude,
                })
            })
            .collect();
        Self { rules }
    }

    /// Whether `path` (relative to the context, `/`-separated) stays out of the context.
    pub fn is_ignored(&self, path: &str) -> bool {
        // A rule on a directory covers everything below it, so every leading part of
        // the path is a candidate: `a`, `a/b`, `a/b/c`.
        let mut prefix = String::with_capacity(path.len());
        let mut candidates = Vec::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            candidates.push(prefix.clone());
        }
        let candidates: Vec<Candidate<'_>> = candidates.iter().map(Candidate::new).collect();
        let mut ignored = false;
        for rule in &self.rules {
            let Some(matcher) = &rule.matcher else {
                continue;
            };
            if candidates.iter().any(|c| matcher.is_match_candidate(c)) {
                ignored = rule.exclude;
            }
        }
        ignored
    }

    /// Whether any `!` exception exists: then an ignored directory must still be
    /// walked, since something inside it may come back.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|rule| !rule.exclude)
    }
}

/// Like Go's `filepath.Clean` on a pattern, relative to the context root.
fn clean(pattern: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in pattern.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments.join("/")
}

/// The matcher for one cleaned pattern. globset compiles to a finite automaton, so
/// matching takes time linear in the path however many `*` the pattern has.
fn compile(pattern: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(&literal_braces(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|glob| glob.compile_matcher())
}

/// Docker has no `{a,b}` alternatives: outside a class, braces are plain characters.
fn literal_braces(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '{' | '}' if !in_class => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` first in the class (after any negation) is a member, not its end.
                if let Some(&negation @ ('!' | '^')) = chars.peek() {
                    out.push(negation);
                    chars.next();
                }
                if let Some(&']') = chars.peek() {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
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
        // Like Docker's `docs/` prefix: what is inside, not the directory itself.
        assert!(!ignored("docs/**", "docs"));
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
    fn many_stars_against_a_long_path_are_answered() {
        // A backtracking matcher takes time exponential in the number of stars here.
        let stars = format!("{}b", "*a".repeat(30));
        let long = "a".repeat(4000);
        assert!(!ignored(&stars, &long));
        assert!(ignored(&stars, &format!("{long}b")));
        let deep = vec!["a"; 300].join("/");
        assert!(!ignored(&format!("**/{stars}"), &deep));
    }

    #[test]
    fn braces_are_plain_characters() {
        assert!(ignored("{a,b}.txt", "{a,b}.txt"));
        assert!(!ignored("{a,b}.txt", "a.txt"));
        assert!(ignored("v[{]x", "v{x"));
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
