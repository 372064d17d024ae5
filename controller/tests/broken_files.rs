//! Broken config files in YAML, JSON and TOML: each error names the line of the
//! mistake, the key, and the fix, shows that line with a caret, and says nothing in
//! Rust's or serde's words.

mod support;

use support::Project;

struct Case {
    file: &'static str,
    text: &'static str,
    line: usize,
    path: &'static str,
    fix: &'static str,
}

const fn case(
    file: &'static str,
    text: &'static str,
    line: usize,
    path: &'static str,
    fix: &'static str,
) -> Case {
    Case {
        file,
        text,
        line,
        path,
        fix,
    }
}

const YAML: &str = "haloy.yaml";
const JSON: &str = "haloy.json";
const TOML: &str = "haloy.toml";

// One case per line, so the table reads as a table.
#[rustfmt::skip]
const CASES: &[Case] = &[
    // YAML syntax: missing colons on the first, a middle and the last line.
    case(YAML, "name myapp\nimage: {repository: x}\n", 1, "name", "write `name: myapp`"),
    case(YAML, "name: a\nserver artemis.haloy.test\nimage: {repository: x}\n", 2, "server", "write `server: artemis.haloy.test`"),
    case(YAML, "name: a\nimage: {repository: x}\nreplicas 3\n", 3, "replicas", "write `replicas: 3`"),
    case(YAML, "name: a\nimage:\n  repository x\n", 3, "image.repository", "write `repository: x`"),
    case(YAML, "name: a\nimage:\n  repository: x\n  tag v1\n  source: local\n", 4, "image.tag", "write `tag: v1`"),
    case(YAML, "image\n  repository: x\nname: a\n", 1, "image", "write `image:`"),
    case(YAML, "name: a\nimage:\n  repository:x\n", 3, "image.repository", "write `repository: x`"),
    // YAML indentation: one space too many, one too few, tabs.
    case(YAML, "name: myapp\nimage:\n  repository: x\n   tag: \"v1\"\n", 4, "image.tag", "indent `tag` 2 spaces to line up with `repository`"),
    case(YAML, "name: myapp\nimage:\n  repository: x\n tag: v1\n", 4, "image.tag", "indent `tag` 2 spaces to keep it with the keys under `image`"),
    case(YAML, "name: a\n image: {repository: x}\n", 2, "image", "remove the indentation of `image` to line up with `name`"),
    case(YAML, "name: a\nimage: {repository: x}\nenv:\n  - name: A\n   value: x\n", 5, "env[0].value", "indent `value` 4 spaces"),
    case(YAML, "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    value: x\n   - name: B\n", 6, "env", "indent the entry `- name: B` 2 spaces"),
    case(YAML, "name: a\nimage:\n\trepository: x\n", 3, "image.repository", "indent with spaces"),
    // YAML quotes, brackets and duplicates.
    case(YAML, "name: \"a\nimage: {repository: x}\n", 1, "name", "add the closing `\"`"),
    case(YAML, "name: a\nimage: {repository: x}\nhealth_check_path: '/health\n", 3, "health_check_path", "add the closing `'`"),
    case(YAML, "name: a\nvolumes: [\"a:/b\", \"c:/d\"\nimage: {repository: x}\n", 2, "volumes", "add `]`"),
    case(YAML, "name: a\nimage: {repository: x}\nname: b\n", 3, "name", "keep one of them"),
    // YAML: every scalar key given the wrong type.
    case(YAML, "name: [a]\nimage: {repository: x}\n", 1, "name", "name takes an app name, e.g. `name: my-app`"),
    case(YAML, "name: a\nserver: {host: x}\n", 2, "server", "server takes a server address, e.g. `server: haloy.example.com`"),
    case(YAML, "name: a\nreplicas: \"three\"\n", 2, "replicas", "replicas takes a whole number, e.g. `replicas: 3`"),
    case(YAML, "name: a\nreplicas: 1.5\n", 2, "replicas", "replicas takes a whole number"),
    case(YAML, "name: a\nport: true\n", 2, "port", "port takes a port number, e.g. `port: 8080`"),
    case(YAML, "name: a\nacme_email: [a@b.com]\n", 2, "acme_email", "acme_email takes an email address, e.g. `acme_email: you@example.com`"),
    case(YAML, "name: a\nhealth_check_path: {a: b}\n", 2, "health_check_path", "health_check_path takes a URL path, e.g. `health_check_path: /health`"),
    case(YAML, "name: a\nnetwork: [x]\n", 2, "network", "network takes a Docker network name"),
    case(YAML, "name: a\ndeployment_strategy: [rolling]\n", 2, "deployment_strategy", "`rolling` or `replace`"),
    case(YAML, "name: a\napi_token: 42\n", 2, "api_token", "an environment variable name or a value source"),
    case(YAML, "name: a\nimage:\n  repository: x\n  tag: {v: 1}\n", 4, "image.tag", "tag takes text, e.g. `tag: v1.2.3`"),
    case(YAML, "name: a\nimage:\n  repository: [x]\n", 3, "image.repository", "repository takes an image repository"),
    case(YAML, "name: a\nimage:\n  repository: x\n  build: yes please\n", 4, "image.build", "build takes `true` or `false`, e.g. `build: true`"),
    case(YAML, "name: a\nimage:\n  repository: x\n  source: [local]\n", 4, "image.source", "`registry` or `local`"),
    case(YAML, "name: a\nimage:\n  repository: x\n  history:\n    strategy: local\n    count: many\n", 6, "image.history.count", "count takes a whole number, e.g. `count: 5`"),
    case(YAML, "name: a\nimage:\n  repository: x\n  builder:\n    push: [server]\n", 5, "image.builder.push", "`registry` or `server`"),
    case(YAML, "name: a\nimage: {repository: x}\nenv:\n  - name: A\n    value: [1]\n", 5, "env[0].value", "value takes text, a number or `true`/`false`"),
    // YAML: lists given as blocks and blocks as lists.
    case(YAML, "name: a\nimage: {repository: x}\nenv:\n  A: b\n", 4, "env", "env takes a list of `- name: … value: …` entries"),
    case(YAML, "name: a\ndomains:\n  domain: example.com\n", 3, "domains", "domains takes a list of `- domain: example.com` entries"),
    case(YAML, "name: a\ndomains:\n  - [example.com]\n", 3, "domains[0]", "a domain entry is `- domain: example.com`"),
    case(YAML, "name: a\nvolumes: {data: /data}\n", 2, "volumes", "volumes takes a list of volume mounts"),
    case(YAML, "name: a\npre_deploy: {run: x}\n", 2, "pre_deploy", "pre_deploy takes a list of shell commands"),
    case(YAML, "name: a\nimage: [x]\n", 2, "image", "image takes a block of keys such as `repository:`"),
    case(YAML, "name: a\ntargets: [prod]\n", 2, "targets", "targets takes named targets"),
    case(YAML, "name: a\nimage:\n  repository: x\n  registry: [ghcr.io]\n", 4, "image.registry", "registry takes a block of keys such as `server:`"),
    // JSON.
    case(JSON, "{\"image\": {\"repository\": \"x\",}}\n", 1, "image.repository", "remove the `,`"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"volumes\": [\"a:/b\",]\n}\n", 3, "volumes[0]", "remove the `,`"),
    case(JSON, "{\n  \"name\": \"a\"\n  \"image\": {\"repository\": \"x\"}\n}\n", 2, "name", "add `,` after `\"a\"`"),
    case(JSON, "{\n  name: \"a\"\n}\n", 2, "name", "write `\"name\"`"),
    case(JSON, "{\n  \"name\" \"a\"\n}\n", 2, "name", "write `\"name\": …`"),
    case(JSON, "{\n  \"name\": \"a,\n  \"replicas\": 2\n}\n", 2, "name", "add the closing `\"`"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"image\": {\n    \"repository\": \"x\"\n", 3, "image", "add `}`"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"name\": \"b\"\n}\n", 3, "name", "keep one of them"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"replicas\": \"two\"\n}\n", 3, "replicas", "`\"replicas\": 3`"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"env\": {\"A\": \"b\"}\n}\n", 3, "env", "env takes a list of `{\"name\": …, \"value\": …}` entries"),
    case(JSON, "{\n  \"name\": \"a\",\n  \"image\": \"x\"\n}\n", 3, "image", "image takes an object with keys such as `\"repository\"`"),
    // TOML.
    case(TOML, "name = \"a\"\n[image\nrepository = \"x\"\n", 2, "image", "write `[image]`"),
    case(TOML, "name = \"a\"\nvolumes = [\"a:/b\", \"c:/d\"\n[image]\nrepository = \"x\"\n", 2, "volumes", "add `]`"),
    case(TOML, "name = \"a\"\nname = \"b\"\n", 2, "name", "keep one of them"),
    case(TOML, "name = \"a\"\n[image]\nrepository = \"x\"\n[image]\ntag = \"v1\"\n", 4, "image", "merge the two `[image]` tables"),
    case(TOML, "name \"a\"\n", 1, "name", "write `name = \"a\"`"),
    case(TOML, "name = \"a\n[image]\nrepository = \"x\"\n", 1, "name", "add the closing `\"`"),
    case(TOML, "name = \"a\"\nreplicas = \"three\"\n", 2, "replicas", "e.g. `replicas = 3`"),
    case(TOML, "name = \"a\"\nenv = { A = \"b\" }\n", 2, "env", "env takes a list of `{ name = …, value = … }` entries"),
    case(TOML, "name = \"a\"\n[image]\nrepository = \"x\"\ntag = 1.10\n", 4, "image.tag", "put the value in quotes: `tag = \"1.10\"`"),
];

fn message_for(case: &Case) -> String {
    let p = Project::new();
    p.write(case.file, case.text);
    match p.plan(case.file, &[]) {
        Ok(_) => format!("no error for:\n{}", case.text),
        Err(e) => e.to_string(),
    }
}

fn check(case: &Case) -> Result<(), String> {
    let message = message_for(case);
    let header = format!("{}:{}:", case.file, case.line);
    let mut wrong = Vec::new();
    if !message.contains(&header) {
        wrong.push(format!("the line ({header})"));
    }
    if !message.contains(&format!(": {}: ", case.path)) {
        wrong.push(format!("the key path ({})", case.path));
    }
    if !message.contains(case.fix) {
        wrong.push(format!("the fix ({})", case.fix));
    }
    let source_line = case.text.lines().nth(case.line - 1).unwrap_or("");
    if !message.contains(&format!("{} | {source_line}\n", case.line)) || !message.contains('^') {
        wrong.push("the source line with a caret".into());
    }
    let words = support::internal_names(&message);
    if !words.is_empty() || message.contains('?') {
        wrong.push(format!("no internal names or `?` (found {words:?})"));
    }
    if message.contains("at this position") {
        wrong.push("a diagnosis instead of the parser's words".into());
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}:\n{}\nwrong: {}\ngot:\n{message}\n",
        case.file,
        case.text,
        wrong.join(", ")
    ))
}

#[test]
fn every_broken_file_names_the_line_the_key_and_the_fix() {
    assert!(CASES.len() >= 30);
    let failures: Vec<String> = CASES.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_cases_cover_all_three_formats() {
    for format in [YAML, JSON, TOML] {
        let count = CASES.iter().filter(|c| c.file == format).count();
        assert!(count >= 9, "{format}: {count} cases");
    }
}

/// The five files of the issue that asked for these messages, with the whole line
/// each must print.
#[test]
fn the_first_reported_cases_read_like_their_fix() {
    let cases = [
        (
            YAML,
            "name: myapp\nserver artemis.haloy.test\nimage: {repository: x}\n",
            "haloy.yaml:2:7: server: missing `:` after `server`; write `server: artemis.haloy.test`",
        ),
        (
            YAML,
            "name myapp\nport: 8080\n",
            "haloy.yaml:1:5: name: missing `:` after `name`; write `name: myapp`",
        ),
        (
            YAML,
            "name: myapp\nimage:\n  repository: \"x\"\n   tag: \"v1\"\n",
            "haloy.yaml:4:4: image.tag: `tag` is indented 3 spaces but the keys under `image` are indented 2 spaces; indent `tag` 2 spaces to line up with `repository`",
        ),
        (
            YAML,
            "name: myapp\nreplicas: \"three\"\n",
            "haloy.yaml:2:11: replicas: \"three\" is text; replicas takes a whole number, e.g. `replicas: 3`",
        ),
        (
            JSON,
            "{\"image\": {\"repository\": \"x\",}}\n",
            "haloy.json:1:29: image.repository: trailing `,` after `repository`; remove the `,`; JSON allows no comma before `}`",
        ),
    ];
    for (file, text, expected) in cases {
        let message = message_for(&case(file, text, 1, "", ""));
        assert!(
            message.lines().any(|line| line.ends_with(expected)),
            "expected a line ending in\n{expected}\ngot:\n{message}"
        );
    }
}

#[test]
fn every_syntax_problem_of_a_yaml_file_is_reported_at_once() {
    let text = "name myapp\nimage:\n\trepository: x\nserver s\nport: 1\nport: 2\n";
    let message = message_for(&case(YAML, text, 1, "", ""));
    assert!(message.contains("has 4 problems"), "{message}");
    for (line, path) in [
        (1, "name"),
        (3, "image.repository"),
        (4, "server"),
        (6, "port"),
    ] {
        assert!(
            message.contains(&format!("haloy.yaml:{line}:"))
                && message.contains(&format!(": {path}: ")),
            "line {line}, {path} in\n{message}"
        );
    }
}
