//! Benchmarks of the workstation-to-servers path, run on demand:
//!
//!   cargo build --release --workspace --bins
//!   cargo run --release -p integration-tests --bin bench
//!
//! Prints a table and writes `target/bench/deploy.json`. Every server runs on a Docker
//! Engine of its own (see `integration_tests::engine`), as a remote server would.
//! Figures are ratios against a baseline measured in the same run, because these
//! machines are shared and noisy:
//! - fan-out: wall time of `haloy deploy` to 1, 2, 4 and 8 servers, against 1 server
//!   (goal: 8 within 1.3x of one). All servers share this machine's cores, so the
//!   table also gives the floor the machine sets: n times the CPU time one deploy
//!   used, spread over the cores;
//! - upload: seconds to ship an image from the workstation's Docker to a server that
//!   lacks it through the Deploy stream and load it there (until its containers
//!   start), against `docker save | docker load` between the same two engines (goal:
//!   the baseline's time is >= 0.8x ours);
//! - one-layer redeploy: bytes uploaded when only a small file changed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use haloy_api::spec::Secret;
use haloy_controller::client::Client;
use haloy_controller::deployment::{ImageChoice, Progress};
use integration_tests::{Server, build_image, describe, run};

const ROUNDS: usize = 3;

fn fanout_config(servers: &[Server]) -> String {
    let mut yaml = String::from(
        "name: \"bench\"\nimage: { repository: \"haloy-it\", tag: \"v1\", source: \"local\" }\nreplicas: 1\nhealth_check_path: \"/health\"\ndomains: [{ domain: \"bench.test\" }]\nacme_email: \"ops@example.com\"\ntargets:\n",
    );
    for (i, server) in servers.iter().enumerate() {
        yaml.push_str(&format!(
            "  t{i}:\n    server: \"{}\"\n    api_token: {{ value: \"{}\" }}\n    network: \"{}\"\n",
            server.api(),
            server.token(),
            server.network
        ));
    }
    yaml
}

/// CPU seconds this machine spent busy so far (all processes, all cores).
fn busy_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .expect("cpu line")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time
    // is already counted in user and nice.
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / 100.0
}

/// `haloy deploy --all` to the first `n` servers after one warm-up run (which ships
/// the image): best wall seconds of ROUNDS, and the CPU seconds of that round.
fn time_fanout(servers: &[Server], n: usize) -> (f64, f64) {
    let path = servers[0].app_config(&format!("bench{n}"), &fanout_config(&servers[..n]));
    let deploy = || {
        let output = servers[0].haloy(&[
            "deploy",
            "--all",
            "--no-logs",
            "-c",
            &path.display().to_string(),
        ]);
        assert!(output.status.success(), "{}", describe(&output));
    };
    deploy();
    let mut best = (f64::MAX, 0.0);
    for _ in 0..ROUNDS {
        let cpu = busy_cpu_secs();
        let started = Instant::now();
        deploy();
        let wall = started.elapsed().as_secs_f64();
        if wall < best.0 {
            best = (wall, busy_cpu_secs() - cpu);
        }
    }
    best
}
/// A build context for a FROM-scratch image with `mib` MiB of random data, so
/// transfers are measurable; `www/index.html` is the one file that changes.
fn big_context(dir: &Path, mib: usize) {
    std::fs::copy("/bin/busybox", dir.join("busybox")).expect("busybox-static");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/health"), "ok\n").unwrap();
    let blob = run(Command::new("head").args(["-c", &format!("{}", mib << 20), "/dev/urandom"]));
    std::fs::write(dir.join("blob"), &blob.stdout).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nLABEL dev.haloy.test=1\nCOPY busybox /bin/busybox\nCOPY blob /blob\nCOPY www /www\nENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
}

/// Builds `haloy-bench:<tag>` from `dir` with `/` saying `body`.
fn build(dir: &Path, tag: &str, body: &str) -> String {
    std::fs::write(dir.join("www/index.html"), body).unwrap();
    let reference = format!("haloy-bench:{tag}");
    let out = run(Command::new("docker")
        .args(["build", "-q", "-t", &reference])
        .arg(dir));
    assert!(out.status.success(), "{}", describe(&out));
    reference
}

/// Seconds until `reference`, exported from this machine's Docker, is on the server
/// (its containers start), and the bytes sent.
async fn upload(server: &Server, reference: &str) -> (f64, u64) {
    let (repository, tag) = reference.rsplit_once(':').expect("repository:tag");
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .expect("connect");
    let started = Instant::now();
    // The image is on the server (uploaded and loaded) when its containers start;
    // what follows is the deploy itself, which the baseline does not do.
    let mut loaded = None;
    let report = client
        .deploy(
            &integration_tests::app_spec("bench-upload", repository, tag, &server.network),
            ImageChoice::UploadFromDocker(reference.to_string()),
            |p| {
                if matches!(&p, Progress::Phase { name, .. } if name == "starting")
                    && loaded.is_none()
                {
                    loaded = Some(started.elapsed().as_secs_f64());
                }
            },
        )
        .await
        .expect("deploy");
    assert!(report.succeeded, "{}", report.reason);
    (
        loaded.unwrap_or_else(|| started.elapsed().as_secs_f64()),
        report.uploaded_bytes,
    )
}

/// Seconds for `docker save <reference> | docker load` from this machine's Docker
/// into the server's.
fn save_load(server: &Server, reference: &str) -> f64 {
    let mut load = server.docker();
    load.args(["load", "-q"]).stdin(Stdio::piped());
    let started = Instant::now();
    let mut save = Command::new("docker")
        .args(["save", reference])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let mut load = load
        .stdin(save.stdout.take().expect("pipe"))
        .stdout(Stdio::null())
        .spawn()
        .expect("docker load");
    assert!(save.wait().expect("save").success(), "docker save failed");
    assert!(load.wait().expect("load").success(), "docker load failed");
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    build_image("v1", "v1", true);
    let servers = Server::start_isolated(8);
    // The fan-out measures deploys, not uploads: every server has the image.
    for server in &servers {
        save_load(server, "haloy-it:v1");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;

    // Fan-out.
    let mut fanout = Vec::new();
    for n in [1, 2, 4, 8] {
        let (wall, cpu) = time_fanout(&servers, n);
        fanout.push((n, wall, cpu));
    }
    let (one, one_cpu) = (fanout[0].1, fanout[0].2);
    let floor = |n: usize| one.max(n as f64 * one_cpu / cores);

    // Upload against docker save | docker load between the same engines.
    let dir = tempfile::tempdir().expect("dir");
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    big_context(&context, 48);
    // Both versions are built first, so v2 reuses v1's layers from the build cache as
    // on a workstation; layer ids are not reproducible across uncached rebuilds (COPY
    // stamps the directories it creates).
    let v1 = build(&context, "v1", "big v1");
    let v2 = build(&context, "v2", "big v2, one file changed");
    let server = &servers[0];
    let mut baseline = f64::MAX;
    let mut haloy = f64::MAX;
    let mut sent_first = 0;
    for _ in 0..ROUNDS {
        baseline = baseline.min(save_load(server, &v1));
        let out = run(server.docker().args(["rmi", &v1]));
        assert!(out.status.success(), "{}", describe(&out));
        let (secs, sent) = upload(server, &v1).await;
        haloy = haloy.min(secs);
        sent_first = sent;
        // The next round starts from a server without the image again.
        Client::connect(&server.api(), &Secret::new(server.token()))
            .await
            .expect("connect")
            .stop("bench-upload", true, false)
            .await
            .expect("stop");
        let images = run(server.docker().args(["images", "-q", "haloy-bench"]));
        let ids: Vec<String> = String::from_utf8_lossy(&images.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        run(server.docker().args(["rmi", "-f"]).args(&ids));
    }
    let size = {
        let out =
            run(Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", &v1]));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let ratio = baseline / haloy;

    // One small change on top: only that layer travels.
    upload(server, &v1).await;
    let (_, sent_second) = upload(server, &v2).await;

    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "measure", "value", "ratio", "vs floor"
    );
    for (n, secs, _) in &fanout {
        println!(
            "{:<34} {:>9.2}s {:>9.2}x {:>9.2}x",
            format!("deploy to {n} target(s)"),
            secs,
            secs / one,
            secs / floor(*n)
        );
    }
    println!(
        "{:<34} {:>9.2}s {:>10}",
        "docker save | docker load", baseline, "1.00x"
    );
    println!(
        "{:<34} {:>9.2}s {:>9.2}x",
        format!("haloy upload of {} MiB", size >> 20),
        haloy,
        ratio
    );
    println!(
        "{:<34} {:>10} {:>10}",
        "bytes sent, first upload", sent_first, ""
    );
    println!(
        "{:<34} {:>10} {:>9.4}x",
        "bytes sent, one-layer redeploy",
        sent_second,
        sent_second as f64 / sent_first.max(1) as f64
    );
    println!(
        "(floor: n x the {one_cpu:.2} CPU seconds one deploy used, over {cores} cores, or one deploy's time)"
    );

    let json = serde_json::json!({
        "cores": cores,
        "fanout": fanout.iter().map(|(n, s, cpu)| serde_json::json!({
            "targets": n,
            "seconds": s,
            "cpu_seconds": cpu,
            "ratio_to_one": s / one,
            "ratio_to_machine_floor": s / floor(*n),
        })).collect::<Vec<_>>(),
        "upload": {"image_bytes": size, "baseline_seconds": baseline, "haloy_seconds": haloy, "throughput_ratio": ratio},
        "one_layer_redeploy": {"first_upload_bytes": sent_first, "redeploy_bytes": sent_second},
    });
    integration_tests::write_bench_json("deploy", &json);
    let _ = Command::new("docker")
        .args(["rmi", "-f", &v1, &v2])
        .output();
    drop(servers);
}
