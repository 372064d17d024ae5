//! Masking secret values (sensitive build arguments, registry credentials) in text
//! that is about to be shown: build output, push progress, error messages.

/// The secrets to mask. No `Debug`: printing it would print them.
#[derive(Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

pub(crate) const MASK: &str = "********";

impl Redactor {
    /// Values shorter than three characters are left alone: masking them would
    /// garble every line while hiding nothing a reader could not guess.
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= 3)
            .map(String::from)
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), MASK);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first_and_tiny_values_left_alone() {
        let redactor = Redactor::new(["hunter2", "hunter2-extended", "ab"]);
        assert_eq!(
            redactor.redact("token hunter2-extended and hunter2 and ab"),
            format!("token {MASK} and {MASK} and ab")
        );
    }
}
