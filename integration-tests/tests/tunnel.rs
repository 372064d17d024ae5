//! `haloy tunnel` end to end: real redis clients on this machine talk to
//! redis-server in a replica through the tunnel, several connections at once,
//! half-close carried both ways, and Ctrl-C closing it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::scratch::{self, Recipe};
use integration_tests::{
    Server, describe, eventually, free_port, reconfigure, require, run, signal,
};

fn redis_image() -> String {
    scratch::build("tunnel-redis", &Recipe::redis_server(&[]))
}

/// A tunnel process, interrupted and reaped when dropped.
struct Tunnel {
    child: Child,
    port: u16,
}

impl Tunnel {
    fn open(server: &Server, config: &Path, args: &[&str]) -> Self {
        let mut child = server
            .haloy_command()
            .args(["tunnel", "-c", &config.display().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haloy tunnel");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut said = String::new();
        let port = loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).expect("tunnel output");
            said.push_str(&line);
            if n == 0 {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!("haloy tunnel ended early:\n{said}\n{}", describe(&output));
            }
            if let Some(rest) = line.strip_prefix("forwarding 127.0.0.1:") {
                let port = rest.split_whitespace().next().unwrap_or_default();
                break port.parse::<u16>().expect("port");
            }
        };
        child.stdout = Some(stdout.into_inner());
        Self { child, port }
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = run(Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args));
        assert!(
            output.status.success(),
            "redis-cli {args:?}: {}",
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_clients_work_through_the_tunnel_and_ctrl_c_closes_it() {
    for (program, version, package) in [
        ("redis-server", "--version", "redis-server"),
        ("redis-cli", "--version", "redis-tools"),
        ("redis-benchmark", "--version", "redis-tools"),
        ("socat", "-V", "socat"),
    ] {
        require(
            program,
            &[version],
            &format!("{program} (package {package})"),
        );
    }
    redis_image();
    let server = Server::start();
    let config = server.app_config(
        "cache",
        &format!(
            "name: cache\nimage: {{repository: haloy-it, tag: tunnel-redis, source: local}}\nport: 6379\npreset: service\nnetwork: \"{}\"\n",
            server.network
        ),
    );
    server.deploy(&config);

    let tunnel = Tunnel::open(&server, &config, &[]);
    assert_eq!(tunnel.cli(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(tunnel.cli(&["GET", "greeting"]), "hello");

    // Eight connections at once, each its own stream.
    let bench = run(Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &tunnel.port.to_string()])
        .args(["-c", "8", "-n", "2000", "-t", "set,get", "-q"]));
    assert!(bench.status.success(), "{}", describe(&bench));
    let report = String::from_utf8_lossy(&bench.stdout);
    assert!(
        report.contains("SET:")
            && report.contains("GET:")
            && report.contains("requests per second"),
        "{report}"
    );
    let clients = tunnel.cli(&["CLIENT", "LIST"]);
    assert!(clients.lines().count() >= 1, "{clients}");

    // Half-close: socat sends its commands, shuts its write side, and still reads
    // every answer before redis closes its side.
    let socat = run(Command::new("sh").arg("-c").arg(format!(
        "printf 'PING\\r\\nGET greeting\\r\\n' | socat -t 10 - TCP:127.0.0.1:{},shut-down",
        tunnel.port
    )));
    assert!(socat.status.success(), "{}", describe(&socat));
    assert_eq!(
        String::from_utf8_lossy(&socat.stdout),
        "+PONG\r\n$5\r\nhello\r\n",
        "{}",
        describe(&socat)
    );

    // A local port and the replica given explicitly.
    let local = free_port();
    let explicit = Tunnel::open(
        &server,
        &config,
        &[&local.to_string(), "--port", "6379", "--container", "1"],
    );
    assert_eq!(explicit.port, local);
    assert_eq!(explicit.cli(&["GET", "greeting"]), "hello");

    // Ctrl-C closes the tunnel: the process ends well and the port is free again.
    let mut tunnel = tunnel;
    let port = tunnel.port;
    let child = &mut tunnel.child;
    signal(child.id(), "INT");
    let status = eventually(Duration::from_secs(10), "haloy tunnel ends", || {
        child.try_wait().ok().flatten()
    });
    let mut rest = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut rest).expect("rest");
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("tunnel closed"), "{rest}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} any more"
    );
}

/// Invariant: an accessory checked by TCP counts as deployed only once it listens
/// in its container. Docker's proxy accepts on the published port from the start and
/// closes at once while nothing listens behind it; a check that took that accept
/// would report a deploy done that the next client finds closed.
#[test]
fn a_tcp_service_counts_as_deployed_only_once_it_listens() {
    require("curl", &["--version"], "curl (package curl)");
    scratch::build(
        "tunnel-late",
        &Recipe::busybox_sh("/bin/busybox sleep 3; exec /bin/busybox httpd -f -p 8080 -h /"),
    );
    let server = Server::start();
    let config = server.app_config(
        "late",
        &format!(
            "name: late\nimage: {{repository: haloy-it, tag: tunnel-late, source: local}}\nport: 8080\npreset: service\nnetwork: \"{}\"\n",
            server.network
        ),
    );
    server.deploy(&config);

    // The first client after the deploy gets an answer, not a closed connection.
    let tunnel = Tunnel::open(&server, &config, &[]);
    let curl = run(Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg(format!("http://127.0.0.1:{}/", tunnel.port)));
    assert_eq!(
        String::from_utf8_lossy(&curl.stdout),
        "404",
        "busybox httpd answers through the tunnel: {}",
        describe(&curl)
    );
}

/// Over the API's TLS port (its self-signed certificate pinned), a tunnel reaches a
/// port of the replica that is not the app's: redis beside the app's web server.
#[test]
fn a_tunnel_over_tls_reaches_a_port_that_is_not_the_app_port() {
    require(
        "redis-cli",
        &["--version"],
        "redis-cli (package redis-tools)",
    );
    let redis = Recipe::redis_server(&[]);
    scratch::build(
        "tunnel-two",
        &Recipe {
            binaries: vec!["/bin/busybox".into(), "/usr/bin/redis-server".into()],
            dirs: redis.dirs,
            files: vec![("/www/index.html".into(), "web\n".into(), false)],
            entrypoint: vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                "/usr/bin/redis-server --port 6380 --protected-mode no --dir /data & \
                 exec /bin/busybox httpd -f -p 8080 -h /www"
                    .into(),
            ],
            ..Recipe::default()
        },
    );
    let server = Server::start();
    let tls_port = free_port();
    reconfigure(&server, &[("api_tls_port", tls_port.to_string())]);
    let api = format!("127.0.0.1:{tls_port}");
    let added = server.haloy(&[
        "server",
        "add",
        &api,
        &server.token(),
        "--fingerprint",
        &server.api_fingerprint(),
    ]);
    assert!(added.status.success(), "{}", describe(&added));
    let config = server.app_config(
        "two",
        &format!(
            "name: two\nimage: {{repository: haloy-it, tag: tunnel-two, source: local}}\nport: 8080\nnetwork: \"{}\"\n",
            server.network
        ),
    );
    let deployed = server.haloy(&[
        "deploy",
        "-c",
        &config.display().to_string(),
        "--server",
        &api,
    ]);
    assert!(
        deployed.status.success(),
        "{}\n{}",
        describe(&deployed),
        server.log()
    );

    let tunnel = Tunnel::open(&server, &config, &["--server", &api, "--port", "6380"]);
    assert_eq!(tunnel.cli(&["SET", "over", "tls"]), "OK");
    assert_eq!(tunnel.cli(&["GET", "over"]), "tls");
    assert_eq!(
        tunnel.cli(&["CONFIG", "GET", "port"]),
        "port\n6380",
        "the tunnel reached redis on 6380, not the app port"
    );
}
