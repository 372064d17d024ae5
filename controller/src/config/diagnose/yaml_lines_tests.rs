//! The outline reads valid files without complaint and puts each finding on the line
//! a person would fix.

use super::*;

fn findings(text: &str) -> Vec<(usize, String, String)> {
    let source = Source::new(text);
    Outline::scan(&source)
        .findings
        .into_iter()
        .map(|f| (f.location.map_or(0, |l| l.0), f.path, f.problem))
        .collect()
}

#[test]
fn valid_seed_examples_have_no_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed");
    let mut read = 0;
    for entry in std::fs::read_dir(dir).expect("seed fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read");
            assert_eq!(findings(&text), vec![], "{}", path.display());
            read += 1;
        }
    }
    assert!(read >= 30, "only {read} seed files");
}

#[test]
fn valid_shapes_that_look_odd_have_no_findings() {
    let text = "name: a\nenv:\n- name: A\n  value: |\n    line one\n\n    line two\n- name: B\n  value: >-\n    folded\npre_deploy:\n  - echo this is long\n    and continues\nvolumes: [\n  \"a:/b\",\n  \"c:/d\"\n]\nimage:\n  repository: &repo x # a comment: with colon\n  tag: 'it''s'\n";
    assert_eq!(findings(text), vec![]);
}

#[test]
fn a_missing_colon_is_found_on_its_own_line() {
    let found = findings("name: a\nimage:\n  repository: x\n  tag v1\n  source: local\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 4);
    assert_eq!(found[0].1, "image.tag");
    assert!(found[0].2.contains("missing `:` after `tag`"), "{found:?}");
}

#[test]
fn a_line_one_space_short_is_placed_in_the_nearer_block_and_the_rest_reads_normally() {
    let found = findings("image:\n  repository: x\n tag: v1\n  source: local\nname: a\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1.as_str()), (3, "image.tag"));
}

#[test]
fn a_key_under_a_list_entry_out_of_line_is_named() {
    let found = findings("env:\n  - name: A\n  value: x\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1.as_str()), (3, "env[0].value"));
}

#[test]
fn every_problem_in_the_file_is_found() {
    let found = findings("name myapp\nimage:\n\trepository: x\nserver s\nport: 1\nport: 2\n");
    let lines: Vec<usize> = found.iter().map(|f| f.0).collect();
    assert_eq!(lines, vec![1, 3, 4, 6], "{found:?}");
}
