//! Secret providers behind `from.secret: "<provider>:<source>.<field>"`.
//!
//! The only provider is 1Password, through its `op` CLI. Each source names an item
//! (`secret_providers.onepassword.<source>`: account, vault, item); an item is fetched
//! once per run however many of its fields are read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use haloy_api::spec::Secret;
use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{SecretError, SecretRefError};

/// A parsed `from.secret` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub provider: String,
    pub source: String,
    pub field: String,
}

pub const PROVIDERS: &[&str] = &["onepassword"];

impl SecretRef {
    /// Parses `onepassword:production-db.password`. The error says the fix.
    pub fn parse(text: &str) -> Result<Self, SecretRefError> {
        let (provider, rest) = text
            .split_once(':')
            .ok_or_else(|| SecretRefError::NoProvider(text.to_string()))?;
        if !PROVIDERS.contains(&provider) {
            return Err(SecretRefError::UnknownProvider(provider.to_string()));
        }
        match rest.split_once('.') {
            Some((source, field)) if !source.is_empty() && !field.is_empty() => Ok(Self {
                provider: provider.to_string(),
                source: source.to_string(),
                field: field.to_string(),
            }),
            _ => Err(SecretRefError::NoField {
                text: text.to_string(),
                provider: provider.to_string(),
            }),
        }
    }
}

/// `secret_providers.onepassword.<source>` as written in the config file; the item
/// defaults to the source's name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnePasswordSourceDef {
    pub account: Option<String>,
    pub vault: Option<String>,
    pub item: Option<String>,
}

/// Where one 1Password source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnePasswordSource {
    pub account: Option<String>,
    pub vault: Option<String>,
    pub item: String,
}

/// Resolves secret references, fetching each 1Password item at most once.
#[derive(Debug)]
pub struct SecretResolver {
    sources: IndexMap<String, OnePasswordSource>,
    op_program: PathBuf,
    /// The environment `op` runs with (PATH, HOME, OP_* session variables).
    op_env: HashMap<String, String>,
    items: HashMap<String, Result<HashMap<String, Secret>, SecretError>>,
}

impl SecretResolver {
    pub fn new(
        sources: Option<&IndexMap<String, OnePasswordSourceDef>>,
        op_env: HashMap<String, String>,
    ) -> Self {
        let sources = sources
            .into_iter()
            .flatten()
            .map(|(name, def)| {
                let source = OnePasswordSource {
                    account: def.account.clone(),
                    vault: def.vault.clone(),
                    item: def.item.clone().unwrap_or_else(|| name.clone()),
                };
                (name.clone(), source)
            })
            .collect();
        Self {
            sources,
            op_program: PathBuf::from("op"),
            op_env,
            items: HashMap::new(),
        }
    }

    /// Whether a source is declared under `secret_providers.onepassword`.
    pub fn has_source(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    pub fn resolve(&mut self, reference: &SecretRef) -> Result<Secret, SecretError> {
        // A source not declared in the config is looked up as an item of that name in
        // any vault the CLI can see, as the seed's shorter examples expect.
        let source = self
            .sources
            .get(&reference.source)
            .cloned()
            .unwrap_or_else(|| OnePasswordSource {
                account: None,
                vault: None,
                item: reference.source.clone(),
            });
        if !self.items.contains_key(&reference.source) {
            let fetched = self.fetch(&reference.source, &source);
            self.items.insert(reference.source.clone(), fetched);
        }
        let fields = match &self.items[&reference.source] {
            Ok(fields) => fields,
            Err(e) => return Err(e.clone()),
        };
        fields
            .get(&reference.field)
            .cloned()
            .ok_or_else(|| SecretError::FieldNotFound {
                item: source.item.clone(),
                field: reference.field.clone(),
                available: {
                    let mut names: Vec<String> = fields.keys().cloned().collect();
                    names.sort();
                    names
                },
            })
    }

    fn fetch(
        &self,
        source_name: &str,
        source: &OnePasswordSource,
    ) -> Result<HashMap<String, Secret>, SecretError> {
        let mut command = Command::new(&self.op_program);
        command.args(["item", "get", &source.item, "--format", "json"]);
        if let Some(vault) = &source.vault {
            command.args(["--vault", vault]);
        }
        if let Some(account) = &source.account {
            command.args(["--account", account]);
        }
        command.env_clear().envs(&self.op_env);
        let output = command.output().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SecretError::OpMissing,
            _ => SecretError::OpFailed {
                item: source.item.clone(),
                status: "could not start".into(),
                stderr: e.to_string(),
            },
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            let lower = stderr.to_lowercase();
            return Err(
                if lower.contains("not currently signed in")
                    || lower.contains("not signed in")
                    || lower.contains("session expired")
                {
                    SecretError::OpNotSignedIn {
                        account: source.account.clone(),
                    }
                } else if lower.contains("isn't an item") || lower.contains("not found") {
                    SecretError::ItemNotFound {
                        source_name: source_name.to_string(),
                        item: source.item.clone(),
                        vault: source.vault.clone(),
                    }
                } else {
                    SecretError::OpFailed {
                        item: source.item.clone(),
                        status: output.status.to_string(),
                        stderr,
                    }
                },
            );
        }
        parse_item(&output.stdout).map_err(|problem| SecretError::OpOutput {
            item: source.item.clone(),
            problem,
        })
    }
}

#[derive(Deserialize)]
struct OpItem {
    #[serde(default)]
    fields: Vec<OpField>,
}

#[derive(Deserialize)]
struct OpField {
    #[serde(default)]
    id: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    value: Option<String>,
}

/// Fields of an `op item get --format json` item, by label and by id.
fn parse_item(stdout: &[u8]) -> Result<HashMap<String, Secret>, String> {
    // serde_json's messages describe positions, never the secret values themselves.
    let item: OpItem = serde_json::from_slice(stdout).map_err(|e| e.to_string())?;
    let mut fields = HashMap::new();
    for field in item.fields {
        let Some(value) = field.value else { continue };
        if !field.id.is_empty() {
            fields
                .entry(field.id)
                .or_insert_with(|| Secret::new(value.clone()));
        }
        if !field.label.is_empty() {
            fields.insert(field.label, Secret::new(value));
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = SecretRef::parse("onepassword:api-keys.stripe-key").unwrap();
        assert_eq!(
            (r.source.as_str(), r.field.as_str()),
            ("api-keys", "stripe-key")
        );
        assert!(
            SecretRef::parse("vault:x.y")
                .unwrap_err()
                .to_string()
                .contains("unknown secret provider")
        );
        assert!(
            SecretRef::parse("onepassword:x")
                .unwrap_err()
                .to_string()
                .contains("<source>.<field>")
        );
        assert!(
            SecretRef::parse("x.y")
                .unwrap_err()
                .to_string()
                .contains("no provider")
        );
    }

    #[test]
    fn reads_fields_by_label_and_id() {
        let json = br#"{"id":"abc","title":"DB","fields":[
            {"id":"password","label":"password","value":"pw"},
            {"id":"k1","label":"stripe-key","value":"sk"},
            {"id":"notes","label":"notesPlain"}]}"#;
        let fields = parse_item(json).unwrap();
        assert_eq!(fields["password"].expose(), "pw");
        assert_eq!(fields["stripe-key"].expose(), "sk");
        assert_eq!(fields["k1"].expose(), "sk");
        assert!(!fields.contains_key("notesPlain"));
    }
}
