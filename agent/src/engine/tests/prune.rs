//! Image history: the newest `count` deployments keep their images; pruning removes
//! only names haloyd can get back or made itself.

use super::*;
use crate::runtime::ContainerSpec;

#[tokio::test(start_paused = true)]
async fn local_history_keeps_the_newest_count_images_and_prunes_the_rest() {
    let rig = rig();
    let mut ids = Vec::new();
    for n in 1..=5 {
        let mut spec = spec(&format!("v{n}"));
        spec.image.history = History::Local { count: 3 };
        rig.runtime
            .images
            .lock()
            .unwrap()
            .insert(format!("web:v{n}"));
        let (outcome, _) = rig.deploy(&spec, ImageInput::Existing).await;
        assert_eq!(outcome.status, Status::Succeeded, "{}", outcome.reason);
        ids.push(outcome.deployment_id);
    }
    let images = rig.runtime.images.lock().unwrap().clone();
    for gone in ["web:v1", "web:v2"] {
        assert!(!images.contains(gone), "{gone} pruned: {images:?}");
    }
    for (n, id) in ids.iter().enumerate() {
        let present = images.contains(&format!("web:{id}"));
        assert_eq!(present, n >= 2, "web:{id} (deploy {}) in {images:?}", n + 1);
    }
    assert!(images.contains("web:v3") && images.contains("web:v5"));
    let dry = rig.engine.prune("web", true).await.unwrap();
    assert!(dry.removed.is_empty(), "nothing left to prune: {dry:?}");
    assert_eq!(dry.kept, [ids[4].clone(), ids[3].clone(), ids[2].clone()]);
}

#[tokio::test(start_paused = true)]
async fn pruning_never_removes_an_image_a_container_uses() {
    let rig = rig();
    let mut first = spec("v1");
    first.image.history = History::Local { count: 1 };
    rig.runtime.images.lock().unwrap().insert("web:v1".into());
    let (v1, _) = rig.deploy(&first, ImageInput::Existing).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    // Another haloyd on the same Docker runs v1 under a name of its own.
    rig.runtime
        .run(&ContainerSpec {
            name: "other-v1".into(),
            image: "web:v1".into(),
            env: vec![],
            labels: BTreeMap::new(),
            network: "haloy-public".into(),
            volumes: vec![],
            resources: Default::default(),
            alias: None,
            port: 8080,
        })
        .await
        .unwrap();
    let mut second = spec("v2");
    second.image.history = History::Local { count: 1 };
    rig.runtime.images.lock().unwrap().insert("web:v2".into());
    let (v2, _) = rig.deploy(&second, ImageInput::Existing).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    let images = rig.runtime.images.lock().unwrap().clone();
    assert!(images.contains("web:v1"), "in use elsewhere: {images:?}");
    let pruned = rig.engine.prune("web", false).await.unwrap();
    assert!(pruned.removed.is_empty(), "{pruned:?}");
}

/// Invariant: a name the user gave an image on the server (`image.source: local`)
/// is never removed by pruning; only haloyd's own deployment tags of it are.
#[tokio::test(start_paused = true)]
async fn pruning_keeps_the_users_own_tags_of_a_failed_deploy() {
    let rig = rig();
    let mut local = spec("mine-unhealthy");
    local.image.source = ImageSource::Local;
    local.image.history = History::Local { count: 1 };
    for tag in ["web:mine-unhealthy", "web:good"] {
        rig.runtime.images.lock().unwrap().insert(tag.into());
    }
    let (failed, _) = rig.deploy(&local, ImageInput::Existing).await;
    assert_eq!(failed.status, Status::Failed, "{}", failed.reason);
    assert_eq!(
        rig.record(&failed.deployment_id).image_origin,
        crate::store::ImageOrigin::Server
    );

    let mut good = local.clone();
    good.image.tag = "good".into();
    let (ok, _) = rig.deploy(&good, ImageInput::Existing).await;
    assert_eq!(ok.status, Status::Succeeded, "{}", ok.reason);
    let images = rig.runtime.images.lock().unwrap().clone();
    assert!(
        images.contains("web:mine-unhealthy"),
        "the user's tag stays: {images:?}"
    );
    assert!(
        !images.contains(&format!("web:{}", failed.deployment_id)),
        "haloyd's own tag of the failed deploy goes: {images:?}"
    );

    // Retrying that tag finds the image and fails for its own reason again.
    let (retry, _) = rig.deploy(&local, ImageInput::Existing).await;
    assert!(retry.reason.contains("health check"), "{}", retry.reason);
}
