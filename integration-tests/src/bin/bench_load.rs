//! Load on one haloyd, run on demand:
//!
//!   cargo build --release --workspace --bins
//!   cargo run --release -p integration-tests --bin bench-load
//!
//! Prints a table with PASS or FAIL per criterion, writes `target/bench/load.json`
//! and exits with 1 when a criterion fails. Figures are set against baselines
//! measured in the same run (these machines are shared and noisy):
//! - 20 apps deployed at once (20 `haloy deploy` processes started together), first
//!   deploys and then redeploys: every one must succeed. Their wall time is set
//!   against one app's `haloy deploy` alone and against the machine's floor, 20
//!   `docker run`s of the same image started together until each answers its first
//!   200 (and one alone).
//! - a long history: app `many` has 10,000 deployments recorded, app `few` 10, both
//!   written while haloyd is stopped through its store API (`Store::put`, which is
//!   how a deploy records itself: each record flushed, the app's records pruned).
//!   Redeploys of the two, interleaved: `many`'s median must be at most 1.2 times
//!   `few`'s, and the database directory must stay under [`DB_BOUND`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haloy_api::spec::{AppSpec, History, ImageSource, Secret};
use haloy_controller::client::Client;
use haloy_controller::deployment::ImageChoice;
use haloyd::store::{DeploymentRecord, ImageOrigin, JournalPhase, Store, StoredSpec};
use integration_tests::{ImageFamily, Server, describe, http_get, run};

const APPS: usize = 20;
const ROUNDS: usize = 3;
const HISTORY_ROUNDS: usize = 7;
const MANY: usize = 10_000;
const FEW: usize = 10;
/// A deploy with a long history may take at most this many times one with a short one.
const HISTORY_RATIO: f64 = 1.2;
/// The database may hold at most this many bytes after 10,000 deployments of an app.
/// The store keeps about 40 records per app (20 succeeded, 20 failed, more when the
/// history keeps more), a few KB of JSON each; the rest is sled's log-structured
/// file, which grows in 512 KiB segments and reuses them.
const DB_BOUND: u64 = 16 << 20;

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn app_yaml(server: &Server, name: &str, repository: &str, tag: &str) -> String {
    format!(
        "name: \"{name}\"\nimage: {{ repository: \"{repository}\", tag: \"{tag}\", source: \"local\", history: {{ strategy: \"none\" }} }}\nreplicas: 1\nhealth_check_path: \"/health\"\nnetwork: \"{}\"\ndomains: [{{ domain: \"{name}.test\" }}]\n",
        server.network
    )
}

/// `haloy deploy` of every config at once; the wall time until the last ends and
/// how many failed (with the output of the first failure).
fn deploy_at_once(server: &Server, configs: &[PathBuf]) -> (f64, usize, String) {
    let started = Instant::now();
    let children: Vec<Child> = configs
        .iter()
        .map(|c| server.spawn_haloy(&["deploy", "--no-logs", "-c", &c.display().to_string()]))
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("haloy"))
        .collect();
    let secs = seconds(started.elapsed());
    let failed: Vec<_> = outputs.iter().filter(|o| !o.status.success()).collect();
    let first = failed.first().map(|o| describe(o)).unwrap_or_default();
    (secs, failed.len(), first)
}

/// Containers the floor measurement started, removed when dropped (also on a panic).
struct Floor(Vec<String>);

impl Drop for Floor {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&self.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `n` `docker run`s of `image` started together, until each answers 200 on /health.
fn docker_runs(image: &str, n: usize) -> f64 {
    let mut floor = Floor(Vec::new());
    let started = Instant::now();
    let children: Vec<Child> = (0..n)
        .map(|_| {
            Command::new("docker")
                .args(["run", "-d", "--init", "-p", "127.0.0.1::8080", "--label"])
                .arg("dev.haloy.test=1")
                .arg(image)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("docker run")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("docker run");
        assert!(out.status.success(), "{}", describe(&out));
        floor
            .0
            .push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    for id in &floor.0 {
        let port = run(Command::new("docker").args(["port", id, "8080"]));
        let port: u16 = String::from_utf8_lossy(&port.stdout)
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .expect("published port");
        while !http_get(port, "localhost", "/health").is_ok_and(|(code, _, _)| code == 200) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{id} never answered"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    seconds(started.elapsed())
}

/// Bytes of every file below `dir`.
fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn spec(server: &Server, app: &str, repository: &str, tag: &str) -> AppSpec {
    let mut spec = integration_tests::app_spec(app, repository, tag, &server.network);
    spec.image.source = ImageSource::Local;
    spec.image.history = History::None;
    spec
}

/// Records `count` finished deployments of `spec` through the store, one a minute up
/// to an hour ago, every fifth a failure; returns the seconds it took.
fn seed(store: &Store, server: &Server, spec: &AppSpec, count: usize) -> f64 {
    let started = Instant::now();
    let now = haloy_api::ids::now_ms();
    let first = now - 3_600_000 - count as u64 * 60_000;
    let mut previous: Option<String> = None;
    for n in 0..count {
        let at = first + n as u64 * 60_000;
        let id = haloy_api::ids::deployment_id(at, previous.as_deref(), &server.instance);
        let failed = n % 5 == 4;
        let record = DeploymentRecord {
            id: id.clone(),
            app: spec.name.clone(),
            image: format!("{}:{}", spec.image.repository, spec.image.tag),
            phase: if failed {
                JournalPhase::Failed
            } else {
                JournalPhase::Succeeded
            },
            reason: if failed {
                "replica 1 never became healthy".into()
            } else {
                String::new()
            },
            started_at_ms: at,
            finished_at_ms: Some(at + 1500),
            previous: previous.clone(),
            containers: Vec::new(),
            stopping: Vec::new(),
            image_origin: ImageOrigin::Server,
            canary: None,
            note: String::new(),
            spec: StoredSpec::from(spec),
        };
        store.put(&record).expect("record a deployment");
        previous = Some(id);
    }
    seconds(started.elapsed())
}

async fn timed_deploy(server: &Server, spec: &AppSpec) -> f64 {
    let started = Instant::now();
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .expect("connect");
    let report = client
        .deploy(spec, ImageChoice::Existing, |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- haloyd.log\n{}", server.log()));
    assert!(report.succeeded, "{}", report.reason);
    seconds(started.elapsed())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

#[tokio::main]
async fn main() {
    let family = ImageFamily::new("load");
    let image = family.build("v1", "v1");
    family.build("v2", "v2");
    let repository = family.repository.clone();
    let server = Server::start();

    // (a) 20 apps at once, against one app and against Docker alone.
    let config =
        |name: &str, tag: &str| server.app_config(name, &app_yaml(&server, name, &repository, tag));
    let names: Vec<String> = (0..APPS).map(|n| format!("load{n:02}")).collect();
    let (one_first, failed, output) = deploy_at_once(&server, &[config("solo", "v1")]);
    assert_eq!(failed, 0, "one app's deploy failed:\n{output}");
    let configs: Vec<PathBuf> = names.iter().map(|n| config(n, "v1")).collect();
    let (all_first, mut failures, mut first_failure) = deploy_at_once(&server, &configs);
    let (mut one_re, mut all_re) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let tag = if round % 2 == 0 { "v2" } else { "v1" };
        let (secs, failed, output) = deploy_at_once(&server, &[config("solo", tag)]);
        assert_eq!(failed, 0, "one app's redeploy failed:\n{output}");
        one_re.push(secs);
        let configs: Vec<PathBuf> = names.iter().map(|n| config(n, tag)).collect();
        let (secs, failed, output) = deploy_at_once(&server, &configs);
        all_re.push(secs);
        failures += failed;
        if first_failure.is_empty() {
            first_failure = output;
        }
    }
    let (one_re, all_re) = (median(one_re), median(all_re));
    let floor_one = median((0..ROUNDS).map(|_| docker_runs(&image, 1)).collect());
    let floor_all = median((0..ROUNDS).map(|_| docker_runs(&image, APPS)).collect());
    let all_succeeded = failures == 0;

    // (b) A long history: seeded while haloyd is stopped (sled allows one process).
    let few = spec(&server, "few", &repository, "v1");
    let many = spec(&server, "many", &repository, "v1");
    let stopped = server.haloyadm(&["stop", "--local-install"]);
    assert!(stopped.status.success(), "{}", describe(&stopped));
    let db_dir = server.data_dir().join("db");
    let (seed_secs, kept, db_seeded) = {
        let store = Store::open(&db_dir).expect("open the store");
        seed(&store, &server, &few, FEW);
        let secs = seed(&store, &server, &many, MANY);
        let kept = store.list("many").expect("list").len();
        (secs, kept, du(&db_dir))
    };
    server.start_daemons();
    let (mut with_few, mut with_many) = (Vec::new(), Vec::new());
    // The first deploy of each creates its HAProxy backend (a reload): not timed.
    timed_deploy(&server, &few).await;
    timed_deploy(&server, &many).await;
    for round in 0..HISTORY_ROUNDS {
        let tag = if round % 2 == 0 { "v2" } else { "v1" };
        with_few.push(timed_deploy(&server, &spec(&server, "few", &repository, tag)).await);
        with_many.push(timed_deploy(&server, &spec(&server, "many", &repository, tag)).await);
    }
    let (with_few, with_many) = (median(with_few), median(with_many));
    let history_ratio = with_many / with_few;
    let history_ok = history_ratio <= HISTORY_RATIO;
    let db_end = du(&db_dir);
    let db_ok = db_seeded.max(db_end) < DB_BOUND;
    drop(server);

    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "{:<44} {:>9} {:>10} {:>10}",
        "20 apps at once on one haloyd", "seconds", "vs one", "vs floor"
    );
    let row = |name: &str, secs: f64, one: f64, floor: f64| {
        println!(
            "{name:<44} {secs:>9.3} {:>9.2}x {:>9.2}x",
            secs / one,
            secs / floor
        );
    };
    row("one app, first deploy", one_first, one_first, floor_one);
    row("20 apps, first deploy", all_first, one_first, floor_all);
    row("one app, redeploy", one_re, one_re, floor_one);
    row("20 apps, redeploy", all_re, one_re, floor_all);
    row(
        "floor: 1 docker run until 200",
        floor_one,
        floor_one,
        floor_one,
    );
    row(
        "floor: 20 docker runs at once until 200",
        floor_all,
        floor_one,
        floor_all,
    );
    println!(
        "{:<44} {:>9} {:>21} {}",
        "every deploy of the 20 succeeded",
        format!("{failures} fail"),
        "",
        verdict(all_succeeded)
    );
    println!();
    println!(
        "{:<44} {:>9} {:>10}",
        "history of one app", "value", "vs 10"
    );
    println!(
        "{:<44} {:>8.1}s {:>10}",
        "recording 10,000 deployments (Store::put)", seed_secs, ""
    );
    println!(
        "{:<44} {:>8.3}s {:>10}",
        "redeploy with 10 recorded (median)", with_few, "1.00x"
    );
    println!(
        "{:<44} {:>8.3}s {:>9.2}x {} (at most {HISTORY_RATIO}x)",
        "redeploy with 10,000 recorded (median)",
        with_many,
        history_ratio,
        verdict(history_ok)
    );
    println!(
        "{:<44} {:>9} {:>10}",
        "records kept of the 10,000", kept, ""
    );
    println!(
        "{:<44} {:>6.2}MiB {:>10} {} (under {:.0} MiB)",
        "database after 10,000 / at the end",
        mib(db_seeded.max(db_end)),
        format!("{:.2}/{:.2}", mib(db_seeded), mib(db_end)),
        verdict(db_ok),
        mib(DB_BOUND)
    );
    if !first_failure.is_empty() {
        println!("first failed deploy:\n{first_failure}");
    }

    let json = serde_json::json!({
        "apps": APPS,
        "one_app_first_seconds": one_first,
        "all_apps_first_seconds": all_first,
        "one_app_redeploy_seconds": one_re,
        "all_apps_redeploy_seconds": all_re,
        "floor_one_docker_run_seconds": floor_one,
        "floor_all_docker_runs_seconds": floor_all,
        "failed_deploys": failures,
        "seed_10000_seconds": seed_secs,
        "redeploy_10_records_seconds": with_few,
        "redeploy_10000_records_seconds": with_many,
        "history_ratio": history_ratio,
        "records_kept": kept,
        "db_bytes_after_seeding": db_seeded,
        "db_bytes_at_end": db_end,
        "db_bound_bytes": DB_BOUND,
        "pass": {"all_succeeded": all_succeeded, "history_ratio": history_ok, "db_size": db_ok},
    });
    integration_tests::write_bench_json("load", &json);
    drop(family);
    if !(all_succeeded && history_ok && db_ok) {
        std::process::exit(1);
    }
}
