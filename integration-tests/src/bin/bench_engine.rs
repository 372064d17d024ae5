//! Benchmarks of haloyd's own work, run on demand:
//!
//!   cargo build --release --workspace --bins
//!   cargo run --release -p integration-tests --bin bench-engine
//!
//! Prints a table and writes `target/bench/engine.json`. Figures are set against a
//! floor measured in the same run on the same machine (these machines are shared and
//! noisy):
//! - a one-replica redeploy of an image already on the server, phase by phase (CLI
//!   start, connect, accepted, image, container start, first healthy, switch,
//!   retire), against `docker run` of the same image until its first 200 (goal:
//!   haloyd adds at most 0.15 s above that floor), and what Docker alone takes to
//!   stop and remove the old container, which a redeploy must also do;
//! - haloyd's restart with 100 apps: until its API answers (routes are synced before
//!   it serves) and until every app's recovery is done, against a restart with none;
//!   and with HAProxy killed too, until all 100 apps answer again;
//! - a reboot of the server's Docker Engine: until the engine answers, until the
//!   app's containers run again, and until the app answers through HAProxy after
//!   haloyd starts.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use haloy_api::spec::Secret;
use haloy_controller::client::Client;
use haloy_controller::deployment::{ImageChoice, Progress};
use integration_tests::{ImageFamily, Server, bin, describe, http_get, run};

const ROUNDS: usize = 5;

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `docker run` of `reference` until its first 200 on /health (the floor of any
/// deploy of it), and `docker stop` + `docker rm` of that container (what retiring
/// an old replica costs Docker alone).
fn docker_floors(reference: &str) -> (f64, f64) {
    let started = Instant::now();
    let out = run(Command::new("docker").args([
        "run",
        "-d",
        "--init",
        "-p",
        "127.0.0.1::8080",
        "--label",
        "dev.haloy.test=1",
        reference,
    ]));
    assert!(out.status.success(), "{}", describe(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = run(Command::new("docker").args(["port", &id, "8080"]));
    let port: u16 = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("published port");
    loop {
        if http_get(port, "localhost", "/health").is_ok_and(|(code, _, _)| code == 200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = seconds(started.elapsed());
    let stopping = Instant::now();
    run(Command::new("docker").args(["stop", &id]));
    run(Command::new("docker").args(["rm", &id]));
    (secs, seconds(stopping.elapsed()))
}

/// Seconds from the start of the deploy to each phase the server reported.
#[derive(Debug, Default, Clone)]
struct Phases {
    connect: f64,
    accepted: f64,
    image: f64,
    started: f64,
    healthy: f64,
    switched: f64,
    done: f64,
}

async fn timed_deploy(server: &Server, repository: &str, tag: &str) -> Phases {
    let begin = Instant::now();
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .expect("connect");
    let mut phases = Phases {
        connect: seconds(begin.elapsed()),
        ..Phases::default()
    };
    let mut spec = integration_tests::app_spec("phases", repository, tag, &server.network);
    spec.image.source = haloy_api::spec::ImageSource::Local;
    let report = client
        .deploy(&spec, ImageChoice::Existing, |progress| {
            let now = seconds(begin.elapsed());
            match &progress {
                Progress::Accepted { .. } => phases.accepted = now,
                Progress::Phase { name, .. } => match name.as_str() {
                    "starting" => phases.image = now,
                    "health checking" => phases.started = now,
                    "switching traffic" => phases.healthy = now,
                    "retiring old" => phases.switched = now,
                    _ => {}
                },
                _ => {}
            }
        })
        .await
        .expect("deploy");
    assert!(report.succeeded, "{}", report.reason);
    phases.done = seconds(begin.elapsed());
    if phases.switched == 0.0 {
        phases.switched = phases.done;
    }
    phases
}

/// The wall time of `haloy` starting, reading the config and resolving it (what a
/// deploy does before it connects).
fn cli_start(server: &Server, config: &Path) -> f64 {
    let started = Instant::now();
    let out = server.haloy(&["validate-config", "-c", &config.display().to_string()]);
    assert!(out.status.success(), "{}", describe(&out));
    seconds(started.elapsed())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn app_yaml(server: &Server, name: &str, repository: &str) -> String {
    format!(
        "name: \"{name}\"\nimage: {{ repository: \"{repository}\", tag: \"v1\", source: \"local\", history: {{ strategy: \"none\" }} }}\nreplicas: 1\nhealth_check_path: \"/health\"\nnetwork: \"{}\"\ndomains: [{{ domain: \"{name}.test\" }}]\n",
        server.network
    )
}

/// Seconds `haloyadm start` takes to return (haloyd answers once routes are synced).
fn timed_start(server: &Server) -> f64 {
    let started = Instant::now();
    server.start_daemons();
    seconds(started.elapsed())
}

/// Seconds until `check` holds, polled every 10 ms, at most 120 s.
fn until(started: Instant, what: &str, mut check: impl FnMut() -> bool) -> f64 {
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    seconds(started.elapsed())
}

#[tokio::main]
async fn main() {
    let family = ImageFamily::new("bench");
    let image = family.build("v1", "v1");
    family.build("v2", "v2");
    let server = Server::start();
    let haloyd = run(Command::new(bin("haloyd")).arg("--version"));
    let crash_points = String::from_utf8_lossy(&haloyd.stdout).contains("crash points");

    // A one-replica redeploy, phase by phase, against docker run until the first 200.
    let config = server.app_config("phases", &app_yaml(&server, "phases", &family.repository));
    timed_deploy(&server, &family.repository, "v1").await;
    let mut rounds = Vec::new();
    let mut floors = Vec::new();
    let mut stops = Vec::new();
    let mut starts = Vec::new();
    for round in 0..ROUNDS {
        let (floor, stop) = docker_floors(&image);
        floors.push(floor);
        stops.push(stop);
        starts.push(cli_start(&server, &config));
        let tag = if round % 2 == 0 { "v2" } else { "v1" };
        rounds.push(timed_deploy(&server, &family.repository, tag).await);
    }
    let floor = median(floors);
    let stop_floor = median(stops);
    let cli = median(starts);
    let pick = |f: fn(&Phases) -> f64| median(rounds.iter().map(f).collect());
    let phases = [
        ("CLI start (config resolved)", cli),
        ("connect", pick(|p| p.connect)),
        ("accepted", pick(|p| p.accepted - p.connect)),
        ("image ready", pick(|p| p.image - p.accepted)),
        ("container started", pick(|p| p.started - p.image)),
        ("first healthy", pick(|p| p.healthy - p.started)),
        ("switched", pick(|p| p.switched - p.healthy)),
        ("old retired, recorded", pick(|p| p.done - p.switched)),
    ];
    let deploy = pick(|p| p.done);
    let start_to_healthy = pick(|p| p.healthy - p.image);

    // haloyd's restart with 100 apps.
    let none = {
        server.kill_haloyd();
        median(
            (0..3)
                .map(|_| {
                    let secs = timed_start(&server);
                    server.kill_haloyd();
                    secs
                })
                .collect(),
        )
    };
    server.start_daemons();
    let apps: Vec<String> = (0..100).map(|n| format!("app{n}")).collect();
    for chunk in apps.chunks(10) {
        let children: Vec<_> = chunk
            .iter()
            .map(|name| {
                let path = server.app_config(name, &app_yaml(&server, name, &family.repository));
                server.spawn_haloy(&["deploy", "--no-logs", "-c", &path.display().to_string()])
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("haloy");
            assert!(out.status.success(), "{}", describe(&out));
        }
    }
    server.kill_haloyd();
    let began = Instant::now();
    let api_back = timed_start(&server);
    let last = server.app_config(&apps[99], &app_yaml(&server, &apps[99], &family.repository));
    let recovered = until(began, "every app's recovery to end", || {
        let out = server.haloy(&["status", "--json", "-c", &last.display().to_string()]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .is_ok_and(|s| s["activity"].is_null())
    });
    server.kill_haloyd();
    server.kill_haproxy();
    let began = Instant::now();
    server.start_daemons();
    let all_serving = until(began, "all 100 apps to answer", || {
        apps.iter().all(|a| {
            http_get(server.http_port, &format!("{a}.test"), "/").is_ok_and(|(c, _, _)| c == 200)
        })
    });

    // A reboot of the server's own Docker Engine.
    drop(server);
    let mut servers = Server::start_isolated(1);
    let isolated = &mut servers[0];
    isolated.load_image(&image);
    let config = isolated.app_config("reboot", &app_yaml(isolated, "reboot", &family.repository));
    isolated.deploy(&config);
    isolated.kill_haloyd();
    isolated.kill_haproxy();
    let began = Instant::now();
    isolated.restart_engine();
    let engine_back = seconds(began.elapsed());
    let containers_back = until(began, "the container to run again", || {
        let out =
            run(isolated
                .docker()
                .args(["ps", "-q", "--filter", "label=dev.haloy.app=reboot"]));
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
    isolated.start_daemons();
    let serving = until(began, "the app to answer", || {
        isolated.get("reboot.test", "/").0 == 200
    });
    drop(servers);

    println!("{:<40} {:>9} {:>12}", "one-replica redeploy", "seconds", "");
    for (name, secs) in &phases {
        println!("{name:<40} {secs:>9.3}");
    }
    println!(
        "{:<40} {:>9.3} {:>12}",
        "deploy, connect to recorded", deploy, ""
    );
    println!(
        "{:<40} {:>9.3} {:>12}",
        "floor: docker run until the first 200", floor, ""
    );
    println!(
        "{:<40} {:>9.3} {:>11.2}x",
        "deploy above the floor",
        deploy - floor,
        deploy / floor
    );
    println!(
        "{:<40} {:>9.3} {:>11.2}x",
        "container start to healthy",
        start_to_healthy,
        start_to_healthy / floor
    );
    println!();
    println!(
        "{:<40} {:>9} {:>12}",
        "haloyd restart", "seconds", "vs no apps"
    );
    println!("{:<40} {none:>9.3} {:>12}", "API back, no apps", "1.00x");
    println!(
        "{:<40} {api_back:>9.3} {:>11.2}x",
        "API back (routes synced), 100 apps",
        api_back / none
    );
    println!(
        "{:<40} {recovered:>9.3} {:>11.2}x",
        "every app recovered, 100 apps",
        recovered / none
    );
    println!(
        "{:<40} {all_serving:>9.3} {:>11.2}x",
        "HAProxy killed too: all 100 answer",
        all_serving / none
    );
    println!();
    println!(
        "{:<40} {:>9} {:>12}",
        "Docker Engine reboot", "seconds", "vs engine"
    );
    println!(
        "{:<40} {engine_back:>9.3} {:>12}",
        "engine answers", "1.00x"
    );
    println!(
        "{:<40} {containers_back:>9.3} {:>11.2}x",
        "app container runs again",
        containers_back / engine_back
    );
    println!(
        "{:<40} {serving:>9.3} {:>11.2}x",
        "app answers through HAProxy",
        serving / engine_back
    );
    if crash_points {
        println!("(haloyd was built with crash points, which do nothing unless armed)");
    }

    let json = serde_json::json!({
        "redeploy_phases": phases.iter().map(|(n, s)| serde_json::json!({"phase": n, "seconds": s})).collect::<Vec<_>>(),
        "deploy_seconds": deploy,
        "docker_run_floor_seconds": floor,
        "docker_stop_rm_seconds": stop_floor,
        "deploy_above_floor_seconds": deploy - floor,
        "restart": {"no_apps_seconds": none, "api_back_100_apps_seconds": api_back, "recovered_100_apps_seconds": recovered, "haproxy_too_all_serving_seconds": all_serving},
        "reboot": {"engine_seconds": engine_back, "containers_seconds": containers_back, "serving_seconds": serving},
    });
    integration_tests::write_bench_json("engine", &json);
    drop(family);
}
