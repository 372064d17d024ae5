//! Unit tests for the shared spec rules.

use super::*;

#[test]
fn app_names() {
    assert!(app_name("my-app").is_ok());
    assert!(app_name("app_2").is_ok());
    for bad in ["", "-app", "my app", "a/b", "app.v2", &"x".repeat(64)] {
        let err = app_name(bad).unwrap_err();
        assert!(err.fix.contains("letters, digits"), "{bad}: {err}");
    }
}

#[test]
fn domains() {
    for good in ["my-app.com", "www.my-app.com", "localhost", "a.b.c.example"] {
        assert!(domain_name(good).is_ok(), "{good}");
    }
    assert!(
        domain_name("https://my-app.com")
            .unwrap_err()
            .problem
            .contains("not a bare domain")
    );
    assert!(
        domain_name("*.my-app.com")
            .unwrap_err()
            .problem
            .contains("wildcard")
    );
    assert!(
        domain_name("My-App.com")
            .unwrap_err()
            .fix
            .contains("my-app.com")
    );
    assert!(domain_name("-bad.com").is_err());
    assert!(domain_name("bad..com").is_err());
    assert!(domain_name("under_score.com").is_err());
}

#[test]
fn ports_and_replicas() {
    assert_eq!(port(8080), Ok(8080));
    assert_eq!(port_str(" 3000 "), Ok(3000));
    assert!(port(0).is_err());
    assert!(port(70000).is_err());
    assert!(
        port_str("http")
            .unwrap_err()
            .problem
            .contains("not a number")
    );
    assert_eq!(replicas(3), Ok(3));
    assert!(replicas(0).is_err());
    assert!(replicas(-1).is_err());
}

#[test]
fn one_rule_for_health_check_paths() {
    for good in ["/", "/health", "/healthz?full=1&x=%20", "/a/b;v=1/@me"] {
        assert_eq!(health_check_path(good), Ok(()), "{good}");
    }
    for bad in [
        "health",
        "/h#frag",
        "/h x",
        "/h\"q",
        "/h'q",
        "/h\\x",
        "/h$HOME",
        "/h\nserver x 1.2.3.4:80",
        "/h\u{7}",
    ] {
        assert!(health_check_path(bad).is_err(), "{bad:?}");
    }
    assert!(health_check_path(&format!("/{}", "a".repeat(1024))).is_err());
}

#[test]
fn mount_propagation_is_refused() {
    for mode in [
        "shared", "rshared", "slave", "rslave", "private", "rprivate",
    ] {
        let refused = volume(&format!("/srv/data:/data:ro,{mode}")).unwrap_err();
        assert!(refused.problem.contains("mount propagation"), "{refused}");
        assert!(refused.fix.contains("remove it"), "{refused}");
    }
}

#[test]
fn volumes() {
    let named = volume("app-data:/app/data").unwrap();
    assert_eq!(named.source, VolumeSource::Named("app-data".into()));
    assert_eq!(named.to_string(), "app-data:/app/data");
    let bind = volume("/etc/ssl/private:/app/ssl:ro").unwrap();
    assert_eq!(bind.source, VolumeSource::Bind("/etc/ssl/private".into()));
    assert_eq!(bind.options, vec!["ro"]);
    assert_eq!(bind.to_string(), "/etc/ssl/private:/app/ssl:ro");

    let rel = volume("./data:/app/data").unwrap_err();
    assert!(rel.problem.contains("relative host path"));
    assert!(rel.fix.contains("absolute host path"));
    assert!(
        volume("../config:/app/config")
            .unwrap_err()
            .problem
            .contains("relative")
    );
    assert!(
        volume("data/sub:/x")
            .unwrap_err()
            .problem
            .contains("relative")
    );
    assert!(volume("/a/../b:/x").unwrap_err().problem.contains(".."));
    assert!(
        volume("data:relative")
            .unwrap_err()
            .problem
            .contains("not absolute")
    );
    assert!(
        volume("data:/x:bogus")
            .unwrap_err()
            .problem
            .contains("bogus")
    );
    assert!(
        volume("justaname")
            .unwrap_err()
            .problem
            .contains("source:target")
    );
}

#[test]
fn repositories_and_tags() {
    for good in [
        "my-app",
        "org/app",
        "ghcr.io/org/app",
        "localhost:5000/app",
        "127.0.0.1:5000/a/b",
    ] {
        assert!(image_repository(good).is_ok(), "{good}");
    }
    assert!(
        image_repository("my-app:latest")
            .unwrap_err()
            .fix
            .contains("image.tag")
    );
    assert!(image_repository("My-App").is_err());
    assert!(image_repository("app@sha256:abc").is_err());
    assert!(image_tag("v1.2.3").is_ok());
    assert!(image_tag("-bad").is_err());
    assert!(immutable_tag("latest").is_err());
    assert!(immutable_tag("main").is_err());
    assert!(immutable_tag("v1.2.3").is_ok());
}

#[test]
fn registry_detection_follows_docker() {
    assert_eq!(registry_server_of("ghcr.io/your-org/app"), "ghcr.io");
    assert_eq!(
        registry_server_of("myregistry.example.com/my-app"),
        "myregistry.example.com"
    );
    assert_eq!(registry_server_of("your-username/app"), "index.docker.io");
    assert_eq!(registry_server_of("my-app"), "index.docker.io");
    assert_eq!(registry_server_of("localhost:5000/app"), "localhost:5000");
}

#[test]
fn emails_and_env_names() {
    assert!(email("you@email.com").is_ok());
    assert!(email("you").is_err());
    assert!(email("you@localhost").is_err());
    assert!(env_name("NODE_ENV").is_ok());
    assert!(env_name("_X1").is_ok());
    assert!(env_name("1X").is_err());
    assert!(env_name("A-B").is_err());
}

#[test]
fn a_problem_never_quotes_a_megabyte_back() {
    let long = "é".repeat(1_000_000);
    let refused = app_name(&long).unwrap_err();
    assert!(
        refused.problem.len() < 300,
        "{} bytes",
        refused.problem.len()
    );
    assert!(refused.problem.ends_with("more characters)"), "{refused}");
    assert!(env_value(&"x".repeat(MAX_ENV_VALUE + 1)).is_err());
    assert!(env_value("line one\nline two").is_ok());
    assert!(env_value("nul\0").is_err());
    assert!(registry_server("localhost:5000").is_ok());
    assert!(registry_server("evil.test/path").is_err());
    assert!(credential("pa\r\nss").is_err());
    assert!(tag_pattern(&"*".repeat(MAX_TAG_PATTERN + 1)).is_err());
    assert!(tag_pattern("v*").is_ok());
    assert!(item_count(MAX_ITEMS + 1, "volumes").is_err());
}
