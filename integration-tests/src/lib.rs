//! Support for end-to-end tests against the real components: a local-install haloyd
//! and HAProxy per test (own HOME, free loopback ports), app images built FROM scratch
//! with busybox, an HTTP client, the `hey` load generator and cleanup that runs even
//! when a test fails.
//!
//! A missing component (Docker, HAProxy, hey, grpcurl, the built binaries) fails the
//! test loudly; nothing is skipped.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub mod engine;

pub use engine::Engine;

/// Label on every image the tests build, so `scripts/test` can remove them.
pub const TEST_LABEL: &str = "dev.haloy.test";

/// Label naming the [`ImageFamily`] an image belongs to.
const FAMILY_LABEL: &str = "dev.haloy.test.family";

/// End-to-end tests take the machine's two cores; they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Panics with a clear message unless `program --version`-style `args` succeed.
pub fn require(program: &str, args: &[&str], what: &str) {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{what} is required for the integration tests but `{program} {}` failed; run ./scripts/test, which installs it",
        args.join(" ")
    );
}

/// Where cargo put the binaries (target/<profile>), found from this executable: a
/// test lives in `deps/` below it, a program such as the benchmark beside it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing; build it first with `cargo build --bins` (./scripts/test does)",
        path.display()
    );
    path
}

/// A loopback port nothing listens on, never the same one twice in a test process
/// (the kernel may hand a just-released port out again at once).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command and returns its output; panics with everything printed if it
/// cannot start.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A FROM-scratch busybox httpd image whose `/` says `body` and `/health` says ok.
/// With `healthy: false` there is no `/health` (404), so health checks fail.
pub fn build_image(tag: &str, body: &str, healthy: bool) -> String {
    build_image_with(tag, body, healthy, &[])
}

/// Like [`build_image`], plus CGI scripts: (name, shell body) served at
/// `/cgi-bin/<name>` as text/plain.
pub fn build_image_with(tag: &str, body: &str, healthy: bool, cgi: &[(&str, &str)]) -> String {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let reference = format!("haloy-it:{tag}");
    if built.lock().expect("lock").contains(&reference) {
        return reference;
    }
    require("docker", &["info"], "Docker Engine");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy("/bin/busybox", dir.path().join("busybox"))
        .expect("/bin/busybox (package busybox-static) is required to build test images");
    std::fs::create_dir_all(dir.path().join("www")).expect("www");
    std::fs::write(dir.path().join("www/index.html"), body).expect("index");
    if healthy {
        std::fs::write(dir.path().join("www/health"), "ok\n").expect("health");
    }
    if !cgi.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.path().join("www/cgi-bin")).expect("cgi-bin");
        for (name, script) in cgi {
            let path = dir.path().join("www/cgi-bin").join(name);
            let text =
                format!("#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho ''\n{script}\n");
            std::fs::write(&path, text).expect("cgi script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-vv\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .expect("Dockerfile");
    let output = run(Command::new("docker")
        .args([
            "build",
            "-q",
            "--label",
            &format!("{TEST_LABEL}=1"),
            "-t",
            &reference,
        ])
        .arg(dir.path()));
    assert!(
        output.status.success(),
        "docker build failed:\n{}",
        describe(&output)
    );
    built.lock().expect("lock").insert(reference.clone());
    reference
}

/// FROM-scratch busybox httpd images that share their bottom layer and no other image
/// has it: busybox plus a file naming the family. Its images differ only in `/www`,
/// their top layer. Every image of the family goes when it is dropped (drop it after
/// the [`Server`] whose containers use them).
pub struct ImageFamily {
    /// Lowercase and unique per family: the repository of its images.
    pub repository: String,
    dir: tempfile::TempDir,
}

impl ImageFamily {
    pub fn new(name: &str) -> Self {
        require("docker", &["info"], "Docker Engine");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let repository = format!("haloy-it-{name}-{}-{nanos:x}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("bin")).expect("base");
        std::fs::copy("/bin/busybox", base.join("bin/busybox"))
            .expect("/bin/busybox (package busybox-static) is required to build test images");
        std::fs::write(base.join("family"), &repository).expect("family");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY base /\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        )
        .expect("Dockerfile");
        Self { repository, dir }
    }

    /// Builds `<repository>:<tag>` whose `/` says `body` (and `/health` ok).
    pub fn build(&self, tag: &str, body: &str) -> String {
        self.build_with(tag, body, false)
    }

    /// Like [`ImageFamily::build`], plus `/cgi-bin/slow-health`, which answers ok
    /// after a second: a replica checked there takes that long to become healthy.
    pub fn build_slow(&self, tag: &str, body: &str) -> String {
        self.build_with(tag, body, true)
    }

    fn build_with(&self, tag: &str, body: &str, slow_health: bool) -> String {
        let www = self.dir.path().join("www");
        let _ = std::fs::remove_dir_all(&www);
        std::fs::create_dir_all(&www).expect("www");
        std::fs::write(www.join("index.html"), body).expect("index");
        std::fs::write(www.join("health"), "ok\n").expect("health");
        if slow_health {
            use std::os::unix::fs::PermissionsExt;
            let script = www.join("cgi-bin/slow-health");
            std::fs::create_dir_all(www.join("cgi-bin")).expect("cgi-bin");
            std::fs::write(
                &script,
                "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho ''\n/bin/busybox sleep 1\necho ok\n",
            )
            .expect("slow-health");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let reference = format!("{}:{tag}", self.repository);
        // No cache: the base layer comes out the same anyway (Docker's layers depend
        // on content only), and no build leans on another's intermediate images.
        let output = run(Command::new("docker")
            .args(["build", "-q", "--no-cache", "--label"])
            .arg(format!("{TEST_LABEL}=1"))
            .arg("--label")
            .arg(format!("{FAMILY_LABEL}={}", self.repository))
            .args(["-t", &reference])
            .arg(self.dir.path()));
        assert!(
            output.status.success(),
            "docker build failed:\n{}",
            describe(&output)
        );
        reference
    }

    /// `docker save`s the image to `path`.
    pub fn save(&self, reference: &str, path: &Path) {
        let output = run(Command::new("docker")
            .args(["save", "-o"])
            .arg(path)
            .arg(reference));
        assert!(output.status.success(), "{}", describe(&output));
    }

    /// Removes every image of the family from Docker (and so their layers), under
    /// whatever names it was tagged: the images carry the family's label.
    pub fn remove_all(&self) {
        let output = run(Command::new("docker").args([
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={FAMILY_LABEL}={}", self.repository),
        ]));
        let mut ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for ImageFamily {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, headers, body).
pub fn http_get(port: u16, host: &str, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// A `hey` run against HAProxy in the background.
pub struct Load {
    child: Option<Child>,
}

/// What `hey` counted.
#[derive(Debug)]
pub struct LoadReport {
    pub total: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub raw: String,
}

impl Load {
    /// Hammers `http://127.0.0.1:port/` with `Host: host` for `seconds`, 4 workers,
    /// at most 400 requests per second in all.
    pub fn start(port: u16, host: &str, seconds: u64) -> Self {
        Self::spawn(
            &format!("http://127.0.0.1:{port}/"),
            host,
            seconds,
            Connections::KeepAlive,
        )
    }

    /// A light load that runs until [`Load::stop`] (at most `seconds`): one worker,
    /// `per_second` requests a second, so that many can run side by side.
    pub fn light(port: u16, host: &str, seconds: u64, per_second: u32) -> Self {
        require(
            "hey",
            &["-n", "1", "-c", "1", "http://127.0.0.1:1/"],
            "the load generator hey",
        );
        let child = Command::new("hey")
            .args(["-z", &format!("{seconds}s"), "-c", "1", "-q"])
            .arg(per_second.to_string())
            .args(["-t", "10", "-host", host])
            .arg(format!("http://127.0.0.1:{port}/"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hey");
        Self { child: Some(child) }
    }

    /// Ends the run now (hey reports what it counted on SIGINT) and parses it.
    pub fn stop(self) -> LoadReport {
        if let Some(child) = &self.child {
            signal(child.id(), "INT");
        }
        self.finish()
    }

    /// hey against `url` with `Host: host` for `seconds`, 4 workers, at most 400
    /// requests per second in all.
    fn spawn(url: &str, host: &str, seconds: u64, connections: Connections) -> Self {
        require(
            "hey",
            &["-n", "1", "-c", "1", "http://127.0.0.1:1/"],
            "the load generator hey",
        );
        let mut command = Command::new("hey");
        command.args([
            "-z",
            &format!("{seconds}s"),
            "-c",
            "4",
            "-q",
            "100",
            "-t",
            "10",
        ]);
        if connections == Connections::PerRequest {
            command.arg("-disable-keepalive");
        }
        let child = command
            .args(["-host", host])
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hey");
        Self { child: Some(child) }
    }

    /// Waits for the run to end and parses its summary.
    pub fn finish(mut self) -> LoadReport {
        let child = self.child.take().expect("running");
        let output = child.wait_with_output().expect("hey");
        let raw = String::from_utf8_lossy(&output.stdout).to_string();
        let mut report = LoadReport {
            total: 0,
            ok: 0,
            non_2xx: 0,
            errors: 0,
            raw: raw.clone(),
        };
        let mut section = "";
        for line in raw.lines() {
            let line = line.trim();
            if line.starts_with("Status code distribution") {
                section = "status";
            } else if line.starts_with("Error distribution") {
                section = "errors";
            } else if section == "status" && line.starts_with('[') {
                let code: u16 = line[1..4].parse().unwrap_or(0);
                let count: u64 = line[5..]
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                report.total += count;
                if (200..300).contains(&code) {
                    report.ok += count;
                } else {
                    report.non_2xx += count;
                }
            } else if section == "errors" && line.starts_with('[') {
                let count: u64 = line[1..]
                    .split(']')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                report.errors += count;
                report.total += count;
            }
        }
        report
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A one-replica app spec for calling haloyd through the client library: image
/// `repository:tag` from the registry source (or an upload), `/health` checks,
/// served at `<name>.test` on `network`.
pub fn app_spec(
    name: &str,
    repository: &str,
    tag: &str,
    network: &str,
) -> haloy_api::spec::AppSpec {
    use haloy_api::spec::{
        AppSpec, DeploymentStrategy, DomainSpec, History, ImageSource, ImageSpec,
    };
    AppSpec {
        name: name.into(),
        image: ImageSpec {
            repository: repository.into(),
            tag: tag.into(),
            source: ImageSource::Registry,
            registry: None,
            history: History::None,
        },
        deployment_strategy: DeploymentStrategy::Rolling,
        domains: vec![DomainSpec {
            canonical: format!("{name}.test"),
            aliases: vec![],
        }],
        acme_email: None,
        replicas: 1,
        port: 8080,
        health_check_path: "/health".into(),
        env: vec![],
        volumes: vec![],
        network: Some(network.to_string()),
    }
}

/// A local-install haloyd with HAProxy, owned by one test, removed on drop.
pub struct Server {
    pub home: tempfile::TempDir,
    pub http_port: u16,
    pub api_port: u16,
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
}

impl Server {
    /// Initializes and starts a server on free loopback ports.
    pub fn start() -> Self {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::start_with(Some(serial), None)
    }

    /// Several servers on this machine for one test (separate HOMEs and ports).
    pub fn start_many(n: usize) -> Vec<Self> {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut servers = vec![Self::start_with(Some(serial), None)];
        for _ in 1..n {
            servers.push(Self::start_with(None, None));
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
            .map(|engine| Self::start_with(serial.take(), Some(engine)))
            .collect()
    }

    fn start_with(serial: Option<MutexGuard<'static, ()>>, engine: Option<Engine>) -> Self {
        require("docker", &["info"], "Docker Engine");
        require("haproxy", &["-v"], "HAProxy");
        if serial.is_some() && engine.is_none() {
            remove_debris();
        }
        let home = tempfile::tempdir().expect("home");
        let (http_port, https_port, api_port) = (free_port(), free_port(), free_port());
        let instance = format!("it-{}-{}", std::process::id(), api_port);
        let relays = engine
            .as_ref()
            .map(|engine| vec![engine.relay(api_port), engine.relay(http_port)])
            .unwrap_or_default();
        let server = Self {
            home,
            http_port,
            api_port,
            network: format!("haloy-{instance}"),
            instance,
            env: Vec::new(),
            _relays: relays,
            engine,
            _serial: serial,
        };
        let output = server.haloyadm(&[
            "init",
            "--local-install",
            "--bind-address",
            "127.0.0.1",
            "--http-port",
            &http_port.to_string(),
            "--https-port",
            &https_port.to_string(),
            "--api-port",
            &api_port.to_string(),
        ]);
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

    /// haloyd's log, for failure messages.
    pub fn log(&self) -> String {
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

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
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

    pub fn haloyadm(&self, args: &[&str]) -> Output {
        run(self.command("haloyadm").args(args))
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

    /// The pid haloyd wrote for itself.
    pub fn haloyd_pid(&self) -> u32 {
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
        let killed = Command::new("pkill")
            .args(["-9", "-f", &pattern])
            .status()
            .expect("pkill");
        assert!(killed.success(), "HAProxy was running");
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

/// Sends signal `name` ("KILL", "INT", ...) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// Whether `pid` runs and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
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

/// Removes the containers of one haloyd instance.
fn remove_instance(instance: &str) {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=dev.haloy.instance={instance}"),
        ])
        .output();
    if let Ok(output) = output {
        let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// Containers and networks of earlier test processes that died before cleaning up.
fn remove_debris() {
    engine::remove_debris();
    stop_orphans();
    let Ok(output) = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=dev.haloy.instance",
            "--format",
            "{{.Label \"dev.haloy.instance\"}}",
        ])
        .output()
    else {
        return;
    };
    let stale: HashSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|instance| {
            instance
                .strip_prefix("it-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| {
                    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
                })
        })
        .map(str::to_string)
        .collect();
    for instance in stale {
        remove_instance(&instance);
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("haloy-{instance}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

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

/// Stops haloyd and HAProxy processes that tests killed before they could clean up:
/// those whose test HOME is gone, or whose instance (`it-<pid>-…`) names a test
/// process that has exited.
fn stop_orphans() {
    let temp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let program = args.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        if !matches!(program, Some("haloyd" | "haproxy")) {
            continue;
        }
        // The test HOME: the temporary directory a config path of the process is in.
        let Some(home) = args
            .iter()
            .map(Path::new)
            .filter(|a| a.starts_with(&temp))
            .find_map(|a| a.strip_prefix(&temp).ok()?.components().next())
            .map(|first| temp.join(first))
        else {
            continue;
        };
        let settings = home.join(".config/haloy/haloyd.yaml");
        // Test HOMEs are tempfile directories (`.tmp…`); anything else is not ours.
        let ours = home
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".tmp"));
        if !ours {
            continue;
        }
        let orphan = match std::fs::read_to_string(&settings) {
            Err(_) => !home.exists(),
            Ok(text) => text
                .lines()
                .find_map(|l| l.strip_prefix("instance: it-"))
                .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok())
                .is_some_and(|owner| {
                    owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists()
                }),
        };
        if orphan {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// A real pebble (Let's Encrypt's ACME test server) with pebble-challtestsrv as its
/// DNS, which answers every name with 127.0.0.1: HTTP-01 validation really travels
/// to HAProxy's HTTP port. Its own HTTPS uses a CA made with openssl for the run.
/// Dropping it kills both processes and removes its files.
pub struct Pebble {
    /// `https://127.0.0.1:<port>/dir`.
    pub directory: String,
    /// The CA of pebble's own HTTPS (for `--acme-ca-cert`).
    pub tls_ca: PathBuf,
    /// The root pebble issues certificates under (for `curl --cacert`).
    pub issuing_root: PathBuf,
    management_port: u16,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` of 127.0.0.1.
    pub fn start(http_port: u16) -> Self {
        require("openssl", &["version"], "openssl");
        // pebble has no --version; ask the shell whether both programs are there.
        require(
            "sh",
            &["-c", "command -v pebble && command -v pebble-challtestsrv"],
            "pebble and pebble-challtestsrv (package pebble)",
        );
        let dir = tempfile::tempdir().expect("pebble dir");
        let root_dir = dir.path().to_path_buf();
        let path = |name: &str| root_dir.join(name);
        let openssl = |args: &[&str]| {
            let output = run(Command::new("openssl").args(args).current_dir(&root_dir));
            assert!(
                output.status.success(),
                "openssl {args:?}:\n{}",
                describe(&output)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=pebble-https-ca"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca);
        let mut csr = vec!["req", "-subj", "/CN=localhost"];
        csr.extend(ec);
        csr.extend(["-keyout", "localhost.key", "-out", "localhost.csr"]);
        openssl(&csr);
        std::fs::write(
            path("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("san");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "localhost.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "localhost.pem",
        ]);
        let (port, management_port, dns_port, challtest_port) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": path("localhost.pem"),
            "privateKey": path("localhost.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(path("pebble.json"), config.to_string()).expect("pebble config");
        let log = |name: &str| std::fs::File::create(path(name)).expect("log file");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtest_port}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv (package pebble) is required");
        let mut pebble = Self {
            directory: format!("https://127.0.0.1:{port}/dir"),
            tls_ca: path("ca.pem"),
            issuing_root: path("issuing-root.pem"),
            management_port,
            children: vec![dns],
            dir,
        };
        let server = Command::new("pebble")
            .arg("-config")
            .arg(path("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble (package pebble) is required");
        pebble.children.push(server);
        let root = eventually(Duration::from_secs(20), "pebble to answer", || {
            pebble
                .fetch("/roots/0")
                .filter(|pem| pem.contains("BEGIN CERTIFICATE"))
        });
        std::fs::write(&pebble.issuing_root, root).expect("issuing root");
        for child in &mut pebble.children {
            assert!(
                child.try_wait().is_ok_and(|exited| exited.is_none()),
                "pebble or pebble-challtestsrv exited at start:\n{}\n{}",
                std::fs::read_to_string(pebble.dir.path().join("challtestsrv.err"))
                    .unwrap_or_default(),
                std::fs::read_to_string(pebble.dir.path().join("pebble.err")).unwrap_or_default()
            );
        }
        pebble
    }

    /// A GET on pebble's management port, with its HTTPS checked against its CA.
    fn fetch(&self, path: &str) -> Option<String> {
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5", "--cacert"])
            .arg(&self.tls_ca)
            .arg(format!("https://127.0.0.1:{}{path}", self.management_port))
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).to_string())
    }

    /// pebble's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Stops pebble (the ACME server), keeping its DNS; `start` cannot bring it back.
    pub fn stop_acme_server(&mut self) {
        if let Some(mut child) = self.children.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

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

/// `curl` over HTTPS to HAProxy for `host`, trusting `ca`: (status, body), status 0
/// when the TLS handshake or connection failed.
pub fn https_get(port: u16, host: &str, path: &str, ca: &Path) -> (u16, String) {
    let output = run(Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}{path}")));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The serial of the certificate HAProxy presents for `host` (SNI), as
/// `openssl x509 -serial` prints it, or None when no handshake succeeds.
pub fn served_serial(port: u16, host: &str) -> Option<String> {
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            host,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut pem = String::new();
    s_client.stdout.take()?.read_to_string(&mut pem).ok()?;
    let _ = s_client.wait();
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    x509.stdin.take()?.write_all(pem.as_bytes()).ok()?;
    let output = x509.wait_with_output().ok()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .strip_prefix("serial=")
        .map(str::to_string)
}

/// How a load run uses its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Each worker keeps its connection open (hey's default).
    KeepAlive,
    /// A new connection, and over HTTPS a new TLS handshake, for every request: a
    /// certificate swapped during the run is met by the requests that follow.
    PerRequest,
}

impl Load {
    /// Like [`Load::start`], over HTTPS with SNI and Host `host` (hey does not check
    /// certificates), with a choice of how connections are used: for swapping
    /// certificates under load.
    pub fn start_https_with(port: u16, host: &str, seconds: u64, connections: Connections) -> Self {
        Self::spawn(
            &format!("https://127.0.0.1:{port}/"),
            host,
            seconds,
            connections,
        )
    }
}

/// One command on the admin socket of `server`'s HAProxy, and its answer.
pub fn haproxy_admin(server: &Server, command: &str) -> String {
    let socket = server.data_dir().join("haproxy-config/admin.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket)
        .unwrap_or_else(|e| panic!("HAProxy's admin socket {}: {e}", socket.display()));
    stream
        .write_all(format!("{command}\n").as_bytes())
        .expect("write to the admin socket");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("read the admin socket");
    answer
}
