//! Which registry tags a rollback may use (`image.history.pattern`) and their order.

use globset::{GlobBuilder, GlobMatcher};

/// A tag pattern: `*` is any run of characters, `?` one; everything else, brackets
/// and braces included, stands for itself.
#[derive(Debug, Clone)]
pub struct TagPattern {
    matcher: GlobMatcher,
}

impl TagPattern {
    pub fn new(pattern: &str) -> Result<Self, globset::Error> {
        // globset's classes and alternatives are not part of a tag pattern: escape
        // them into one-character classes. The compiled automaton matches in time
        // linear in the tag, however many stars the pattern has.
        let mut glob = String::with_capacity(pattern.len());
        for c in pattern.chars() {
            match c {
                '[' | ']' | '{' | '}' => {
                    glob.push('[');
                    glob.push(c);
                    glob.push(']');
                }
                other => glob.push(other),
            }
        }
        let matcher = GlobBuilder::new(&glob)
            .backslash_escape(false)
            .build()?
            .compile_matcher();
        Ok(Self { matcher })
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.matcher.is_match(tag)
    }
}

/// Orders tags newest first by version: runs of digits compare as numbers, so
/// `v10` is newer than `v9` and `1.10.0` than `1.9.3`.
pub fn newest_first(tags: &mut [String]) {
    tags.sort_by_key(|tag| std::cmp::Reverse(version_key(tag)));
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    Number(u128),
}

fn version_key(tag: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = tag;
    while let Some(c) = rest.chars().next() {
        let digits = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(match run.parse::<u128>() {
            Ok(n) if digits => Part::Number(n),
            _ => Part::Text(run.to_string()),
        });
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, tag: &str) -> bool {
        TagPattern::new(pattern).unwrap().matches(tag)
    }

    #[test]
    fn patterns_and_version_order() {
        assert!(matches("v*", "v12") && matches("v?", "v1") && !matches("v?", "v12"));
        assert!(!matches("v*", "latest") && matches("*", "anything"));
        assert!(
            matches("release-*-v*", "release-2026-v3") && !matches("release-*-v*", "release-v3")
        );
        assert!(matches("*a*b", "xxaxxb") && !matches("*a*b", "xxaxxbc") && matches("", ""));
        // Many stars against a long tag that does not match stays quick.
        let long = "a".repeat(200);
        assert!(!matches(&format!("{}b", "*a".repeat(20)), &long));
        let mut tags: Vec<String> = ["v1", "v10", "v9", "v2.1", "v2.10"]
            .map(String::from)
            .to_vec();
        newest_first(&mut tags);
        assert_eq!(tags, ["v10", "v9", "v2.10", "v2.1", "v1"]);
    }

    #[test]
    fn brackets_braces_and_backslashes_are_plain_characters() {
        assert!(matches("v[1]", "v[1]") && !matches("v[1]", "v1"));
        assert!(matches("{a,b}*", "{a,b}-1") && !matches("{a,b}*", "a-1"));
        assert!(matches(r"v\*", r"v\1") && !matches(r"v\*", "v*"));
        assert!(TagPattern::new("v[").is_ok() && TagPattern::new("}{").is_ok());
    }
}
