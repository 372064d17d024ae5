//! Resolving a target's image: its repository, tag and registry credentials, the
//! history kept for rollbacks, and the build on the workstation when there is one.

use haloy_api::rules::{self, Violation};
use haloy_api::spec::{
    DEFAULT_HISTORY_COUNT, DEFAULT_TAG, History, ImageSource, ImageSpec, RegistryAuth, Secret,
};

use super::{Context, Issues, check_source, env_var_name, resolve_source};
use crate::address::ServerAddress;
use crate::config::Needs;
use crate::config::merge::{At, Merged};
use crate::config::plan::{BuildArg, BuildPlan, PushTo};
use crate::config::raw::{HistoryStrategyDef, ImageSourceDef, PushDef, ValueSourceDef};

pub(super) fn resolve_image(
    merged: &Merged,
    app_name: &str,
    ctx: &mut Context<'_>,
    issues: &mut Issues,
) -> (Option<ImageSpec>, Option<BuildPlan>) {
    let image = &merged.image;
    // Without an image block Haloy builds the Dockerfile next to the config and names
    // the image after the app, as the seed's quick start does.
    let repository = match &image.repository {
        Some(at) => issues
            .check(at.path("repository"), rules::image_repository(&at.value))
            .map(|()| at.value.clone()),
        None if image.present => {
            issues.add(
                "image.repository",
                "the image has no repository",
                "add image.repository, e.g. ghcr.io/your-org/my-app or my-app",
            );
            None
        }
        None => Some(app_name.to_ascii_lowercase()),
    };
    let tag = match &image.tag {
        Some(at) => issues
            .check(at.path("tag"), rules::image_tag(&at.value))
            .map(|()| at.value.clone()),
        None => Some(DEFAULT_TAG.to_string()),
    };
    let source = match image.source.as_ref().map(|a| a.value) {
        Some(ImageSourceDef::Local) => ImageSource::Local,
        _ => ImageSource::Registry,
    };
    let history = resolve_history(merged, tag.as_deref(), issues);
    // rollback-targets asks the registry for its tags, so it needs the credentials
    // when the history is kept there; other commands that deploy nothing do not.
    let read_registry = match ctx.needs {
        Needs::Everything => true,
        Needs::RegistryHistory => matches!(history, Some(History::Registry { .. })),
        Needs::Connection => false,
    };
    let registry = image.registry.as_ref().and_then(|at| {
        let base = at.path("registry");
        let server = match &at.value.server {
            Some(server) => {
                let parsed = ServerAddress::parse(server);
                issues
                    .check(
                        format!("{base}.server"),
                        parsed.map_err(|e| Violation::new(e.problem, e.fix)),
                    )
                    .map(|s| s.to_string())
            }
            None => repository.as_deref().map(rules::registry_server_of),
        };
        let mut credential = |key: &str, def: &Option<ValueSourceDef>| match def {
            Some(def) if !read_registry => {
                check_source(def, &format!("{base}.{key}"), issues);
                None
            }
            Some(def) => resolve_source(def, &format!("{base}.{key}"), ctx, issues).map(|(v, _)| v),
            None => {
                issues.add(
                    format!("{base}.{key}"),
                    format!("registry {key} is missing"),
                    format!(
                        "add {key}: {{ from: {{ env: REGISTRY_{} }} }}",
                        key.to_uppercase()
                    ),
                );
                None
            }
        };
        let username = credential("username", &at.value.username);
        let password = credential("password", &at.value.password);
        if !read_registry {
            return None;
        }
        Some(RegistryAuth {
            server: server?,
            username: username?,
            password: password?,
        })
    });

    let build_requested = match image.build.as_ref().map(|a| a.value) {
        Some(explicit) => explicit,
        None => image.builder.present || !image.present,
    };
    let build = if build_requested {
        if source == ImageSource::Local {
            let at = image
                .source
                .as_ref()
                .map(|a| a.path("source"))
                .unwrap_or_default();
            issues.add(
                at,
                "image.source is local, which means the image is already on the server, but the image is also built here",
                "remove image.source to build and ship the image, or remove the builder (and set build: false) to use the server's image",
            );
            None
        } else {
            resolve_build(merged, image.registry.is_some(), ctx, issues)
        }
    } else {
        None
    };

    let spec = match (repository, tag, history) {
        (Some(repository), Some(tag), Some(history)) => Some(ImageSpec {
            repository,
            tag,
            source,
            registry,
            history,
        }),
        _ => None,
    };
    (spec, build)
}

fn resolve_history(merged: &Merged, tag: Option<&str>, issues: &mut Issues) -> Option<History> {
    let Some(at) = &merged.image.history else {
        return Some(History::default());
    };
    let path = at.path("history");
    let count = |issues: &mut Issues, strategy: &str| match at.value.count {
        Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        Some(n) => {
            issues.add(
                format!("{path}.count"),
                format!("count is {n}"),
                "keep at least 1 version: count: 5",
            );
            None
        }
        None => {
            issues.add(
                format!("{path}.count"),
                format!("count is required for the {strategy} strategy"),
                format!("add count: {DEFAULT_HISTORY_COUNT} (how many versions to keep)"),
            );
            None
        }
    };
    match at.value.strategy.unwrap_or(HistoryStrategyDef::Local) {
        HistoryStrategyDef::None => Some(History::None),
        HistoryStrategyDef::Local => count(issues, "local").map(|count| History::Local { count }),
        HistoryStrategyDef::Registry => {
            let count = count(issues, "registry");
            let pattern = match &at.value.pattern {
                Some(p) if !p.trim().is_empty() => Some(p.clone()),
                _ => {
                    issues.add(
                        format!("{path}.pattern"),
                        "pattern is required for the registry strategy",
                        "add pattern: \"v*\" to match the tags rollbacks may use",
                    );
                    None
                }
            };
            if let (Some(tag), Some(tag_at)) = (tag, &merged.image.tag) {
                issues.check(tag_at.path("tag"), rules::immutable_tag(tag));
            } else if merged.image.tag.is_none() {
                issues.check("image.tag", rules::immutable_tag(DEFAULT_TAG));
            }
            Some(History::Registry {
                count: count?,
                pattern: pattern?,
            })
        }
    }
}

fn resolve_build(
    merged: &Merged,
    has_registry: bool,
    ctx: &mut Context<'_>,
    issues: &mut Issues,
) -> Option<BuildPlan> {
    let builder = &merged.image.builder;
    let relative = |at: &Option<At<String>>, default: &str| {
        at.as_ref().map_or(default.to_string(), |a| a.value.clone())
    };
    // `components()` drops `.` segments, so "./app/." prints as "app".
    let clean = |p: std::path::PathBuf| p.components().collect::<std::path::PathBuf>();
    let context = clean(ctx.config_dir.join(relative(&builder.context, ".")));
    let context_path = builder
        .context
        .as_ref()
        .map_or("image.builder.context".into(), |a| a.path("context"));
    let mut ok = true;
    if !context.is_dir() {
        issues.add(
            context_path,
            format!("build context {} is not a directory", context.display()),
            "set image.builder.context relative to the config file's directory",
        );
        ok = false;
    }
    let dockerfile = clean(context.join(relative(&builder.dockerfile, "Dockerfile")));
    if ok && !dockerfile.is_file() {
        let (path, fix) = match (&builder.dockerfile, merged.image.present) {
            (Some(at), _) => (
                at.path("dockerfile"),
                "create it or point image.builder.dockerfile at your Dockerfile (relative to the context)",
            ),
            (None, true) => (
                "image.builder.dockerfile".to_string(),
                "create a Dockerfile in the build context or set image.builder.dockerfile",
            ),
            (None, false) => (
                "image".to_string(),
                "without an image block Haloy builds the Dockerfile next to the config: create it, or set image.repository to deploy an existing image",
            ),
        };
        issues.add(
            path,
            format!("{} does not exist", dockerfile.display()),
            fix,
        );
        ok = false;
    }
    let platform = relative(&builder.platform, "linux/amd64");
    if let Some(at) = &builder.platform {
        let parts: Vec<&str> = platform.split('/').collect();
        let well_formed = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if !well_formed {
            issues.add(
                at.path("platform"),
                format!("{platform:?} is not a platform"),
                "write os/arch[/variant], e.g. linux/amd64 or linux/arm64",
            );
            ok = false;
        }
    }
    let push = match builder.push.as_ref().map(|a| a.value) {
        Some(PushDef::Server) => PushTo::Server,
        Some(PushDef::Registry) => {
            if !has_registry {
                let at = builder
                    .push
                    .as_ref()
                    .map(|a| a.path("push"))
                    .unwrap_or_default();
                issues.add(
                    at,
                    "push is registry but the image has no registry credentials",
                    "add image.registry with username and password, or use push: server",
                );
                ok = false;
            }
            PushTo::Registry
        }
        None if has_registry => PushTo::Registry,
        None => PushTo::Server,
    };
    let mut args = Vec::new();
    if let Some(at) = &builder.args {
        for (i, arg) in at.value.iter().enumerate() {
            let path = at.path(&format!("args[{i}]"));
            let Some(name) = env_var_name(arg, &path, issues) else {
                ok = false;
                continue;
            };
            if !ctx.needs.app_secrets() {
                // Checked, not read: only a deploy builds.
                if arg.value.is_some() || arg.from.is_some() {
                    ok &= check_source(&arg.source(), &path, issues).is_some();
                }
                continue;
            }
            if arg.value.is_none() && arg.from.is_none() {
                // Pass-through: like `docker build --build-arg NAME`.
                args.push(BuildArg {
                    name: name.to_string(),
                    value: ctx.env.get(name).map(Secret::new),
                    sensitive: true,
                });
                continue;
            }
            match resolve_source(&arg.source(), &path, ctx, issues) {
                Some((value, sensitive)) => args.push(BuildArg {
                    name: name.to_string(),
                    value: Some(value),
                    sensitive,
                }),
                None => ok = false,
            }
        }
    }
    ok.then_some(BuildPlan {
        context,
        dockerfile,
        platform,
        args,
        push,
    })
}
