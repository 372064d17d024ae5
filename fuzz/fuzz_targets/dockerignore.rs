//! `.dockerignore` matching on any patterns and path: parsing and matching never
//! panic, and a file without exceptions ignores everything under an ignored path.

#![no_main]

use haloy_controller::build::ignore::IgnoreRules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The last line is the path to match, the rest the file.
    let (patterns, path) = text.rsplit_once('\n').unwrap_or(("", text));
    let rules = IgnoreRules::parse(patterns);
    let ignored = rules.is_ignored(path);
    if ignored && !rules.has_exceptions() && !path.is_empty() {
        let below = format!("{}/below", path.trim_end_matches('/'));
        assert!(rules.is_ignored(&below), "{path:?} is ignored, {below:?} is not");
    }
});
