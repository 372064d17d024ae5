//! Dropped domains leave the proxy and the disk; internal files cannot be taken over
//! by a domain's name.

use super::*;

#[tokio::test]
async fn a_dropped_domain_is_removed_from_the_proxy_and_its_files_deleted() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs
        .want("web", vec![wanted("a.com", &[]), wanted("b.com", &[])]);
    s.certs.tick(now).await;
    let a = s.dir.path().join("domains/a.com.pem");
    assert!(a.exists());
    s.certs.want("web", vec![wanted("b.com", &[])]);
    s.certs.tick(now).await;
    let removed = s.installer.removed.lock().unwrap().clone();
    assert_eq!(removed, [("a.com".to_string(), a.clone())]);
    assert!(!a.exists(), "the key of a dropped domain stayed on disk");
    assert!(s.dir.path().join("domains/b.com.pem").exists());
    assert_eq!(s.certs.stored().len(), 1);
}

#[tokio::test]
async fn a_failed_removal_is_retried_and_keeps_the_file_until_it_succeeds() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    s.certs.want("web", Vec::new());
    *s.installer.fail.lock().unwrap() = Some("admin socket gone".into());
    s.certs.tick(now).await;
    let a = s.dir.path().join("domains/a.com.pem");
    assert!(a.exists(), "deleted while HAProxy still lists it");
    *s.installer.fail.lock().unwrap() = None;
    s.certs.tick(now).await;
    assert_eq!(s.installer.removed.lock().unwrap().len(), 1);
    assert!(!a.exists());
}

#[tokio::test(start_paused = true)]
async fn a_domain_dropped_while_its_certificate_is_obtained_is_not_left_served() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    *s.directory.delay.lock().unwrap() = Duration::from_secs(5);
    let certs = Arc::new(s.certs);
    certs.want("web", vec![wanted("a.com", &[])]);
    let ticking = tokio::spawn({
        let certs = certs.clone();
        async move { certs.tick(now).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    certs.want("web", Vec::new());
    assert!(ticking.await.unwrap().is_empty());
    let removed = s.installer.removed.lock().unwrap().clone();
    assert_eq!(removed.len(), 1, "installed but never removed");
    assert!(!s.dir.path().join("domains/a.com.pem").exists());
    assert!(certs.status("web").is_empty());
}

#[tokio::test]
async fn a_certificate_left_without_its_request_is_removed_after_a_restart() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    // haloyd stopped after the request was dropped but before the removal.
    std::fs::remove_file(s.dir.path().join("domains/a.com.json")).unwrap();
    let again = certificates(s.dir.path(), &s.directory, &s.installer, None);
    assert!(again.stored().is_empty());
    again.tick(now).await;
    assert_eq!(s.installer.removed.lock().unwrap()[0].0, "a.com");
    assert!(!s.dir.path().join("domains/a.com.pem").exists());
}

#[tokio::test]
async fn domains_named_like_internal_files_do_not_overwrite_them() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    let internal = ["default.pem", "api-selfsigned.pem", "acme-account.json"];
    for name in internal {
        std::fs::write(s.dir.path().join(name), "internal").unwrap();
    }
    s.certs.want(
        "web",
        vec![
            wanted("default", &[]),
            wanted("api-selfsigned", &[]),
            wanted("acme-account", &[]),
        ],
    );
    assert_eq!(s.certs.tick(now).await.len(), 3);
    for name in internal {
        let text = std::fs::read_to_string(s.dir.path().join(name)).unwrap();
        assert_eq!(text, "internal", "{name} was overwritten");
    }
    let again = certificates(s.dir.path(), &s.directory, &s.installer, None);
    assert_eq!(again.stored().len(), 3);
}

#[tokio::test]
async fn certificates_kept_at_the_top_by_earlier_releases_move_into_domains() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    let top = s.dir.path();
    for ext in ["pem", "json"] {
        std::fs::rename(
            top.join(format!("domains/a.com.{ext}")),
            top.join(format!("a.com.{ext}")),
        )
        .unwrap();
    }
    let again = certificates(top, &s.directory, &s.installer, None);
    let stored = again.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].path, top.join("domains/a.com.pem"));
    // The old name is taken out of a running HAProxy; the files stay.
    again.tick(now + DAY).await;
    let removed = s.installer.removed.lock().unwrap().clone();
    assert_eq!(removed, [("a.com".to_string(), top.join("a.com.pem"))]);
    assert!(top.join("domains/a.com.pem").exists());
    assert_eq!(s.directory.issued(), 1);
}
