//! What each config key takes, in the config's own words and syntax, so a wrong type
//! reads "replicas takes a whole number, e.g. `replicas: 3`" instead of naming the
//! Rust type behind it.

use crate::config::format::Format;

/// The kind of value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// A whole number, with an example.
    WholeNumber(&'static str),
    /// A number that may have a fraction, with an example.
    Number(&'static str),
    /// A duration such as "30s", with an example.
    Duration(&'static str),
    Bool,
    /// Text: what it stands for and an example.
    Text(&'static str, &'static str),
    /// One of a few words.
    OneOf(&'static [&'static str]),
    /// A port number, written as a number or text.
    Port,
    /// Text, a number or true/false (env values).
    Scalar,
    /// A list of text entries: what they are and an example entry.
    TextList(&'static str, &'static str),
    /// A list of blocks: the entry's noun, its keys, and an example for a one-key entry.
    Entries(&'static str, &'static [&'static str], Option<&'static str>),
    /// A block of keys (the ones worth naming first).
    Block(&'static [&'static str]),
    /// Named blocks (targets, 1Password sources), each with these keys.
    Named(&'static str, &'static [&'static str]),
    /// `api_token`: an environment variable name or a value source.
    Token,
    /// A value source: `value`, or `from` with `env` or `secret`.
    Source,
}

use Takes::*;

const NAME_VALUE: &[&str] = &["name", "value"];
const ENV_OR_SECRET: &[&str] = &["env", "secret"];

/// Keys by their path with target names, 1Password source names and list indexes
/// taken out (see [`normalize`]).
pub(crate) const KEYS: &[(&str, Takes)] = &[
    ("", Block(&["name", "image", "server"])),
    ("name", Text("an app name", "my-app")),
    ("server", Text("a server address", "haloy.example.com")),
    ("api_token", Token),
    ("deployment_strategy", OneOf(&["rolling", "replace"])),
    (
        "domains",
        Entries("domain", &["domain"], Some("example.com")),
    ),
    (
        "domains[]",
        Entries("domain", &["domain"], Some("example.com")),
    ),
    ("domains[].domain", Text("a host name", "example.com")),
    (
        "domains[].aliases",
        TextList("host names", "www.example.com"),
    ),
    (
        "domains[].aliases[]",
        Text("a host name", "www.example.com"),
    ),
    ("acme_email", Text("an email address", "you@example.com")),
    ("replicas", WholeNumber("3")),
    ("port", Port),
    ("health_check_path", Text("a URL path", "/health")),
    ("env", Entries("env", NAME_VALUE, None)),
    ("env[]", Entries("env", NAME_VALUE, None)),
    ("env[].name", Text("a variable name", "LOG_LEVEL")),
    ("volumes", TextList("volume mounts", "app-data:/app/data")),
    ("volumes[]", Text("a volume mount", "app-data:/app/data")),
    ("pre_deploy", TextList("shell commands", "echo starting")),
    ("pre_deploy[]", Text("a shell command", "echo starting")),
    ("post_deploy", TextList("shell commands", "echo done")),
    ("post_deploy[]", Text("a shell command", "echo done")),
    (
        "global_pre_deploy",
        TextList("shell commands", "echo starting"),
    ),
    (
        "global_pre_deploy[]",
        Text("a shell command", "echo starting"),
    ),
    (
        "global_post_deploy",
        TextList("shell commands", "echo done"),
    ),
    ("global_post_deploy[]", Text("a shell command", "echo done")),
    ("network", Text("a Docker network name", "my-network")),
    (
        "health_check",
        Block(&["path", "interval", "retries", "expected_status"]),
    ),
    ("health_check.path", Text("a URL path", "/health")),
    ("health_check.interval", Duration("2s")),
    ("health_check.timeout", Duration("5s")),
    ("health_check.retries", WholeNumber("5")),
    ("health_check.deadline", Duration("60s")),
    ("health_check.start_period", Duration("10s")),
    ("health_check.expected_status", WholeNumber("200")),
    ("health_check.min_ready_seconds", WholeNumber("5")),
    ("max_surge", WholeNumber("1")),
    ("drain_timeout", Duration("30s")),
    ("stop_grace_period", Duration("10s")),
    ("resources", Block(&["memory", "cpus"])),
    (
        "resources.memory",
        Text("a memory size in Docker's units", "512m"),
    ),
    ("resources.cpus", Number("0.5")),
    ("preset", OneOf(&["database", "service"])),
    ("protected", Bool),
    ("maintenance", Block(&["page"])),
    (
        "maintenance.page",
        Text("an HTML file", "./maintenance.html"),
    ),
    ("targets", Named("target", &["server", "replicas"])),
    ("targets.*", Block(&["server", "replicas", "image"])),
    ("secret_providers", Block(&["onepassword"])),
    (
        "secret_providers.onepassword",
        Named("source", &["vault", "item"]),
    ),
    (
        "secret_providers.onepassword.*",
        Block(&["vault", "item", "account"]),
    ),
    (
        "secret_providers.onepassword.*.account",
        Text("an account", "my.1password.com"),
    ),
    (
        "secret_providers.onepassword.*.vault",
        Text("a vault name", "Production"),
    ),
    (
        "secret_providers.onepassword.*.item",
        Text("an item name", "Database"),
    ),
    ("image", Block(&["repository", "tag", "builder"])),
    (
        "image.repository",
        Text("an image repository", "ghcr.io/org/my-app"),
    ),
    ("image.tag", Text("text", "v1.2.3")),
    ("image.build", Bool),
    ("image.registry", Block(&["server", "username", "password"])),
    (
        "image.registry.server",
        Text("a registry address", "ghcr.io"),
    ),
    ("image.registry.username", Source),
    ("image.registry.password", Source),
    ("image.source", OneOf(&["registry", "local"])),
    ("image.history", Block(&["strategy", "count", "pattern"])),
    (
        "image.history.strategy",
        OneOf(&["local", "registry", "none"]),
    ),
    ("image.history.count", WholeNumber("5")),
    ("image.history.pattern", Text("a tag pattern", "v*")),
    ("image.builder", Block(&["context", "dockerfile", "push"])),
    ("image.builder.context", Text("a directory", ".")),
    (
        "image.builder.dockerfile",
        Text("a file name", "Dockerfile"),
    ),
    ("image.builder.platform", Text("a platform", "linux/amd64")),
    (
        "image.builder.args",
        Entries("build argument", NAME_VALUE, None),
    ),
    (
        "image.builder.args[]",
        Entries("build argument", NAME_VALUE, None),
    ),
    (
        "image.builder.args[].name",
        Text("a variable name", "VERSION"),
    ),
    ("image.builder.push", OneOf(&["registry", "server"])),
    // Value sources, wherever they appear.
    ("value", Scalar),
    ("from", Block(ENV_OR_SECRET)),
    (
        "from.env",
        Text("an environment variable name", "MY_VARIABLE"),
    ),
    (
        "from.secret",
        Text("a secret reference", "onepassword:source.field"),
    ),
];

/// What the key at `path` (as serde_path_to_error prints it) takes.
pub fn takes(path: &str) -> Option<Takes> {
    let path = normalize(path);
    let find = |wanted: &str| KEYS.iter().find(|(p, _)| *p == wanted).map(|(_, t)| *t);
    find(&path).or_else(|| {
        ["from.env", "from.secret", "from", "value"]
            .into_iter()
            .find(|suffix| path == *suffix || path.ends_with(&format!(".{suffix}")))
            .and_then(find)
    })
}

/// `targets.prod.image.buildConfig.args[2].name` → `image.builder.args[].name`.
pub fn normalize(path: &str) -> String {
    let mut segments: Vec<String> = path
        .split('.')
        .filter(|s| !s.is_empty() && *s != "?")
        .map(|segment| {
            let (name, index) = segment.split_once('[').unwrap_or((segment, ""));
            let name = match snake_case(name).as_str() {
                "build_config" => "builder".to_string(),
                other => other.to_string(),
            };
            if index.is_empty() {
                name
            } else {
                format!("{name}[]")
            }
        })
        .collect();
    if segments.len() >= 2 && segments[0] == "targets" {
        let rest = segments.split_off(2);
        segments = if rest.is_empty() {
            vec!["targets".into(), "*".into()]
        } else {
            rest
        };
    }
    if segments.len() >= 3 && segments[0] == "secret_providers" && segments[1] == "onepassword" {
        segments[2] = "*".into();
    }
    segments.join(".")
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The key as the user wrote it, for the sentence: `targets.prod.replicas` → `replicas`.
pub fn key_name(path: &str) -> &str {
    path.rsplit('.')
        .find(|s| !s.is_empty() && *s != "?")
        .unwrap_or("")
}

/// "replicas takes a whole number, e.g. `replicas: 3`", or for a list entry
/// "an env entry is `- name: … value: …`".
pub fn sentence(path: &str, takes: Takes, format: Format) -> String {
    let key = key_name(path);
    if let (true, Entries(noun, keys, example)) = (key.ends_with(']'), takes) {
        let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return format!(
            "{article} {noun} entry is `{}`",
            entry(keys, example, format)
        );
    }
    let key = key.split('[').next().unwrap_or(key);
    let subject = if key.is_empty() { "the file" } else { key };
    let words = words(takes, format);
    match example(key, takes, format) {
        Some(example) => format!("{subject} takes {words}, e.g. `{example}`"),
        None => format!("{subject} takes {words}"),
    }
}

/// The value of `key` written in the file's format: `tag: "1.5"`, `"tag": "1.5"`.
pub fn written(key: &str, value: &str, format: Format) -> String {
    if key.is_empty() || key.ends_with(']') {
        return match format {
            Format::Yaml => format!("- {value}"),
            Format::Json | Format::Toml => value.to_string(),
        };
    }
    match format {
        Format::Yaml => format!("{key}: {value}"),
        Format::Json => format!("\"{key}\": {value}"),
        Format::Toml => format!("{key} = {value}"),
    }
}

fn quoted(text: &str, format: Format) -> String {
    match format {
        Format::Yaml => text.to_string(),
        Format::Json | Format::Toml => format!("\"{text}\""),
    }
}

fn example(key: &str, takes: Takes, format: Format) -> Option<String> {
    let value = match takes {
        WholeNumber(n) | Number(n) => n.to_string(),
        Duration(d) => quoted(d, format),
        Bool => "true".to_string(),
        Port => "8080".to_string(),
        Text(_, example) => quoted(example, format),
        OneOf(words) => quoted(words.first()?, format),
        TextList(_, example) => format!("[\"{example}\"]"),
        Scalar | Entries(..) | Block(_) | Named(..) | Token | Source => return None,
    };
    Some(written(key, &value, format))
}

/// One list entry sketched in the file's format.
fn entry(keys: &[&str], example: Option<&str>, format: Format) -> String {
    let value = |i: usize| match (example, i) {
        (Some(example), 0) => quoted(example, format),
        _ => "…".to_string(),
    };
    let pairs = keys.iter().enumerate().map(|(i, k)| match format {
        Format::Yaml => format!("{k}: {}", value(i)),
        Format::Json => format!("\"{k}\": {}", value(i)),
        Format::Toml => format!("{k} = {}", value(i)),
    });
    let pairs: Vec<String> = pairs.collect();
    match format {
        Format::Yaml => format!("- {}", pairs.join(" ")),
        Format::Json => format!("{{{}}}", pairs.join(", ")),
        Format::Toml => format!("{{ {} }}", pairs.join(", ")),
    }
}

/// "`a` and `b`", "`a`, `b` and `c`".
fn either(words: &[String], last: &str) -> String {
    match words.split_last() {
        Some((tail, [])) => tail.clone(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
        None => String::new(),
    }
}

/// How a key is named inside a block: `server:`, `"server"`, `server`.
fn key_ref(key: &str, format: Format) -> String {
    match format {
        Format::Yaml => format!("`{key}:`"),
        Format::Json => format!("`\"{key}\"`"),
        Format::Toml => format!("`{key}`"),
    }
}

/// "a block of keys" in the file's format.
pub fn block_noun(format: Format) -> &'static str {
    match format {
        Format::Yaml => "a block of keys",
        Format::Json => "an object",
        Format::Toml => "a table",
    }
}

fn words(takes: Takes, format: Format) -> String {
    let refs = |keys: &[&str]| {
        let refs: Vec<String> = keys.iter().map(|k| key_ref(k, format)).collect();
        either(&refs, "and")
    };
    let block = match format {
        Format::Yaml => "a block of keys",
        Format::Json => "an object with keys",
        Format::Toml => "a table with keys",
    };
    match takes {
        WholeNumber(_) => "a whole number".into(),
        Number(_) => "a number".into(),
        Duration(_) => "a duration such as \"30s\", \"500ms\" or \"2m\"".into(),
        Bool => "`true` or `false`".into(),
        Text(what, _) => what.into(),
        OneOf(choices) => {
            let choices: Vec<String> = choices.iter().map(|w| format!("`{w}`")).collect();
            either(&choices, "or")
        }
        Port => "a port number".into(),
        Scalar => "text, a number or `true`/`false`".into(),
        TextList(what, _) => format!("a list of {what}"),
        Entries(_, keys, example) => {
            format!("a list of `{}` entries", entry(keys, example, format))
        }
        Block(keys) => format!("{block} such as {}", refs(keys)),
        Named(what, keys) => format!("named {what}s, each {block} such as {}", refs(keys)),
        Token => format!(
            "an environment variable name or a value source ({block} {})",
            refs(&["value", "from"]).replace(" and ", " or ")
        ),
        Source => format!(
            "a value source: {block} {} (with {})",
            refs(&["value", "from"]).replace(" and ", " or "),
            refs(ENV_OR_SECRET).replace(" and ", " or ")
        ),
    }
}

/// Words for serde's "expected …" when the key is not in the table; never a Rust
/// type name.
pub fn expected_words(expected: &str, format: Format) -> String {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "a whole number".into()
        }
        "f32" | "f64" => "a number".into(),
        "a boolean" => "`true` or `false`".into(),
        "a string" | "a borrowed string" | "a character" => "text".into(),
        "a sequence" => "a list".into(),
        other if other.starts_with("struct ") || other == "a map" => block_noun(format).into(),
        other if other.starts_with("enum ") || other.starts_with("variant ") => {
            "one of its accepted words".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_across_targets_spellings_and_indexes() {
        assert_eq!(
            normalize("targets.prod.image.buildConfig.args[2].name"),
            "image.builder.args[].name"
        );
        assert_eq!(normalize("image.?"), "image");
        assert_eq!(normalize("targets.prod"), "targets.*");
        assert_eq!(
            normalize("secretProviders.onepassword.db.item"),
            "secret_providers.onepassword.*.item"
        );
    }

    #[test]
    fn value_sources_are_found_wherever_they_are() {
        assert_eq!(takes("image.registry.password.from.env"), takes("from.env"));
        assert_eq!(takes("env[3].value"), Some(Scalar));
        assert_eq!(takes("targets.a.env[0].name"), takes("env[].name"));
    }

    #[test]
    fn sentences_are_written_in_the_files_format() {
        let replicas = takes("replicas").map(|t| sentence("replicas", t, Format::Toml));
        assert_eq!(
            replicas.as_deref(),
            Some("replicas takes a whole number, e.g. `replicas = 3`")
        );
        let env = takes("env").map(|t| sentence("env", t, Format::Yaml));
        assert_eq!(
            env.as_deref(),
            Some("env takes a list of `- name: … value: …` entries")
        );
        let domain = takes("domains[0]").map(|t| sentence("domains[0]", t, Format::Json));
        assert_eq!(
            domain.as_deref(),
            Some("a domain entry is `{\"domain\": \"example.com\"}`")
        );
    }
}
