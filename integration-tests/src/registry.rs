//! A real docker-registry on loopback.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::*;

/// A real `docker-registry` on loopback with one htpasswd user; dropping it kills the
/// process and removes its storage.
pub struct Registry {
    pub port: u16,
    pub username: String,
    pub password: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        require(
            "htpasswd",
            &["-nb", "a", "b"],
            "htpasswd (package apache2-utils)",
        );
        let dir = tempfile::tempdir().expect("registry dir");
        let (username, password) = ("deployer".to_string(), "reg-secret-91".to_string());
        let made = run(Command::new("htpasswd").args(["-Bbn", &username, &password]));
        assert!(made.status.success(), "{}", describe(&made));
        std::fs::write(dir.path().join("htpasswd"), &made.stdout).expect("htpasswd");
        let port = free_port();
        let config = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: haloy-it\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "docker-registry (package docker-registry) is required; ./scripts/test installs it",
            );
        let registry = Self {
            port,
            username,
            password,
            child,
            _dir: dir,
        };
        eventually(Duration::from_secs(20), "docker-registry to answer", || {
            http_get(port, "127.0.0.1", "/v2/")
                .ok()
                .filter(|(status, _, _)| *status == 401)
                .map(|_| ())
        });
        registry
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
