//! Support for the build and registry tests: the real Docker, FROM-scratch busybox
//! contexts, a real `docker-registry` with htpasswd auth, and guards that remove
//! every image, process and temp dir a test made, even when it panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haloy_testkit::Wait;

use bollard::Docker;
use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
use haloy_controller::config::plan::{BuildArg, BuildPlan, PushTo};

/// The busybox binary copied into every test image (Debian's `busybox-static`).
const BUSYBOX: &str = "/bin/busybox";

/// Docker, a temp dir for build contexts, and the label that marks this test's
/// images. Dropping it removes every image carrying that label.
pub struct Workshop {
    pub docker: Docker,
    /// Value of the `dev.haloy.test.owner` label on this test's images.
    pub owner: String,
    pub dir: tempfile::TempDir,
}

impl Workshop {
    /// Connects to the machine's Docker. A missing Docker fails the test: these
    /// tests are about Docker, skipping them would prove nothing.
    pub async fn new() -> Self {
        let docker = haloy_controller::build::connect_local()
            .await
            .unwrap_or_else(|err| panic!("these tests need a running Docker Engine: {err:#}"));
        assert!(
            Path::new(BUSYBOX).is_file(),
            "{BUSYBOX} is missing: install the Debian package busybox-static"
        );
        Self {
            docker,
            owner: unique(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The first lines of every test Dockerfile: the labels go right after FROM so
    /// that even the intermediate images of a failed build carry them.
    pub fn header(&self) -> String {
        format!(
            "FROM scratch\nLABEL dev.haloy.test=1 dev.haloy.test.owner={}\nCOPY busybox /bin/busybox\n",
            self.owner
        )
    }

    /// A context directory `name` holding busybox and a Dockerfile made of
    /// [`Self::header`] and `body`.
    pub fn context(&self, name: &str, body: &str) -> PathBuf {
        let dir = self.raw_context(name);
        std::fs::write(dir.join("Dockerfile"), format!("{}{body}", self.header()))
            .expect("write Dockerfile");
        dir
    }

    /// A context directory with busybox and nothing else.
    pub fn raw_context(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir context");
        std::fs::copy(BUSYBOX, dir.join("busybox")).expect("copy busybox");
        dir
    }

    /// A plan building `context/Dockerfile` for linux/amd64 with `args`.
    pub fn plan(&self, context: &Path, args: Vec<BuildArg>) -> BuildPlan {
        BuildPlan {
            context: context.to_path_buf(),
            dockerfile: context.join("Dockerfile"),
            platform: "linux/amd64".into(),
            args,
            push: PushTo::Server,
        }
    }

    /// A reference no other test uses.
    pub fn reference(&self, name: &str) -> String {
        format!("haloy-test-{}-{name}:1", self.owner)
    }
}

impl Drop for Workshop {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let owner = self.owner.clone();
        // Drop cannot await, and may run inside the test's runtime: clean up from
        // a thread with a runtime of its own.
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(remove_images(&docker, &owner))
        })
        .join();
        if let Ok(Err(left)) = cleaned {
            eprintln!("warning: test images left behind: {left}");
        }
    }
}

/// Removes every image labelled `dev.haloy.test.owner=<owner>`, newest first so
/// that children go before the intermediate images they were built on.
async fn remove_images(docker: &Docker, owner: &str) -> Result<(), String> {
    let filter = format!("dev.haloy.test.owner={owner}");
    for _pass in 0..3 {
        let options = ListImagesOptionsBuilder::new()
            .all(true)
            .filters(&std::collections::HashMap::from([(
                "label",
                vec![filter.as_str()],
            )]))
            .build();
        let mut images = docker
            .list_images(Some(options))
            .await
            .map_err(|e| e.to_string())?;
        if images.is_empty() {
            return Ok(());
        }
        images.sort_by_key(|image| std::cmp::Reverse(image.created));
        for image in images {
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            // A parent still in use by a child fails now and goes in the next pass.
            let _ = docker.remove_image(&image.id, Some(options), None).await;
        }
    }
    Err(format!(
        "images labelled {filter} survive three removal passes"
    ))
}

fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free loopback port (nothing else can be sure of it, but nobody else binds
/// in the moment between).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A real `docker-registry` on loopback with one htpasswd user. Dropping it kills
/// the process and removes its storage.
pub struct Registry {
    pub port: u16,
    pub username: String,
    pub password: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        let binary = tool("docker-registry", "docker-registry");
        let htpasswd = tool("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().expect("temp dir");
        let (username, password) = ("haloy".to_string(), "registry-pass-7f3a".to_string());
        let made = Command::new(&htpasswd)
            .args(["-Bbn", &username, &password])
            .output()
            .expect("run htpasswd");
        assert!(made.status.success(), "htpasswd failed: {made:?}");
        std::fs::write(dir.path().join("htpasswd"), &made.stdout).expect("write htpasswd");

        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: haloy-test\n    path: {htpasswd}\n",
            storage = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(&binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
        let mut registry = Self {
            port,
            username,
            password,
            child,
            dir,
        };
        registry.wait_until_ready();
        registry
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:<port>`, the registry's server address.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_until_ready(&mut self) {
        let log_file = self.dir.path().join("registry.log");
        let log = || {
            let text = std::fs::read_to_string(&log_file).unwrap_or_default();
            format!("--- registry.log\n{text}")
        };
        let answer = Wait::new(Duration::from_secs(20), "docker-registry to answer")
            .context(&log)
            .until(|| {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("docker-registry exited with {status}:\n{}", self.log());
                }
                self.get("/v2/", None)
            });
        // Without credentials the registry answers 401: it is up and enforcing auth.
        assert_eq!(answer.0, 401, "registry must require auth:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The tags of `repository`, from the registry's HTTP API with basic auth.
    pub fn tags(&self, repository: &str) -> (u16, String) {
        let auth = basic(&format!("{}:{}", self.username, self.password));
        self.get(&format!("/v2/{repository}/tags/list"), Some(&auth))
            .unwrap_or_else(|err| panic!("GET tags of {repository}: {err}\n{}", self.log()))
    }

    /// A plain HTTP/1.0 GET: status and body.
    fn get(&self, path: &str, authorization: Option<&str>) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.server());
        if let Some(value) = authorization {
            request.push_str(&format!("Authorization: Basic {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response:?}")))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of `name` on PATH or in /usr/bin; a missing tool fails the test loudly.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: install the Debian package {package} (scripts/test does)")
        })
}

/// Base64 for an `Authorization: Basic` header.
fn basic(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn basic_auth_is_base64() {
    assert_eq!(basic("user:pass"), "dXNlcjpwYXNz");
    assert_eq!(basic("a"), "YQ==");
    assert_eq!(basic("ab"), "YWI=");
}
