//! A second machine on this one: a Docker Engine of its own in a network namespace of
//! its own. A server started on it lacks every layer this machine's Docker has, so an
//! upload to it really moves bytes.
//!
//! Why a namespace: a second dockerd in the host's network namespace manages the same
//! `docker0` bridge and iptables chains as the machine's engine and breaks it. Inside
//! its own namespace it gets its own bridge and rules. It is entered with `nsenter
//! --net` rather than `ip netns exec`, which remounts `/sys` and hides the cgroup
//! hierarchy dockerd needs.
//!
//! The namespace's loopback is not the host's, so [`Relay`] forwards a host loopback
//! port to the same port inside (socat), and the workstation side of a test (`haloy`,
//! HTTP requests) runs unchanged.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{Wait, describe, eventually, require, run};

/// Prefix of the namespaces and directories engines create; the pid that follows lets
/// [`remove_debris`] find those of test processes that died.
const PREFIX: &str = "haloy-it-engine-";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A dockerd in its own network namespace, with its own data; dropping it stops the
/// daemon and removes the namespace and every file it wrote.
pub struct Engine {
    pub netns: String,
    dir: PathBuf,
    dockerd: Child,
    /// Directories dockerd and [`Engine::inside`] see with an overlay of their own.
    overlays: Vec<String>,
}

impl Engine {
    pub fn start() -> Self {
        Self::start_with_overlays(&[])
    }

    /// An engine whose machine also has a file system of its own at `overlays`
    /// (e.g. `/etc`): dockerd runs in a mount namespace where each is an overlay whose
    /// writes land under the engine's directory ([`Engine::overlay_upper`]), and
    /// [`Engine::inside`] enters that namespace too. The host's directories are
    /// untouched.
    pub fn start_with_overlays(overlays: &[&str]) -> Self {
        require("ip", &["netns", "list"], "iproute2 (ip netns)");
        require("nsenter", &["--version"], "nsenter (util-linux)");
        require("dockerd", &["--version"], "dockerd");
        require("socat", &["-V"], "socat");
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("engine dir");
        let out = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(out.status.success(), "ip netns add: {}", describe(&out));
        let out = run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        assert!(out.status.success(), "loopback up: {}", describe(&out));
        // The same storage driver and MTU as this machine's engine, which knows what
        // works here.
        let driver = host_docker_info("{{.Driver}}");
        std::fs::write(
            dir.join("daemon.json"),
            format!("{{\"storage-driver\": \"{driver}\", \"mtu\": 1400}}"),
        )
        .expect("daemon.json");
        let overlays: Vec<String> = overlays.iter().map(|o| o.to_string()).collect();
        for overlay in &overlays {
            let upper = overlay_dir(&dir, overlay);
            std::fs::create_dir_all(upper.join("upper")).expect("overlay dir");
            std::fs::create_dir_all(upper.join("work")).expect("overlay dir");
        }
        let dockerd = spawn_dockerd(&name, &dir, &overlays);
        let mut engine = Self {
            netns: name,
            dir,
            dockerd,
            overlays,
        };
        engine.wait_ready();
        engine
    }

    fn wait_ready(&mut self) {
        eventually(Duration::from_secs(60), "the engine to answer", || {
            if let Ok(Some(status)) = self.dockerd.try_wait() {
                panic!(
                    "dockerd exited ({status}):\n{}",
                    std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
                );
            }
            self.docker()
                .arg("info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                .then_some(())
        })
    }

    /// Stops dockerd as a shutdown does (SIGTERM: it stops the containers), starts
    /// it again and waits until it answers; containers with a restart policy come
    /// back by it.
    pub fn restart(&mut self) {
        self.stop_dockerd();
        self.dockerd = spawn_dockerd(&self.netns, &self.dir, &self.overlays);
        self.wait_ready();
    }

    /// SIGTERM, then SIGKILL after 20 s; returns once dockerd is gone.
    fn stop_dockerd(&mut self) {
        let _ = Command::new("kill")
            .arg(self.dockerd.id().to_string())
            .status();
        let dockerd = &mut self.dockerd;
        let stopped = Wait::new(Duration::from_secs(20), "dockerd to stop")
            .poll(|| matches!(dockerd.try_wait(), Ok(Some(_))));
        if stopped.is_some() {
            return;
        }
        let _ = self.dockerd.kill();
        let _ = self.dockerd.wait();
    }

    /// `DOCKER_HOST` for this engine.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// The docker CLI talking to this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", self.docker_host());
        command
    }

    /// Copies `image` from this machine's Docker into this engine.
    pub fn load_image(&self, image: &str) {
        let saved = run(Command::new("docker").args(["save", image]));
        assert!(
            saved.status.success(),
            "docker save {image}: {}",
            describe(&saved)
        );
        self.load_archive(&saved.stdout);
    }

    /// Loads an image archive (`docker save`'s output) into this engine.
    pub fn load_archive(&self, archive: &[u8]) {
        let mut child = self
            .docker()
            .args(["load", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker load");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(archive)
            .expect("write the image to docker load");
        let output = child.wait_with_output().expect("docker load");
        assert!(
            output.status.success(),
            "docker load: {}",
            describe(&output)
        );
    }

    /// `program` run inside the namespace, against this engine.
    pub fn inside(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/run/netns/{}", self.netns));
        if !self.overlays.is_empty() {
            command.arg(format!("--mount=/proc/{}/ns/mnt", self.dockerd.id()));
        }
        command.arg(program);
        command
    }

    /// Where the writes to `overlay` (one of [`Engine::start_with_overlays`]) land.
    pub fn overlay_upper(&self, overlay: &str) -> PathBuf {
        overlay_dir(&self.dir, overlay).join("upper")
    }

    /// Forwards `port` on the host's loopback to the same port inside, through a unix
    /// socket (a path works in every network namespace): one socat listens on the
    /// host's port, one inside the namespace connects to the port there.
    pub fn relay(&self, port: u16) -> Relay {
        self.relay_to(port, port)
    }

    /// Forwards `host_port` on the host's loopback to `port` inside (for a port such
    /// as 80 that the host may use itself).
    pub fn relay_to(&self, host_port: u16, port: u16) -> Relay {
        let socket = self.dir.join(format!("relay-{port}.sock"));
        let socat = |command: &mut Command| {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("socat")
        };
        let inside = socat(
            self.inside(Path::new("socat"))
                // Big buffers: uploads go through here.
                .args(["-b", "1048576"])
                .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
                .arg(format!("TCP:127.0.0.1:{port}")),
        );
        eventually(Duration::from_secs(10), "the relay's socket", || {
            socket.exists().then_some(())
        });
        let outside = socat(
            Command::new("socat")
                .args(["-b", "1048576"])
                .arg(format!(
                    "TCP-LISTEN:{host_port},bind=127.0.0.1,reuseaddr,fork"
                ))
                .arg(format!("UNIX-CONNECT:{}", socket.display())),
        );
        eventually(Duration::from_secs(10), "the relay to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", host_port))
                .ok()
                .map(|_| ())
        });
        Relay(vec![outside, inside])
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Ok(out) = self.docker().args(["ps", "-aq"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = self
                    .docker()
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // SIGTERM lets dockerd unmount its layers and stop its containerd.
        self.stop_dockerd();
        remove(&self.netns, &self.dir);
    }
}

/// The socats forwarding one port into a namespace; dropping it stops them and the
/// connections they fork.
pub struct Relay(Vec<Child>);

impl Drop for Relay {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

fn overlay_dir(dir: &Path, overlay: &str) -> PathBuf {
    dir.join("overlays")
        .join(overlay.trim_matches('/').replace('/', "_"))
}

/// dockerd in namespace `netns` with its files in `dir`, its log appended to; with
/// `overlays`, in a new mount namespace (private propagation) with those mounted.
fn spawn_dockerd(netns: &str, dir: &Path, overlays: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dockerd.log"))
        .expect("dockerd.log");
    let mut command = if overlays.is_empty() {
        Command::new("nsenter")
    } else {
        let mut script = String::from("set -e\n");
        for overlay in overlays {
            let at = overlay_dir(dir, overlay);
            script.push_str(&format!(
                "mount -t overlay overlay -o lowerdir={overlay},upperdir={},workdir={} {overlay}\n",
                at.join("upper").display(),
                at.join("work").display()
            ));
        }
        script.push_str("exec nsenter \"$@\"\n");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg("sh");
        command
    };
    command
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("dockerd")
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("docker.pid"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("dockerd")
}

fn host_docker_info(format: &str) -> String {
    let out = run(Command::new("docker").args(["info", "--format", format]));
    assert!(out.status.success(), "docker info: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Kills what is left in the namespace, deletes it, unmounts what is left under `dir`
/// and removes it.
fn remove(netns: &str, dir: &Path) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", netns])
        .stderr(Stdio::null())
        .status();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut below: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    // Deepest first.
    below.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in below {
        let _ = Command::new("umount")
            .args(["-l", point])
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Engines of test processes that died before dropping them.
pub(crate) fn remove_debris() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let dirs = std::fs::read_dir(std::env::temp_dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let names = listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .chain(dirs)
        .filter(|name| name.starts_with(PREFIX))
        .collect::<std::collections::BTreeSet<_>>();
    for name in names {
        let dead = name[PREFIX.len()..]
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| {
                pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
            });
        if dead {
            remove(&name, &std::env::temp_dir().join(&name));
        }
    }
}
