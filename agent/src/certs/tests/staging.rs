//! A certificate becomes the served file only once it is installed; a failed install
//! is retried with the same certificate, never by asking the directory again.

use super::*;

fn serial_of(pem: &str) -> String {
    x509::leaf_info(pem).unwrap().serial
}

#[tokio::test]
async fn a_failed_install_is_retried_without_issuing_again() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    *s.installer.fail.lock().unwrap() = Some("admin socket gone".into());
    s.certs.want("web", vec![wanted("a.com", &["www.a.com"])]);
    assert!(s.certs.tick(now).await.is_empty());
    let error = s.certs.status("web")[0].last_error.clone();
    assert!(error.contains("admin socket gone"), "{error}");
    let served = s.dir.path().join("domains/a.com.pem");
    assert!(!served.exists(), "the file ran ahead of HAProxy");

    *s.installer.fail.lock().unwrap() = None;
    let later = now + Duration::from_secs(61);
    assert_eq!(s.certs.tick(later).await, ["a.com"]);
    assert_eq!(s.directory.issued(), 1, "issued again for a failed install");
    let installed = s.installer.installed.lock().unwrap().clone();
    let text = std::fs::read_to_string(&served).unwrap();
    assert_eq!(installed[0].pem, text);
    assert!(!s.dir.path().join("domains/a.com.pem.new").exists());
}

#[tokio::test]
async fn a_renewal_whose_install_fails_leaves_the_served_file_alone() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    let served = s.dir.path().join("domains/a.com.pem");
    let first = serial_of(&std::fs::read_to_string(&served).unwrap());

    let due = now + 61 * DAY;
    *s.directory.now.lock().unwrap() = due;
    *s.installer.fail.lock().unwrap() = Some("refused".into());
    assert!(s.certs.tick(due).await.is_empty());
    assert_eq!(
        serial_of(&std::fs::read_to_string(&served).unwrap()),
        first,
        "a restart would load a certificate HAProxy never served"
    );

    *s.installer.fail.lock().unwrap() = None;
    assert_eq!(s.certs.tick(due + Duration::from_secs(61)).await, ["a.com"]);
    assert_eq!(s.directory.issued(), 2);
    assert_ne!(serial_of(&std::fs::read_to_string(&served).unwrap()), first);
}

#[tokio::test]
async fn a_staged_certificate_with_other_names_is_not_reused() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    *s.installer.fail.lock().unwrap() = Some("refused".into());
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    *s.installer.fail.lock().unwrap() = None;
    s.certs.want("web", vec![wanted("a.com", &["www.a.com"])]);
    assert_eq!(s.certs.tick(now).await, ["a.com"]);
    assert_eq!(s.directory.issued(), 2);
    let installed = s.installer.installed.lock().unwrap().clone();
    let names = x509::leaf_info(&installed[0].pem).unwrap().names;
    assert_eq!(names, ["a.com", "www.a.com"]);
}

#[tokio::test(start_paused = true)]
async fn back_off_counts_from_the_failure_not_the_start_of_the_attempt() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    // An order that times out after two minutes.
    *s.directory.delay.lock().unwrap() = Duration::from_secs(120);
    *s.directory.fail.lock().unwrap() = Some("the order did not finish".into());
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    assert!(s.certs.status("web")[0].last_error.contains("attempt 1"));
    // The failure was at now + 120 s: one minute later is now + 180 s.
    s.certs.tick(now + Duration::from_secs(121)).await;
    assert!(
        s.certs.status("web")[0].last_error.contains("attempt 1"),
        "retried at once after a slow failure"
    );
    s.certs.tick(now + Duration::from_secs(181)).await;
    assert!(s.certs.status("web")[0].last_error.contains("attempt 2"));
}

#[test]
fn debug_output_never_shows_the_private_key() {
    let cert = CertFile {
        domain: "a.com".into(),
        names: vec!["a.com".into()],
        path: "/srv/a.com.pem".into(),
        pem: "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n".into(),
    };
    let shown = format!("{cert:?}");
    assert!(shown.contains("a.com"), "{shown}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("secret"),
        "{shown}"
    );
}
