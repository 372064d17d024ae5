//! Push to a registry: the workstation builds and pushes to a real docker-registry with
//! htpasswd auth; haloyd pulls with the same credentials. Wrong credentials fail with
//! a message naming the registry, and the password is never printed.

use integration_tests::{Registry, Server, describe};

fn app(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).expect("busybox-static");
    std::fs::write(dir.join("www/health"), "ok\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "from the registry").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nLABEL dev.haloy.test=1\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

#[test]
fn build_push_to_registry_and_the_server_pulls() {
    let registry = Registry::start();
    let mut server = Server::start();
    app(&server.home.path().join("app"));
    let repository = format!("{}/haloy-it-reg", registry.server());
    let yaml = format!(
        "name: \"reg\"\nimage:\n  repository: \"{repository}\"\n  tag: \"v1\"\n  registry:\n    username: {{ from: {{ env: REG_USER }} }}\n    password: {{ from: {{ env: REG_PASS }} }}\n  builder: {{ context: \"app\" }}\nhealth_check_path: \"/health\"\nnetwork: \"{}\"\ndomains: [{{ domain: \"reg.test\" }}]\nacme_email: \"ops@example.com\"\n",
        server.network
    );
    let path = server.app_config("reg", &yaml).display().to_string();
    server.set_env("REG_USER", &registry.username);
    server.set_env("REG_PASS", &registry.password);
    let output = server.haloy(&["deploy", "-c", &path]);
    assert!(
        output.status.success(),
        "{}\n{}",
        describe(&output),
        server.log()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!(
            "[push] pushing {repository}:v1 to {}",
            registry.server()
        )),
        "{text}"
    );
    assert!(text.contains("pulling"), "the server pulled: {text}");
    assert_eq!(server.get("reg.test", "/").2, "from the registry");
    assert!(!text.contains(&registry.password) && !server.log().contains(&registry.password));

    server.set_env("REG_PASS", "wrong-password");
    let output = server.haloy(&["deploy", "-c", &path]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&registry.server()) && err.contains("image.registry"),
        "{}",
        describe(&output)
    );
    assert!(!err.contains("wrong-password"));
    assert_eq!(
        server.get("reg.test", "/").2,
        "from the registry",
        "the running version is untouched"
    );
    // The server's containers use the image until it is gone. Every name of the
    // image goes: the deploys also tagged it with their deployment ids.
    drop(server);
    let ids = std::process::Command::new("docker")
        .args(["images", "-q", "--no-trunc", &repository])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.dedup();
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f"])
        .args(ids)
        .output();
}
