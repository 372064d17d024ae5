//! `maintenance.page`: the HTML file `haloy maintenance on` sends, read and checked
//! (it exists, is UTF-8 text, and fits what HAProxy can answer with).

use std::path::Path;

use haloy_api::rules::{self, MAX_MAINTENANCE_PAGE};

use super::Issues;
use crate::config::merge::Merged;

/// The page's text when `maintenance.page` is set and the file is fine.
pub(super) fn resolve_page(
    merged: &Merged,
    config_dir: &Path,
    issues: &mut Issues,
) -> Option<String> {
    let at = merged.maintenance.as_ref()?;
    let path = at.path("maintenance.page");
    let Some(page) = at.value.page.as_deref() else {
        issues.add(
            at.path("maintenance"),
            "the maintenance block has no page",
            "add `page: ./maintenance.html` (an HTML file) or remove the block to use the default page",
        );
        return None;
    };
    if page.trim().is_empty() {
        issues.add(
            path,
            "the page is empty",
            "name an HTML file, e.g. `page: ./maintenance.html`, or remove the key to use the default page",
        );
        return None;
    }
    let file = config_dir.join(page);
    let shown = file.display();
    let metadata = match std::fs::metadata(&file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            issues.add(
                path,
                format!("{shown} does not exist"),
                "create it, or fix the path (it is relative to the config file's directory)",
            );
            return None;
        }
        Err(e) => {
            issues.add(
                path,
                format!("{shown} cannot be read: {e}"),
                "make it a readable HTML file",
            );
            return None;
        }
    };
    if !metadata.is_file() {
        issues.add(
            path,
            format!("{shown} is not a file"),
            "name an HTML file, e.g. `page: ./maintenance.html`",
        );
        return None;
    }
    if metadata.len() > MAX_MAINTENANCE_PAGE as u64 {
        issues.add(
            path,
            format!(
                "{shown} has {} bytes, more than the {MAX_MAINTENANCE_PAGE} HAProxy can answer with",
                metadata.len()
            ),
            "make it smaller: inline no images or fonts, link them instead",
        );
        return None;
    }
    let text = match std::fs::read(&file).map(String::from_utf8) {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => {
            issues.add(
                path,
                format!("{shown} is not UTF-8 text"),
                "save it as UTF-8",
            );
            return None;
        }
        Err(e) => {
            issues.add(
                path,
                format!("{shown} cannot be read: {e}"),
                "make it a readable HTML file",
            );
            return None;
        }
    };
    issues
        .check(path, rules::maintenance_page(&text))
        .map(|()| text)
}
