//! Built on the workstation, shipped to every server: `haloy deploy --all` builds the
//! image once and uploads it to three servers at once, each on a Docker Engine of its
//! own (another machine, as far as the upload can tell), while a fourth target whose
//! server is down fails alone. A redeploy after a one-file change moves about one
//! layer to each.

use integration_tests::{Server, describe, free_port};

fn write_app(dir: &std::path::Path, body: &str) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).expect("busybox-static");
    std::fs::write(dir.join("www/health"), "ok\n").unwrap();
    std::fs::write(dir.join("www/index.html"), body).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nLABEL dev.haloy.test=1\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

fn config(tag: &str, servers: &[Server], down_port: u16) -> String {
    let mut yaml = format!(
        "name: \"built\"\nimage:\n  repository: \"haloy-it-built\"\n  tag: \"{tag}\"\n  builder:\n    context: \"app\"\nreplicas: 1\nhealth_check_path: \"/health\"\ndomains: [{{ domain: \"built.test\" }}]\nacme_email: \"ops@example.com\"\ntargets:\n"
    );
    for (name, server) in ["a", "b", "c"].iter().zip(servers) {
        yaml.push_str(&format!(
            "  {name}:\n    server: \"{}\"\n    api_token: {{ value: \"{}\" }}\n    network: \"{}\"\n",
            server.api(),
            server.token(),
            server.network
        ));
    }
    yaml.push_str(&format!(
        "  down:\n    server: \"127.0.0.1:{down_port}\"\n    api_token: {{ value: \"x\" }}\n"
    ));
    yaml
}

fn results(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn build_once_upload_to_three_servers_and_redeploy_one_layer() {
    let servers = Server::start_isolated(3);
    let home = servers[0].home.path().to_path_buf();
    let down = free_port();
    write_app(&home.join("app"), "built v1");
    let path = servers[0].app_config("built", &config("v1", &servers, down));
    let path = path.display().to_string();

    let output = servers[0].haloy(&["deploy", "--all", "--json", "-c", &path]);
    assert!(
        !output.status.success(),
        "the dead target fails the run:\n{}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("[build] building haloy-it-built:v1").count(),
        1,
        "built once:\n{stderr}"
    );
    let first = results(&output.stdout);
    assert_eq!(first.len(), 4);
    let image_size = image_size("haloy-it-built:v1");
    for r in &first {
        let ok = r["result"] == "succeeded";
        assert_eq!(ok, r["target"] != "down", "{r}\n{}", describe(&output));
        if ok {
            // Every layer travels to a server that has none: the archive is the image
            // plus tar headers and metadata.
            let sent = r["uploaded_bytes"].as_u64().unwrap();
            assert!(
                sent >= image_size && sent < image_size + 100_000,
                "{sent} bytes sent for an image of {image_size}: {r}"
            );
        } else {
            assert!(
                r["message"].as_str().unwrap().contains(&down.to_string()),
                "the failure names the unreachable server: {r}"
            );
        }
    }
    for server in &servers {
        assert_eq!(server.get("built.test", "/").2, "built v1");
        let out = server
            .docker()
            .args(["image", "inspect", "haloy-it-built:v1"])
            .output()
            .expect("docker");
        assert!(
            out.status.success(),
            "the image is on the server's own Docker"
        );
    }

    // One file changes: each server receives about that one layer.
    write_app(&home.join("app"), "built v2, one line changed");
    let path = servers[0].app_config("built", &config("v2", &servers, down));
    let output = servers[0].haloy(&[
        "deploy",
        "-t",
        "a,b,c",
        "--json",
        "-c",
        &path.display().to_string(),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let results = results(&output.stdout);
    assert_eq!(results.len(), 3);
    for r in results {
        let sent = r["uploaded_bytes"].as_u64().unwrap();
        assert!(
            sent > 0 && sent < 100_000,
            "only the changed layer travels ({sent} bytes of an image of {image_size}): {r}"
        );
        let target = r["target"].as_str().unwrap();
        assert!(
            stderr.contains(&format!("[{target}] uploading 1 of 2 layers")),
            "{stderr}"
        );
    }
    for server in &servers {
        assert_eq!(
            server.get("built.test", "/").2,
            "built v2, one line changed"
        );
    }
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", "haloy-it-built:v1", "haloy-it-built:v2"])
        .output();
}

/// The image's size as this machine's Docker reports it.
fn image_size(reference: &str) -> u64 {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", reference])
        .output()
        .expect("docker");
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn without_force_a_server_sharing_this_docker_skips_the_upload() {
    let servers = Server::start_many(1);
    let home = servers[0].home.path().to_path_buf();
    write_app(&home.join("app"), "local");
    let yaml = format!(
        "name: \"built\"\nimage:\n  repository: \"haloy-it-built\"\n  tag: \"local\"\n  builder: {{ context: \"app\" }}\nhealth_check_path: \"/health\"\nnetwork: \"{}\"\ndomains: [{{ domain: \"built.test\" }}]\nacme_email: \"ops@example.com\"\n",
        servers[0].network
    );
    let path = servers[0].app_config("local", &yaml);
    let out = servers[0].deploy(&path);
    assert!(
        out.contains("the server shares this machine's Docker: nothing to upload"),
        "{out}"
    );
    assert_eq!(servers[0].get("built.test", "/").2, "local");
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", "haloy-it-built:local"])
        .output();
}
