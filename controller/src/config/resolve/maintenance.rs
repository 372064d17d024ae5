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
    let text = match read_page(&config_dir.join(page)) {
        Ok(text) => text,
        Err((problem, fix)) => {
            issues.add(path, problem, fix);
            return None;
        }
    };
    issues
        .check(path, rules::maintenance_page(&text))
        .map(|()| text)
}

/// The file's text, or what is wrong with it and the fix.
fn read_page(file: &Path) -> Result<String, (String, &'static str)> {
    let shown = file.display();
    let unreadable = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            (
                format!("{shown} does not exist"),
                "create it, or fix the path (it is relative to the config file's directory)",
            )
        } else {
            (
                format!("{shown} cannot be read: {e}"),
                "make it a readable HTML file",
            )
        }
    };
    let metadata = std::fs::metadata(file).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err((
            format!("{shown} is not a file"),
            "name an HTML file, e.g. `page: ./maintenance.html`",
        ));
    }
    // Checked before reading: a large file is never read whole.
    if metadata.len() > MAX_MAINTENANCE_PAGE as u64 {
        return Err((
            format!(
                "{shown} has {} bytes, more than the {MAX_MAINTENANCE_PAGE} HAProxy can answer with",
                metadata.len()
            ),
            "make it smaller: inline no images or fonts, link them instead",
        ));
    }
    String::from_utf8(std::fs::read(file).map_err(unreadable)?)
        .map_err(|_| (format!("{shown} is not UTF-8 text"), "save it as UTF-8"))
}
