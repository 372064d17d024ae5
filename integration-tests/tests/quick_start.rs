//! The README's quick start on a server that has nothing but Docker: a Docker Engine in
//! a network namespace of its own, with its own `/etc`, `/var/lib` and `/usr/local`
//! (overlays in a mount namespace, so the host's are untouched). The release archive
//! (packaged from the built debug binaries) is installed there with no cargo on PATH,
//! `haloyadm init` sets up the system install with the API over TLS, the workstation
//! adds the server by its pinned fingerprint, deploys an app it builds itself and
//! reaches it through the server's port 80. Invariant: `uninstall-server.sh` then
//! leaves the server's containers, images and files as they were before the install.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use integration_tests::containerised::load_haproxy_image;
use integration_tests::release::{package, repo_root};
use integration_tests::{Engine, bin, describe, eventually, free_port, http_get, run};

const OVERLAYS: [&str; 3] = ["/etc", "/var/lib", "/usr/local"];
/// No cargo here: the server has the system's programs only.
const SERVER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Every step ends within this (`timeout` kills it), so a hang fails the test.
const STEP_LIMIT: &str = "300";

/// A command on the server: its namespaces, its engine, a clean environment.
fn on_server(engine: &Engine, program: &str, args: &[&str]) -> std::process::Output {
    let mut command = engine.inside(Path::new("/usr/bin/timeout"));
    command
        .args([STEP_LIMIT, program])
        .args(args)
        .env_clear()
        .env("PATH", SERVER_PATH)
        .env("HOME", "/root")
        .env("DOCKER_HOST", engine.docker_host());
    run(command.current_dir("/"))
}

fn ok(output: std::process::Output, what: &str) -> String {
    assert!(output.status.success(), "{what}:\n{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// What the server holds: containers, images, and the files written into its own
/// directories (directories copied up by the overlays are not files).
fn server_state(engine: &Engine) -> (Vec<String>, Vec<String>, Vec<String>) {
    // Docker lists images created in the same second in either order.
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let containers = ok(
        run(engine
            .docker()
            .args(["ps", "-a", "--format", "{{.Names}} {{.Image}}"])),
        "docker ps",
    );
    let images = ok(
        run(engine.docker().args([
            "images",
            "-a",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ])),
        "docker images",
    );
    let mut files = Vec::new();
    for overlay in OVERLAYS {
        let upper = engine.overlay_upper(overlay);
        let found = ok(
            run(Command::new("find")
                .arg(&upper)
                .args(["-mindepth", "1", "-not", "-type", "d"])),
            "find",
        );
        files.extend(found.lines().map(str::to_string));
    }
    files.sort();
    (sorted(containers), sorted(images), files)
}

fn write_app(dir: &Path) {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).expect("busybox-static");
    std::fs::write(dir.join("www/health"), "ok\n").unwrap();
    std::fs::write(dir.join("www/index.html"), "quick start\n").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nLABEL dev.haloy.test=1\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

/// Removes the app image the workstation built, also when the test fails.
struct BuiltImage(String);

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn the_quick_start_works_on_a_server_with_only_docker_and_uninstalls_cleanly() {
    let engine = Engine::start_with_overlays(&OVERLAYS);
    let haproxy_image = load_haproxy_image(&engine);
    let dir = tempfile::tempdir().unwrap();
    let archive = package(&dir.path().join("dist"));
    let before = server_state(&engine);
    let cargo = on_server(&engine, "/bin/sh", &["-c", "command -v cargo"]);
    assert!(!cargo.status.success(), "cargo is on the server's PATH");

    // The server: install from the archive, then `haloyadm init` as root.
    let script = repo_root().join("deploy/install-haloyadm.sh");
    let installed = ok(
        on_server(
            &engine,
            "/bin/bash",
            &[
                &script.display().to_string(),
                &archive.display().to_string(),
            ],
        ),
        "install-haloyadm.sh",
    );
    assert!(installed.contains("/usr/local/bin/haloyadm"), "{installed}");
    let api_port = free_port();
    let _api = engine.relay(api_port);
    let http_port = free_port();
    let _http = engine.relay_to(http_port, 80);
    ok(
        on_server(
            &engine,
            "/usr/local/bin/haloyadm",
            &[
                "init",
                "--api-tls-port",
                &api_port.to_string(),
                "--haproxy-image",
                &haproxy_image,
            ],
        ),
        "haloyadm init",
    );
    ok(
        on_server(&engine, "/usr/local/bin/haloyadm", &["start"]),
        "haloyadm start",
    );
    let token_output = on_server(&engine, "/usr/local/bin/haloyadm", &["api", "token"]);
    let token = ok(token_output.clone(), "haloyadm api token")
        .trim()
        .to_string();
    let stderr = String::from_utf8_lossy(&token_output.stderr).to_string();
    let fingerprint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("api certificate sha256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in:\n{stderr}"))
        .trim()
        .to_string();

    // The workstation.
    let home = dir.path().join("workstation");
    write_app(&home.join("app"));
    let repository = format!("haloy-it-quick-start-{}", std::process::id());
    let _image = BuiltImage(format!("{repository}:v1"));
    std::fs::write(
        home.join("haloy.yaml"),
        format!(
            "name: \"quick\"\nserver: \"127.0.0.1:{api_port}\"\nimage:\n  repository: \"{repository}\"\n  tag: \"v1\"\n  builder:\n    context: \"app\"\nhealth_check_path: \"/health\"\ndomains:\n  - domain: \"quick.test\"\n"
        ),
    )
    .unwrap();
    let haloy = |args: &[&str]| {
        run(Command::new("timeout")
            .arg(STEP_LIMIT)
            .arg(bin("haloy"))
            .args(args)
            .env("HOME", &home)
            .current_dir(&home))
    };
    let server = format!("127.0.0.1:{api_port}");
    ok(
        haloy(&[
            "server",
            "add",
            &server,
            &token,
            "--fingerprint",
            &fingerprint,
        ]),
        "haloy server add",
    );
    ok(haloy(&["deploy", "--no-logs"]), "haloy deploy");
    let body = eventually(Duration::from_secs(30), "the app through port 80", || {
        http_get(http_port, "quick.test", "/")
            .ok()
            .filter(|(status, _, _)| *status == 200)
            .map(|(_, _, body)| body)
    });
    assert_eq!(body, "quick start\n");

    // Uninstall: everything the install made goes, nothing else.
    let uninstall = repo_root().join("deploy/uninstall-server.sh");
    // YAML quotes an instance that reads as a number; quoting this one keeps its
    // value, and the script must still find the apps by it.
    ok(
        on_server(
            &engine,
            "/bin/sed",
            &[
                "-i",
                "s/^instance: *\\([0-9a-f]*\\)$/instance: '\\1'/",
                "/etc/haloy/haloyd.yaml",
            ],
        ),
        "quote the instance",
    );
    ok(
        on_server(
            &engine,
            "/bin/grep",
            &["-q", "^instance: '", "/etc/haloy/haloyd.yaml"],
        ),
        "the instance is quoted",
    );
    // With Docker unreachable it stops before it removes anything, and says why.
    let installed = server_state(&engine);
    let refused = on_server(
        &engine,
        "/usr/bin/env",
        &[
            "DOCKER_HOST=unix:///run/haloy-test-no-docker.sock",
            "/bin/bash",
            &uninstall.display().to_string(),
        ],
    );
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Docker is not reachable"),
        "{}",
        describe(&refused)
    );
    assert_eq!(server_state(&engine), installed, "nothing removed");
    ok(
        on_server(&engine, "/bin/bash", &[&uninstall.display().to_string()]),
        "uninstall-server.sh",
    );
    assert_eq!(
        server_state(&engine),
        before,
        "the server after uninstall-server.sh"
    );
}
