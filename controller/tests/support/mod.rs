//! Test support: temp project directories, a scrubbed environment, and the stand-in
//! `op` CLI with its item store.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use haloy_controller::config::plan::Plan;
use haloy_controller::{ConfigError, ConfigFile, Needs, TargetSelection};

/// A project directory, a HOME, and an `op` item store, all temporary.
pub struct Project {
    pub root: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl Project {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        for dir in ["app", "home", "op"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
        let env = HashMap::from([
            (
                "HOME".to_string(),
                root.path().join("home").display().to_string(),
            ),
            (
                "PATH".to_string(),
                format!("{}:/usr/bin:/bin", support.display()),
            ),
            (
                "OP_STANDIN_DIR".to_string(),
                root.path().join("op").display().to_string(),
            ),
        ]);
        Self { root, env }
    }

    pub fn app(&self) -> PathBuf {
        self.root.path().join("app")
    }

    pub fn haloy_dir(&self) -> PathBuf {
        self.root.path().join("home/.config/haloy")
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.app().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Stores a 1Password item for the stand-in `op`.
    pub fn op_item(&self, vault: &str, item: &str, fields: &[(&str, &str)]) {
        let fields: Vec<serde_json::Value> = fields
            .iter()
            .map(|(label, value)| {
                serde_json::json!({"id": label.to_lowercase(), "type": "CONCEALED", "label": label, "value": value})
            })
            .collect();
        let json = serde_json::json!({
            "id": "abc123", "title": item, "vault": {"id": "v1", "name": vault},
            "category": "LOGIN", "fields": fields,
        });
        let dir = self.root.path().join("op").join(vault);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(format!("{item}.json")), json.to_string()).expect("write");
    }

    pub fn op_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.path().join("op/calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Loads the config in the app directory and plans the selected targets
    /// (every target when `targets` is empty).
    pub fn plan(&self, file: &str, targets: &[&str]) -> Result<Plan, ConfigError> {
        self.plan_for(file, targets, Needs::Everything)
    }

    /// Like [`Project::plan`], reading only the value sources `needs` names.
    pub fn plan_for(
        &self,
        file: &str,
        targets: &[&str],
        needs: Needs,
    ) -> Result<Plan, ConfigError> {
        let config = ConfigFile::load(Some(Path::new(file)), &self.app())?;
        let selection = TargetSelection {
            names: targets.iter().map(|t| t.to_string()).collect(),
            all: false,
        };
        let chosen = config.select(&selection, true)?;
        config.plan(
            &chosen,
            needs,
            &self.env,
            &self.app(),
            Some(&self.haloy_dir()),
        )
    }

    /// Writes `yaml` as haloy.yaml and plans every target, expecting failure.
    pub fn error_for(&self, yaml: &str) -> String {
        self.write("haloy.yaml", yaml);
        match self.plan("haloy.yaml", &[]) {
            Ok(plan) => panic!("expected an error for:\n{yaml}\ngot a plan: {plan:#?}"),
            Err(e) => e.to_string(),
        }
    }
}

/// Words that are Rust's or serde's, not the config's, found in `text`.
pub fn internal_names(text: &str) -> Vec<&str> {
    const INTERNAL: &[&str] = &[
        "struct",
        "enum",
        "i64",
        "u64",
        "u32",
        "i32",
        "usize",
        "sequence",
        "map",
        "serde",
        "Option",
        "RawConfig",
        "RawImage",
        "RawTarget",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| INTERNAL.contains(w) || w.ends_with("Def"))
        .collect()
}
