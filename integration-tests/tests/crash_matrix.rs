//! The crash matrix. haloyd (built with its crash points, see
//! `agent/src/engine/failpoint.rs`) is paused at every crash point of a deploy — and
//! of its own recovery — and SIGKILLed there (with HAProxy too, in one batch), then
//! started again; in another batch HAProxy alone is killed at each point and the
//! deploy goes on.
//!
//! The invariant checked for every case: the app is served by exactly one
//! deployment — the old one before the commit point (`deploy::switched`), the new one
//! from it on, nothing for a first deploy cut off before it — with all its replicas
//! running and in HAProxy, nothing left of the other (containers, HAProxy servers, host
//! map entries), `haloy status` agreeing with Docker and HAProxy, and the next deploy
//! succeeding. Rolling redeploys run under hey load and lose no request when only
//! haloyd dies (HAProxy serves meanwhile); the other cases report their gap.
//!
//! Run alone, printing the table:
//! `cargo test -p integration-tests --test crash_matrix -- --nocapture --test-threads 1`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use integration_tests::{ImageFamily, Load, Server, Wait, bin, describe, eventually, run};

/// Every crash point of a deploy, in order.
const DEPLOY_POINTS: [&str; 9] = [
    "deploy::accepted",
    "deploy::image_ready",
    "deploy::old_stopped",
    "deploy::replicas_started",
    "deploy::healthy",
    "deploy::servers_added",
    "deploy::switched",
    "deploy::drained",
    "deploy::retired",
];
/// Points at or after the commit point: the new version wins.
const COMMITTED: [&str; 3] = ["deploy::switched", "deploy::drained", "deploy::retired"];
/// Crash points of recovery; their deploys were cut off at `deploy::servers_added`.
const RECOVER_POINTS: [&str; 3] = ["recover::planned", "recover::restored", "recover::retired"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Rolling,
    Replace,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Self::Rolling => "rolling",
            Self::Replace => "replace",
        }
    }
}

/// What dies at the crash point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// haloyd, then it starts again.
    Haloyd,
    /// haloyd and HAProxy at once, then haloyd starts again (and starts HAProxy).
    Both,
    /// HAProxy only; haloyd starts it again, and the paused deploy goes on.
    Haproxy,
}

struct Case {
    app: String,
    strategy: Strategy,
    /// A first deploy (nothing served before) or a redeploy of v1.
    first: bool,
    replicas: usize,
    deploy_point: &'static str,
    recover_point: Option<&'static str>,
}

impl Case {
    fn new(
        strategy: Strategy,
        first: bool,
        replicas: usize,
        deploy_point: &'static str,
        recover_point: Option<&'static str>,
    ) -> Self {
        let short = |point: &str| point.split("::").nth(1).unwrap_or(point).replace('_', "-");
        let app = format!(
            "{}-{}-{}{}",
            &strategy.name()[..3],
            if first { "new" } else { "re" },
            short(deploy_point),
            recover_point
                .map(|r| format!("-r-{}", short(r)))
                .unwrap_or_default()
        );
        Self {
            app,
            strategy,
            first,
            replicas,
            deploy_point,
            recover_point,
        }
    }

    fn host(&self) -> String {
        format!("{}.test", self.app)
    }

    /// The version that must serve once everything settled.
    fn winner(&self, kill: Kill) -> Option<&'static str> {
        let committed = self.recover_point.is_none() && COMMITTED.contains(&self.deploy_point);
        if kill == Kill::Haproxy || committed {
            Some("v2")
        } else if self.first {
            None
        } else {
            Some("v1")
        }
    }

    fn point(&self) -> String {
        match self.recover_point {
            Some(recover) => format!("{} + {recover}", self.deploy_point),
            None => self.deploy_point.to_string(),
        }
    }
}

/// The deploy crash points a deploy of `strategy` reaches.
fn deploy_points(strategy: Strategy, first: bool) -> Vec<&'static str> {
    DEPLOY_POINTS
        .into_iter()
        .filter(|p| *p != "deploy::old_stopped" || strategy == Strategy::Replace)
        // Only a rolling redeploy has old servers to drain.
        .filter(|p| *p != "deploy::drained" || (strategy == Strategy::Rolling && !first))
        .collect()
}

/// Every deploy point for first deploys and redeploys, and every recovery point.
fn matrix(strategy: Strategy) -> Vec<Case> {
    let mut cases = Vec::new();
    for first in [true, false] {
        for point in deploy_points(strategy, first) {
            cases.push(Case::new(strategy, first, 3, point, None));
        }
        for recover in RECOVER_POINTS {
            cases.push(Case::new(
                strategy,
                first,
                3,
                "deploy::servers_added",
                Some(recover),
            ));
        }
    }
    cases
}

/// Redeploys of both strategies at every deploy point, with two replicas.
fn redeploys() -> Vec<Case> {
    [Strategy::Rolling, Strategy::Replace]
        .into_iter()
        .flat_map(|s| {
            deploy_points(s, false)
                .into_iter()
                .map(move |p| Case::new(s, false, 2, p, None))
        })
        .collect()
}

struct Row {
    point: String,
    strategy: Strategy,
    first: bool,
    outcome: String,
    failed: Option<(u64, u64)>,
}

#[test]
fn rolling_deploys_survive_haloyd_killed_at_every_crash_point() {
    let rows = run_matrix(
        "rolling, haloyd killed",
        matrix(Strategy::Rolling),
        Kill::Haloyd,
    );
    for row in &rows {
        if let Some((failed, total)) = row.failed {
            assert_eq!(
                failed, 0,
                "{}: {failed} of {total} requests failed while haloyd was dead",
                row.point
            );
        }
    }
}

#[test]
fn replace_deploys_survive_haloyd_killed_at_every_crash_point() {
    run_matrix(
        "replace, haloyd killed",
        matrix(Strategy::Replace),
        Kill::Haloyd,
    );
}

#[test]
fn deploys_survive_haloyd_and_haproxy_killed_together() {
    run_matrix(
        "haloyd and HAProxy killed together",
        redeploys(),
        Kill::Both,
    );
}

#[test]
fn deploys_go_on_after_haproxy_is_killed_at_every_crash_point() {
    run_matrix(
        "HAProxy killed, the deploy goes on",
        redeploys(),
        Kill::Haproxy,
    );
}

fn run_matrix(title: &str, cases: Vec<Case>, kill: Kill) -> Vec<Row> {
    // Dropped after the server, whose containers use its images.
    let family = ImageFamily::new("crash");
    for version in ["v1", "v2", "v3"] {
        family.build(version, version);
    }
    let server = Server::start();
    let version = run(Command::new(bin("haloyd")).arg("--version"));
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("crash points"),
        "haloyd was built without its crash points; build the workspace, whose integration-tests crate turns on haloyd's `failpoints` feature:\n{}",
        describe(&version)
    );
    let configs = |tag: &str| -> BTreeMap<String, PathBuf> {
        cases
            .iter()
            .map(|case| {
                let path = server.app_config(
                    &format!("{}-{tag}", case.app),
                    &config(&server, &family.repository, case, tag),
                );
                (case.app.clone(), path)
            })
            .collect()
    };
    let (v1, v2, v3) = (configs("v1"), configs("v2"), configs("v3"));

    let redeployed: Vec<&Case> = cases.iter().filter(|c| !c.first).collect();
    for (case, output) in deploy_all(&server, &redeployed, &v1) {
        assert!(
            output.status.success(),
            "v1 of {}:\n{}",
            case.app,
            describe(&output)
        );
        assert_eq!(server.get(&case.host(), "/").2, "v1", "{}", case.app);
    }
    let loads: BTreeMap<String, Load> = redeployed
        .iter()
        .map(|c| {
            (
                c.app.clone(),
                Load::light(server.http_port, &c.host(), 900, 20),
            )
        })
        .collect();

    // v2 of every case, paused at its crash point.
    server.kill_haloyd();
    server.start_daemons_with(&[(
        "FAILPOINTS",
        &failpoints(cases.iter().map(|c| (c.deploy_point, c))),
    )]);
    let all: Vec<&Case> = cases.iter().collect();
    let deploys = spawn_deploys(&server, &all, &v2);
    wait_paused(&server, cases.iter().map(|c| (c.deploy_point, c)));
    match kill {
        Kill::Haproxy => {
            server.kill_haproxy();
            let probe = redeployed.first().map(|c| c.host()).unwrap_or_default();
            eventually(
                Duration::from_secs(20),
                "haloyd to start HAProxy again",
                || (server.get(&probe, "/").0 == 200).then_some(()),
            );
            server.signal_haloyd("USR2");
        }
        Kill::Haloyd | Kill::Both => {
            let recovering: Vec<&Case> =
                cases.iter().filter(|c| c.recover_point.is_some()).collect();
            if !recovering.is_empty() {
                // Killed while paused in the deploy, then again while recovering.
                server.kill_haloyd();
                let points = recovering
                    .iter()
                    .map(|c| (c.recover_point.unwrap_or_default(), *c));
                server.start_daemons_with(&[("FAILPOINTS", &failpoints(points.clone()))]);
                wait_paused(&server, points);
            }
            server.kill_haloyd();
            if kill == Kill::Both {
                server.kill_haproxy();
            }
            server.start_daemons();
        }
    }
    let v2_outputs: BTreeMap<String, Output> = deploys
        .into_iter()
        .map(|(app, child)| (app, finish(child, Duration::from_secs(180))))
        .collect();
    wait_settled(&server, &cases, &v3);

    let mut rows = Vec::new();
    for case in &cases {
        let outcome = check(&server, case, kill, &v3[&case.app], &server.log());
        if kill == Kill::Haproxy {
            let output = &v2_outputs[&case.app];
            assert!(
                output.status.success(),
                "v2 of {} after HAProxy came back:\n{}",
                case.app,
                describe(output)
            );
        }
        rows.push(Row {
            point: case.point(),
            strategy: case.strategy,
            first: case.first,
            outcome,
            failed: None,
        });
    }

    // The next deploy works for every case.
    for (case, output) in deploy_all(&server, &all, &v3) {
        assert!(
            output.status.success(),
            "v3 of {}:\n{}\n{}",
            case.app,
            describe(&output),
            server.log()
        );
        assert_eq!(server.get(&case.host(), "/").2, "v3", "{}", case.app);
        assert_eq!(
            server.containers(&case.app).len(),
            case.replicas,
            "{}",
            case.app
        );
    }
    for (app, load) in loads {
        let report = load.stop();
        let row = rows.iter_mut().zip(&cases).find(|(_, c)| c.app == app);
        if let Some((row, _)) = row {
            row.failed = Some((report.non_2xx + report.errors, report.total));
        }
    }
    print_table(title, &rows);
    drop(server);
    drop(family);
    rows
}

fn config(server: &Server, repository: &str, case: &Case, tag: &str) -> String {
    format!(
        r#"name: "{app}"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
  history:
    strategy: "none"
deployment_strategy: "{strategy}"
replicas: {replicas}
health_check_path: "/health"
network: "{network}"
domains:
  - domain: "{host}"
"#,
        app = case.app,
        strategy = case.strategy.name(),
        replicas = case.replicas,
        network = server.network,
        host = case.host(),
    )
}

/// `point=return(app,…)` for each point, as `FAILPOINTS` takes them.
fn failpoints<'a>(points: impl Iterator<Item = (&'static str, &'a Case)>) -> String {
    let mut apps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (point, case) in points {
        apps.entry(point).or_default().push(&case.app);
    }
    apps.iter()
        .map(|(point, apps)| format!("{point}=return({})", apps.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

fn spawn_deploys(
    server: &Server,
    cases: &[&Case],
    configs: &BTreeMap<String, PathBuf>,
) -> Vec<(String, Child)> {
    cases
        .iter()
        .map(|case| {
            let config = configs[&case.app].display().to_string();
            (
                case.app.clone(),
                server.spawn_haloy(&["deploy", "--no-logs", "-c", &config]),
            )
        })
        .collect()
}

/// Deploys `cases` at once and waits for every one.
fn deploy_all<'a>(
    server: &Server,
    cases: &[&'a Case],
    configs: &BTreeMap<String, PathBuf>,
) -> Vec<(&'a Case, Output)> {
    let children = spawn_deploys(server, cases, configs);
    cases
        .iter()
        .zip(children)
        .map(|(case, (_, child))| (*case, finish(child, Duration::from_secs(240))))
        .collect()
}

/// Waits for a child for at most `limit`, killing it after that.
fn finish(mut child: Child, limit: Duration) -> Output {
    // Killed after the limit whether it exited or not: a hung client fails the case.
    let _ = Wait::new(limit, "haloy to exit").poll(|| child.try_wait().ok().flatten().is_some());
    let _ = child.kill();
    child.wait_with_output().expect("haloy output")
}

fn wait_paused<'a>(server: &Server, points: impl Iterator<Item = (&'static str, &'a Case)>) {
    let wanted: Vec<String> = points
        .map(|(point, case)| format!("failpoint {point} paused {}", case.app))
        .collect();
    let log = || format!("--- haloyd.log\n{}", server.log());
    Wait::new(Duration::from_secs(240), "every crash point to pause")
        .every(Duration::from_millis(200))
        .context(&log)
        .until(|| {
            let log = server.log();
            let missing: Vec<&String> = wanted
                .iter()
                .filter(|w| !log.contains(w.as_str()))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("never reached: {missing:?}"))
            }
        });
}

/// `haloy status --json` of the case's app.
fn status(server: &Server, config: &Path) -> serde_json::Value {
    let output = server.haloy(&["status", "--json", "-c", &config.display().to_string()]);
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("status JSON: {e}\n{}", describe(&output)))
}

/// Waits until haloyd is doing nothing with any case's app.
fn wait_settled(server: &Server, cases: &[Case], configs: &BTreeMap<String, PathBuf>) {
    let log = || server.log();
    for case in cases {
        let what = format!("{} to settle", case.app);
        Wait::new(Duration::from_secs(240), &what)
            .every(Duration::from_millis(200))
            .context(&log)
            .until(|| {
                let status = status(server, &configs[&case.app]);
                if status["activity"].is_null() {
                    Ok(())
                } else {
                    Err(status.to_string())
                }
            });
    }
}

/// Checks the invariant for one case and says what serves.
fn check(server: &Server, case: &Case, kill: Kill, config: &Path, log: &str) -> String {
    let app = &case.app;
    let status = status(server, config);
    let context = format!(
        "{app} ({:?}, {kill:?}): {status}\n--- haloyd.log\n{log}",
        case.point()
    );
    assert_eq!(status["problem"], "", "{context}");
    let containers = server.containers(app);
    let servers = server.haproxy_servers(app);
    let hosts = server.routed_hosts();
    let (code, _, body) = server.get(&case.host(), "/");
    let Some(version) = case.winner(kill) else {
        assert!(
            containers.is_empty(),
            "containers left: {containers:?}; {context}"
        );
        assert!(
            servers.is_empty(),
            "HAProxy servers left: {servers:?}; {context}"
        );
        assert!(
            !hosts.contains_key(&case.host()),
            "host still routed; {context}"
        );
        assert_eq!(code, 404, "{context}");
        assert!(status["current"].is_null(), "{context}");
        let note = status["latest"]["note"].as_str().unwrap_or_default();
        assert!(note.contains("nothing to restore"), "{context}");
        return "nothing routed".into();
    };
    let current = &status["current"];
    let id = current["id"].as_str().unwrap_or_default();
    assert!(
        current["image"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(":{version}")),
        "{version} must serve; {context}"
    );
    assert_eq!((code, body.as_str()), (200, version), "{context}");
    assert_eq!(containers.len(), case.replicas, "{containers:?}; {context}");
    assert!(
        containers.iter().all(|c| c.contains(id)),
        "{containers:?} are not all of {id}; {context}"
    );
    let replicas = status["replicas"].as_array().cloned().unwrap_or_default();
    assert_eq!(replicas.len(), case.replicas, "{context}");
    for replica in &replicas {
        assert_eq!(replica["state"], "running", "{context}");
        assert_eq!(replica["health"], "up", "{context}");
        assert_eq!(replica["deployment_id"], id, "{context}");
    }
    let routed: Vec<(String, String)> = containers
        .iter()
        .map(|c| (c.clone(), "UP".to_string()))
        .collect();
    // "UP 1/2" is up too: one check failed, as one may while a replica restarts.
    let up = |servers: Vec<(String, String)>| -> Vec<(String, String)> {
        servers
            .into_iter()
            .map(|(name, state)| {
                (
                    name,
                    state.split(' ').next().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    // A change HAProxy missed while it restarted reaches it within a few of haloyd's
    // supervisor rounds (2 s each, a command times out after 5 s).
    let mut servers = up(servers);
    if servers != routed {
        servers = Wait::new(
            Duration::from_secs(20),
            "HAProxy to route the live replicas",
        )
        .every(Duration::from_millis(250))
        .poll(|| Some(up(server.haproxy_servers(app))).filter(|s| *s == routed))
        .unwrap_or_else(|| up(server.haproxy_servers(app)));
    }
    assert_eq!(
        servers, routed,
        "HAProxy must route exactly the live replicas; {context}"
    );
    assert_eq!(
        hosts.get(&case.host()).map(String::as_str),
        Some(format!("app_{app}").as_str()),
        "{context}"
    );
    if kill != Kill::Haproxy {
        let interrupted = if version == "v2" {
            current
        } else {
            &status["latest"]
        };
        let note = interrupted["note"].as_str().unwrap_or_default();
        let expected = if version == "v2" {
            "completed the switch"
        } else {
            "restored"
        };
        assert!(note.contains(expected), "note {note:?}; {context}");
    }
    format!("{version} serves")
}

fn print_table(title: &str, rows: &[Row]) {
    println!("\ncrash matrix: {title}");
    println!(
        "{:<48} {:<8} {:<9} {:<15} failed requests",
        "crash point", "strategy", "deploy", "outcome"
    );
    for row in rows {
        let failed = match row.failed {
            Some((failed, total)) => format!("{failed} of {total}"),
            None => "no load (nothing served before)".into(),
        };
        println!(
            "{:<48} {:<8} {:<9} {:<15} {failed}",
            row.point,
            row.strategy.name(),
            if row.first { "first" } else { "redeploy" },
            row.outcome
        );
    }
}
