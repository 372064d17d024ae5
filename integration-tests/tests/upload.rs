//! Uploads move only what the server lacks: the first deploy of an image sends every
//! layer, the next version sends its changed top layer, the same image sends nothing,
//! and an upload cut off midway loads nothing and leaves the old version serving.

use std::path::Path;
use std::time::Duration;

use haloy_api::spec::AppSpec;
use haloy_api::spec::Secret;
use haloy_api::status::DeploymentStatus;
use haloy_api::v1::{self, deploy_event, deploy_request, haloy_client::HaloyClient, image_source};
use haloy_controller::archive::ImageArchive;
use haloy_controller::client::Client;
use haloy_controller::deployment::{DeployReport, ImageChoice, Progress};
use integration_tests::{ImageFamily, Server, eventually};

/// The busybox layer is about 2 MB; a layer holding a small page is a few KB.
const SMALL_UPLOAD: u64 = 200 * 1024;

fn spec(server: &Server, reference: &str, app: &str) -> AppSpec {
    let (repository, tag) = reference.rsplit_once(':').expect("repository:tag");
    integration_tests::app_spec(app, repository, tag, &server.network)
}

async fn deploy(
    server: &Server,
    spec: &AppSpec,
    image: ImageChoice,
) -> (DeployReport, Vec<Progress>) {
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .unwrap();
    let mut progress = Vec::new();
    let report = client
        .deploy(spec, image, |p| progress.push(p))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- haloyd.log\n{}", server.log()));
    assert!(
        report.succeeded,
        "{}: {}\n--- haloyd.log\n{}",
        report.status,
        report.reason,
        server.log()
    );
    (report, progress)
}

/// (layers, of) from the UploadPlanned progress.
fn planned(progress: &[Progress]) -> (usize, usize) {
    progress
        .iter()
        .find_map(|p| match p {
            Progress::UploadPlanned { layers, of, .. } => Some((*layers, *of)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no UploadPlanned in {progress:?}"))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_layers_the_server_lacks_are_uploaded() {
    let family = ImageFamily::new("layers");
    let a = family.build("a", "version a");
    let b = family.build("b", "version b");
    let dir = tempfile::tempdir().unwrap();
    let (a_tar, b_tar) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    family.save(&a, &a_tar);
    family.save(&b, &b_tar);
    let busybox_layer = ImageArchive::open(&b_tar).unwrap().layers()[0].size;
    assert!(busybox_layer > 1_000_000, "{busybox_layer}");
    // The server shares this Docker: it must lack the family to begin with.
    family.remove_all();

    let server = Server::start();

    // (a) The first deploy sends the whole archive: the server has no layer of it.
    let (report, progress) = deploy(
        &server,
        &spec(&server, &a, "layers"),
        ImageChoice::Upload(a_tar.clone()),
    )
    .await;
    assert_eq!(planned(&progress), (2, 2));
    assert_eq!(report.uploaded_bytes, size(&a_tar));
    assert_eq!(server.get("layers.test", "/").2, "version a");
    let sent: Vec<u64> = progress
        .iter()
        .filter_map(|p| match p {
            Progress::Uploading { sent, total } => {
                assert_eq!(*total, size(&a_tar));
                Some(*sent)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        sent.last(),
        Some(&size(&a_tar)),
        "progress reaches the total"
    );
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "{sent:?}");

    // (b) The next version shares the busybox layer: only its /www layer travels.
    let (report, progress) = deploy(
        &server,
        &spec(&server, &b, "layers"),
        ImageChoice::Upload(b_tar.clone()),
    )
    .await;
    assert_eq!(planned(&progress), (1, 2));
    assert!(
        report.uploaded_bytes > 0 && report.uploaded_bytes < SMALL_UPLOAD,
        "uploaded {} bytes of a {} byte archive",
        report.uploaded_bytes,
        size(&b_tar)
    );
    assert!(report.uploaded_bytes < busybox_layer / 10);
    assert_eq!(server.get("layers.test", "/").2, "version b");

    // (c) The same image again, exported from the (shared) local Docker: the server
    // has it, so nothing travels.
    let (report, progress) = deploy(
        &server,
        &spec(&server, &b, "layers"),
        ImageChoice::UploadFromDocker(b.clone()),
    )
    .await;
    assert_eq!(report.uploaded_bytes, 0);
    assert_eq!(planned(&progress), (0, 2));
    assert_eq!(server.get("layers.test", "/").2, "version b");

    // What the export read matches what Docker says about the image.
    let exported = haloy_controller::upload::export(&b, dir.path())
        .await
        .unwrap();
    let inspect = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.Id}} {{range .RootFS.Layers}}{{.}} {{end}}",
            &b,
        ])
        .output()
        .unwrap();
    let inspect = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    let mut words = inspect.split_whitespace();
    assert_eq!(exported.image_id(), words.next().unwrap());
    assert_eq!(exported.diff_ids(), words.collect::<Vec<_>>());
    let missing = format!("{}:nothing", family.repository);
    let err = haloy_controller::upload::export(&missing, dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such image"), "{err}");

    drop(server);
}

/// A server serving `old` of `app`, which lacks the saved `new` version's top layer.
struct OldServing {
    _family: ImageFamily,
    _dir: tempfile::TempDir,
    old: String,
    new: String,
    new_tar: std::path::PathBuf,
    archive: ImageArchive,
    server: Server,
}

async fn old_serving(app: &str, new_body: &str) -> OldServing {
    let family = ImageFamily::new(app);
    let old = family.build("old", "old version");
    let new = family.build("new", new_body);
    let dir = tempfile::tempdir().unwrap();
    let new_tar = dir.path().join("new.tar");
    family.save(&new, &new_tar);
    let archive = ImageArchive::open(&new_tar).unwrap();
    let server = Server::start();
    deploy(&server, &spec(&server, &old, app), ImageChoice::Existing).await;
    assert_eq!(server.get(&format!("{app}.test"), "/").2, "old version");
    // The server must really need the new version's top layer.
    let removed = std::process::Command::new("docker")
        .args(["rmi", &new])
        .output()
        .unwrap();
    assert!(removed.status.success());
    OldServing {
        _family: family,
        _dir: dir,
        old,
        new,
        new_tar,
        archive,
        server,
    }
}

impl OldServing {
    /// The DeployStart announcing an upload of the new version.
    fn start(&self, app: &str) -> v1::DeployRequest {
        v1::DeployRequest {
            message: Some(deploy_request::Message::Start(v1::DeployStart {
                spec: Some(spec(&self.server, &self.new, app).into()),
                image: Some(v1::ImageSource {
                    source: Some(image_source::Source::Upload(v1::Upload {
                        image_id: self.archive.image_id().to_string(),
                        layers: self.archive.diff_ids(),
                        archive_size: self.archive.size(),
                    })),
                }),
                deployment_id: String::new(),
                ..Default::default()
            })),
        }
    }

    /// Opens a raw Deploy stream with `messages`, as a client of our own would.
    async fn deploy_raw<S>(&self, messages: S) -> tonic::Streaming<v1::DeployEvent>
    where
        S: tokio_stream::Stream<Item = v1::DeployRequest> + Send + 'static,
    {
        let mut client = HaloyClient::connect(format!("http://{}", self.server.api()))
            .await
            .unwrap();
        let mut request = tonic::Request::new(messages);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.server.token()).parse().unwrap(),
        );
        client.deploy(request).await.unwrap().into_inner()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_cut_off_midway_leaves_nothing_and_the_old_version_serving() {
    let app = "cut";
    let rig = old_serving(app, &"new version ".repeat(100_000)).await;
    let (server, archive) = (&rig.server, &rig.archive);

    // A client that announces the new version, sends one chunk and goes away.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(rig.start(app)).await.unwrap();
    let mut events = rig
        .deploy_raw(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let wanted = loop {
        let event = events.message().await.unwrap().unwrap().event.unwrap();
        if let deploy_event::Event::UploadWanted(wanted) = event {
            break wanted;
        }
    };
    assert_eq!(
        wanted.layers,
        archive.diff_ids()[1..],
        "the base is shared with the old version"
    );
    let first = std::fs::read(&rig.new_tar).unwrap()[..64 * 1024].to_vec();
    tx.send(v1::DeployRequest {
        message: Some(deploy_request::Message::Chunk(v1::UploadChunk {
            data: first,
        })),
    })
    .await
    .unwrap();
    // Docker is loading what arrived when the client goes away.
    loop {
        let event = events.message().await.unwrap().unwrap().event.unwrap();
        if matches!(&event, deploy_event::Event::Phase(p) if p.phase == v1::Phase::LoadingImage as i32)
        {
            break;
        }
    }
    drop(events);
    drop(tx);
    let mut client = Client::connect(&server.api(), &Secret::new(server.token()))
        .await
        .unwrap();
    let status = eventually(Duration::from_secs(10), "the deploy to fail", || {
        let status = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(client.status(app))
        })
        .ok()?;
        (status.latest.as_ref()?.status == DeploymentStatus::Failed).then_some(status)
    });
    assert!(
        status.latest.as_ref().unwrap().reason.contains("upload"),
        "{status:?}"
    );
    assert_eq!(status.current.unwrap().image, rig.old);
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", archive.image_id()])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "nothing of the cut-off upload is loaded"
    );
    assert_eq!(server.get("cut.test", "/").2, "old version");
    assert_eq!(
        server.containers(app).len(),
        1,
        "{:?}",
        server.containers(app)
    );
    drop(rig);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_upload_with_a_wrong_digest_is_not_loaded() {
    let app = "digest";
    let rig = old_serving(app, "new version").await;

    // Every byte of a valid archive arrives, but the digest at the end is wrong:
    // Docker must never see the end of the archive.
    let bytes = std::fs::read(&rig.new_tar).unwrap();
    let mut messages = vec![rig.start(app)];
    for chunk in bytes.chunks(256 * 1024) {
        messages.push(v1::DeployRequest {
            message: Some(deploy_request::Message::Chunk(v1::UploadChunk {
                data: chunk.to_vec(),
            })),
        });
    }
    messages.push(v1::DeployRequest {
        message: Some(deploy_request::Message::End(v1::UploadEnd {
            sha256: format!("sha256:{}", "0".repeat(64)),
            size: bytes.len() as u64,
        })),
    });
    let mut events = rig.deploy_raw(tokio_stream::iter(messages)).await;
    let result = loop {
        let event = events.message().await.unwrap().unwrap().event.unwrap();
        if let deploy_event::Event::Result(result) = event {
            break result;
        }
    };
    assert_eq!(result.status, v1::DeploymentStatus::Failed as i32);
    assert!(result.reason.contains("corrupt"), "{}", result.reason);
    let inspect = std::process::Command::new("docker")
        .args(["image", "inspect", rig.archive.image_id()])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "an upload whose digest does not match is not loaded"
    );
    assert_eq!(rig.server.get("digest.test", "/").2, "old version");
    drop(rig);
}
