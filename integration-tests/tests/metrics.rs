//! Prometheus metrics end to end: a local haloyd with real HAProxy and Docker serves
//! deploys by app and result, deploy and phase durations, health-check failures,
//! replicas by state, each app's requests, 5xx, rates and response times, and
//! certificates' expiry and failed renewals at `metrics_address`; every scrape
//! passes `promtool check metrics`, and `haloy status` shows the request and error
//! rates. HAProxy's per-request log fills each app's response-time histogram, and
//! `haloy status` shows its percentiles. Also with haloyd and HAProxy in containers.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::scratch::{self, Recipe};
use integration_tests::{
    ImageFamily, Pebble, Server, Wait, build_image, describe, http_get, https_get, https_port,
    reconfigure, require,
};

/// Answers 500 while /tmp/sick counts down from what a test writes there.
const FLAKY: &str = "#!/bin/busybox sh
n=$(/bin/busybox cat /tmp/sick 2>/dev/null || echo 0)
if [ \"$n\" -gt 0 ]; then
  echo $((n - 1)) > /tmp/sick
  printf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nsick\\n'
else
  printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
fi
";

/// How long `/cgi-bin/slow` takes, in seconds.
const SLOW_SECONDS: u64 = 1;

/// A busybox httpd image: `/` says ok, `/health` answers, `/cgi-bin/fail` answers
/// 500, `/cgi-bin/slow` answers after [`SLOW_SECONDS`], and `/cgi-bin/health`
/// answers 500 while a test makes it ([`FLAKY`]).
fn httpd_with_failures() -> String {
    let mut recipe = Recipe::busybox_httpd();
    recipe.files.extend([
        ("/www/index.html".into(), "ok".into(), false),
        ("/www/health".into(), "ok\n".into(), false),
        (
            "/www/cgi-bin/fail".into(),
            "#!/bin/busybox sh\nprintf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\\n'\n".into(),
            true,
        ),
        ("/www/cgi-bin/health".into(), FLAKY.into(), true),
        (
            "/www/cgi-bin/slow".into(),
            format!("#!/bin/busybox sh\n/bin/busybox sleep {SLOW_SECONDS}\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow\\n'\n"),
            true,
        ),
    ]);
    scratch::build("metrics-web", &recipe)
}

/// The app `name` at `<name>.test` running `image`; `extra` adds keys (a
/// `health_check` block replaces the default `/health`).
fn app(server: &Server, name: &str, image: &str, extra: &str) -> String {
    let (repository, tag) = image.split_once(':').expect("repository:tag");
    let health = if extra.contains("health_check:") {
        ""
    } else {
        "health_check_path: \"/health\"\n"
    };
    format!(
        r#"name: "{name}"
image:
  repository: "{repository}"
  tag: "{tag}"
  source: "local"
{health}network: "{network}"
domains:
  - domain: "{name}.test"
{extra}"#,
        network = server.network
    )
}

/// One scrape of haloyd's metrics endpoint; panics with haloyd's log unless 200.
fn scrape(server: &Server) -> String {
    let (status, head, body) = http_get(server.metrics_port, "127.0.0.1", "/metrics")
        .unwrap_or_else(|e| panic!("cannot scrape the metrics: {e}\n{}", server.log()));
    assert_eq!(status, 200, "{head}\n{body}\n{}", server.log());
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Polls the metrics until `series` has a value that `check` accepts.
fn await_value(server: &Server, series: &str, check: impl Fn(f64) -> bool) -> String {
    let log = || server.log();
    Wait::new(Duration::from_secs(30), series)
        .every(Duration::from_millis(300))
        .context(&log)
        .until(|| {
            let text = scrape(server);
            value(&text, series).filter(|v| check(*v)).map(|_| text)
        })
}

/// `promtool check metrics` on a scrape: it must find nothing to say.
fn promtool_passes(text: &str) {
    require("promtool", &["--version"], "promtool (Debian's prometheus)");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics:\n{}\n--- scrape\n{text}",
        describe(&output)
    );
}

fn get(server: &Server, host: &str, path: &str) -> u16 {
    server.get(host, path).0
}

#[test]
fn deploys_replicas_and_requests_are_counted_and_pass_promtool_and_status_shows_rates() {
    let image = httpd_with_failures();
    let server = Server::start();
    let config = server.app_config("web", &app(&server, "web", &image, "replicas: 2\n"));
    server.deploy(&config);
    // A scrape samples HAProxy's counters too: the requests below fall after this
    // sample, within the window of the rates.
    await_value(&server, r#"haloy_app_requests_total{app="web"}"#, |v| {
        v == 0.0
    });
    for _ in 0..20 {
        assert_eq!(get(&server, "web.test", "/"), 200);
    }
    for _ in 0..5 {
        assert_eq!(get(&server, "web.test", "/cgi-bin/fail"), 500);
    }

    let text = await_value(&server, r#"haloy_app_requests_total{app="web"}"#, |v| {
        v >= 25.0
    });
    promtool_passes(&text);
    let exact = [
        (r#"haloy_deploys_total{app="web",result="succeeded"}"#, 1.0),
        (
            r#"haloy_deploy_duration_seconds_count{app="web",result="succeeded"}"#,
            1.0,
        ),
        (r#"haloy_replicas{app="web",state="up"}"#, 2.0),
        (r#"haloy_app_requests_total{app="web"}"#, 25.0),
        (r#"haloy_app_responses_5xx_total{app="web"}"#, 5.0),
        ("haloy_haproxy_up", 1.0),
    ];
    for (series, expected) in exact {
        assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
    }
    for phase in ["starting", "health_checking", "switching_traffic"] {
        let series =
            format!(r#"haloy_deploy_phase_duration_seconds_count{{app="web",phase="{phase}"}}"#);
        assert_eq!(value(&text, &series), Some(1.0), "{series} in\n{text}");
    }
    let bucket = r#"haloy_deploy_duration_seconds_bucket{app="web",result="succeeded",le="+Inf"}"#;
    assert_eq!(value(&text, bucket), Some(1.0), "{text}");
    for series in [
        r#"haloy_app_response_time_average_seconds{app="web"}"#,
        r#"haloy_app_response_time_max_seconds{app="web"}"#,
        r#"haloy_app_request_rate{app="web"}"#,
        r#"haloy_app_error_rate{app="web"}"#,
    ] {
        assert!(value(&text, series).is_some(), "{series} in\n{text}");
    }

    // `haloy status` shows the rates over haloyd's window of samples.
    let last = std::cell::RefCell::new(String::new());
    let context = || last.borrow().clone();
    let shown = Wait::new(Duration::from_secs(20), "rates in haloy status")
        .every(Duration::from_millis(500))
        .context(&context)
        .until(|| {
            let output = server.haloy(&["status", "-c", &config.display().to_string()]);
            assert!(output.status.success(), "{}", describe(&output));
            let shown = String::from_utf8_lossy(&output.stdout).to_string();
            *last.borrow_mut() = shown.clone();
            let line = shown
                .lines()
                .find(|l| l.starts_with("traffic:"))?
                .to_string();
            (line.contains(" req/s, ") && !line.contains(" 0.00 5xx/s")).then_some(line)
        });
    assert!(
        shown.contains("5xx/s (") && shown.contains("% errors) over "),
        "{shown}"
    );
    let output = server.haloy(&["status", "-c", &config.display().to_string(), "--json"]);
    let json = String::from_utf8_lossy(&output.stdout);
    assert!(json.contains("\"request_rate\":"), "{json}");

    // A deploy whose replica never answers its health check is counted as failed,
    // and so is the health check.
    build_image("metrics-sick", "sick", false);
    let sick = server.app_config("sick", &app(&server, "sick", "haloy-it:metrics-sick", ""));
    let output = server.haloy(&["deploy", "-c", &sick.display().to_string()]);
    assert!(!output.status.success(), "{}", describe(&output));
    let text = await_value(
        &server,
        r#"haloy_deploys_total{app="sick",result="failed"}"#,
        |v| v == 1.0,
    );
    assert_eq!(
        value(
            &text,
            r#"haloy_health_check_failures_total{app="sick",during="deploy"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"haloy_deploy_phase_duration_seconds_count{app="sick",phase="cleaning_up"}"#
        ),
        Some(1.0),
        "{text}"
    );
    promtool_passes(&text);

    // Anything but GET /metrics is refused.
    let (status, _, _) = http_get(server.metrics_port, "127.0.0.1", "/").expect("GET /");
    assert_eq!(status, 404);
}

#[test]
fn a_replica_that_fails_while_serving_counts_as_a_health_check_failure() {
    let image = httpd_with_failures();
    let server = Server::start();
    reconfigure(&server, &[("watch_interval_secs", "1".to_string())]);
    let health = "health_check: {path: /cgi-bin/health}\n";
    let config = server.app_config("web", &app(&server, "web", &image, health));
    server.deploy(&config);
    let victim = server.containers("web")[0].clone();
    server.docker_sh(&victim, "echo 8 > /tmp/sick");
    let text = await_value(
        &server,
        r#"haloy_health_check_failures_total{app="web",during="serving"}"#,
        |v| v == 1.0,
    );
    assert!(
        !text.contains(r#"haloy_health_check_failures_total{app="web",during="deploy"}"#),
        "the deploy's checks passed:\n{text}"
    );
    // The watchdog restarts it and routes it again.
    await_value(&server, r#"haloy_replicas{app="web",state="up"}"#, |v| {
        v == 1.0
    });
}

/// The `traffic:` line of `haloy status` once it shows percentiles.
fn status_with_percentiles(server: &Server, config: &std::path::Path) -> String {
    let last = std::cell::RefCell::new(String::new());
    let context = || last.borrow().clone();
    Wait::new(Duration::from_secs(20), "percentiles in haloy status")
        .every(Duration::from_millis(500))
        .context(&context)
        .until(|| {
            let output = server.haloy(&["status", "-c", &config.display().to_string()]);
            assert!(output.status.success(), "{}", describe(&output));
            let shown = String::from_utf8_lossy(&output.stdout).to_string();
            *last.borrow_mut() = shown.clone();
            let line = shown.lines().find(|l| l.starts_with("traffic:"))?;
            line.contains(" p99 ").then(|| line.to_string())
        })
}

/// The number of milliseconds after `label` in a status line ("p99 2380 ms").
fn millis_after(line: &str, label: &str) -> u64 {
    let rest = line
        .split_once(&format!("{label} "))
        .unwrap_or_else(|| panic!("no {label} in {line}"))
        .1;
    rest.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label} in {line}"))
}

/// Invariants: every request through HAProxy lands in its app's histogram once,
/// in the bucket of its time; a datagram that is not a request line is counted
/// and ignored; and HAProxy never waits for haloyd: with haloyd SIGKILLed (its
/// socket left behind, nobody reading) requests still answer 200.
#[test]
fn response_time_percentiles_come_from_haproxys_request_log() {
    const FAST: u64 = 20;
    const SLOW: u64 = 3;
    let image = httpd_with_failures();
    let server = Server::start();
    let config = server.app_config("web", &app(&server, "web", &image, ""));
    server.deploy(&config);
    // A scrape samples the buckets too: the requests below fall within the window.
    await_value(&server, r#"haloy_app_requests_total{app="web"}"#, |v| {
        v == 0.0
    });
    for _ in 0..FAST {
        assert_eq!(get(&server, "web.test", "/"), 200);
    }
    for _ in 0..SLOW {
        assert_eq!(get(&server, "web.test", "/cgi-bin/slow"), 200);
    }
    let count = r#"haloy_http_request_duration_seconds_count{app="web"}"#;
    let text = await_value(&server, count, |v| v >= (FAST + SLOW) as f64);
    promtool_passes(&text);
    let bucket = |le: &str| {
        let series =
            format!(r#"haloy_http_request_duration_seconds_bucket{{app="web",le="{le}"}}"#);
        value(&text, &series).unwrap_or_else(|| panic!("{series} in\n{text}"))
    };
    assert_eq!(value(&text, count), Some((FAST + SLOW) as f64), "{text}");
    assert_eq!(bucket("+Inf"), (FAST + SLOW) as f64, "{text}");
    // The slow ones took more than 250 ms, the fast ones less.
    assert_eq!(bucket("0.25"), FAST as f64, "{text}");
    assert_eq!(
        value(&text, "haloy_request_log_malformed_total"),
        Some(0.0),
        "HAProxy's own lines all read:\n{text}\n{}",
        server.log()
    );

    let line = status_with_percentiles(&server, &config);
    let (p50, p95, p99) = (
        millis_after(&line, "p50"),
        millis_after(&line, "p95"),
        millis_after(&line, "p99"),
    );
    assert!(p50 < 250 && p50 <= p95 && p95 <= p99, "{line}");
    assert!(p99 >= SLOW_SECONDS * 1000, "{line}");
    assert!(line.contains("(estimated)"), "{line}");
    let output = server.haloy(&["status", "-c", &config.display().to_string(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&output)));
    let p99_json = json["traffic"]["response_ms_percentiles"]["p99"].as_u64();
    assert!(p99_json.is_some_and(|p| p >= SLOW_SECONDS * 1000), "{json}");

    // Something else on the socket is counted and changes nothing.
    let socket = server.data_dir().join("haproxy-config/requests.sock");
    let sender = std::os::unix::net::UnixDatagram::unbound().expect("datagram socket");
    sender
        .send_to(b"haloy-request not a request line", &socket)
        .expect("send to the request log");
    let text = await_value(&server, "haloy_request_log_malformed_total", |v| v == 1.0);
    assert_eq!(value(&text, count), Some((FAST + SLOW) as f64), "{text}");

    server.kill_haloyd();
    for _ in 0..5 {
        assert_eq!(get(&server, "web.test", "/"), 200, "with haloyd dead");
    }
}

/// A server whose certificates come from `pebble`, checked every second.
fn use_pebble(server: &Server, pebble: &Pebble) {
    reconfigure(
        server,
        &[
            ("acme_directory", pebble.directory.clone()),
            ("acme_ca_cert", pebble.tls_ca.display().to_string()),
            ("cert_check_interval_secs", "1".to_string()),
        ],
    );
}

const WITH_CERTIFICATE: &str = "acme_email: \"ops@example.com\"\n";

#[test]
fn a_certificates_expiry_is_exposed_per_domain() {
    build_image("metrics-tls", "tls", true);
    let server = Server::start();
    let pebble = Pebble::start(server.http_port);
    use_pebble(&server, &pebble);
    let image = "haloy-it:metrics-tls";
    let config = server.app_config("web", &app(&server, "web", image, WITH_CERTIFICATE));
    server.deploy(&config);
    let port = https_port(&server);
    Wait::new(Duration::from_secs(30), "HTTPS with pebble's certificate")
        .every(Duration::from_millis(200))
        .context(&|| format!("{}\n--- pebble\n{}", server.log(), pebble.log()))
        .until(|| (https_get(port, "web.test", "/", &pebble.issuing_root).0 == 200).then_some(()));

    let series = r#"haloy_certificate_expiry_timestamp_seconds{domain="web.test"}"#;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let text = await_value(&server, series, |expiry| expiry > now);
    let expiry = value(&text, series).expect("expiry");
    assert!(
        expiry < now + 10.0 * 365.0 * 86_400.0,
        "{expiry} is not a time within ten years"
    );
    assert_eq!(
        value(
            &text,
            r#"haloy_certificate_renewal_failures_total{domain="web.test"}"#
        ),
        Some(0.0),
        "{text}"
    );
    promtool_passes(&text);
}

#[test]
fn failed_certificate_attempts_are_counted_per_domain() {
    build_image("metrics-tls", "tls", true);
    let server = Server::start();
    // pebble validates on a port where nothing listens: every attempt fails.
    let pebble = Pebble::start(integration_tests::free_port());
    use_pebble(&server, &pebble);
    let config = server.app_config(
        "web",
        &app(&server, "web", "haloy-it:metrics-tls", WITH_CERTIFICATE),
    );
    server.deploy(&config);
    let text = await_value(
        &server,
        r#"haloy_certificate_renewal_failures_total{domain="web.test"}"#,
        |v| v >= 1.0,
    );
    assert!(
        !text.contains(r#"haloy_certificate_expiry_timestamp_seconds{domain="web.test"}"#),
        "an expiry for a certificate never issued:\n{text}"
    );
    promtool_passes(&text);
}

/// Invariant: with haloyd and HAProxy in containers (as users run them), the
/// metrics address is served from haloyd's container and HAProxy's counters reach
/// it through the shared runtime socket.
#[test]
fn metrics_are_served_when_haloyd_and_haproxy_run_in_containers() {
    let family = ImageFamily::new("metrics-containerised");
    family.build("v1", "v1");
    let server = Server::start_containerised();
    server.load_image(&format!("{}:v1", family.repository));
    let image = format!("{}:v1", family.repository);
    let config = server.app_config("web", &app(&server, "web", &image, ""));
    server.deploy(&config);
    for _ in 0..10 {
        assert_eq!(get(&server, "web.test", "/"), 200);
    }
    await_value(&server, r#"haloy_app_requests_total{app="web"}"#, |v| {
        v >= 10.0
    });
    // HAProxy's request log reaches haloyd's container through the shared directory.
    let text = await_value(
        &server,
        r#"haloy_http_request_duration_seconds_count{app="web"}"#,
        |v| v >= 10.0,
    );
    assert_eq!(
        value(
            &text,
            r#"haloy_deploys_total{app="web",result="succeeded"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"haloy_replicas{app="web",state="up"}"#),
        Some(1.0),
        "{text}"
    );
    promtool_passes(&text);
}
