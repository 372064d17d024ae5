//! Support for servers whose haloyd and HAProxy run as Docker containers: HAProxy's
//! image (built once per test process with `scripts/haproxy-image`, then loaded into
//! each server's own engine), and the containers' pids and logs.

use std::process::Command;
use std::sync::OnceLock;

use crate::*;

/// The tag HAProxy's image has on every test engine.
pub const HAPROXY_IMAGE: &str = "haloy-it-haproxy:test";

/// `docker save` of the image `scripts/haproxy-image` built, made once per test
/// process; the image leaves this machine's engine as soon as it is saved.
fn haproxy_image_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        require(
            "haproxy",
            &["-v"],
            "HAProxy (scripts/haproxy-image copies its binary)",
        );
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/haproxy-image");
        let tag = format!("haloy-it-haproxy:build-{}", std::process::id());
        let output = run(Command::new(&script).arg(&tag));
        assert!(
            output.status.success(),
            "scripts/haproxy-image:\n{}",
            describe(&output)
        );
        let printed = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            printed.lines().last(),
            Some(tag.as_str()),
            "scripts/haproxy-image prints the image's reference last:\n{printed}"
        );
        let retagged = run(Command::new("docker").args(["tag", &tag, HAPROXY_IMAGE]));
        let saved = run(Command::new("docker").args(["save", HAPROXY_IMAGE]));
        let _ = run(Command::new("docker").args(["rmi", &tag, HAPROXY_IMAGE]));
        assert!(
            retagged.status.success(),
            "docker tag: {}",
            describe(&retagged)
        );
        assert!(saved.status.success(), "docker save: {}", describe(&saved));
        saved.stdout
    })
}

/// Loads HAProxy's image into `engine`; returns its reference there.
pub fn load_haproxy_image(engine: &Engine) -> String {
    engine.load_archive(haproxy_image_archive());
    HAPROXY_IMAGE.to_string()
}

/// The id of the install's running container in `role` ("haloyd", "haproxy").
pub fn container_ids(server: &Server, role: &str) -> Vec<String> {
    let output = run(server.docker().args([
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=dev.haloy.role={role}"),
        "--filter",
        &format!("label=dev.haloy.server={}", server.instance),
    ]));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `docker inspect -f <format>` of a container.
pub fn inspect(server: &Server, id: &str, format: &str) -> String {
    let output = run(server.docker().args(["inspect", "-f", format, id]));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The main process of the running container in `role`, as this machine sees it.
pub fn container_pid(server: &Server, role: &str) -> u32 {
    let ids = container_ids(server, role);
    assert_eq!(ids.len(), 1, "one running {role} container: {ids:?}");
    inspect(server, &ids[0], "{{.State.Pid}}")
        .parse()
        .expect("a pid")
}

/// The logs of every container of the install in `role`, running or not.
pub fn container_logs(server: &Server, role: &str) -> String {
    let output = run(server.docker().args([
        "ps",
        "-aq",
        "--filter",
        &format!("label=dev.haloy.role={role}"),
        "--filter",
        &format!("label=dev.haloy.server={}", server.instance),
    ]));
    let mut text = String::new();
    for id in String::from_utf8_lossy(&output.stdout).lines() {
        let logs = run(server.docker().args(["logs", "--tail", "200", id]));
        text.push_str(&format!(
            "--- container {id}\n{}{}",
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        ));
    }
    text
}

impl Server {
    /// A server as `haloyadm init` sets one up for users: haloyd and HAProxy as
    /// Docker containers (HAProxy's image from `scripts/haproxy-image`, haloyd's
    /// built by haloyadm from the built binary), on a Docker Engine of its own so
    /// that the containers' host network is the engine's namespace and a reboot of
    /// the engine is possible. Its HTTP and API ports are relayed to this machine's
    /// loopback.
    pub fn start_containerised() -> Self {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::cleanup::remove_debris();
        let engine = Engine::start();
        let image = load_haproxy_image(&engine);
        let server = Self::start_with(Some(serial), Some(engine), true);
        assert!(
            setting(&server, "haproxy_image").as_deref() == Some(image.as_str()),
            "haloyd.yaml names the built HAProxy image {image}"
        );
        server
    }
}
