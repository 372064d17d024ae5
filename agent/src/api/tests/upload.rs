//! Uploads over the Deploy stream: what the server asks for, digests, and that a
//! broken or abandoned upload loads nothing.

use std::time::Duration;

use haloy_api::v1::{self, deploy_event, deploy_request, image_source};
use haloy_testkit::Wait;
use sha2::{Digest, Sha256};
use tonic::Code;

use super::{TOKEN, deploy, msg, result, rig, spec, start};

pub(super) fn digest(name: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(name.as_bytes()))
}

pub(super) fn announce(image_id: &str, layers: &[&str]) -> v1::Upload {
    v1::Upload {
        image_id: image_id.to_string(),
        layers: layers.iter().map(|l| digest(l)).collect(),
        archive_size: 0,
    }
}

/// Start, the data in two chunks, and the end with `digest` (the right one if None).
pub(super) fn upload(
    announced: v1::Upload,
    data: &[u8],
    digest: Option<String>,
) -> Vec<v1::DeployRequest> {
    let sha = digest.unwrap_or_else(|| format!("sha256:{:x}", Sha256::digest(data)));
    let mut messages = vec![start(spec("v1"), image_source::Source::Upload(announced))];
    if !data.is_empty() {
        for part in [&data[..data.len() / 2], &data[data.len() / 2..]] {
            messages.push(msg(deploy_request::Message::Chunk(v1::UploadChunk {
                data: part.to_vec(),
            })));
        }
    }
    messages.push(msg(deploy_request::Message::End(v1::UploadEnd {
        sha256: sha,
        size: data.len() as u64,
    })));
    messages
}

fn wanted(events: &[deploy_event::Event]) -> &v1::UploadWanted {
    events
        .iter()
        .find_map(|e| match e {
            deploy_event::Event::UploadWanted(w) => Some(w),
            _ => None,
        })
        .expect("an UploadWanted event")
}

/// The images the fake runtime loaded.
pub(super) fn loads(rig: &super::Rig) -> Vec<String> {
    rig.runtime
        .log
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("load_image"))
        .collect()
}

#[tokio::test]
async fn uploads_are_checked_against_their_digest() {
    let rig = rig().await;
    // The fake runtime "loads" an archive by reading the image reference it contains;
    // the announced id is not that, so the engine takes what loaded. Nothing is on
    // the server, so every layer is wanted.
    let id = digest("img");
    let events = deploy(&rig, upload(announce(&id, &["l1"]), b"uploaded:img", None))
        .await
        .unwrap();
    let w = wanted(&events);
    assert!(!w.have_image && w.layers == [digest("l1")], "{w:?}");
    assert_eq!(
        result(&events).status,
        v1::DeploymentStatus::Succeeded as i32,
        "{}",
        result(&events).reason
    );
    assert!(
        rig.runtime
            .log
            .calls()
            .iter()
            .any(|c| c == "tag_image uploaded:img web:v1")
    );

    let wrong = Some("sha256:0000".to_string());
    let events = deploy(&rig, upload(announce(&id, &["l1"]), b"uploaded:img", wrong))
        .await
        .unwrap();
    let r = result(&events);
    assert_eq!(r.status, v1::DeploymentStatus::Failed as i32);
    assert!(r.reason.contains("the upload is corrupt"), "{}", r.reason);
    assert_eq!(
        loads(&rig),
        ["load_image uploaded:img"],
        "the corrupt upload is not loaded"
    );
}

#[tokio::test]
async fn only_the_layers_above_what_the_server_has_are_wanted() {
    let rig = rig().await;
    *rig.runtime.chains.lock().unwrap() = vec![
        vec![digest("base"), digest("app-v1")],
        vec![digest("other"), digest("app-v2")],
    ];
    let id = digest("image-v2");
    // The fake loads the id the archive names, so the engine finds the image by id.
    let events = deploy(
        &rig,
        upload(announce(&id, &["base", "app-v2"]), id.as_bytes(), None),
    )
    .await
    .unwrap();
    let w = wanted(&events);
    assert!(!w.have_image);
    assert_eq!(w.layers, [digest("app-v2")]);
    let r = result(&events);
    assert_eq!(
        r.status,
        v1::DeploymentStatus::Succeeded as i32,
        "{}",
        r.reason
    );
    assert!(
        rig.runtime
            .log
            .calls()
            .contains(&format!("tag_image {id} web:v1")),
        "the announced image becomes spec.image: {:?}",
        rig.runtime.log.calls()
    );
}

#[tokio::test]
async fn an_image_the_server_has_is_not_uploaded_again() {
    let rig = rig().await;
    let id = digest("image-v1");
    rig.runtime.images.lock().unwrap().insert(id.clone());
    let events = deploy(&rig, upload(announce(&id, &["base"]), b"", None))
        .await
        .unwrap();
    let w = wanted(&events);
    assert!(w.have_image && w.layers.is_empty(), "{w:?}");
    let r = result(&events);
    assert_eq!(
        r.status,
        v1::DeploymentStatus::Succeeded as i32,
        "{}",
        r.reason
    );
    let calls = rig.runtime.log.calls();
    assert!(
        calls.contains(&format!("tag_image {id} web:v1")),
        "{calls:?}"
    );
    assert!(loads(&rig).is_empty(), "{calls:?}");
}

#[tokio::test]
async fn an_announcement_that_names_no_digests_is_refused() {
    let rig = rig().await;
    let bad = v1::Upload {
        image_id: digest("image"),
        layers: vec!["../../etc/passwd".into()],
        archive_size: 0,
    };
    let err = deploy(&rig, upload(bad, b"x", None)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("Upload.layers"), "{}", err.message());
}

#[tokio::test]
async fn an_upload_the_client_abandons_loads_nothing() {
    let rig = rig().await;
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
    loop {
        let event = events.message().await.unwrap().unwrap().event.unwrap();
        if matches!(event, deploy_event::Event::UploadWanted(_)) {
            break;
        }
    }
    tx.send(msg(deploy_request::Message::Chunk(v1::UploadChunk {
        data: vec![7; 1000],
    })))
    .await
    .unwrap();
    // Gone mid-transfer: the call is cancelled, the request stream breaks.
    drop(events);
    drop(tx);
    // The attempt is on record as failed, with why.
    let latest = Wait::new(Duration::from_secs(5), "a finished record of the deploy")
        .every(Duration::from_millis(20))
        .until_async(|| {
            let mut client = client.clone();
            async move {
                let status = client.status(v1::StatusRequest { app: "web".into() }).await;
                // The deploy is on record (in progress) while the upload still arrives.
                status
                    .ok()
                    .and_then(|s| s.into_inner().latest)
                    .filter(|latest| latest.status != v1::DeploymentStatus::InProgress as i32)
            }
        })
        .await;
    assert_eq!(latest.status, v1::DeploymentStatus::Failed as i32);
    assert!(latest.reason.contains("upload"), "{}", latest.reason);
    assert!(loads(&rig).is_empty(), "nothing was loaded");
}
