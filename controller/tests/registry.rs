//! Pushing to a real `docker-registry` with htpasswd auth through the real Docker
//! Engine: right credentials land the image, wrong ones and a dead registry give
//! errors that name the registry and never the password.

mod images;

use haloy_api::spec::{RegistryAuth, Secret};
use haloy_controller::build::build_image;
use haloy_controller::registry::{PushError, PushProgress, push_image, tag_image};
use images::{Registry, Workshop, free_port};

fn auth(server: &str, username: &str, password: &str) -> RegistryAuth {
    RegistryAuth {
        server: server.into(),
        username: Secret::new(username),
        password: Secret::new(password),
    }
}

/// Builds a small image and returns its id.
async fn small_image(shop: &Workshop, reference: &str) -> String {
    let context = shop.context("app", "CMD [\"/bin/busybox\", \"true\"]\n");
    let plan = shop.plan(&context, vec![]);
    build_image(&shop.docker, &plan, reference, |_| {})
        .await
        .unwrap_or_else(|err| panic!("building {reference}: {err:#}"))
}

#[tokio::test]
async fn a_push_with_the_right_credentials_lands_in_the_registry() {
    let registry = Registry::start();
    let shop = Workshop::new().await;
    let built = format!("{}/haloy-test/app:build", registry.server());
    small_image(&shop, &built).await;
    // Tagging under a second name, as a deploy does with its version tag.
    let reference = format!("{}/haloy-test/app:v1", registry.server());
    tag_image(&shop.docker, &built, &reference)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));

    let mut reports: Vec<PushProgress> = Vec::new();
    let credentials = auth(&registry.server(), &registry.username, &registry.password);
    let pushed = push_image(&shop.docker, &reference, &credentials, |p| reports.push(p))
        .await
        .unwrap_or_else(|err| panic!("push failed: {err:#}\n{}", registry.log()));

    assert_eq!(pushed.reference, reference);
    let digest = pushed.digest.expect("docker reports the pushed digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(
        reports.iter().any(|p| p.status.contains("Pushed")),
        "{reports:?}"
    );
    let (status, body) = registry.tags("haloy-test/app");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"v1\""), "{body}");
    assert!(
        !body.contains("\"build\""),
        "only the pushed tag goes: {body}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_names_the_registry() {
    let registry = Registry::start();
    let shop = Workshop::new().await;
    let reference = format!("{}/haloy-test/app:v1", registry.server());
    small_image(&shop, &reference).await;

    let wrong = "not-the-password-31c9";
    let credentials = auth(&registry.server(), &registry.username, wrong);
    let mut reports = Vec::new();
    let err = push_image(&shop.docker, &reference, &credentials, |p| reports.push(p))
        .await
        .expect_err("a wrong password must be refused");

    assert!(
        matches!(&err, PushError::Unauthorized { server } if *server == registry.server()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&registry.server()), "{message}");
    assert!(
        message.contains("image.registry.username") && message.contains("password"),
        "{message}"
    );
    assert!(!message.contains(wrong), "{message}");
    assert!(!format!("{err:?} {reports:?}").contains(wrong));
    let (status, _) = registry.tags("haloy-test/app");
    assert_eq!(status, 404, "nothing may have been pushed");
}

#[tokio::test]
async fn a_registry_that_is_down_is_named_in_the_error() {
    let shop = Workshop::new().await;
    let server = format!("127.0.0.1:{}", free_port());
    let reference = format!("{server}/haloy-test/app:v1");
    small_image(&shop, &reference).await;

    let err = push_image(&shop.docker, &reference, &auth(&server, "u", "p"), |_| {})
        .await
        .expect_err("nothing listens there");

    assert!(
        matches!(&err, PushError::Unreachable { server: s, .. } if *s == server),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("cannot reach registry {server}")),
        "{message}"
    );
}

#[tokio::test]
async fn images_that_are_not_here_or_credentials_for_another_registry_are_refused() {
    let shop = Workshop::new().await;
    let server = format!("127.0.0.1:{}", free_port());

    let absent = format!("{server}/haloy-test/absent-{}:v1", shop.owner);
    let err = push_image(&shop.docker, &absent, &auth(&server, "u", "p"), |_| {})
        .await
        .expect_err("no such image");
    assert!(matches!(err, PushError::ImageMissing { .. }), "{err:?}");
    assert!(err.to_string().contains(&absent), "{err}");

    let err = push_image(
        &shop.docker,
        &shop.reference("app"),
        &auth(&server, "u", "p"),
        |_| {},
    )
    .await
    .expect_err("credentials for another registry");
    assert!(
        matches!(&err, PushError::WrongRegistry { target, .. } if target == "index.docker.io"),
        "{err:?}"
    );
    assert!(err.to_string().contains(&server), "{err}");
}

#[tokio::test]
async fn the_guards_clean_up_after_a_panicking_test() {
    let (tx, rx) = std::sync::mpsc::channel();
    let test = tokio::spawn(async move {
        let registry = Registry::start();
        let shop = Workshop::new().await;
        let reference = format!("{}/haloy-test/app:v1", registry.server());
        small_image(&shop, &reference).await;
        tx.send((
            registry.pid(),
            registry.dir().to_path_buf(),
            shop.dir.path().to_path_buf(),
            shop.owner.clone(),
        ))
        .expect("send");
        panic!("a test failing half-way");
    });
    let outcome = test.await.expect_err("the task panicked");
    assert!(outcome.is_panic());
    let (pid, registry_dir, context_dir, owner) = rx.recv().expect("the test got going");

    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "docker-registry {pid} still runs"
    );
    assert!(!registry_dir.exists() && !context_dir.exists());
    let docker = haloy_controller::build::connect_local()
        .await
        .expect("docker");
    let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&std::collections::HashMap::from([(
            "label",
            vec![format!("dev.haloy.test.owner={owner}")],
        )]))
        .build();
    let left = docker
        .list_images(Some(options))
        .await
        .expect("list images");
    assert!(left.is_empty(), "images left behind: {left:?}");
}
