//! The validated, resolved result of a config file: one [`TargetPlan`] per target,
//! ready to deploy, and its rendering for `validate-config`.

use std::path::PathBuf;

use haloy_api::spec::{AppSpec, History, Secret, VolumeSource};
use serde_json::{Map, Value, json};

/// Everything a deploy needs, checked before any connection is opened.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config_file: PathBuf,
    pub global_pre_deploy: Vec<String>,
    pub global_post_deploy: Vec<String>,
    pub targets: Vec<TargetPlan>,
}

#[derive(Debug, Clone)]
pub struct TargetPlan {
    /// The target's name; `None` for a config without `targets`.
    pub target: Option<String>,
    /// The server from the config (`host` or `host:port`), if it names one.
    pub server: Option<String>,
    /// The API token from the config's `api_token`, if set.
    pub api_token: Option<Secret>,
    pub spec: AppSpec,
    /// Set when the image is built on the workstation.
    pub build: Option<BuildPlan>,
    pub pre_deploy: Vec<String>,
    pub post_deploy: Vec<String>,
    /// The HTML of `maintenance.page`, which `haloy maintenance on` sends; `None`
    /// for the server's default page.
    pub maintenance_page: Option<String>,
    /// Things that are allowed but probably not what the user wants.
    pub warnings: Vec<crate::error::Issue>,
}

impl TargetPlan {
    /// A label for output: the target name, or the app name without targets.
    pub fn label(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.spec.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// Absolute build context directory.
    pub context: PathBuf,
    /// Absolute path of the Dockerfile.
    pub dockerfile: PathBuf,
    pub platform: String,
    pub args: Vec<BuildArg>,
    pub push: PushTo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArg {
    pub name: String,
    /// `None` when a pass-through argument is not set in the environment.
    pub value: Option<Secret>,
    pub sensitive: bool,
}

/// Where a locally built image goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushTo {
    /// Uploaded to the server inside the deploy stream.
    Server,
    /// Pushed to the registry; the server pulls it.
    Registry,
}

impl PushTo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Registry => "registry",
        }
    }
}

const MASK: &str = "********";

fn shown(secret: &Secret, sensitive: bool, reveal: bool) -> Value {
    if sensitive && !reveal {
        Value::from(MASK)
    } else {
        Value::from(secret.expose())
    }
}

impl TargetPlan {
    /// The resolved configuration as a JSON value, in config-file key order.
    /// Sensitive values (API tokens, registry credentials, anything read from the
    /// environment or a secret provider) are masked unless `reveal`.
    pub fn to_value(&self, reveal: bool) -> Value {
        let spec = &self.spec;
        let mut out = Map::new();
        if let Some(target) = &self.target {
            out.insert("target".into(), json!(target));
        }
        out.insert("name".into(), json!(spec.name));
        out.insert("server".into(), json!(self.server));
        if let Some(token) = &self.api_token {
            out.insert("api_token".into(), shown(token, true, reveal));
        }
        let mut image = Map::new();
        image.insert("repository".into(), json!(spec.image.repository));
        image.insert("tag".into(), json!(spec.image.tag));
        image.insert("source".into(), json!(spec.image.source.as_str()));
        if let Some(registry) = &spec.image.registry {
            image.insert(
                "registry".into(),
                json!({
                    "server": registry.server,
                    "username": shown(&registry.username, true, reveal),
                    "password": shown(&registry.password, true, reveal),
                }),
            );
        }
        let history = match &spec.image.history {
            History::Local { count } => json!({"strategy": "local", "count": count}),
            History::Registry { count, pattern } => {
                json!({"strategy": "registry", "count": count, "pattern": pattern})
            }
            History::None => json!({"strategy": "none"}),
        };
        image.insert("history".into(), history);
        if let Some(build) = &self.build {
            let args: Vec<Value> = build
                .args
                .iter()
                .map(|arg| {
                    let value = match &arg.value {
                        Some(v) => shown(v, arg.sensitive, reveal),
                        None => Value::Null,
                    };
                    json!({"name": arg.name, "value": value})
                })
                .collect();
            image.insert(
                "builder".into(),
                json!({
                    "context": build.context.display().to_string(),
                    "dockerfile": build.dockerfile.display().to_string(),
                    "platform": build.platform,
                    "args": args,
                    "push": build.push.as_str(),
                }),
            );
        }
        out.insert("image".into(), Value::Object(image));
        out.insert(
            "deployment_strategy".into(),
            json!(spec.deployment_strategy.as_str()),
        );
        let domains: Vec<Value> = spec
            .domains
            .iter()
            .map(|d| json!({"domain": d.canonical, "aliases": d.aliases}))
            .collect();
        out.insert("domains".into(), json!(domains));
        out.insert("acme_email".into(), json!(spec.acme_email));
        out.insert("replicas".into(), json!(spec.replicas));
        out.insert("port".into(), json!(spec.port));
        out.insert("health_check_path".into(), json!(spec.health_check_path));
        let env: Vec<Value> = spec
            .env
            .iter()
            .map(|var| json!({"name": var.name, "value": shown(&var.value, var.sensitive, reveal)}))
            .collect();
        out.insert("env".into(), json!(env));
        let volumes: Vec<Value> = spec
            .volumes
            .iter()
            .map(|v| {
                let kind = match v.source {
                    VolumeSource::Named(_) => "named",
                    VolumeSource::Bind(_) => "bind",
                };
                json!({"mount": v.to_string(), "kind": kind})
            })
            .collect();
        out.insert("volumes".into(), json!(volumes));
        out.insert("network".into(), json!(spec.network_or_default()));
        out.insert("pre_deploy".into(), json!(self.pre_deploy));
        out.insert("post_deploy".into(), json!(self.post_deploy));
        if let Some(page) = &self.maintenance_page {
            // The page itself is long; its size says it was read.
            out.insert("maintenance".into(), json!({"page_bytes": page.len()}));
        }
        Value::Object(out)
    }
}
