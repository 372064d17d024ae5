//! Property: delete any one character from any valid seed example, in YAML or
//! written out as JSON or TOML, and the loader neither panics nor points outside
//! the file; its errors name a line of the file and no Rust or serde name.

mod support;

use std::path::Path;
use std::sync::LazyLock;

use haloy_controller::config::format::Format;
use haloy_controller::config::load::parse_config;
use proptest::prelude::*;
use proptest::sample::Index;

/// The seed examples that load as they are, in all three formats.
static EXAMPLES: LazyLock<Vec<(String, String, Format)>> = LazyLock::new(valid_examples);

fn valid_examples() -> Vec<(String, String, Format)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("seed fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut examples = Vec::new();
    for path in names {
        let yaml = std::fs::read_to_string(&path).expect("read");
        if parse_config(&yaml, Format::Yaml).is_err() {
            continue;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let name = name.unwrap_or_default();
        let value: serde_json::Value = serde_yaml::from_str(&yaml).expect("yaml value");
        let json = serde_json::to_string_pretty(&value).expect("json");
        examples.push((format!("{name} as JSON"), json, Format::Json));
        if let Ok(toml) = toml::to_string(&value) {
            examples.push((format!("{name} as TOML"), toml, Format::Toml));
        }
        examples.push((name, yaml, Format::Yaml));
    }
    // The same files with letters outside ASCII, so positions are not bytes by luck.
    let accented: Vec<_> = examples
        .iter()
        .filter(|(_, text, _)| text.contains("my-app"))
        .map(|(name, text, format)| {
            let text = text.replace("my-app", "mý-äpp");
            (format!("{name} with accents"), text, *format)
        })
        .collect();
    examples.extend(accented);
    examples
}

/// Every error has a line inside the text, a column on it, and speaks the config's
/// language.
fn check(name: &str, text: &str, format: Format) -> Result<(), TestCaseError> {
    let Err(issues) = parse_config(text, format) else {
        return Ok(());
    };
    let lines = text.lines().count().max(1);
    prop_assert!(!issues.is_empty(), "{name}: an error without issues");
    for issue in issues {
        let Some((line, column)) = issue.location else {
            return Err(TestCaseError::fail(format!(
                "{name}: no line in `{issue}` for:\n{text}"
            )));
        };
        prop_assert!(
            (1..=lines).contains(&line) && column >= 1,
            "{name}: line {line} of {lines} in `{issue}` for:\n{text}"
        );
        let width = text.lines().nth(line - 1).map_or(0, |l| l.chars().count());
        prop_assert!(
            column <= width + 1,
            "{name}: column past the line in `{issue}`"
        );
        prop_assert!(!issue.path.contains('?'), "{name}: `?` in `{issue}`");
        let words = format!("{} {}", issue.problem, issue.fix);
        let internal = support::internal_names(&words);
        prop_assert!(internal.is_empty(), "{name}: {internal:?} in `{issue}`");
    }
    Ok(())
}

fn without_one_char(text: &str, at: Index) -> String {
    let count = text.chars().count();
    let skip = at.index(count.max(1));
    text.chars()
        .enumerate()
        .filter(|(i, _)| *i != skip)
        .map(|(_, c)| c)
        .collect()
}

#[test]
fn there_are_examples_in_every_format() {
    let examples = &*EXAMPLES;
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let count = examples.iter().filter(|e| e.2 == format).count();
        assert!(count >= 25, "{format:?}: {count} examples");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn deleting_one_character_never_panics_or_points_outside_the_file(
        which in any::<Index>(),
        at in any::<Index>(),
    ) {
        let (name, text, format) = which.get(&EXAMPLES);
        let broken = without_one_char(text, at);
        check(name, &broken, *format)?;
    }
}
