//! Checks one target's merged configuration against every rule and resolves its value
//! sources, producing a [`TargetPlan`] or every problem found (not just the first).

mod rollout;

use std::path::Path;

use haloy_api::rules::{self, Violation};
use haloy_api::spec::{
    AppSpec, DEFAULT_PORT, DEFAULT_REPLICAS, DeploymentStrategy, DomainSpec, EnvVar, Secret,
};

use super::Needs;
use super::merge::{At, Merged};
use super::plan::TargetPlan;
use super::raw::{ApiTokenDef, EnvVarDef, PortDef, StrategyDef, ValueSourceDef};
use crate::address::ServerAddress;
use crate::env::EnvSource;
use crate::error::Issue;
use crate::secrets::{SecretRef, SecretResolver};

mod image;
mod maintenance;

use image::resolve_image;

/// What resolving value sources needs.
pub struct Context<'a> {
    pub env: &'a EnvSource,
    pub secrets: &'a mut SecretResolver,
    /// The config file's directory: build contexts are relative to it.
    pub config_dir: &'a Path,
    /// Which value sources to read; the rest are only checked.
    pub needs: Needs,
}

#[derive(Default)]
struct Issues(Vec<Issue>, Vec<Issue>);

impl Issues {
    fn warn(
        &mut self,
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.1.push(Issue::new(path, problem, fix));
    }

    fn add(&mut self, path: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(Issue::new(path, problem, fix));
    }

    fn check<T>(&mut self, path: impl Into<String>, result: Result<T, Violation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(v) => {
                self.0.push(Issue::new(path, v.problem, v.fix));
                None
            }
        }
    }
}

/// Validates and resolves one target.
pub fn plan_target(
    name: Option<&str>,
    merged: &Merged,
    target: Option<&str>,
    ctx: &mut Context<'_>,
) -> Result<TargetPlan, Vec<Issue>> {
    let mut issues = Issues::default();
    let app_name = match name {
        Some(name) => issues.check("name", rules::app_name(name)).map(|()| name),
        None => {
            issues.add(
                "name",
                "the app name is missing",
                "add `name: my-app` at the top level of the file",
            );
            None
        }
    };

    let server = merged.server.as_ref().and_then(|at| {
        let parsed = ServerAddress::parse(&at.value);
        issues
            .check(
                at.path("server"),
                parsed.map_err(|e| Violation::new(e.problem, e.fix)),
            )
            .map(|s| s.to_string())
    });
    let api_token = merged
        .api_token
        .as_ref()
        .and_then(|at| resolve_api_token(at, ctx, &mut issues));

    let (image, build) = resolve_image(merged, app_name.unwrap_or("app"), ctx, &mut issues);

    let deployment_strategy = match merged.deployment_strategy.as_ref().map(|a| a.value) {
        Some(StrategyDef::Replace) => DeploymentStrategy::Replace,
        Some(StrategyDef::Rolling) | None => DeploymentStrategy::Rolling,
    };

    let domains = resolve_domains(merged, &mut issues);
    let acme_email = merged.acme_email.as_ref().and_then(|at| {
        issues
            .check(at.path("acme_email"), rules::email(&at.value))
            .map(|()| at.value.clone())
    });
    if !domains.is_empty() && merged.acme_email.is_none() {
        let at = merged
            .domains
            .as_ref()
            .map(|d| d.prefix.as_str())
            .unwrap_or("");
        // The seed's own examples leave it out: the server's ACME email
        // (`haloyadm init --acme-email`) is the fallback, so this is a warning here
        // and haloyd refuses certificates only when it has neither.
        issues.warn(
            format!("{at}acme_email"),
            "domains are set but acme_email is not; certificates will use the server's ACME email (haloyadm init --acme-email)",
            "add `acme_email: you@example.com` so Let's Encrypt can reach you about this app's certificates",
        );
    }

    let replicas = match &merged.replicas {
        Some(at) => issues.check(at.path("replicas"), rules::replicas(at.value)),
        None => Some(DEFAULT_REPLICAS),
    };
    let port = match &merged.port {
        Some(at) => {
            let result = match &at.value {
                PortDef::Number(n) => rules::port(*n),
                PortDef::Text(t) => rules::port_str(t),
            };
            issues.check(at.path("port"), result)
        }
        None => Some(DEFAULT_PORT),
    };
    let health_check_path = rollout::health_check_path(merged, &mut issues);
    let traffic = rollout::resolve(merged, replicas, &mut issues);

    let env = resolve_env(merged, ctx, &mut issues);
    let volumes: Vec<_> = merged
        .volumes
        .iter()
        .flat_map(|at| {
            at.value
                .iter()
                .enumerate()
                .map(move |(i, v)| (at.path(&format!("volumes[{i}]")), v))
        })
        .filter_map(|(path, v)| issues.check(path, rules::volume(v)))
        .collect();
    let network = merged.network.as_ref().and_then(|at| {
        issues
            .check(at.path("network"), rules::network_name(&at.value))
            .map(|()| at.value.clone())
    });
    let pre_deploy = hooks(&merged.pre_deploy, "pre_deploy", &mut issues);
    let post_deploy = hooks(&merged.post_deploy, "post_deploy", &mut issues);
    let maintenance_page = maintenance::resolve_page(merged, ctx.config_dir, &mut issues);

    if !issues.0.is_empty() {
        return Err(issues.0);
    }
    // No issues means every `check` above returned Some.
    let (Some(name), Some(image), Some(replicas), Some(port), Some(health_check_path)) =
        (app_name, image, replicas, port, health_check_path)
    else {
        return Err(vec![Issue::new(
            "",
            "internal error: a value was rejected without a reason",
            "please report this",
        )]);
    };
    Ok(TargetPlan {
        target: target.map(str::to_string),
        server,
        api_token,
        spec: AppSpec {
            name: name.to_string(),
            image,
            deployment_strategy,
            domains,
            acme_email,
            replicas,
            port,
            health_check_path,
            env,
            volumes,
            network,
            health_check: traffic.health_check,
            rollout: traffic.rollout,
            resources: traffic.resources,
            preset: traffic.preset,
            protected: traffic.protected,
        },
        build,
        pre_deploy,
        post_deploy,
        maintenance_page,
        warnings: issues.1,
    })
}

fn hooks(list: &Option<At<Vec<String>>>, key: &str, issues: &mut Issues) -> Vec<String> {
    let Some(at) = list else { return Vec::new() };
    for (i, command) in at.value.iter().enumerate() {
        if command.trim().is_empty() {
            issues.add(
                at.path(&format!("{key}[{i}]")),
                "the command is empty",
                "write a shell command or remove the entry",
            );
        }
    }
    at.value.clone()
}

/// A value source whose shape has been checked, not yet read.
enum Source<'s> {
    Literal(&'s str),
    Env(&'s str),
    Secret(SecretRef),
}

/// Checks the shape of a value source found at `path` without reading it: one of
/// `value` and `from`, one of `from.env` and `from.secret`, a well-formed variable
/// name or secret reference.
fn check_source<'s>(
    source: &'s ValueSourceDef,
    path: &str,
    issues: &mut Issues,
) -> Option<Source<'s>> {
    match (&source.value, &source.from) {
        (Some(value), None) => Some(Source::Literal(&value.0)),
        (None, Some(from)) => match (&from.env, &from.secret) {
            (Some(var), None) => {
                issues.check(format!("{path}.from.env"), rules::env_name(var))?;
                Some(Source::Env(var))
            }
            (None, Some(reference)) => match SecretRef::parse(reference) {
                Ok(parsed) => Some(Source::Secret(parsed)),
                Err(e) => {
                    let message = e.to_string();
                    let (problem, fix) = message.split_once("; ").unwrap_or((&message, ""));
                    issues.add(format!("{path}.from.secret"), problem, fix);
                    None
                }
            },
            (Some(_), Some(_)) => {
                issues.add(
                    format!("{path}.from"),
                    "both env and secret are set",
                    "keep one: from.env names an environment variable, from.secret a secret provider reference",
                );
                None
            }
            (None, None) => {
                issues.add(
                    format!("{path}.from"),
                    "from is empty",
                    "set from.env: VARIABLE or from.secret: onepassword:<source>.<field>",
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            issues.add(
                path,
                "both value and from are set",
                "keep one: value for a literal, from for an environment variable or secret",
            );
            None
        }
        (None, None) => {
            issues.add(
                path,
                "no value is given",
                "set value: ... or from: { env: VARIABLE } or from: { secret: onepassword:<source>.<field> }",
            );
            None
        }
    }
}

/// Resolves a value source found at `path`. Returns the value and whether it is
/// sensitive (read from the environment or a secret provider).
fn resolve_source(
    source: &ValueSourceDef,
    path: &str,
    ctx: &mut Context<'_>,
    issues: &mut Issues,
) -> Option<(Secret, bool)> {
    match check_source(source, path, issues)? {
        Source::Literal(value) => Some((Secret::new(value.to_string()), false)),
        Source::Env(var) => match ctx.env.get(var) {
            Some(value) => Some((Secret::new(value), true)),
            None => {
                issues.add(
                    format!("{path}.from.env"),
                    format!(
                        "environment variable {var} is not set (looked in {})",
                        ctx.env.searched().join(", ")
                    ),
                    format!("export {var}=... or add {var}=... to .env"),
                );
                None
            }
        },
        Source::Secret(reference) => match ctx.secrets.resolve(&reference) {
            Ok(secret) => Some((secret, true)),
            Err(e) => {
                let text = e.to_string();
                let (problem, fix) = text.split_once("; ").unwrap_or((&text, ""));
                issues.add(format!("{path}.from.secret"), problem, fix);
                None
            }
        },
    }
}

fn resolve_api_token(
    at: &At<ApiTokenDef>,
    ctx: &mut Context<'_>,
    issues: &mut Issues,
) -> Option<Secret> {
    let path = at.path("api_token");
    match &at.value {
        ApiTokenDef::EnvName(var) => {
            issues.check(&path, rules::env_name(var))?;
            match ctx.env.get(var) {
                Some(token) if !token.is_empty() => Some(Secret::new(token)),
                _ => {
                    issues.add(
                        path,
                        format!("api_token names environment variable {var}, which is not set"),
                        format!("export {var}=<token> (from `haloyadm api token` on the server) or add it to .env"),
                    );
                    None
                }
            }
        }
        ApiTokenDef::Source(source) => {
            resolve_source(source, &path, ctx, issues).map(|(token, _)| token)
        }
    }
}

fn resolve_env(merged: &Merged, ctx: &mut Context<'_>, issues: &mut Issues) -> Vec<EnvVar> {
    let Some(at) = &merged.env else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, var) in at.value.iter().enumerate() {
        let path = at.path(&format!("env[{i}]"));
        let Some(name) = env_var_name(var, &path, issues) else {
            continue;
        };
        if !seen.insert(name.to_string()) {
            issues.add(
                format!("{path}.name"),
                format!("{name} is set more than once"),
                "keep one entry per variable",
            );
            continue;
        }
        if !ctx.needs.app_secrets() {
            // Checked, not read: a command that starts no container needs no env.
            check_source(&var.source(), &path, issues);
            continue;
        }
        if let Some((value, sensitive)) = resolve_source(&var.source(), &path, ctx, issues) {
            out.push(EnvVar {
                name: name.to_string(),
                value,
                sensitive,
            });
        }
    }
    out
}

fn env_var_name<'a>(var: &'a EnvVarDef, path: &str, issues: &mut Issues) -> Option<&'a str> {
    match var.name.as_deref() {
        Some(name) => issues
            .check(format!("{path}.name"), rules::env_name(name))
            .map(|()| name),
        None => {
            issues.add(
                format!("{path}.name"),
                "the entry has no name",
                "add name: VARIABLE_NAME",
            );
            None
        }
    }
}

fn resolve_domains(merged: &Merged, issues: &mut Issues) -> Vec<DomainSpec> {
    let Some(at) = &merged.domains else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, def) in at.value.iter().enumerate() {
        let path = at.path(&format!("domains[{i}]"));
        let Some(domain) = &def.domain else {
            issues.add(
                format!("{path}.domain"),
                "the entry has no domain",
                "add domain: my-app.com",
            );
            continue;
        };
        let mut ok = issues
            .check(format!("{path}.domain"), rules::domain_name(domain))
            .is_some();
        let aliases = def.aliases.clone().unwrap_or_default();
        for (j, alias) in aliases.iter().enumerate() {
            ok &= issues
                .check(format!("{path}.aliases[{j}]"), rules::domain_name(alias))
                .is_some();
        }
        if ok {
            out.push(DomainSpec {
                canonical: domain.clone(),
                aliases,
            });
        }
    }
    issues.check(at.path("domains"), rules::distinct_hosts(&out));
    out
}
