//! Bounds on a maintenance page and its message. The page travels inside an HAProxy
//! map entry (base64, one runtime API command), and HAProxy's 16 KiB buffers bound
//! that: a page of [`MAX_MAINTENANCE_PAGE`] bytes with the longest message escaped
//! in it still fits.

use super::{Rule, Violation};

/// Largest maintenance page, in bytes.
pub const MAX_MAINTENANCE_PAGE: usize = 8 * 1024;
/// Largest page HAProxy is given, the message in it (HTML-escaped), in bytes.
pub const MAX_MAINTENANCE_ANSWER: usize = 10 * 1024;
/// Longest maintenance message, in characters.
pub const MAX_MAINTENANCE_MESSAGE: usize = 256;

/// A page: UTF-8 text (the caller read it as such) without NUL, not empty, at most
/// [`MAX_MAINTENANCE_PAGE`] bytes.
pub fn maintenance_page(page: &str) -> Rule {
    if page.trim().is_empty() {
        return Err(Violation::new(
            "the maintenance page is empty",
            "write the HTML to show while the app is in maintenance, or leave the page out for the default one",
        ));
    }
    if page.len() > MAX_MAINTENANCE_PAGE {
        return Err(Violation::new(
            format!(
                "the maintenance page has {} bytes, more than the {MAX_MAINTENANCE_PAGE} HAProxy can answer with",
                page.len()
            ),
            "make it smaller: inline no images or fonts, link them instead",
        ));
    }
    if page.contains('\0') {
        return Err(Violation::new(
            "the maintenance page contains a NUL byte",
            "save it as UTF-8 text",
        ));
    }
    Ok(())
}

/// A message: one line of at most [`MAX_MAINTENANCE_MESSAGE`] characters.
pub fn maintenance_message(message: &str) -> Rule {
    let count = message.chars().count();
    if count > MAX_MAINTENANCE_MESSAGE {
        return Err(Violation::new(
            format!("the message has {count} characters"),
            format!(
                "keep it to {MAX_MAINTENANCE_MESSAGE}; put more on a page of your own (maintenance.page)"
            ),
        ));
    }
    if message.chars().any(char::is_control) {
        return Err(Violation::new(
            "the message contains a line break or control character",
            "write it on one line",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_messages_are_bounded() {
        assert!(maintenance_page("<p>back soon</p>\n").is_ok());
        assert!(maintenance_page("  \n").is_err());
        assert!(maintenance_page(&"x".repeat(MAX_MAINTENANCE_PAGE + 1)).is_err());
        assert!(maintenance_page("a\0b").is_err());
        assert!(maintenance_message("").is_ok());
        assert!(maintenance_message("Upgrading the database, back at 14:00").is_ok());
        assert!(maintenance_message("two\nlines").is_err());
        let long = "é".repeat(MAX_MAINTENANCE_MESSAGE + 1);
        let error = maintenance_message(&long).unwrap_err();
        assert!(error.to_string().contains("257 characters"), "{error}");
    }
}
