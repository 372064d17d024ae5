//! The starter `haloy.yaml` that `haloy init` writes: the app named after its
//! directory, a build of its Dockerfile when there is one, the schema line editors
//! read, and the usual keys commented out with their defaults.

use haloy_api::spec::{DEFAULT_HEALTH_CHECK_PATH, DEFAULT_PORT, DEFAULT_REPLICAS};

use super::schema::SCHEMA_URL;

/// The placeholders a user replaces before the first deploy; each fails
/// `haloy validate-config` with the key's name until it is set.
pub const PLACEHOLDERS: &[&str] = &["<your-server>", "<your-domain>", "<your-email>"];

/// An app name from a directory name: lowercase letters, digits, '-' and '_', at
/// most 63 characters, starting with a letter or digit; `my-app` when nothing is left.
pub fn app_name_from(dir_name: &str) -> String {
    let mapped: String = dir_name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['-', '_']);
    let name: String = trimmed.chars().take(63).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "my-app".to_string()
    } else {
        name
    }
}

/// The starter file for app `name`; `dockerfile` says whether the directory has one.
pub fn render(name: &str, dockerfile: bool) -> String {
    let image = if dockerfile {
        format!(
            r#"# Built from the Dockerfile here and uploaded to the server with each deploy.
image:
  repository: "{name}"
  builder:
    context: "."
    dockerfile: "Dockerfile"
    # platform: "linux/amd64"
    # push: "server"          # or "registry", with image.registry credentials
"#
        )
    } else {
        r#"# No Dockerfile here: deploy an image from a registry.
image:
  repository: "ghcr.io/your-org/your-app"
  tag: "latest"
  # registry:
  #   username: { from: { env: REGISTRY_USERNAME } }
  #   password: { from: { env: REGISTRY_PASSWORD } }
"#
        .to_string()
    };
    format!(
        r#"# yaml-language-server: $schema={SCHEMA_URL}
# Haloy configuration. Replace the <...> placeholders, then check it with
# `haloy validate-config`; `haloy schema` prints every key.

name: "{name}"

# The haloyd server (`haloy server add <server> <token>` stores its API token).
server: "<your-server>"
# api_token: {{ from: {{ env: HALOY_API_TOKEN }} }}

{image}
domains:
  - domain: "<your-domain>"
    # aliases: ["www.<your-domain>"]
acme_email: "<your-email>"

# Defaults, shown for reference:
# replicas: {DEFAULT_REPLICAS}
# port: {DEFAULT_PORT}
# health_check_path: "{DEFAULT_HEALTH_CHECK_PATH}"
# deployment_strategy: "rolling"

# env:
#   - name: LOG_LEVEL
#     value: "info"
#   - name: DATABASE_URL
#     from: {{ env: DATABASE_URL }}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_directory() {
        assert_eq!(app_name_from("My Shop"), "my-shop");
        assert_eq!(app_name_from("shop_api"), "shop_api");
        assert_eq!(app_name_from("..."), "my-app");
        assert_eq!(app_name_from("-x-"), "x");
        assert_eq!(app_name_from(&"a".repeat(80)).len(), 63);
        for dir in ["My Shop", "...", "Ünïcode app"] {
            haloy_api::rules::app_name(&app_name_from(dir)).expect(dir);
        }
    }

    #[test]
    fn the_starter_has_a_builder_only_with_a_dockerfile() {
        let with = render("shop", true);
        assert!(with.contains("builder:") && with.contains("repository: \"shop\""));
        let without = render("shop", false);
        assert!(!without.contains("builder:"), "{without}");
        for text in [with, without] {
            assert!(text.starts_with("# yaml-language-server: $schema=https://"));
            for placeholder in PLACEHOLDERS {
                assert!(text.contains(placeholder), "{placeholder}");
            }
        }
    }
}
