//! The limits on uploads: an id is required, the size is capped by haloyd.yaml and
//! by the announcement, chunks are at most 1 MiB, the whole upload has a deadline,
//! and the digest is checked even when nothing travels.

use std::time::Duration;

use haloy_api::v1::{self, deploy_event, deploy_request, image_source};
use tonic::Code;

use super::upload::{announce, digest, loads, upload};
use super::{TOKEN, deploy, msg, result, rig, rig_configured, spec, start};
use crate::api::upload::{EMPTY_SHA256, MAX_CHUNK};
use crate::engine::UploadLimits;

fn limited(max_bytes: u64, deadline: Duration) -> UploadLimits {
    UploadLimits {
        max_bytes,
        deadline,
        ..UploadLimits::default()
    }
}

fn chunk(data: Vec<u8>) -> v1::DeployRequest {
    msg(deploy_request::Message::Chunk(v1::UploadChunk { data }))
}

fn succeeded(events: &[deploy_event::Event]) {
    let r = result(events);
    assert_eq!(
        r.status,
        v1::DeploymentStatus::Succeeded as i32,
        "{}",
        r.reason
    );
}

fn failed(events: &[deploy_event::Event]) -> &str {
    let r = result(events);
    assert_eq!(
        r.status,
        v1::DeploymentStatus::Failed as i32,
        "{}",
        r.reason
    );
    &r.reason
}

#[tokio::test]
async fn an_upload_must_name_its_image() {
    let rig = rig().await;
    let err = deploy(&rig, upload(announce("", &["l1"]), b"uploaded:img", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("Upload.image_id is required"),
        "{}",
        err.message()
    );
    assert!(loads(&rig).is_empty());
}

#[tokio::test]
async fn an_announced_size_over_the_limit_is_refused_before_anything_travels() {
    let rig = rig_configured(|e| e.with_upload_limits(limited(100, Duration::from_secs(60)))).await;
    let mut announced = announce(&digest("img"), &["l1"]);
    announced.archive_size = 101;
    let err = deploy(&rig, upload(announced, b"uploaded:img", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("max_upload_bytes in haloyd.yaml") && err.message().contains("100"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn more_bytes_than_the_limit_fail_the_deploy_and_load_nothing() {
    let rig = rig_configured(|e| e.with_upload_limits(limited(10, Duration::from_secs(60)))).await;
    // Announced as unknown (a `docker save` stream): the limit still counts.
    let events = deploy(
        &rig,
        upload(announce(&digest("img"), &["l1"]), b"uploaded:img", None),
    )
    .await
    .unwrap();
    let reason = failed(&events);
    assert!(
        reason.contains("max_upload_bytes in haloyd.yaml"),
        "{reason}"
    );
    assert!(loads(&rig).is_empty(), "nothing was loaded");
}

#[tokio::test]
async fn more_bytes_than_announced_fail_the_deploy() {
    let rig = rig().await;
    let mut announced = announce(&digest("img"), &["l1"]);
    announced.archive_size = 5;
    let events = deploy(&rig, upload(announced, b"uploaded:img", None))
        .await
        .unwrap();
    let reason = failed(&events);
    assert!(
        reason.contains("more than the 5 bytes") && reason.contains("Upload.archive_size"),
        "{reason}"
    );
    assert!(loads(&rig).is_empty());

    // Fewer is fine: a partial archive leaves out the layers the server has.
    let mut announced = announce(&digest("img"), &["l1"]);
    announced.archive_size = 1000;
    let events = deploy(&rig, upload(announced, b"uploaded:img", None))
        .await
        .unwrap();
    succeeded(&events);
}

#[tokio::test]
async fn a_chunk_over_one_mib_fails_the_deploy() {
    let rig = rig().await;
    let data = vec![b'x'; MAX_CHUNK + 1];
    let messages = vec![
        start(
            spec("v1"),
            image_source::Source::Upload(announce(&digest("img"), &["l1"])),
        ),
        chunk(data),
    ];
    let events = deploy(&rig, messages).await.unwrap();
    let reason = failed(&events);
    assert!(reason.contains("1 MiB"), "{reason}");
    assert!(loads(&rig).is_empty());
}

#[tokio::test]
async fn an_empty_upload_is_checked_against_its_digest_too() {
    let rig = rig().await;
    let id = digest("image-v1");
    rig.runtime.images.lock().unwrap().insert(id.clone());
    for wrong in ["", "sha256:0000"] {
        let events = deploy(
            &rig,
            upload(announce(&id, &["base"]), b"", Some(wrong.to_string())),
        )
        .await
        .unwrap();
        let reason = failed(&events);
        assert!(reason.contains("the upload is corrupt"), "{reason}");
    }
    let events = deploy(
        &rig,
        upload(
            announce(&id, &["base"]),
            b"",
            Some(EMPTY_SHA256.to_string()),
        ),
    )
    .await
    .unwrap();
    succeeded(&events);
}

#[tokio::test]
async fn a_trickling_upload_is_cut_off_at_the_deadline_and_the_app_deploys_after() {
    let rig =
        rig_configured(|e| e.with_upload_limits(limited(1 << 20, Duration::from_millis(300))))
            .await;
    let mut client = rig.client(Some(TOKEN));
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(start(
        spec("v1"),
        image_source::Source::Upload(announce(&digest("image"), &["base"])),
    ))
    .await
    .unwrap();
    let mut events = client
        .deploy(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // A byte every 50 ms never trips the idle timeout, only the deadline.
    let trickle = tokio::spawn(async move {
        while tx.send(chunk(vec![b'x'])).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let started = std::time::Instant::now();
    let mut last = None;
    let collect = async {
        while let Some(event) = events.message().await.unwrap() {
            last = event.event;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("the deploy ends at the deadline");
    trickle.abort();
    let Some(deploy_event::Event::Result(r)) = last else {
        panic!("no result: {last:?}")
    };
    assert_eq!(r.status, v1::DeploymentStatus::Failed as i32);
    assert!(
        r.reason.contains("upload_deadline_secs in haloyd.yaml"),
        "{}",
        r.reason
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(loads(&rig).is_empty());

    let events = deploy(
        &rig,
        vec![start(spec("v2"), image_source::Source::Pull(v1::Pull {}))],
    )
    .await
    .unwrap();
    succeeded(&events);
}
