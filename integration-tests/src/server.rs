//! A local-install haloyd and HAProxy per test and its HAProxy admin socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::MutexGuard;
use std::time::Duration;

use crate::cleanup::*;
use crate::*;

/// A one-replica app spec for calling haloyd through the client library: image
/// `repository:tag` from the registry source (or an upload), `/health` checks,
/// served at `<name>.test` on `network`.
pub fn app_spec(
    name: &str,
    repository: &str,
    tag: &str,
    network: &str,
) -> haloy_api::spec::AppSpec {
    use haloy_api::spec::{AppSpec, DomainSpec, ImageSpec};
    AppSpec {
        domains: vec![DomainSpec {
            canonical: format!("{name}.test"),
            aliases: vec![],
        }],
        health_check_path: "/health".into(),
        network: Some(network.to_string()),
        ..AppSpec::new(name, ImageSpec::registry(repository, tag))
    }
}

/// A local-install haloyd with HAProxy, owned by one test, removed on drop.
pub struct Server {
    pub home: tempfile::TempDir,
    pub http_port: u16,
    pub api_port: u16,
    /// Where haloyd serves Prometheus metrics on loopback (`metrics_address`).
    pub metrics_port: u16,
    pub instance: String,
    pub network: String,
    /// Extra environment for `haloy` runs (value sources read it).
    env: Vec<(String, String)>,
    /// Forwarding the API and HTTP ports into the engine's namespace; dropped before it.
    _relays: Vec<engine::Relay>,
    /// The server's own Docker, when it is not this machine's (see [`Server::start_isolated`]).
    engine: Option<Engine>,
    /// Held by the first server of a test (see [`Server::start_many`]).
    _serial: Option<MutexGuard<'static, ()>>,
    /// haloyd and HAProxy run as containers (see [`Server::start_containerised`]).
    containerised: bool,
}

impl Server {
    /// Initializes and starts a server on free loopback ports.
    pub fn start() -> Self {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::start_with(Some(serial), None, false)
    }

    /// Several servers on this machine for one test (separate HOMEs and ports).
    pub fn start_many(n: usize) -> Vec<Self> {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut servers = vec![Self::start_with(Some(serial), None, false)];
        for _ in 1..n {
            servers.push(Self::start_with(None, None, false));
        }
        servers
    }

    /// Servers that are other machines to this one: each on a Docker Engine of its own
    /// in a network namespace of its own, its API and HTTP ports forwarded to the same
    /// ports on this machine's loopback. The workstation's images are not on them.
    pub fn start_isolated(n: usize) -> Vec<Self> {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        remove_debris();
        let engines: Vec<Engine> = std::thread::scope(|scope| {
            let started: Vec<_> = (0..n).map(|_| scope.spawn(Engine::start)).collect();
            started
                .into_iter()
                .map(|s| s.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut serial = Some(serial);
        engines
            .into_iter()
            .map(|engine| Self::start_with(serial.take(), Some(engine), false))
            .collect()
    }

    pub(crate) fn start_with(
        serial: Option<MutexGuard<'static, ()>>,
        engine: Option<Engine>,
        containerised: bool,
    ) -> Self {
        require("docker", &["info"], "Docker Engine");
        require("haproxy", &["-v"], "HAProxy");
        if serial.is_some() && engine.is_none() {
            remove_debris();
        }
        let home = tempfile::tempdir().expect("home");
        let (http_port, https_port, api_port) = (free_port(), free_port(), free_port());
        let metrics_port = free_port();
        let instance = format!("it-{}-{}", std::process::id(), api_port);
        let relays = engine
            .as_ref()
            .map(|engine| {
                vec![
                    engine.relay(api_port),
                    engine.relay(http_port),
                    engine.relay(metrics_port),
                ]
            })
            .unwrap_or_default();
        let server = Self {
            home,
            http_port,
            api_port,
            metrics_port,
            network: format!("haloy-{instance}"),
            instance,
            env: Vec::new(),
            _relays: relays,
            engine,
            _serial: serial,
            containerised,
        };
        // Host processes unless asked: many servers per test, each with its own
        // HAProxy on free ports (`tests/containerised.rs` tests what users get).
        let mode = if containerised {
            vec![
                "--haproxy-image".to_string(),
                crate::containerised::HAPROXY_IMAGE.to_string(),
            ]
        } else {
            vec!["--host-processes".to_string()]
        };
        let mode: Vec<&str> = mode.iter().map(String::as_str).collect();
        let output = server.haloyadm(
            &[
                &["init", "--local-install"][..],
                &mode,
                &[
                    "--bind-address",
                    "127.0.0.1",
                    "--http-port",
                    &http_port.to_string(),
                    "--https-port",
                    &https_port.to_string(),
                    "--api-port",
                    &api_port.to_string(),
                ],
            ]
            .concat(),
        );
        assert!(
            output.status.success(),
            "haloyadm init:\n{}",
            describe(&output)
        );
        let settings = server.config_dir().join("haloyd.yaml");
        let text = std::fs::read_to_string(&settings).expect("haloyd.yaml");
        let text = text
            .lines()
            .map(|line| match line.split(':').next() {
                Some("instance") => format!("instance: {}", server.instance),
                Some("health_check_timeout_secs") => "health_check_timeout_secs: 15".into(),
                Some("drain_timeout_secs") => "drain_timeout_secs: 3".into(),
                Some("stop_grace_secs") => "stop_grace_secs: 3".into(),
                // Many servers run at once: none may take the default port.
                Some("metrics_address") => format!("metrics_address: 127.0.0.1:{metrics_port}"),
                _ => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&settings, text).expect("haloyd.yaml");
        server.start_daemons();
        let token = server.token();
        let output = server.haloy(&["server", "add", &server.api(), &token]);
        assert!(
            output.status.success(),
            "haloy server add:\n{}",
            describe(&output)
        );
        server
    }

    pub fn start_daemons(&self) {
        let output = self.haloyadm(&["start", "--local-install"]);
        assert!(
            output.status.success(),
            "haloyadm start:\n{}\n{}",
            describe(&output),
            self.log()
        );
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join(".config/haloy")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join(".local/share/haloy")
    }

    /// haloyd's log, for failure messages (its containers' logs when it runs in one).
    pub fn log(&self) -> String {
        if self.containerised {
            return crate::containerised::container_logs(self, "haloyd");
        }
        std::fs::read_to_string(self.data_dir().join("haloyd.log")).unwrap_or_default()
    }

    pub fn api(&self) -> String {
        format!("127.0.0.1:{}", self.api_port)
    }

    pub fn token(&self) -> String {
        let output = self.haloyadm(&["api", "token", "--local-install"]);
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The API certificate's SHA-256 fingerprint, as `haloyadm api token` prints it
    /// on stderr (for `haloy server add --fingerprint`).
    pub fn api_fingerprint(&self) -> String {
        let output = self.haloyadm(&["api", "token", "--local-install"]);
        assert!(output.status.success(), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("api certificate sha256 fingerprint: "))
            .unwrap_or_else(|| panic!("no fingerprint in:\n{stderr}"))
            .trim()
            .to_string()
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Takes a variable set with [`Server::set_env`] away from later `haloy` runs.
    pub fn remove_env(&mut self, name: &str) {
        self.env.retain(|(k, _)| k != name);
    }

    /// `haloy` runs on this machine (the workstation); `haloyadm`, and so haloyd and
    /// HAProxy, on the server's machine.
    fn command(&self, program: &str) -> Command {
        let on_server = program == "haloyadm";
        let mut command = match &self.engine {
            Some(engine) if on_server => engine.inside(&bin(program)),
            _ => Command::new(bin(program)),
        };
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.home.path());
        if let Some(engine) = self.engine.as_ref().filter(|_| on_server) {
            command.env("DOCKER_HOST", engine.docker_host());
        }
        command
    }

    /// Reboots the server's own Docker Engine (see [`Engine::restart`]); panics for
    /// a server on this machine's Docker.
    pub fn restart_engine(&mut self) {
        self.engine
            .as_mut()
            .expect("only a server with a Docker Engine of its own (start_isolated) can reboot it")
            .restart();
    }

    /// The docker CLI talking to this server's Docker.
    pub fn docker(&self) -> Command {
        match &self.engine {
            Some(engine) => engine.docker(),
            None => Command::new("docker"),
        }
    }

    /// Puts `image` from this machine's Docker on the server's own engine, if it has one.
    pub fn load_image(&self, image: &str) {
        if let Some(engine) = &self.engine {
            engine.load_image(image);
        }
    }

    /// Runs `script` with busybox's shell inside `container` (through Docker, not
    /// haloy) and asserts it succeeded.
    pub fn docker_sh(&self, container: &str, script: &str) {
        let output =
            run(self
                .docker()
                .args(["exec", container, "/bin/busybox", "sh", "-c", script]));
        assert!(output.status.success(), "{script}: {}", describe(&output));
    }

    pub fn haloyadm(&self, args: &[&str]) -> Output {
        run(self.command("haloyadm").args(args))
    }

    /// `haloy` with this server's HOME and environment, to run as the test likes
    /// (stdin piped, inside a terminal).
    pub fn haloy_command(&self) -> Command {
        self.command("haloy")
    }

    pub fn haloy(&self, args: &[&str]) -> Output {
        run(self.command("haloy").args(args))
    }

    /// `haloy` started in the background, its output piped; for many at once.
    pub fn spawn_haloy(&self, args: &[&str]) -> Child {
        self.command("haloy")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start haloy {args:?}: {e}"))
    }

    /// Writes an app config in the test's HOME and returns its path.
    pub fn app_config(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.home.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).expect("config");
        path
    }

    /// Deploys and asserts success; returns stdout.
    pub fn deploy(&self, config: &Path) -> String {
        let output = self.haloy(&["deploy", "-c", &config.display().to_string()]);
        assert!(
            output.status.success(),
            "deploy failed:\n{}\n--- haloyd.log\n{}",
            describe(&output),
            self.log()
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    /// Names of this server's containers (running or not) for `app`.
    pub fn containers(&self, app: &str) -> Vec<String> {
        let output = run(self.docker().args([
            "ps",
            "-a",
            "--filter",
            &format!("label=dev.haloy.instance={}", self.instance),
            "--filter",
            &format!("label=dev.haloy.app={app}"),
            "--format",
            "{{.Names}}",
        ]));
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    pub fn get(&self, host: &str, path: &str) -> (u16, String, String) {
        http_get(self.http_port, host, path).unwrap_or((0, String::new(), String::new()))
    }

    /// The pid haloyd wrote for itself, or its container's main process (a pid on
    /// this machine: the engine shares its pid namespace).
    pub fn haloyd_pid(&self) -> u32 {
        if self.containerised {
            return crate::containerised::container_pid(self, "haloyd");
        }
        let text = std::fs::read_to_string(self.data_dir().join("haloyd.pid")).expect("pid file");
        text.trim().parse().expect("pid")
    }

    /// `haloyadm start` with more environment for haloyd (e.g. `FAILPOINTS`).
    pub fn start_daemons_with(&self, env: &[(&str, &str)]) {
        let output = run(self
            .command("haloyadm")
            .args(["start", "--local-install"])
            .envs(env.iter().copied()));
        assert!(
            output.status.success(),
            "haloyadm start:\n{}\n{}",
            describe(&output),
            self.log()
        );
    }

    /// SIGKILLs haloyd, as a crash would, and returns once it is gone; HAProxy
    /// keeps serving.
    pub fn kill_haloyd(&self) {
        let pid = self.haloyd_pid();
        signal(pid, "KILL");
        eventually(Duration::from_secs(10), "haloyd to die", || {
            (!process_alive(pid)).then_some(())
        });
    }

    /// Sends `name` (e.g. "USR2") to haloyd.
    pub fn signal_haloyd(&self, name: &str) {
        signal(self.haloyd_pid(), name);
    }

    /// SIGKILLs HAProxy's master and workers.
    pub fn kill_haproxy(&self) {
        let pattern = format!(
            "haproxy.*{}",
            self.data_dir().join("haproxy-config").display()
        );
        let found = run(Command::new("pgrep").args(["-f", &pattern]));
        let pids: Vec<u32> = String::from_utf8_lossy(&found.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        assert!(!pids.is_empty(), "HAProxy was running");
        for pid in &pids {
            signal(*pid, "KILL");
        }
        // Until its last process is gone, a killed worker may still answer.
        eventually(
            Duration::from_secs(10),
            "HAProxy's processes to die",
            || pids.iter().all(|p| !process_alive(*p)).then_some(()),
        );
    }

    /// The servers of `app`'s HAProxy backend with their status ("UP", "DRAIN",
    /// "MAINT", ...), sorted by name.
    pub fn haproxy_servers(&self, app: &str) -> Vec<(String, String)> {
        let answer = haproxy_admin(self, &format!("show stat app_{app} 4 -1"));
        let mut servers: Vec<(String, String)> = answer
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                Some((fields.get(1)?.to_string(), fields.get(17)?.to_string()))
            })
            .filter(|(name, _)| name != "BACKEND" && name != "FRONTEND")
            .collect();
        servers.sort();
        servers
    }

    /// HAProxy's running host map: host → backend.
    pub fn routed_hosts(&self) -> std::collections::BTreeMap<String, String> {
        let map = self.data_dir().join("haproxy-config/hosts.map");
        haproxy_admin(self, &format!("show map {}", map.display()))
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace().skip(1);
                Some((fields.next()?.to_string(), fields.next()?.to_string()))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.haloyadm(&["stop", "--local-install"]);
        if self.engine.is_some() {
            // Dropping the engine removes everything on it.
            return;
        }
        remove_instance(&self.instance);
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Named volumes tests create are called after the network.
        if let Ok(output) = Command::new("docker")
            .args([
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("name={}", self.network),
            ])
            .output()
        {
            let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if !names.is_empty() {
                let _ = Command::new("docker")
                    .args(["volume", "rm", "-f"])
                    .args(&names)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
