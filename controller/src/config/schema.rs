//! The JSON Schema of `haloy.yaml`, generated from the engine's own table of keys
//! (`diagnose/keys.rs`, which also words its type errors) so that editors are told
//! exactly what the loader accepts: every key in both spellings, enums and defaults.

use haloy_api::spec::{
    DEFAULT_HEALTH_CHECK_PATH, DEFAULT_HISTORY_COUNT, DEFAULT_NETWORK, DEFAULT_PORT,
    DEFAULT_REPLICAS, DEFAULT_TAG,
};
use serde_json::{Map, Value, json};

use super::diagnose::keys::{KEYS, Takes, sentence};
use super::format::Format;

/// Where the repository publishes the generated file; `haloy init` points editors at it.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/haloydev/haloy/main/schema/haloy.schema.json";

/// Keys of the top level that a target cannot override.
pub const NOT_IN_TARGETS: &[&str] = &[
    "name",
    "targets",
    "secret_providers",
    "global_pre_deploy",
    "global_post_deploy",
];

/// Spellings besides snake_case and camelCase: the seed's `build_config`.
const OTHER_SPELLINGS: &[(&str, &str)] = &[("image.builder", "build_config")];

/// List entries that may also be written as one bare string.
const SHORTHANDS: &[(&str, &str)] = &[("domains[]", "a bare host name is { domain: <name> }")];

/// What the engine uses when a key is left out.
fn default_of(path: &str) -> Option<Value> {
    Some(match path {
        "replicas" => json!(DEFAULT_REPLICAS),
        "port" => json!(DEFAULT_PORT),
        "health_check_path" | "health_check.path" => json!(DEFAULT_HEALTH_CHECK_PATH),
        "deployment_strategy" => json!("rolling"),
        "network" => json!(DEFAULT_NETWORK),
        "protected" => json!(false),
        "image.tag" => json!(DEFAULT_TAG),
        "image.source" => json!("registry"),
        "image.history.strategy" => json!("local"),
        "image.history.count" => json!(DEFAULT_HISTORY_COUNT),
        "image.builder.context" => json!("."),
        "image.builder.dockerfile" => json!("Dockerfile"),
        "image.builder.platform" => json!("linux/amd64"),
        _ => return None,
    })
}

/// The whole schema (JSON Schema draft 2020-12).
pub fn schema() -> Value {
    let mut root = node("");
    if let Value::Object(map) = &mut root {
        map.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        map.insert("$id".into(), json!(SCHEMA_URL));
        map.insert("title".into(), json!("haloy.yaml"));
        map.insert(
            "description".into(),
            json!("An app's Haloy configuration (YAML, JSON or TOML); keys are accepted in snake_case and camelCase"),
        );
    }
    root
}

/// The schema as `haloy schema` prints it and the repository carries it.
pub fn render() -> String {
    // Serializing a Value cannot fail: its keys are strings.
    let text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    format!("{text}\n")
}

/// The camelCase spelling: `health_check_path` → `healthCheckPath`.
pub fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Every spelling the engine accepts for the key at `path`.
pub fn spellings(path: &str) -> Vec<String> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let mut names = vec![key.to_string()];
    let others = OTHER_SPELLINGS
        .iter()
        .filter(|(p, _)| *p == path)
        .map(|(_, other)| other.to_string());
    for name in names.clone().into_iter().chain(others) {
        for spelling in [camel_case(&name), name] {
            if !names.contains(&spelling) {
                names.push(spelling);
            }
        }
    }
    names
}

fn find(path: &str) -> Option<Takes> {
    KEYS.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

/// The keys directly inside the block at `path`, as paths.
pub fn children(path: &str) -> Vec<String> {
    if path == "targets.*" {
        return children("")
            .into_iter()
            .filter(|c| !NOT_IN_TARGETS.contains(&c.as_str()))
            .collect();
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}.")
    };
    KEYS.iter()
        .map(|(p, _)| *p)
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty() && !rest.contains(['.', '[']))
        // Value sources (`value`, `from`) sit at the top of the table but belong to
        // the blocks that take a source.
        .filter(|rest| !(path.is_empty() && (*rest == "value" || *rest == "from")))
        .map(|rest| format!("{prefix}{rest}"))
        .collect()
}

/// An object with these keys (in every spelling) and no others.
fn block(paths: &[String], subschema: impl Fn(&str) -> Value) -> Value {
    let mut properties = Map::new();
    for path in paths {
        let schema = subschema(path);
        for name in spellings(path) {
            properties.insert(name, schema.clone());
        }
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

fn source() -> Value {
    block(&["value".to_string(), "from".to_string()], node)
}

fn node(path: &str) -> Value {
    let Some(takes) = find(path) else {
        return json!({});
    };
    let mut schema = match takes {
        Takes::WholeNumber(_) => json!({"type": "integer"}),
        Takes::Number(_) => json!({"type": ["number", "string"]}),
        Takes::Duration(_) => json!({"type": ["string", "integer"]}),
        Takes::Bool => json!({"type": "boolean"}),
        Takes::Text(..) => json!({"type": "string"}),
        Takes::OneOf(words) => json!({"type": "string", "enum": words}),
        Takes::Port => json!({"type": ["integer", "string"]}),
        Takes::Scalar => json!({"type": ["string", "number", "boolean"]}),
        Takes::TextList(..) => json!({"type": "array", "items": node(&format!("{path}[]"))}),
        Takes::Entries(_, keys, _) if path.ends_with("[]") => {
            let mut paths = children(path);
            if keys.contains(&"value") {
                paths.extend(["value".to_string(), "from".to_string()]);
            }
            let entry = block(&paths, node);
            match SHORTHANDS.iter().find(|(p, _)| *p == path) {
                Some((_, words)) => {
                    json!({"anyOf": [{"type": "string", "description": words}, entry]})
                }
                None => entry,
            }
        }
        Takes::Entries(..) => json!({"type": "array", "items": node(&format!("{path}[]"))}),
        Takes::Block(_) => block(&children(path), node),
        Takes::Named(..) => json!({
            "type": "object",
            "additionalProperties": node(&format!("{path}.*")),
        }),
        Takes::Token => json!({"anyOf": [
            {"type": "string", "description": "the name of the environment variable holding the token"},
            source(),
        ]}),
        Takes::Source => source(),
    };
    let key = path.rsplit('.').next().unwrap_or(path);
    if let Value::Object(map) = &mut schema {
        if !key.is_empty() && key != "*" {
            map.insert(
                "description".into(),
                json!(sentence(path, takes, Format::Yaml)),
            );
        }
        if let Some(default) = default_of(path) {
            map.insert("default".into(), default);
        }
    }
    schema
}

#[cfg(test)]
mod tests;
