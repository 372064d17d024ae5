//! `maintenance.page`: the HTML file `haloy maintenance on` sends is read and checked
//! by the config engine; each bad file gets an error naming the key and the fix.

mod support;

use haloy_controller::Needs;
use support::Project;

const BASE: &str = "name: web\nimage: {repository: x}\n";

#[test]
fn a_page_is_read_relative_to_the_config_and_a_target_can_have_its_own() {
    let p = Project::new();
    p.write(
        "maintenance.html",
        "<h1>Back soon</h1>\n<p>{{message}}</p>\n",
    );
    p.write("pages/prod.html", "<p>prod is resting</p>\n");
    p.write(
        "haloy.yaml",
        &format!(
            "{BASE}maintenance:\n  page: ./maintenance.html\ntargets:\n  staging: {{}}\n  prod:\n    maintenance: {{page: pages/prod.html}}\n"
        ),
    );
    // Commands that only connect (haloy maintenance) read it too.
    let plan = p
        .plan_for("haloy.yaml", &[], Needs::Connection)
        .expect("plan");
    let pages: Vec<_> = plan
        .targets
        .iter()
        .map(|t| (t.label().to_string(), t.maintenance_page.clone()))
        .collect();
    assert_eq!(
        pages,
        vec![
            (
                "staging".to_string(),
                Some("<h1>Back soon</h1>\n<p>{{message}}</p>\n".to_string())
            ),
            (
                "prod".to_string(),
                Some("<p>prod is resting</p>\n".to_string())
            ),
        ]
    );

    // validate-config's view says the page was read, by its size.
    assert_eq!(
        plan.targets[1].to_value(false)["maintenance"],
        serde_json::json!({"page_bytes": 23})
    );

    p.write("haloy.yaml", BASE);
    let plan = p.plan("haloy.yaml", &[]).expect("plan");
    assert_eq!(plan.targets[0].maintenance_page, None);
}

#[test]
fn bad_pages_are_refused_with_the_key_and_the_fix() {
    let p = Project::new();
    p.write("big.html", &"x".repeat(8 * 1024 + 1));
    p.write("blank.html", " \n");
    std::fs::write(p.app().join("latin1.html"), b"<p>caf\xe9</p>").unwrap();
    std::fs::create_dir_all(p.app().join("dir.html")).unwrap();
    let cases = [
        (
            "maintenance: {page: ./missing.html}",
            "missing.html does not exist",
            "relative to the config file's directory",
        ),
        (
            "maintenance: {page: ./big.html}",
            "8193 bytes",
            "make it smaller",
        ),
        (
            "maintenance: {page: ./blank.html}",
            "the maintenance page is empty",
            "leave the page out",
        ),
        (
            "maintenance: {page: ./latin1.html}",
            "is not UTF-8 text",
            "save it as UTF-8",
        ),
        (
            "maintenance: {page: ./dir.html}",
            "is not a file",
            "name an HTML file",
        ),
        (
            "maintenance: {page: \"\"}",
            "the page is empty",
            "remove the key",
        ),
        (
            "maintenance: {}",
            "has no page",
            "add `page: ./maintenance.html`",
        ),
    ];
    let mut failures = Vec::new();
    for (yaml, problem, fix) in cases {
        let message = p.error_for(&format!("{BASE}{yaml}\n"));
        let key = if yaml == "maintenance: {}" {
            ": maintenance: "
        } else {
            ": maintenance.page: "
        };
        if !message.contains(key) || !message.contains(problem) || !message.contains(fix) {
            failures.push(format!(
                "{yaml}: expected {key:?}, {problem:?} and {fix:?}, got:\n{message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_keys_in_the_block_are_refused() {
    let p = Project::new();
    let message = p.error_for(&format!("{BASE}maintenance:\n  pages: ./x.html\n"));
    assert!(message.contains("maintenance"), "{message}");
    assert!(message.contains("did you mean `page`?"), "{message}");
}
