//! Support for end-to-end tests against the real components: a local-install haloyd
//! and HAProxy per test (own HOME, free loopback ports), app images built FROM scratch
//! with busybox, an HTTP client, the `hey` load generator and cleanup that runs even
//! when a test fails.
//!
//! A missing component (Docker, HAProxy, hey, grpcurl, the built binaries) fails the
//! test loudly; nothing is skipped.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

mod cleanup;
pub mod containerised;
pub mod engine;
mod haproxy;
mod http;
mod images;
mod load;
mod pebble;
mod registry;
pub mod release;
pub mod scratch;
mod server;
mod settings;

pub use engine::Engine;
pub use haloy_testkit::{Wait, eventually};
pub use haproxy::*;
pub use http::*;
pub use images::*;
pub use load::*;
pub use pebble::*;
pub use registry::*;
pub use server::*;
pub use settings::*;

/// Label on every image the tests build, so `scripts/test` can remove them.
pub const TEST_LABEL: &str = "dev.haloy.test";

/// Label naming the [`ImageFamily`] an image belongs to.
pub(crate) const FAMILY_LABEL: &str = "dev.haloy.test.family";

/// End-to-end tests take the machine's two cores; they run one at a time.
pub(crate) static SERIAL: Mutex<()> = Mutex::new(());

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

/// Sends signal `name` ("KILL", "INT", ...) to `pid`.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// Whether `pid` runs: not a zombie, or a zombie leader whose other threads are
/// still exiting (they may hold its files and locks a little longer).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|r| r.trim_start().starts_with('Z'));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
    !zombie || threads > 1
}

/// Writes a benchmark's figures to `target/bench/<name>.json` and says so.
pub fn write_bench_json(name: &str, json: &serde_json::Value) {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(json).expect("json"),
    )
    .expect("write");
    println!("wrote target/bench/{name}.json");
}
