//! Certificates after deploys: requested for a healthy deploy with domains and an
//! ACME email, not for a failed one, not without an email.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Rig, rig, spec};
use crate::certs::fakes::{FakeDirectory, FakeInstaller};
use crate::certs::{CertDir, CertSettings, Certificates};
use crate::engine::{Event, ImageInput, Phase};
use crate::store::Status;

fn with_certificates(rig: Rig, default_email: Option<&str>) -> (Rig, Arc<Certificates>) {
    let dir = rig._dir.path().join("certs");
    let certificates = Arc::new(Certificates::new(
        CertDir::new(dir),
        FakeDirectory::new(Duration::from_secs(90 * 86_400), SystemTime::now()),
        Arc::new(FakeInstaller::default()),
        CertSettings {
            renew_before: None,
            check_interval: Duration::from_secs(3600),
        },
    ));
    let Rig {
        engine,
        runtime,
        proxy,
        _dir,
    } = rig;
    let Ok(engine) = Arc::try_unwrap(engine) else {
        panic!("the rig's engine is shared");
    };
    let engine =
        Arc::new(engine.with_certificates(certificates.clone(), default_email.map(String::from)));
    (
        Rig {
            engine,
            runtime,
            proxy,
            _dir,
        },
        certificates,
    )
}

fn certificate_phase(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| match e {
        Event::Phase(Phase::Certificates, message) => Some(message.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn a_healthy_deploy_requests_one_certificate_per_canonical_domain() {
    let (rig, certificates) = with_certificates(rig(), Some("ops@server.test"));
    let mut app = spec("v1");
    app.domains[0].aliases = vec!["www.web.test".into()];
    let (outcome, events) = rig.deploy(&app, ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded);
    let message = certificate_phase(&events).expect("a certificates phase");
    assert!(message.contains("web.test"), "{message}");
    let status = certificates.status("web");
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].names, ["web.test", "www.web.test"]);
    assert_eq!(certificates.tick(SystemTime::now()).await, ["web.test"]);
}

#[tokio::test]
async fn a_failed_deploy_or_no_email_requests_nothing() {
    let (rig, certificates) = with_certificates(rig(), None);
    let (outcome, events) = rig.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded);
    let message = certificate_phase(&events).expect("a certificates phase");
    assert!(message.contains("serving HTTP only"), "{message}");
    assert!(certificates.status("web").is_empty());

    let (rig, certificates) = with_certificates(super::rig(), Some("ops@server.test"));
    rig.runtime.log.fail("pull_image", "registry down");
    let (outcome, _) = rig.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Failed);
    assert!(certificates.status("web").is_empty());
}

#[tokio::test]
async fn stopping_keeps_the_certificates_and_removing_the_containers_drops_them() {
    let (rig, certificates) = with_certificates(rig(), Some("ops@server.test"));
    let (outcome, _) = rig.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(outcome.status, Status::Succeeded);
    certificates.tick(SystemTime::now()).await;
    let pem = rig._dir.path().join("certs/domains/web.test.pem");
    assert!(pem.exists());

    rig.engine.stop("web", false).await.unwrap();
    assert_eq!(certificates.status("web").len(), 1, "a stop dropped them");
    rig.engine.stop("web", true).await.unwrap();
    assert!(certificates.status("web").is_empty());
    certificates.tick(SystemTime::now()).await;
    assert!(!pem.exists(), "the removed app's key stayed on disk");
}
