//! The Docker runtime against the machine's real Docker Engine: images are built
//! locally FROM scratch with busybox, everything is reached over 127.0.0.1, and
//! each test's sandbox removes what it created.

#[path = "support/docker.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use haloy_api::spec::{RegistryAuth, Secret, VolumeMount, VolumeSource};
use haloy_testkit::eventually_async;
use haloyd::runtime::docker::Docker;
use haloyd::runtime::{ArchiveStream, ContainerRuntime, ContainerState, RuntimeError, labels};
use support::{HTTPD, Sandbox, docker, http_get};

const SOON: Duration = Duration::from_secs(20);

async fn connect() -> Docker {
    Docker::connect()
        .await
        .expect("these tests need a running Docker Engine")
}

#[tokio::test]
async fn run_publishes_the_app_on_loopback_and_round_trips_labels() {
    let sandbox = Sandbox::new("run");
    let runtime = connect().await;
    let image = sandbox.build_image("web", HTTPD);
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();

    let spec = sandbox.spec("web", &image, &network);
    let info = runtime.run(&spec).await.unwrap();
    assert_eq!(info.state, ContainerState::Running);
    assert_eq!(info.name, spec.name);
    assert_eq!(info.image, image);
    assert_eq!(info.labels, spec.labels);
    let port = info.host_port.expect("the app port is published");
    let page = eventually_async(SOON, "the page", || http_get(port, "/")).await;
    assert_eq!(page, sandbox.page());

    // Published on loopback only, with init and a restart policy.
    assert_eq!(
        docker(&["port", &info.id, "8080/tcp"]),
        format!("127.0.0.1:{port}")
    );
    let host = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Init}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.NetworkMode}}",
        &info.id,
    ]);
    assert_eq!(host, format!("true unless-stopped {network}"));

    let by_name = runtime.inspect(&spec.name).await.unwrap();
    assert_eq!(by_name, info);
    let listed = runtime
        .list(&[(labels::INSTANCE, &sandbox.id), (labels::APP, "web")])
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&info));
    let none = runtime
        .list(&[(labels::INSTANCE, &sandbox.id), (labels::APP, "other")])
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // The name is taken now: a clear error, and the running one is untouched.
    let err = runtime.run(&spec).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        runtime.inspect(&spec.name).await.unwrap().state,
        ContainerState::Running
    );
}

#[tokio::test]
async fn failed_runs_leave_nothing_behind() {
    let sandbox = Sandbox::new("fail");
    let runtime = connect().await;
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();

    let missing = sandbox.spec("missing", &format!("{}-nothing:1", sandbox.id), &network);
    let err = runtime.run(&missing).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::ImageNotFound { local: true, .. }),
        "{err:?}"
    );

    // Creating works, starting fails: a host file mounted over a directory.
    let image = sandbox.build_image("broken", HTTPD);
    let file = sandbox.path("file.txt");
    std::fs::write(&file, "not a directory\n").unwrap();
    let mut broken = sandbox.spec("broken", &image, &network);
    broken.volumes.push(VolumeMount {
        source: VolumeSource::Bind(file.to_str().unwrap().into()),
        container_path: "/www".into(),
        options: vec![],
    });
    let err = runtime.run(&broken).await.unwrap_err();
    assert!(err.to_string().contains("cannot start"), "{err}");

    let left = runtime
        .list(&[(labels::INSTANCE, &sandbox.id)])
        .await
        .unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn env_reaches_the_app_and_logs_tail_and_follow() {
    let sandbox = Sandbox::new("logs");
    let runtime = connect().await;
    let script = "echo $GREETING; exec /bin/busybox httpd -f -v -p 8080 -h /www";
    let image = sandbox.build_image("env", &["/bin/busybox", "sh", "-c", script]);
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();
    let mut spec = sandbox.spec("env", &image, &network);
    let greeting = format!("hello {}", sandbox.id);
    spec.env.push(("GREETING".into(), greeting.clone()));
    let info = runtime.run(&spec).await.unwrap();

    let line = eventually_async(SOON, "the greeting in the logs", || async {
        let lines: Vec<_> = runtime
            .logs(&info.id, 10, false)
            .await
            .unwrap()
            .collect()
            .await;
        lines.into_iter().map(Result::unwrap).next()
    })
    .await;
    assert_eq!(line.text, greeting);
    assert!(!line.stderr);
    assert!(line.timestamp.is_some_and(|t| t.ends_with('Z')));

    let mut follow = runtime.logs(&info.id, 1, true).await.unwrap();
    let first = follow.next().await.unwrap().unwrap();
    assert_eq!(first.text, greeting);
    // busybox httpd -v reports each request on stderr.
    let port = info.host_port.unwrap();
    eventually_async(SOON, "the page", || http_get(port, "/")).await;
    let request = tokio::time::timeout(SOON, follow.next())
        .await
        .expect("a new line while following")
        .unwrap()
        .unwrap();
    assert!(request.stderr, "{request:?}");
    assert!(request.text.contains("response:200"), "{request:?}");

    let err = match runtime.logs("haloy-test-no-such-container", 1, true).await {
        Err(err) => err,
        Ok(_) => panic!("logs of a missing container"),
    };
    assert!(matches!(err, RuntimeError::NoSuchContainer(_)), "{err:?}");
}

#[tokio::test]
async fn named_volumes_and_read_only_binds() {
    let sandbox = Sandbox::new("volumes");
    let runtime = connect().await;
    let script = "echo kept > /www/data/note.txt; \
        if touch /www/conf/probe 2>/dev/null; then echo writable; else echo read-only; fi > /www/data/conf.txt; \
        exec /bin/busybox httpd -f -p 8080 -h /www";
    let image = sandbox.build_image("vol", &["/bin/busybox", "sh", "-c", script]);
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();
    let host_dir = sandbox.path("conf");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("message.txt"), "from the host\n").unwrap();
    let volume = sandbox.volume("data");

    let mut spec = sandbox.spec("vol", &image, &network);
    spec.volumes = vec![
        VolumeMount {
            source: VolumeSource::Named(volume.clone()),
            container_path: "/www/data".into(),
            options: vec![],
        },
        VolumeMount {
            source: VolumeSource::Bind(host_dir.to_str().unwrap().into()),
            container_path: "/www/conf".into(),
            options: vec!["ro".into()],
        },
    ];
    let info = runtime.run(&spec).await.unwrap();
    let port = info.host_port.unwrap();

    let message = eventually_async(SOON, "the bound file", || {
        http_get(port, "/conf/message.txt")
    })
    .await;
    assert_eq!(message, "from the host\n");
    let conf = eventually_async(SOON, "the probe result", || {
        http_get(port, "/data/conf.txt")
    })
    .await;
    assert_eq!(conf, "read-only\n");
    assert!(!host_dir.join("probe").exists());
    assert_eq!(
        eventually_async(SOON, "the note", || http_get(port, "/data/note.txt")).await,
        "kept\n"
    );
    // The note lives in the named volume, not in the container.
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.RW}} {{end}}",
        &info.id,
    ]);
    assert!(
        mounts.contains(&format!("volume:{volume}:true")),
        "{mounts}"
    );
    assert!(mounts.contains("bind::false"), "{mounts}");
}

#[tokio::test]
async fn stop_is_quick_with_init_and_stop_remove_tolerate_missing() {
    let sandbox = Sandbox::new("stop");
    let runtime = connect().await;
    let image = sandbox.build_image("web", HTTPD);
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();
    let info = runtime
        .run(&sandbox.spec("web", &image, &network))
        .await
        .unwrap();
    // A stop right after the start can reach the container's init before it handles
    // signals (then only the timeout's SIGKILL ends it); replicas are stopped once
    // they serve, so stop this one once it serves.
    let port = info.host_port.expect("the app port is published");
    eventually_async(SOON, "the page", || http_get(port, "/")).await;

    let started = Instant::now();
    runtime
        .stop(&info.id, Duration::from_secs(10))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    let stopped = runtime.inspect(&info.id).await.unwrap();
    assert!(
        matches!(stopped.state, ContainerState::Exited(_)),
        "{stopped:?}"
    );
    assert_eq!(stopped.host_port, None);
    runtime
        .stop(&info.id, Duration::from_secs(10))
        .await
        .unwrap();

    runtime.remove(&info.id).await.unwrap();
    let err = runtime.inspect(&info.id).await.unwrap_err();
    assert!(matches!(err, RuntimeError::NoSuchContainer(_)), "{err:?}");
    runtime.remove(&info.id).await.unwrap();
    runtime
        .stop(&info.id, Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_crashing_app_restarts_and_shows_its_exit_code_once_stopped() {
    let sandbox = Sandbox::new("exit");
    let runtime = connect().await;
    let image = sandbox.build_image("exit", &["/bin/busybox", "sh", "-c", "echo bye; exit 3"]);
    let network = sandbox.network("net");
    runtime.ensure_network(&network).await.unwrap();
    let info = runtime
        .run(&sandbox.spec("exit", &image, &network))
        .await
        .unwrap();

    // unless-stopped: Docker keeps restarting it, with a growing back-off.
    eventually_async(SOON, "docker restarting the app", || async {
        let state = runtime.inspect(&info.id).await.unwrap().state;
        (state == ContainerState::Restarting).then_some(())
    })
    .await;
    runtime
        .stop(&info.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        runtime.inspect(&info.id).await.unwrap().state,
        ContainerState::Exited(3)
    );
    let lines: Vec<_> = runtime
        .logs(&info.id, 100, false)
        .await
        .unwrap()
        .collect()
        .await;
    assert!(lines.iter().all(|l| l.as_ref().unwrap().text == "bye"));
    assert!(!lines.is_empty());
}

#[tokio::test]
async fn load_a_saved_image_then_tag_it() {
    let sandbox = Sandbox::new("load");
    let runtime = connect().await;
    let image = sandbox.build_image("saved", HTTPD);
    let archive = sandbox.path("image.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), &image]);
    docker(&["rmi", &image]);
    assert!(!runtime.image_exists(&image).await.unwrap());

    let bytes = std::fs::read(&archive).unwrap();
    let loaded = runtime.load_image(pieces(&bytes, None)).await.unwrap();
    // The archive's own tags are not applied (an upload must not move another
    // app's tag): the image is loaded under its id, and only that is reported.
    let [id] = loaded.as_slice() else {
        panic!("one image expected: {loaded:?}")
    };
    assert!(id.starts_with("sha256:"), "{id}");
    sandbox.track_image(id);
    assert!(runtime.image_exists(id).await.unwrap());
    assert!(
        !runtime.image_exists(&image).await.unwrap(),
        "the archive's tag {image} was applied"
    );

    let repository = format!("{}-tagged", sandbox.id);
    sandbox.track_image(&format!("{repository}:v2"));
    runtime.tag_image(id, &repository, "v2").await.unwrap();
    assert!(
        runtime
            .image_exists(&format!("{repository}:v2"))
            .await
            .unwrap()
    );
    let err = runtime
        .tag_image(&format!("{}-nothing:1", sandbox.id), &repository, "v3")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::ImageNotFound { local: true, .. }),
        "{err:?}"
    );

    // Truncated and not-a-tar archives are errors, and an archive whose stream breaks
    // off midway loads nothing.
    docker(&["rmi", "-f", id]);
    let err = runtime
        .load_image(pieces(&bytes[..bytes.len() / 3], None))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot load the uploaded image"),
        "{err}"
    );
    assert!(
        runtime
            .load_image(pieces(b"this is not a tar archive\n", None))
            .await
            .is_err()
    );
    let broken = pieces(&bytes[..bytes.len() - 4096], Some("the client went away"));
    assert!(runtime.load_image(broken).await.is_err());
    assert!(
        !runtime.image_exists(id).await.unwrap() && !runtime.image_exists(&image).await.unwrap(),
        "nothing of a broken upload is loaded"
    );
}

/// `bytes` in 64 KiB pieces, then `error` if given, as an upload delivers them.
fn pieces(bytes: &[u8], error: Option<&str>) -> ArchiveStream {
    let mut items: Vec<std::io::Result<bytes::Bytes>> = bytes
        .chunks(64 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    if let Some(error) = error {
        items.push(Err(std::io::Error::other(error.to_string())));
    }
    futures_util::stream::iter(items).boxed()
}

#[tokio::test]
async fn images_are_found_by_id_and_their_layer_chains_listed() {
    let sandbox = Sandbox::new("chains");
    let runtime = connect().await;
    let image = sandbox.build_image("layers", HTTPD);
    let id = docker(&["inspect", "-f", "{{.Id}}", &image]);
    assert!(runtime.image_exists(&id).await.unwrap());
    let absent = format!("sha256:{}", "0".repeat(64));
    assert!(!runtime.image_exists(&absent).await.unwrap());

    let layers: Vec<String> = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .RootFS.Layers}}",
        &image,
    ]))
    .unwrap();
    assert_eq!(layers.len(), 2, "busybox, then /www");
    let chains = runtime.layer_chains().await.unwrap();
    assert!(chains.contains(&layers), "{chains:?}");
}

#[tokio::test]
async fn pulling_from_an_unreachable_registry_fails_promptly_and_clearly() {
    let runtime = connect().await;
    let reference = "127.0.0.1:1/nothing:latest";
    let auth = RegistryAuth {
        server: "127.0.0.1:1".into(),
        username: Secret::new("deploy"),
        password: Secret::new("do-not-print-this-password"),
    };
    let started = Instant::now();
    let err = runtime
        .pull_image(reference, Some(&auth))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = err.to_string();
    assert!(
        message.contains("cannot pull 127.0.0.1:1/nothing:latest"),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    assert!(!message.contains("do-not-print-this-password"));
    assert!(!format!("{err:?}").contains("do-not-print-this-password"));
}

#[tokio::test]
async fn ensure_network_is_idempotent_even_when_racing() {
    let sandbox = Sandbox::new("network");
    let one = connect().await;
    let network = sandbox.network("shared");
    let (a, b) = tokio::join!(one.ensure_network(&network), one.ensure_network(&network));
    a.unwrap();
    b.unwrap();
    one.ensure_network(&network).await.unwrap();
    assert_eq!(networks_named(&network), 1);
    let label = docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{index .Labels \"dev.haloy.managed\"}}",
        &network,
    ]);
    assert_eq!(label, "bridge true");

    // Separate clients, as two haloyd processes would be, racing to create.
    let racing = sandbox.network("raced");
    let clients = [connect().await, connect().await, connect().await];
    let results =
        futures_util::future::join_all(clients.iter().map(|client| client.ensure_network(&racing)))
            .await;
    for result in results {
        result.unwrap();
    }
    assert_eq!(networks_named(&racing), 1);
}

fn networks_named(name: &str) -> usize {
    docker(&["network", "ls", "--format", "{{.Name}}"])
        .lines()
        .filter(|line| *line == name)
        .count()
}

#[tokio::test]
async fn version_and_an_unreachable_daemon() {
    let runtime = connect().await;
    let version = runtime.version().await.unwrap();
    assert!(
        version.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{version}"
    );
    assert!(
        !runtime
            .image_exists("haloy-test-never-built:1")
            .await
            .unwrap()
    );

    let err = match Docker::connect_with_socket("/nonexistent/docker.sock").await {
        Err(err) => err,
        Ok(_) => panic!("connected to a socket that does not exist"),
    };
    assert!(matches!(err, RuntimeError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("is the Docker daemon running"),
        "{err}"
    );
}
