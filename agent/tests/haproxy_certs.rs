//! Certificates in a real HAProxy 2.6 through the driver: installs that an earlier
//! attempt left half done, an open transaction, a file changed while haloyd was
//! away, and removal. What HAProxy presents is read with `openssl s_client`.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use haloyd::certs::{CertFile, Installer, x509};
use haloyd::proxy::Proxy;
use haloyd::proxy::haproxy::Haproxy;
use support::Harness;

/// A self-signed certificate and key for `host`, written to `<dir>/<host>.pem`.
fn certificate(dir: &Path, host: &str) -> CertFile {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let pem = haloyd::certs::files::combined_pem(&cert.pem(), &key.serialize_pem());
    std::fs::create_dir_all(dir).expect("cert dir");
    let path = dir.join(format!("{host}.pem"));
    std::fs::write(&path, &pem).expect("write certificate");
    CertFile {
        domain: host.to_string(),
        names: vec![host.to_string()],
        path,
        pem,
    }
}

/// The certificate's serial, leading zeros dropped.
fn serial(cert: &CertFile) -> String {
    let serial = x509::leaf_info(&cert.pem).expect("parse").serial;
    serial.trim_start_matches('0').to_string()
}

/// One command on HAProxy's admin socket, with an optional payload.
fn admin(h: &Harness, command: &str, payload: Option<&str>) -> String {
    let socket = h.proxy.config_file().with_file_name("admin.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("admin socket");
    let text = match payload {
        Some(p) => format!("{command} <<\n{}\n\n", p.trim_end()),
        None => format!("{command}\n"),
    };
    stream.write_all(text.as_bytes()).expect("write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

/// The serial of the certificate HAProxy presents for `host` (SNI), leading zeros
/// dropped, or None when no handshake succeeds.
fn served_serial(h: &Harness, host: &str) -> Option<String> {
    let port = h.proxy.settings().https_port;
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", host])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl (package openssl) must be installed");
    let pem = String::from_utf8_lossy(&output.stdout);
    let info = x509::leaf_info(&pem).ok()?;
    Some(info.serial.trim_start_matches('0').to_string())
}

fn certs_dir(h: &Harness) -> PathBuf {
    h.dir.path().join("cert-storage")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_left_after_new_ssl_cert_is_finished_by_the_next_one() {
    let h = Harness::new();
    h.proxy.sync(&[]).await.unwrap();
    let cert = certificate(&certs_dir(&h), "a.test");
    // An earlier attempt created the store, then failed before the crt-list.
    let name = cert.path.display().to_string();
    let answer = admin(&h, &format!("new ssl cert {name}"), None);
    assert!(answer.contains("New empty certificate store"), "{answer}");

    h.proxy.install_certificate(&cert).await.unwrap();
    assert_eq!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&cert).as_str()),
        "the certificate is installed but never served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_does_not_block_later_installs() {
    let h = Harness::new();
    h.proxy.sync(&[]).await.unwrap();
    let dir = certs_dir(&h);
    let stuck = certificate(&dir, "stuck.test");
    let name = stuck.path.display().to_string();
    admin(&h, &format!("new ssl cert {name}"), None);
    let answer = admin(&h, &format!("set ssl cert {name}"), Some(&stuck.pem));
    assert!(answer.contains("Transaction created"), "{answer}");

    let cert = certificate(&dir, "a.test");
    h.proxy.install_certificate(&cert).await.unwrap();
    assert_eq!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&cert).as_str())
    );
    // A renewal right after works too: no transaction is left open.
    let renewed = certificate(&dir, "a.test");
    h.proxy.install_certificate(&renewed).await.unwrap();
    assert_eq!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&renewed).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_of_haloyd_haproxy_serves_the_certificate_on_disk() {
    let h = Harness::new();
    h.proxy.sync(&[]).await.unwrap();
    let dir = certs_dir(&h);
    let old = certificate(&dir, "a.test");
    h.proxy.install_certificate(&old).await.unwrap();
    // The file changed while haloyd was away; HAProxy still holds the old one.
    let new = certificate(&dir, "a.test");
    assert_eq!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&old).as_str())
    );

    let restarted = Haproxy::new(h.proxy.settings().clone()).unwrap();
    restarted
        .preload_certificates(std::slice::from_ref(&new))
        .await;
    restarted.sync(&[]).await.unwrap();
    assert_eq!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&new).as_str()),
        "HAProxy kept serving the certificate the file no longer holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_certificate_is_no_longer_served_listed_or_redirected_to() {
    let h = Harness::new();
    h.proxy.sync(&[]).await.unwrap();
    let cert = certificate(&certs_dir(&h), "a.test");
    h.proxy.install_certificate(&cert).await.unwrap();
    assert_eq!(h.get("a.test", "/").await.status, 301);

    h.proxy
        .remove_certificate("a.test", &cert.path)
        .await
        .unwrap();
    let name = cert.path.display().to_string();
    assert!(!admin(&h, "show ssl cert", None).contains(&name));
    let list = h.proxy.config_file().with_file_name("certs.list");
    assert!(!std::fs::read_to_string(list).unwrap().contains(&name));
    let https = h.proxy.config_file().with_file_name("https.map");
    assert_eq!(std::fs::read_to_string(https).unwrap(), "");
    assert_ne!(
        h.get("a.test", "/").await.status,
        301,
        "HTTP still redirects"
    );
    assert_ne!(
        served_serial(&h, "a.test").as_deref(),
        Some(serial(&cert).as_str())
    );
    // Removing it again is done already.
    h.proxy
        .remove_certificate("a.test", &cert.path)
        .await
        .unwrap();
}
