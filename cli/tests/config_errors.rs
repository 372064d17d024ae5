//! `haloy validate-config` on a broken file: each problem is printed as
//! `file:line:col: key: what is wrong; how to fix it` with the source line and a caret
//! under the column, and the command fails.

mod support;

use support::Sandbox;

#[test]
fn a_missing_colon_is_shown_on_its_line_with_a_caret() {
    let s = Sandbox::new();
    s.write(
        "haloy.yaml",
        "name: myapp\nserver artemis.haloy.test\nimage: {repository: x}\n",
    );
    let err = s.fails("haloy", &["validate-config"]);
    let file = s.work().join("haloy.yaml");
    let expected = format!(
        "{}:2:7: server: missing `:` after `server`; write `server: artemis.haloy.test`\n    2 | server artemis.haloy.test\n      |       ^\n",
        file.display()
    );
    assert!(err.contains(&expected), "expected\n{expected}\nin\n{err}");
    assert!(err.contains("has 1 problem"), "{err}");
}

#[test]
fn a_wrong_type_in_toml_says_what_the_key_takes_in_toml() {
    let s = Sandbox::new();
    s.write(
        "haloy.toml",
        "name = \"myapp\"\nreplicas = \"three\"\n\n[image]\nrepository = \"x\"\n",
    );
    let err = s.fails("haloy", &["validate-config"]);
    assert!(
        err.contains("haloy.toml:2:12: replicas: \"three\" is text; replicas takes a whole number, e.g. `replicas = 3`\n    2 | replicas = \"three\"\n      |            ^"),
        "{err}"
    );
}
