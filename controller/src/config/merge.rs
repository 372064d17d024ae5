//! Target inheritance: a target's field replaces the base's wholesale, except `image`
//! and its `builder`, whose unspecified fields are inherited one by one.
//!
//! Every merged value remembers the key path prefix it was written under, so errors
//! point at the line the user must change (`targets.production.` or the top level).

use super::raw::{
    ApiTokenDef, BuilderDef, DomainDef, DurationDef, EnvVarDef, HealthCheckDef, HistoryDef,
    ImageSourceDef, MaintenanceDef, PortDef, PresetDef, PushDef, RawConfig, RawImage, RawTarget,
    RegistryDef, ResourcesDef, StrategyDef,
};

/// A value and the key path prefix it was written under (`""` or `targets.<name>.`).
#[derive(Debug, Clone)]
pub struct At<T> {
    pub value: T,
    pub prefix: String,
}

impl<T> At<T> {
    /// The full key path of this value's `key`.
    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Picks the target's value when it set one, else the base's.
fn pick<T: Clone>(
    base: &Option<T>,
    over: Option<&Option<T>>,
    base_prefix: &str,
    target_prefix: &str,
) -> Option<At<T>> {
    if let Some(Some(value)) = over {
        return Some(At {
            value: value.clone(),
            prefix: target_prefix.to_string(),
        });
    }
    base.as_ref().map(|value| At {
        value: value.clone(),
        prefix: base_prefix.to_string(),
    })
}

#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub server: Option<At<String>>,
    pub api_token: Option<At<ApiTokenDef>>,
    pub image: MergedImage,
    pub deployment_strategy: Option<At<StrategyDef>>,
    pub domains: Option<At<Vec<DomainDef>>>,
    pub acme_email: Option<At<String>>,
    pub replicas: Option<At<i64>>,
    pub port: Option<At<PortDef>>,
    pub health_check_path: Option<At<String>>,
    pub env: Option<At<Vec<EnvVarDef>>>,
    pub volumes: Option<At<Vec<String>>>,
    pub pre_deploy: Option<At<Vec<String>>>,
    pub post_deploy: Option<At<Vec<String>>>,
    pub network: Option<At<String>>,
    pub health_check: Option<At<HealthCheckDef>>,
    pub max_surge: Option<At<i64>>,
    pub drain_timeout: Option<At<DurationDef>>,
    pub stop_grace_period: Option<At<DurationDef>>,
    pub resources: Option<At<ResourcesDef>>,
    pub preset: Option<At<PresetDef>>,
    pub protected: Option<At<bool>>,
    pub maintenance: Option<At<MaintenanceDef>>,
    /// Key path of the target itself (`targets.<name>`), or `""` without targets.
    pub target_path: String,
}

#[derive(Debug, Clone, Default)]
pub struct MergedImage {
    /// Whether `image` appears anywhere (base or target).
    pub present: bool,
    pub repository: Option<At<String>>,
    pub tag: Option<At<String>>,
    pub build: Option<At<bool>>,
    pub registry: Option<At<RegistryDef>>,
    pub source: Option<At<ImageSourceDef>>,
    pub history: Option<At<HistoryDef>>,
    pub builder: MergedBuilder,
}

#[derive(Debug, Clone, Default)]
pub struct MergedBuilder {
    pub present: bool,
    /// Where the builder block is written, for errors about the block as a whole.
    pub prefix: String,
    pub context: Option<At<String>>,
    pub dockerfile: Option<At<String>>,
    pub platform: Option<At<String>>,
    pub args: Option<At<Vec<EnvVarDef>>>,
    pub push: Option<At<PushDef>>,
}

/// The configuration one target deploys with. `target` is `None` for a file without
/// `targets`.
pub fn merge(raw: &RawConfig, target: Option<(&str, &RawTarget)>) -> Merged {
    let prefix = target
        .map(|(name, _)| format!("targets.{name}."))
        .unwrap_or_default();
    let t = target.map(|(_, t)| t);
    Merged {
        server: pick(&raw.server, t.map(|t| &t.server), "", &prefix),
        api_token: pick(&raw.api_token, t.map(|t| &t.api_token), "", &prefix),
        image: merge_image(
            raw.image.as_ref(),
            t.and_then(|t| t.image.as_ref()),
            &prefix,
        ),
        deployment_strategy: pick(
            &raw.deployment_strategy,
            t.map(|t| &t.deployment_strategy),
            "",
            &prefix,
        ),
        domains: pick(&raw.domains, t.map(|t| &t.domains), "", &prefix),
        acme_email: pick(&raw.acme_email, t.map(|t| &t.acme_email), "", &prefix),
        replicas: pick(&raw.replicas, t.map(|t| &t.replicas), "", &prefix),
        port: pick(&raw.port, t.map(|t| &t.port), "", &prefix),
        health_check_path: pick(
            &raw.health_check_path,
            t.map(|t| &t.health_check_path),
            "",
            &prefix,
        ),
        env: pick(&raw.env, t.map(|t| &t.env), "", &prefix),
        volumes: pick(&raw.volumes, t.map(|t| &t.volumes), "", &prefix),
        pre_deploy: pick(&raw.pre_deploy, t.map(|t| &t.pre_deploy), "", &prefix),
        post_deploy: pick(&raw.post_deploy, t.map(|t| &t.post_deploy), "", &prefix),
        network: pick(&raw.network, t.map(|t| &t.network), "", &prefix),
        health_check: pick(&raw.health_check, t.map(|t| &t.health_check), "", &prefix),
        max_surge: pick(&raw.max_surge, t.map(|t| &t.max_surge), "", &prefix),
        drain_timeout: pick(&raw.drain_timeout, t.map(|t| &t.drain_timeout), "", &prefix),
        stop_grace_period: pick(
            &raw.stop_grace_period,
            t.map(|t| &t.stop_grace_period),
            "",
            &prefix,
        ),
        resources: pick(&raw.resources, t.map(|t| &t.resources), "", &prefix),
        preset: pick(&raw.preset, t.map(|t| &t.preset), "", &prefix),
        protected: pick(&raw.protected, t.map(|t| &t.protected), "", &prefix),
        maintenance: pick(&raw.maintenance, t.map(|t| &t.maintenance), "", &prefix),
        target_path: target
            .map(|(name, _)| format!("targets.{name}"))
            .unwrap_or_default(),
    }
}

fn merge_image(
    base: Option<&RawImage>,
    over: Option<&RawImage>,
    target_prefix: &str,
) -> MergedImage {
    let empty = RawImage::default();
    let b = base.unwrap_or(&empty);
    let o = over;
    let image_prefix = format!("{target_prefix}image.");
    MergedImage {
        present: base.is_some() || over.is_some(),
        repository: pick(
            &b.repository,
            o.map(|i| &i.repository),
            "image.",
            &image_prefix,
        ),
        tag: pick(&b.tag, o.map(|i| &i.tag), "image.", &image_prefix),
        build: pick(&b.build, o.map(|i| &i.build), "image.", &image_prefix),
        registry: pick(&b.registry, o.map(|i| &i.registry), "image.", &image_prefix),
        source: pick(&b.source, o.map(|i| &i.source), "image.", &image_prefix),
        history: pick(&b.history, o.map(|i| &i.history), "image.", &image_prefix),
        builder: merge_builder(
            b.builder.as_ref(),
            o.and_then(|i| i.builder.as_ref()),
            &format!("{image_prefix}builder."),
        ),
    }
}

fn merge_builder(
    base: Option<&BuilderDef>,
    over: Option<&BuilderDef>,
    target_prefix: &str,
) -> MergedBuilder {
    let empty = BuilderDef::default();
    let b = base.unwrap_or(&empty);
    let prefix = if over.is_some() {
        target_prefix.to_string()
    } else {
        "image.builder.".to_string()
    };
    MergedBuilder {
        present: base.is_some() || over.is_some(),
        prefix,
        context: pick(
            &b.context,
            over.map(|o| &o.context),
            "image.builder.",
            target_prefix,
        ),
        dockerfile: pick(
            &b.dockerfile,
            over.map(|o| &o.dockerfile),
            "image.builder.",
            target_prefix,
        ),
        platform: pick(
            &b.platform,
            over.map(|o| &o.platform),
            "image.builder.",
            target_prefix,
        ),
        args: pick(
            &b.args,
            over.map(|o| &o.args),
            "image.builder.",
            target_prefix,
        ),
        push: pick(
            &b.push,
            over.map(|o| &o.push),
            "image.builder.",
            target_prefix,
        ),
    }
}
