//! "Did you mean" suggestions by edit distance.

/// The known word closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::levenshtein(&word, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let known = ["replicas", "repository", "registry"];
        assert_eq!(closest("replica", &known), Some("replicas"));
        assert_eq!(closest("registy", &known), Some("registry"));
        assert_eq!(closest("zzz", &known), None);
        // Two edits away is still a typo; three away from a short word is not.
        assert_eq!(closest("registyr", &known), Some("registry"));
        assert_eq!(closest("imag", &["image"]), Some("image"));
        assert_eq!(closest("imxgxx", &["image"]), None);
    }
}
