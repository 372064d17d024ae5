//! A real pebble ACME server with its challenge test server.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::*;

/// A real pebble (Let's Encrypt's ACME test server) with pebble-challtestsrv as its
/// DNS, which answers every name with 127.0.0.1: HTTP-01 validation really travels
/// to HAProxy's HTTP port. Its own HTTPS uses a CA made with openssl for the run.
/// Dropping it kills both processes and removes its files.
pub struct Pebble {
    /// `https://127.0.0.1:<port>/dir`.
    pub directory: String,
    /// The CA of pebble's own HTTPS (for `--acme-ca-cert`).
    pub tls_ca: PathBuf,
    /// The root pebble issues certificates under (for `curl --cacert`).
    pub issuing_root: PathBuf,
    management_port: u16,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port` of 127.0.0.1.
    pub fn start(http_port: u16) -> Self {
        require("openssl", &["version"], "openssl");
        // pebble has no --version; ask the shell whether both programs are there.
        require(
            "sh",
            &["-c", "command -v pebble && command -v pebble-challtestsrv"],
            "pebble and pebble-challtestsrv (package pebble)",
        );
        let dir = tempfile::tempdir().expect("pebble dir");
        let root_dir = dir.path().to_path_buf();
        let path = |name: &str| root_dir.join(name);
        let openssl = |args: &[&str]| {
            let output = run(Command::new("openssl").args(args).current_dir(&root_dir));
            assert!(
                output.status.success(),
                "openssl {args:?}:\n{}",
                describe(&output)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=pebble-https-ca"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca);
        let mut csr = vec!["req", "-subj", "/CN=localhost"];
        csr.extend(ec);
        csr.extend(["-keyout", "localhost.key", "-out", "localhost.csr"]);
        openssl(&csr);
        std::fs::write(
            path("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("san");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "localhost.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "localhost.pem",
        ]);
        let (port, management_port, dns_port, challtest_port) =
            (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": path("localhost.pem"),
            "privateKey": path("localhost.key"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(path("pebble.json"), config.to_string()).expect("pebble config");
        let log = |name: &str| std::fs::File::create(path(name)).expect("log file");
        let dns = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{challtest_port}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .expect("pebble-challtestsrv (package pebble) is required");
        let mut pebble = Self {
            directory: format!("https://127.0.0.1:{port}/dir"),
            tls_ca: path("ca.pem"),
            issuing_root: path("issuing-root.pem"),
            management_port,
            children: vec![dns],
            dir,
        };
        let server = Command::new("pebble")
            .arg("-config")
            .arg(path("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble (package pebble) is required");
        pebble.children.push(server);
        let root = eventually(Duration::from_secs(20), "pebble to answer", || {
            pebble
                .fetch("/roots/0")
                .filter(|pem| pem.contains("BEGIN CERTIFICATE"))
        });
        std::fs::write(&pebble.issuing_root, root).expect("issuing root");
        for child in &mut pebble.children {
            assert!(
                child.try_wait().is_ok_and(|exited| exited.is_none()),
                "pebble or pebble-challtestsrv exited at start:\n{}\n{}",
                std::fs::read_to_string(pebble.dir.path().join("challtestsrv.err"))
                    .unwrap_or_default(),
                std::fs::read_to_string(pebble.dir.path().join("pebble.err")).unwrap_or_default()
            );
        }
        pebble
    }

    /// A GET on pebble's management port, with its HTTPS checked against its CA.
    fn fetch(&self, path: &str) -> Option<String> {
        let output = Command::new("curl")
            .args(["-sf", "--max-time", "5", "--cacert"])
            .arg(&self.tls_ca)
            .arg(format!("https://127.0.0.1:{}{path}", self.management_port))
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).to_string())
    }

    /// pebble's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Stops pebble (the ACME server), keeping its DNS; `start` cannot bring it back.
    pub fn stop_acme_server(&mut self) {
        if let Some(mut child) = self.children.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
