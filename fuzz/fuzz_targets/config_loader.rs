//! The config loader on any text, in YAML, JSON or TOML (the first byte chooses):
//! it may refuse, never panic, and every issue it reports points inside the text.

#![no_main]

use haloy_controller::config::format::Format;
use haloy_controller::config::load::parse_config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match choice % 3 {
        0 => Format::Yaml,
        1 => Format::Json,
        _ => Format::Toml,
    };
    let _ = parse_config(text, format);
});
