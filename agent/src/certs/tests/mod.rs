//! The renewal loop against a fake directory that issues self-signed certificates of
//! a chosen lifetime (or fails on demand) and a fake installer that records.

use std::time::{Duration, SystemTime};

use super::fakes::{FakeDirectory, FakeInstaller};
use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn wanted(domain: &str, aliases: &[&str]) -> Wanted {
    Wanted {
        domain: domain.into(),
        names: std::iter::once(domain)
            .chain(aliases.iter().copied())
            .map(String::from)
            .collect(),
        email: "ops@a.com".into(),
        app: "web".into(),
    }
}

struct Setup {
    dir: tempfile::TempDir,
    directory: Arc<FakeDirectory>,
    installer: Arc<FakeInstaller>,
    certs: Certificates,
}

fn setup(lifetime: Duration, now: SystemTime, renew_before: Option<Duration>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let directory = FakeDirectory::new(lifetime, now);
    let installer = Arc::new(FakeInstaller::default());
    let certs = certificates(dir.path(), &directory, &installer, renew_before);
    Setup {
        dir,
        directory,
        installer,
        certs,
    }
}

fn certificates(
    dir: &std::path::Path,
    directory: &Arc<FakeDirectory>,
    installer: &Arc<FakeInstaller>,
    renew_before: Option<Duration>,
) -> Certificates {
    Certificates::new(
        CertDir::new(dir.to_path_buf()),
        directory.clone(),
        installer.clone(),
        CertSettings {
            renew_before,
            check_interval: Duration::from_secs(1),
        },
    )
}

fn start() -> SystemTime {
    // Whole seconds: certificates carry no fractions.
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

#[tokio::test]
async fn a_wanted_certificate_is_issued_stored_privately_and_installed_once() {
    use std::os::unix::fs::PermissionsExt;
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &["www.a.com"])]);
    assert_eq!(s.certs.tick(now).await, ["a.com"]);
    assert_eq!(s.certs.tick(now + DAY).await, Vec::<String>::new());
    assert_eq!(s.directory.issued(), 1);
    let installed = s.installer.installed.lock().unwrap().clone();
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].names, ["a.com", "www.a.com"]);
    let path = s.dir.path().join("domains/a.com.pem");
    assert_eq!(installed[0].path, path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE") && text.contains("PRIVATE KEY"));
    assert!(
        !text.contains("\n\n"),
        "HAProxy's payload ends at a blank line"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let status = s.certs.status("web");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].not_after, Some(now + 90 * DAY));
    assert!(status[0].last_error.is_empty());
}

#[tokio::test]
async fn a_restart_keeps_a_valid_certificate_without_requesting_it() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    let again = certificates(s.dir.path(), &s.directory, &s.installer, None);
    assert_eq!(again.stored().len(), 1);
    assert_eq!(again.tick(now + DAY).await, Vec::<String>::new());
    assert_eq!(s.directory.issued(), 1);
}

#[tokio::test]
async fn renews_inside_the_window_and_when_names_change() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    // 31 days left: not yet; 29 days left: renewed.
    assert!(s.certs.tick(now + 59 * DAY).await.is_empty());
    *s.directory.now.lock().unwrap() = now + 61 * DAY;
    assert_eq!(s.certs.tick(now + 61 * DAY).await, ["a.com"]);
    assert_eq!(s.directory.issued(), 2);
    // A new alias: the certificate must carry it.
    s.certs.want("web", vec![wanted("a.com", &["www.a.com"])]);
    assert_eq!(s.certs.tick(now + 62 * DAY).await, ["a.com"]);
    assert_eq!(
        s.directory.issued.lock().unwrap().last().unwrap(),
        &["a.com", "www.a.com"]
    );
}

#[tokio::test]
async fn a_window_wider_than_the_lifetime_renews_at_every_tick() {
    let now = start();
    let s = setup(90 * DAY, now, Some(365 * DAY));
    s.certs.want("web", vec![wanted("a.com", &[])]);
    s.certs.tick(now).await;
    assert_eq!(s.certs.tick(now).await, ["a.com"]);
    assert_eq!(s.directory.issued(), 2);
}

#[test]
fn short_lived_certificates_renew_at_a_third_of_their_lifetime() {
    let now = start();
    let cert = |days: u32| CertInfo {
        names: vec!["a.com".into()],
        not_before: now,
        not_after: now + days * DAY,
        serial: "01".into(),
    };
    let names = ["a.com".to_string()];
    let six_days = cert(6);
    assert_eq!(
        policy::need(Some(&six_days), &names, now + 3 * DAY, None),
        None
    );
    assert_eq!(
        policy::need(Some(&six_days), &names, now + 5 * DAY, None),
        Some(policy::Need::Expiring)
    );
    assert_eq!(
        policy::need(Some(&cert(90)), &names, now + 50 * DAY, None),
        None
    );
}

#[tokio::test]
async fn failures_back_off_and_show_in_status_until_a_success() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    *s.directory.fail.lock().unwrap() = Some("connection refused".into());
    s.certs.want("web", vec![wanted("a.com", &[])]);
    assert!(s.certs.tick(now).await.is_empty());
    let error = s.certs.status("web")[0].last_error.clone();
    assert!(error.contains("connection refused"), "{error}");
    assert!(error.contains("attempt 1"), "{error}");
    // Within the first back-off nothing is tried; after it, again; then longer.
    *s.directory.fail.lock().unwrap() = Some("still down".into());
    s.certs.tick(now + Duration::from_secs(30)).await;
    assert!(s.certs.status("web")[0].last_error.contains("attempt 1"));
    s.certs.tick(now + Duration::from_secs(61)).await;
    assert!(s.certs.status("web")[0].last_error.contains("attempt 2"));
    s.certs.tick(now + Duration::from_secs(61 + 100)).await;
    assert!(s.certs.status("web")[0].last_error.contains("attempt 2"));
    *s.directory.fail.lock().unwrap() = None;
    assert_eq!(
        s.certs.tick(now + Duration::from_secs(61 + 121)).await,
        ["a.com"]
    );
    assert!(s.certs.status("web")[0].last_error.is_empty());
    assert_eq!(policy::retry_after(30), policy::MAX_RETRY);
}

#[tokio::test]
async fn an_app_that_drops_a_domain_drops_its_request() {
    let now = start();
    let s = setup(90 * DAY, now, None);
    s.certs
        .want("web", vec![wanted("a.com", &[]), wanted("b.com", &[])]);
    s.certs.tick(now).await;
    s.certs.want("web", vec![wanted("b.com", &[])]);
    let domains: Vec<String> = s
        .certs
        .status("web")
        .into_iter()
        .map(|c| c.domain)
        .collect();
    assert_eq!(domains, ["b.com"]);
    assert!(!s.dir.path().join("domains/a.com.json").exists());
}

mod removal;
mod staging;
