//! Invalid configurations: each error must name the key path and say how to fix it.

mod support;

use support::Project;

/// (config, key path the error must name, words of the fix it must give)
const CASES: &[(&str, &str, &str)] = &[
    // Structure and unknown keys.
    ("image:\n  repository: x\n", "name", "add `name: my-app`"),
    (
        "name: \"bad name\"\nimage: {repository: x}\n",
        "name",
        "letters, digits",
    ),
    (
        "name: a\nacme_emial: a@b.com\nimage: {repository: x}\n",
        "",
        "did you mean `acme_email`?",
    ),
    (
        "name: a\nimage:\n  repository: x\n  tagg: v1\n",
        "image",
        "did you mean `tag`?",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets:\n  prod:\n    replica: 2\n",
        "targets.prod",
        "did you mean `replicas`?",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets:\n  prod:\n    global_pre_deploy: [x]\n",
        "targets.prod",
        "move it to the top level",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets: {}\n",
        "targets",
        "define at least one target",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets:\n  \"bad name\": {}\n",
        "targets.bad name",
        "letters, digits",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder: {}\n  build_config: {}\n",
        "image.builder",
        "keep one of them",
    ),
    // Image.
    (
        "name: a\nimage:\n  tag: v1\n",
        "image.repository",
        "add image.repository",
    ),
    (
        "name: a\nimage:\n  repository: \"My App\"\n",
        "image.repository",
        "lower-case name",
    ),
    (
        "name: a\nimage:\n  repository: \"my-app:v1\"\n",
        "image.repository",
        "put the tag in image.tag",
    ),
    (
        "name: a\nimage:\n  repository: x\n  tag: \"-bad\"\n",
        "image.tag",
        "v1.2.3",
    ),
    (
        "name: a\nimage:\n  repository: x\n  tag: [v1]\n",
        "image.tag",
        "tag takes text",
    ),
    (
        "name: a\nimage:\n  repository: x\n  source: cloud\n",
        "image.source",
        "use one of: registry, local",
    ),
    (
        "name: a\nimage:\n  repository: x\n  source: local\n  builder: {}\n",
        "image.source",
        "remove image.source",
    ),
    (
        "name: a\nimage:\n  repository: x\n  history:\n    strategy: forever\n",
        "image.history.strategy",
        "use one of: local, registry, none",
    ),
    (
        "name: a\nimage:\n  repository: x\n  history:\n    strategy: local\n",
        "image.history.count",
        "add count:",
    ),
    (
        "name: a\nimage:\n  repository: x\n  history:\n    strategy: local\n    count: 0\n",
        "image.history.count",
        "at least 1",
    ),
    (
        "name: a\nimage:\n  repository: x\n  tag: v1\n  history:\n    strategy: registry\n    count: 3\n",
        "image.history.pattern",
        "add pattern:",
    ),
    (
        "name: a\nimage:\n  repository: x\n  tag: latest\n  history:\n    strategy: registry\n    count: 3\n    pattern: \"v*\"\n",
        "image.tag",
        "immutable tag",
    ),
    (
        "name: a\nimage:\n  repository: x\n  registry:\n    password: {value: p}\n",
        "image.registry.username",
        "add username:",
    ),
    (
        "name: a\nimage:\n  repository: x\n  registry:\n    username: {value: u}\n    password: {value: p}\n    server: \"https://reg.example.com/v2\"\n",
        "image.registry.server",
        "write a domain or address",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    push: registry\n",
        "image.builder.push",
        "add image.registry",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    push: cloud\n",
        "image.builder.push",
        "use one of: registry, server",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    platform: amd64\n",
        "image.builder.platform",
        "linux/amd64",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    context: missing-dir\n",
        "image.builder.context",
        "relative to the config file",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    dockerfile: Other.Dockerfile\n",
        "image.builder.dockerfile",
        "point image.builder.dockerfile",
    ),
    (
        "name: a\nimage:\n  repository: x\n  builder:\n    args:\n      - value: x\n",
        "image.builder.args[0].name",
        "add name:",
    ),
    (
        "name: nodockerfile\n",
        "image",
        "create it, or set image.repository",
    ),
    // Scalars.
    (
        "name: a\nimage: {repository: x}\nreplicas: 0\n",
        "replicas",
        "from 1 to 100",
    ),
    (
        "name: a\nimage: {repository: x}\nreplicas: -2\n",
        "replicas",
        "from 1 to 100",
    ),
    (
        "name: a\nimage: {repository: x}\nreplicas: three\n",
        "replicas",
        "replicas takes a whole number",
    ),
    (
        "name: a\nimage: {repository: x}\nport: 70000\n",
        "port",
        "between 1 and 65535",
    ),
    (
        "name: a\nimage: {repository: x}\nport: \"http\"\n",
        "port",
        "between 1 and 65535",
    ),
    (
        "name: a\nimage: {repository: x}\nport: [80]\n",
        "port",
        "port takes a port number, e.g.",
    ),
    (
        "name: a\nimage: {repository: x}\nhealth_check_path: health\n",
        "health_check_path",
        "start it with '/'",
    ),
    (
        "name: a\nimage: {repository: x}\ndeployment_strategy: blue-green\n",
        "deployment_strategy",
        "use one of: rolling, replace",
    ),
    (
        "name: a\nimage: {repository: x}\nnetwork: \"my net\"\n",
        "network",
        "Docker network name",
    ),
    (
        "name: a\nimage: {repository: x}\nserver: \"haloy.example.com/api\"\n",
        "server",
        "write a domain or address",
    ),
    (
        "name: a\nimage: {repository: x}\nserver: \"host:0\"\n",
        "server",
        "write a domain or address",
    ),
    // Domains.
    (
        "name: a\nimage: {repository: x}\nacme_email: a@b.com\ndomains:\n  - domain: \"https://my-app.com\"\n",
        "domains[0].domain",
        "plain host name",
    ),
    (
        "name: a\nimage: {repository: x}\nacme_email: a@b.com\ndomains:\n  - domain: \"*.my-app.com\"\n",
        "domains[0].domain",
        "list each host name",
    ),
    (
        "name: a\nimage: {repository: x}\nacme_email: a@b.com\ndomains:\n  - domain: my-app.com\n    aliases: [\"bad_alias.com\"]\n",
        "domains[0].aliases[0]",
        "plain host name",
    ),
    (
        "name: a\nimage: {repository: x}\nacme_email: a@b.com\ndomains:\n  - domain: my-app.com\n  - domain: my-app.com\n",
        "domains",
        "list each host name once",
    ),
    (
        "name: a\nimage: {repository: x}\nacme_email: a@b.com\ndomains:\n  - aliases: [www.x.com]\n",
        "domains[0].domain",
        "add domain:",
    ),
    (
        "name: a\nimage: {repository: x}\nacme_email: not-an-email\ndomains: [my-app.com]\n",
        "acme_email",
        "you@example.com",
    ),
    // Env and value sources.
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: \"1BAD\"\n    value: x\n",
        "env[0].name",
        "not starting with a digit",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n",
        "env[0]",
        "set value:",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    value: x\n    from: {env: B}\n",
        "env[0]",
        "keep one",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {}\n",
        "env[0].from",
        "set from.env",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {env: B, secret: \"onepassword:x.y\"}\n",
        "env[0].from",
        "keep one",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {file: x}\n",
        "env[0].from",
        "use one of: env, secret",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {env: UNSET_VARIABLE}\n",
        "env[0].from.env",
        "add UNSET_VARIABLE=... to .env",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {secret: \"vault:x.y\"}\n",
        "env[0].from.secret",
        "supported provider is onepassword",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    from: {secret: \"onepassword:nofield\"}\n",
        "env[0].from.secret",
        "onepassword:<source>.<field>",
    ),
    (
        "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    value: x\n  - name: A\n    value: y\n",
        "env[1].name",
        "one entry per variable",
    ),
    (
        "name: a\nimage: {repository: x}\napi_token: UNSET_TOKEN_VAR\n",
        "api_token",
        "export UNSET_TOKEN_VAR=<token>",
    ),
    (
        "name: a\nimage: {repository: x}\napi_token: {}\n",
        "api_token",
        "set value:",
    ),
    (
        "name: a\nimage: {repository: x}\napi_token: [a]\n",
        "api_token",
        "environment variable name or a value source",
    ),
    // Volumes.
    (
        "name: a\nimage: {repository: x}\nvolumes:\n  - \"./data:/app/data\"\n",
        "volumes[0]",
        "use an absolute host path",
    ),
    (
        "name: a\nimage: {repository: x}\nvolumes:\n  - \"app-data:/ok\"\n  - \"../config:/app/config\"\n",
        "volumes[1]",
        "use an absolute host path",
    ),
    (
        "name: a\nimage: {repository: x}\nvolumes:\n  - \"app-data:data\"\n",
        "volumes[0]",
        "start the container path with '/'",
    ),
    (
        "name: a\nimage: {repository: x}\nvolumes:\n  - \"/data:/data:rox\"\n",
        "volumes[0]",
        "use one of ro, rw",
    ),
    (
        "name: a\nimage: {repository: x}\nvolumes:\n  - \"onlyname\"\n",
        "volumes[0]",
        "volume-name:/container/path",
    ),
    // Hooks and secret providers.
    (
        "name: a\nimage: {repository: x}\npre_deploy: [\"  \"]\n",
        "pre_deploy[0]",
        "write a shell command",
    ),
    (
        "name: a\nimage: {repository: x}\nglobal_post_deploy: [\"\"]\n",
        "global_post_deploy[0]",
        "write a shell command",
    ),
    (
        "name: a\nimage: {repository: x}\nsecret_providers:\n  onepassword:\n    db:\n      item: \"\"\n",
        "secret_providers.onepassword.db.item",
        "name the 1Password item",
    ),
    (
        "name: a\nimage: {repository: x}\nsecret_providers:\n  vault: {}\n",
        "secret_providers",
        "use one of: onepassword",
    ),
    // Errors in a target point into the target.
    (
        "name: a\nimage: {repository: x}\ntargets:\n  prod:\n    volumes: [\"./x:/x\"]\n",
        "targets.prod.volumes[0]",
        "use an absolute host path",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets:\n  prod:\n    image:\n      tag: \"bad tag\"\n",
        "targets.prod.image.tag",
        "v1.2.3",
    ),
    (
        "name: a\nimage: {repository: x}\ntargets:\n  prod:\n    replicas: 0\n",
        "targets.prod.replicas",
        "from 1 to 100",
    ),
];

#[test]
fn every_invalid_config_names_the_key_and_the_fix() {
    assert!(CASES.len() >= 40);
    let mut failures = Vec::new();
    for (yaml, path, fix) in CASES {
        let p = Project::new();
        let message = p.error_for(yaml);
        let names_path = path.is_empty() || message.contains(&format!(": {path}: "));
        if !names_path || !message.contains(fix) || !message.contains("haloy.yaml") {
            failures.push(format!(
                "config:\n{yaml}expected path {path:?} and fix {fix:?}, got:\n{message}\n"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn parse_errors_carry_line_and_column() {
    let p = Project::new();
    let message = p.error_for("name: a\nimage:\n  repository: x\n  tagg: v1\n");
    assert!(
        message.contains("haloy.yaml:4:3: image: unknown key `tagg`"),
        "{message}"
    );

    p.write(
        "haloy.json",
        "{\n  \"name\": \"a\",\n  \"replicas\": \"two\"\n}\n",
    );
    let message = p.plan("haloy.json", &[]).unwrap_err().to_string();
    assert!(message.contains("haloy.json:3:"), "{message}");
    assert!(message.contains("replicas:"), "{message}");

    p.write(
        "haloy.toml",
        "name = \"a\"\n\n[image]\nrepository = \"x\"\nsource = \"cloud\"\n",
    );
    let message = p.plan("haloy.toml", &[]).unwrap_err().to_string();
    assert!(message.contains("haloy.toml:5:"), "{message}");
    assert!(message.contains("image.source:"), "{message}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let p = Project::new();
    let message = p.error_for(
        "name: a\nimage: {repository: x}\nreplicas: 0\nport: 0\nvolumes: [\"./x:/x\"]\n",
    );
    assert!(message.contains("3 problems"), "{message}");
    for path in ["replicas", "port", "volumes[0]"] {
        assert!(
            message.contains(&format!(": {path}: ")),
            "{path} in {message}"
        );
    }
}

#[test]
fn a_base_problem_shared_by_targets_is_reported_once() {
    let p = Project::new();
    let message =
        p.error_for("name: a\nimage: {repository: x}\nport: 0\ntargets:\n  a: {}\n  b: {}\n");
    assert_eq!(message.matches(": port: ").count(), 1, "{message}");
}

#[test]
fn secret_values_never_appear_in_errors() {
    let mut p = Project::new();
    p.set("SECRET_A", "hunter2-secret");
    p.op_item("Vault", "Item", &[("password", "op-secret-value")]);
    let yaml = "name: a\nimage: {repository: x}\nreplicas: 0\napi_token: {from: {env: SECRET_A}}\nsecret_providers:\n  onepassword:\n    s: {vault: Vault, item: Item}\nenv:\n  - name: A\n    from: {secret: \"onepassword:s.password\"}\n  - name: B\n    from: {secret: \"onepassword:s.missing\"}\n";
    let message = p.error_for(yaml);
    assert!(
        message.contains("has no field \"missing\"; its fields are: password"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2-secret") && !message.contains("op-secret-value"),
        "{message}"
    );
}
