//! `haloy schema` and `haloy init` checked with a real JSON Schema validator
//! (`check-jsonschema` from PyPI): every seed example and valid fixture passes, the
//! invalid fixtures fail (and the engine refuses them too), the repository's copy is
//! what `haloy schema` prints, and the starter `haloy init` writes is valid before and
//! after its placeholders are set.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Sandbox, describe};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../controller/tests/fixtures/seed"
);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema");
const CARRIED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/haloy.schema.json");

/// Runs check-jsonschema; a missing validator fails the test, never skips it.
fn check_jsonschema(schema: &Path, files: &[PathBuf]) -> Output {
    Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(schema)
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!("check-jsonschema is required (pip install check-jsonschema): {e}")
        })
}

fn files_in(dir: &str, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
        })
        .collect();
    files.sort();
    files
}

/// `haloy schema` written to the sandbox; returns its path.
fn schema_file(s: &Sandbox) -> PathBuf {
    let text = s.ok("haloy", &["schema"]);
    s.write("haloy.schema.json", &text);
    s.work().join("haloy.schema.json")
}

#[test]
fn the_repository_carries_what_haloy_schema_prints() {
    let s = Sandbox::new();
    let printed = s.ok("haloy", &["schema"]);
    let carried = std::fs::read_to_string(CARRIED).unwrap_or_default();
    assert!(
        printed == carried,
        "schema/haloy.schema.json is stale; regenerate it with `haloy schema > schema/haloy.schema.json`"
    );
    let value: serde_json::Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(
        value["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn every_seed_example_and_valid_fixture_validates() {
    let s = Sandbox::new();
    let schema = schema_file(&s);
    let mut files = files_in(SEED, &["yaml", "yml", "json", "toml"]);
    // The seed's client.yaml example is the workstation's server list, not a haloy.yaml
    // (see the fixtures' INDEX.md).
    files.retain(|f| !f.ends_with("client-yaml-example.yaml"));
    assert!(files.len() >= 30, "seed examples missing: {files:?}");
    files.extend(files_in(
        &format!("{FIXTURES}/valid"),
        &["yaml", "json", "toml"],
    ));
    let output = check_jsonschema(&schema, &files);
    assert!(output.status.success(), "{}", describe(&output));
}

/// Copies `file` into the sandbox's working directory; returns its name there.
fn copy_to_work(s: &Sandbox, file: &Path) -> String {
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    std::fs::copy(file, s.work().join(&name)).expect("copy");
    name
}

#[test]
fn the_valid_fixtures_are_valid_to_the_engine_too() {
    let mut s = Sandbox::new();
    s.write("Dockerfile", "FROM scratch\n");
    s.set("SHOP_TOKEN", "t");
    s.set("REGISTRY_PASSWORD", "p");
    for file in files_in(&format!("{FIXTURES}/valid"), &["yaml", "json", "toml"]) {
        let name = copy_to_work(&s, &file);
        s.ok("haloy", &["validate-config", "-c", &name]);
    }
}

#[test]
fn invalid_fixtures_fail_the_schema_and_the_engine() {
    let s = Sandbox::new();
    let schema = schema_file(&s);
    let files = files_in(&format!("{FIXTURES}/invalid"), &["yaml", "json", "toml"]);
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let output = check_jsonschema(&schema, std::slice::from_ref(&file));
        assert!(
            !output.status.success(),
            "{} passed the schema:\n{}",
            file.display(),
            describe(&output)
        );
        let name = copy_to_work(&s, &file);
        s.fails("haloy", &["validate-config", "-c", &name]);
    }
}

#[test]
fn init_writes_a_valid_starter_and_refuses_to_overwrite() {
    let s = Sandbox::new();
    let schema = schema_file(&s);
    s.write("Dockerfile", "FROM scratch\n");
    let said = s.ok("haloy", &["init"]);
    assert!(said.contains("for app work"), "{said}");
    let path = s.work().join("haloy.yaml");
    let text = std::fs::read_to_string(&path).expect("haloy.yaml");
    assert!(
        text.starts_with("# yaml-language-server: $schema=https://"),
        "{text}"
    );
    assert!(
        text.contains("name: \"work\"") && text.contains("builder:"),
        "{text}"
    );
    let output = check_jsonschema(&schema, std::slice::from_ref(&path));
    assert!(output.status.success(), "{}", describe(&output));

    // The placeholders fail validation by name until they are set.
    let err = s.fails("haloy", &["validate-config"]);
    assert!(
        err.contains("server") && err.contains("<your-server>"),
        "{err}"
    );
    let filled = text
        .replace("<your-server>", "haloy.example.com")
        .replace("<your-domain>", "work.example.com")
        .replace("<your-email>", "ops@example.com");
    std::fs::write(&path, &filled).expect("write");
    s.ok("haloy", &["validate-config"]);

    let err = s.fails("haloy", &["init"]);
    assert!(
        err.contains("haloy.yaml already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), filled);
    std::fs::remove_file(s.work().join("Dockerfile")).expect("rm");
    s.ok("haloy", &["init", "--force"]);
    let text = std::fs::read_to_string(&path).expect("haloy.yaml");
    assert!(
        !text.contains("builder:"),
        "no Dockerfile, no build:\n{text}"
    );
    let output = check_jsonschema(&schema, std::slice::from_ref(&path));
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn init_leaves_a_config_in_another_format_alone() {
    let s = Sandbox::new();
    s.write("haloy.toml", "name = \"x\"\n");
    let err = s.fails("haloy", &["init", "--force"]);
    assert!(err.contains("haloy.toml already exists"), "{err}");
    assert!(!s.work().join("haloy.yaml").exists());
}
