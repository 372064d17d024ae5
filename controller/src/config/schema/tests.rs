//! The schema against the engine: the same keys as the key table, the same fields
//! and words serde accepts (asked through its own "unknown field" errors), every
//! spelling accepted, and the repository's copy up to date.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::config::raw::RawConfig;

/// Every key of the schema as a key-table path (`domains[].domain`, `targets.*`),
/// in its snake_case spelling only.
fn schema_paths(schema: &Value, path: &str, out: &mut BTreeSet<String>) {
    if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
        for branch in branches {
            schema_paths(branch, path, out);
        }
    }
    if let Some(items) = schema.get("items") {
        let entry = format!("{path}[]");
        out.insert(entry.clone());
        schema_paths(items, &entry, out);
    }
    if let Some(named) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        let entry = format!("{path}.*");
        out.insert(entry.clone());
        schema_paths(named, &entry, out);
    }
    for (name, sub) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if name.chars().any(|c| c.is_ascii_uppercase()) || name == "build_config" {
            continue;
        }
        // Value sources and target keys are listed once in the table.
        let child = match (path, name.as_str()) {
            (_, "value" | "from") => name.to_string(),
            ("", _) | ("targets.*", _) => name.to_string(),
            _ => format!("{path}.{name}"),
        };
        out.insert(child.clone());
        schema_paths(sub, &child, out);
    }
}

#[test]
fn the_schema_has_exactly_the_key_tables_keys() {
    let mut found = BTreeSet::new();
    schema_paths(&schema(), "", &mut found);
    found.insert(String::new());
    found.insert("from.env".into());
    found.insert("from.secret".into());
    let table: BTreeSet<String> = KEYS.iter().map(|(p, _)| p.to_string()).collect();
    let missing: Vec<_> = table.difference(&found).collect();
    let extra: Vec<_> = found.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in the schema: {missing:?}; not in the key table: {extra:?}"
    );
}

/// Puts `inner` at `at` (object keys, `[]` for a list entry) in an otherwise empty
/// config.
fn document(at: &[String], inner: Value) -> Value {
    at.iter()
        .rev()
        .fold(inner, |acc, segment| match segment.as_str() {
            "[]" => json!([acc]),
            key => json!({ key: acc }),
        })
}

/// The words in backticks after "expected" in a serde error.
fn expected(error: &str) -> BTreeSet<String> {
    let tail = error.split_once("expected").map_or("", |(_, t)| t);
    tail.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn load(doc: Value) -> Result<RawConfig, String> {
    serde_json::from_value::<RawConfig>(doc).map_err(|e| e.to_string())
}

/// Walks the schema with the instance path of each place; for every closed object,
/// asks serde which fields it accepts there, and for every enum which words.
fn check_against_serde(schema: &Value, at: &mut Vec<String>, checked: &mut usize) {
    for branch in schema
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check_against_serde(branch, at, checked);
    }
    if let Some(items) = schema.get("items") {
        at.push("[]".into());
        check_against_serde(items, at, checked);
        at.pop();
    }
    if let Some(named) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        at.push("some-name".into());
        check_against_serde(named, at, checked);
        at.pop();
    }
    if let Some(words) = schema.get("enum").and_then(Value::as_array) {
        let error = load(document(at, json!("not-a-word"))).unwrap_err();
        let words: BTreeSet<String> = words
            .iter()
            .filter_map(|w| w.as_str().map(String::from))
            .collect();
        assert_eq!(expected(&error), words, "enum at {at:?}: {error}");
        *checked += 1;
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let error = load(document(at, json!({"not_a_key": 1}))).unwrap_err();
    assert!(
        error.contains("unknown field `not_a_key`"),
        "{at:?}: {error}"
    );
    let accepted = expected(&error);
    for name in properties.keys() {
        let mut place = at.clone();
        place.push(name.clone());
        // A wrong type, not an unknown field, proves the spelling is accepted.
        if let Err(error) = load(document(&place, json!([[[]]]))) {
            assert!(!error.contains("unknown field"), "{place:?}: {error}");
        }
    }
    let primary: BTreeSet<String> = properties
        .keys()
        .filter(|k| accepted.contains(*k))
        .cloned()
        .collect();
    assert_eq!(primary, accepted, "fields at {at:?}");
    *checked += 1;
    for (name, sub) in properties {
        at.push(name.clone());
        check_against_serde(sub, at, checked);
        at.pop();
    }
}

#[test]
fn the_engine_accepts_every_key_and_word_of_the_schema_and_no_other() {
    let mut checked = 0;
    check_against_serde(&schema(), &mut Vec::new(), &mut checked);
    assert!(checked > 20, "only {checked} places were checked");
}

#[test]
fn both_spellings_and_defaults_are_there() {
    let schema = schema();
    let root = &schema["properties"];
    assert_eq!(root["healthCheckPath"], root["health_check_path"]);
    assert_eq!(root["secretProviders"], root["secret_providers"]);
    let image = &root["image"]["properties"];
    for spelling in ["builder", "build_config", "buildConfig"] {
        assert!(image[spelling].is_object(), "{spelling}");
    }
    assert_eq!(root["replicas"]["default"], 1);
    assert_eq!(root["port"]["default"], 8080);
    assert_eq!(root["health_check_path"]["default"], "/");
    assert_eq!(
        root["deployment_strategy"]["enum"],
        json!(["rolling", "replace"])
    );
    let token = root["api_token"]["anyOf"].as_array().expect("anyOf");
    assert_eq!(token[0]["type"], "string");
    assert!(token[1]["properties"]["from"].is_object());
}

/// The repository carries the schema for editors; regenerate it with
/// `cargo run -p haloy-cli --bin haloy -- schema > schema/haloy.schema.json`.
#[test]
fn the_repositorys_schema_file_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/haloy.schema.json");
    let carried = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        carried == render(),
        "schema/haloy.schema.json is stale or missing; regenerate it with `haloy schema > schema/haloy.schema.json`"
    );
}
