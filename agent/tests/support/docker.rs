//! What the Docker runtime tests share: a per-test sandbox that builds busybox
//! images FROM scratch, names everything uniquely, and removes every container,
//! network, volume and image it made when dropped, even after a panic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haloyd::runtime::{ContainerSpec, labels};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The busybox the images are built from (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// Serves `/www` on 8080; the page is unique to its sandbox.
pub const HTTPD: &[&str] = &["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"];

pub struct Sandbox {
    /// Unique per test and run; the value of the instance label on its containers.
    pub id: String,
    pub dir: tempfile::TempDir,
    images: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
}

impl Sandbox {
    pub fn new(test: &str) -> Self {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let id = format!(
            "haloy-test-{}-{nanos:x}-{}-{test}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            id,
            dir: tempfile::tempdir().unwrap(),
            images: Mutex::default(),
            networks: Mutex::default(),
            volumes: Mutex::default(),
        }
    }

    /// The page every image of this sandbox serves at `/`.
    pub fn page(&self) -> String {
        format!("hello from {}\n", self.id)
    }

    /// Builds `FROM scratch` + busybox + `/www` with `entrypoint`, tagged
    /// `<sandbox id>-<name>:1`.
    pub fn build_image(&self, name: &str, entrypoint: &[&str]) -> String {
        let tag = format!("{}-{name}:1", self.id);
        let context = self.dir.path().join(format!("build-{name}"));
        std::fs::create_dir_all(context.join("www")).unwrap();
        std::fs::copy(BUSYBOX, context.join("busybox")).unwrap();
        std::fs::write(context.join("www/index.html"), self.page()).unwrap();
        let entrypoint = serde_json::to_string(entrypoint).unwrap();
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nENTRYPOINT {entrypoint}\n"
            ),
        )
        .unwrap();
        self.track_image(&tag);
        // No cache: a cached busybox layer is shared between tests, and one test's
        // cleanup would delete it under another's build.
        docker(&[
            "build",
            "-q",
            "--no-cache",
            "-t",
            &tag,
            context.to_str().unwrap(),
        ]);
        tag
    }

    /// Removes this image reference at the end.
    pub fn track_image(&self, reference: &str) {
        self.images.lock().unwrap().push(reference.to_string());
    }

    /// A network name unique to this sandbox, removed at the end.
    pub fn network(&self, name: &str) -> String {
        let network = format!("{}-{name}", self.id);
        self.networks.lock().unwrap().push(network.clone());
        network
    }

    /// A volume name unique to this sandbox, removed at the end.
    pub fn volume(&self, name: &str) -> String {
        let volume = format!("{}-{name}", self.id);
        self.volumes.lock().unwrap().push(volume.clone());
        volume
    }

    /// A spec carrying the sandbox's instance label, so cleanup finds it.
    pub fn spec(&self, name: &str, image: &str, network: &str) -> ContainerSpec {
        ContainerSpec {
            name: format!("{}-{name}", self.id),
            image: image.to_string(),
            env: vec![],
            labels: BTreeMap::from([
                (labels::INSTANCE.to_string(), self.id.clone()),
                (labels::APP.to_string(), name.to_string()),
                (labels::PORT.to_string(), "8080".to_string()),
            ]),
            network: network.to_string(),
            volumes: vec![],
            resources: Default::default(),
            alias: None,
            port: 8080,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let filter = format!("label={}={}", labels::INSTANCE, self.id);
        let containers = quiet(&["ps", "-aq", "--filter", &filter]);
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            quiet(&[&["rm", "-f", "-v"], containers.as_slice()].concat());
        }
        for network in self.networks.get_mut().unwrap().iter() {
            // Remove every network of that name: a failed test may have left two.
            let ids = quiet(&[
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("name=^{network}$"),
            ]);
            for id in ids.split_whitespace() {
                quiet(&["network", "rm", id]);
            }
        }
        for volume in self.volumes.get_mut().unwrap().iter() {
            quiet(&["volume", "rm", "-f", volume]);
        }
        for image in self.images.get_mut().unwrap().iter() {
            quiet(&["rmi", "-f", image]);
        }
    }
}

/// Runs the docker CLI; panics with its output when it fails.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs the docker CLI for cleanup: failures are fine, the thing may be gone.
fn quiet(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// `GET path` on 127.0.0.1:`port`; the body, if the server answered 200.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_string())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}
