//! A test server's haloyd.yaml: reading its values and changing them with a restart.

use crate::*;

/// HAProxy's HTTPS port of `server`, from its haloyd.yaml.
pub fn https_port(server: &Server) -> u16 {
    setting(server, "https_port")
        .and_then(|v| v.parse().ok())
        .expect("https_port in haloyd.yaml")
}

/// One top-level value of `server`'s haloyd.yaml.
pub fn setting(server: &Server, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(server.config_dir().join("haloyd.yaml")).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == key).then(|| v.trim().to_string())
    })
}

/// Sets top-level values of `server`'s haloyd.yaml (replacing the keys given) and
/// restarts haloyd and HAProxy so they take effect.
pub fn reconfigure(server: &Server, values: &[(&str, String)]) {
    let path = server.config_dir().join("haloyd.yaml");
    let text = std::fs::read_to_string(&path).expect("haloyd.yaml");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| {
            let key = line.split(':').next().unwrap_or("");
            !values.iter().any(|(k, _)| *k == key)
        })
        .map(str::to_string)
        .collect();
    lines.extend(values.iter().map(|(k, v)| format!("{k}: {v}")));
    std::fs::write(&path, lines.join("\n") + "\n").expect("haloyd.yaml");
    let output = server.haloyadm(&["restart", "--local-install"]);
    assert!(
        output.status.success(),
        "haloyadm restart:\n{}\n{}",
        describe(&output),
        server.log()
    );
}
