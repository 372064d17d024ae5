//! The canary RPCs and fields over the real service: a canary deploy rests in
//! CANARY, status counts both versions, promote finishes it, and requests that
//! cannot be served say why with the right code.

use haloy_api::spec::DomainSpec;
use haloy_api::v1::{self, deploy_request, image_source};
use tonic::Code;

use super::{TOKEN, deploy, result, rig, spec, start};

fn routed(tag: &str) -> haloy_api::spec::AppSpec {
    let mut s = spec(tag);
    s.domains = vec![DomainSpec {
        canonical: "web.test".into(),
        aliases: vec![],
    }];
    s
}

fn canary_start(tag: &str, percent: u32) -> v1::DeployRequest {
    let mut request = start(routed(tag), image_source::Source::Pull(v1::Pull {}));
    if let Some(deploy_request::Message::Start(start)) = &mut request.message {
        start.canary_percent = percent;
    }
    request
}

#[tokio::test]
async fn a_canary_rests_in_canary_until_promoted() {
    let rig = rig().await;
    let app = || v1::CanaryRequest { app: "web".into() };
    let mut client = rig.client(Some(TOKEN));
    let none = client.canary_status(app()).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);
    assert!(
        none.message().contains("no canary running"),
        "{}",
        none.message()
    );

    let v1 = start(routed("v1"), image_source::Source::Pull(v1::Pull {}));
    deploy(&rig, vec![v1]).await.unwrap();
    let events = deploy(&rig, vec![canary_start("v2", 25)]).await.unwrap();
    let canary = result(&events).clone();
    assert_eq!(
        canary.status,
        v1::DeploymentStatus::Canary as i32,
        "{}",
        canary.reason
    );

    let status = client.canary_status(app()).await.unwrap().into_inner();
    assert_eq!(status.percent, 25);
    assert_eq!(status.canary.unwrap().deployment_id, canary.deployment_id);
    assert_eq!(status.stable.unwrap().replicas.len(), 1);

    let busy = deploy(&rig, vec![canary_start("v3", 10)])
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert!(
        busy.message().contains("haloy canary promote"),
        "{}",
        busy.message()
    );

    let promoted = client.canary_promote(app()).await.unwrap().into_inner();
    assert_eq!(promoted.status, v1::DeploymentStatus::Succeeded as i32);
    let current = client
        .status(v1::StatusRequest { app: "web".into() })
        .await
        .unwrap()
        .into_inner()
        .current
        .unwrap();
    assert_eq!(current.id, canary.deployment_id);
}

#[tokio::test]
async fn a_share_outside_1_to_99_is_refused() {
    let rig = rig().await;
    let err = deploy(&rig, vec![canary_start("v1", 100)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("canary_percent"),
        "{}",
        err.message()
    );
    // Nothing serves yet: a canary has nothing to compare with.
    let err = deploy(&rig, vec![canary_start("v1", 10)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("without --canary"),
        "{}",
        err.message()
    );
}
