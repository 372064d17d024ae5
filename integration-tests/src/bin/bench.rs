//! Benchmarks of the workstation-to-servers path, run on demand:
//!
//!   cargo run --release -p integration-tests --bin bench
//!
//! Needs the binaries built first (`cargo build --release --workspace --bins`).
//! Prints a table and writes `target/bench/deploy.json`. Figures are ratios against a
//! baseline measured in the same run, because these machines are shared and noisy:
//! - fan-out: wall time of `haloy deploy` to 1, 2, 4 and 8 servers, against 1 server
//!   (goal: 8 within 1.3x of one);
//! - upload: seconds to save an image, ship it to a server that lacks it through the
//!   Deploy stream and load it there (until its containers start), against
//!   `docker save` + `docker load` of the same image (goal: ≥ 0.8x the baseline's
//!   throughput);
//! - one-layer redeploy: bytes uploaded when only a small file changed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use haloy_api::spec::Secret;
use haloy_controller::client::{Client, ImageChoice, Progress};
use integration_tests::{Server, build_image, describe, run};

const ROUNDS: usize = 2;

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

/// Seconds for `haloy deploy --all` to the first `n` servers, best of ROUNDS.
fn time_fanout(servers: &[Server], n: usize) -> f64 {
    let path = servers[0].app_config(&format!("bench{n}"), &fanout_config(&servers[..n]));
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let output = servers[0].haloy(&[
            "deploy",
            "--all",
            "--no-logs",
            "-c",
            &path.display().to_string(),
        ]);
        assert!(output.status.success(), "{}", describe(&output));
        best = best.min(started.elapsed().as_secs_f64());
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

/// Builds `haloy-bench:<tag>` from `dir` with `/` saying `body` and saves it to
/// `archive`; returns the seconds `docker save` took.
fn build_and_save(dir: &Path, tag: &str, body: &str, archive: &Path) -> f64 {
    std::fs::write(dir.join("www/index.html"), body).unwrap();
    let reference = format!("haloy-bench:{tag}");
    let out = run(Command::new("docker")
        .args(["build", "-q", "-t", &reference])
        .arg(dir));
    assert!(out.status.success(), "{}", describe(&out));
    let started = Instant::now();
    docker(&["save", "-o", &archive.display().to_string(), &reference]);
    started.elapsed().as_secs_f64()
}

fn docker(args: &[&str]) {
    let out = run(Command::new("docker").args(args));
    assert!(out.status.success(), "docker {args:?}: {}", describe(&out));
}

async fn upload(server: &Server, tag: &str, archive: &Path) -> (f64, u64) {
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .expect("connect");
    let started = Instant::now();
    // The image is on the server (uploaded and loaded) when its containers start;
    // what follows is the deploy itself, which the baseline does not do.
    let mut loaded = None;
    let report = client
        .deploy(
            &integration_tests::app_spec("bench-upload", "haloy-bench", tag, &server.network),
            ImageChoice::Upload(archive.to_path_buf()),
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

#[tokio::main]
async fn main() {
    build_image("v1", "v1", true);
    let servers = Server::start_many(8);

    // Fan-out.
    let mut fanout = Vec::new();
    for n in [1, 2, 4, 8] {
        fanout.push((n, time_fanout(&servers, n)));
    }
    let one = fanout[0].1;

    // Upload against docker save + docker load of the same image.
    let dir = tempfile::tempdir().expect("dir");
    let context = dir.path().join("context");
    std::fs::create_dir_all(&context).unwrap();
    big_context(&context, 48);
    // Both versions are built before anything is removed, so v2 reuses v1's layers
    // from the build cache as a workstation would; layer ids are not reproducible
    // across uncached rebuilds (COPY stamps the directories it creates).
    let archive = dir.path().join("v1.tar");
    let save = build_and_save(&context, "v1", "big v1", &archive);
    let archive2 = dir.path().join("v2.tar");
    build_and_save(&context, "v2", "big v2, one file changed", &archive2);
    // The (shared) server must lack both, as a remote server would.
    docker(&["rmi", "haloy-bench:v1", "haloy-bench:v2"]);
    let started = Instant::now();
    docker(&["load", "-q", "-i", &archive.display().to_string()]);
    let baseline = save + started.elapsed().as_secs_f64();
    docker(&["rmi", "haloy-bench:v1"]);
    let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    // The server lacks the image: every layer travels, then haloyd loads it.
    let (upload_secs, sent_first) = upload(&servers[0], "v1", &archive).await;
    let haloy_secs = save + upload_secs;
    let ratio = baseline / haloy_secs;

    // One small change on top: only that layer travels.
    let (_, sent_second) = upload(&servers[0], "v2", &archive2).await;

    println!("{:<34} {:>10} {:>10}", "measure", "value", "ratio");
    for (n, secs) in &fanout {
        println!(
            "{:<34} {:>9.2}s {:>9.2}x",
            format!("deploy to {n} target(s)"),
            secs,
            secs / one
        );
    }
    println!(
        "{:<34} {:>9.2}s {:>10}",
        "docker save + load (baseline)", baseline, "1.00x"
    );
    println!(
        "{:<34} {:>9.2}s {:>9.2}x",
        format!("haloy save + upload of {} MiB", size >> 20),
        haloy_secs,
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

    let json = serde_json::json!({
        "fanout_seconds": fanout.iter().map(|(n, s)| serde_json::json!({"targets": n, "seconds": s, "ratio_to_one": s / one})).collect::<Vec<_>>(),
        "upload": {"archive_bytes": size, "baseline_seconds": baseline, "haloy_seconds": haloy_secs, "throughput_ratio": ratio},
        "one_layer_redeploy": {"first_upload_bytes": sent_first, "redeploy_bytes": sent_second},
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(
        out.join("deploy.json"),
        serde_json::to_string_pretty(&json).expect("json"),
    )
    .expect("write");
    println!("wrote target/bench/deploy.json");
    let _ = Command::new("docker")
        .args(["rmi", "-f", "haloy-bench:v1", "haloy-bench:v2"])
        .output();
    drop(servers);
}
