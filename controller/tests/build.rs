//! Building images through the real Docker Engine: output streams as it comes,
//! build arguments arrive (and secret ones stay out of the output), `.dockerignore`
//! is honoured, and broken builds say what broke.

mod images;

use std::time::Instant;

use haloy_api::spec::Secret;
use haloy_controller::build::{BuildError, BuildOutput, build_image, connect_socket};
use haloy_controller::config::plan::BuildArg;
use images::Workshop;

fn arg(name: &str, value: Option<&str>, sensitive: bool) -> BuildArg {
    BuildArg {
        name: name.into(),
        value: value.map(Secret::new),
        sensitive,
    }
}

/// A line of output with when it arrived.
fn stamped(output: BuildOutput) -> (Instant, String) {
    let text = match output {
        BuildOutput::Line(line) => line,
        BuildOutput::Progress { status, .. } => status,
    };
    (Instant::now(), text)
}

fn text_of(lines: &[(Instant, String)]) -> String {
    lines
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn builds_a_scratch_image_streaming_its_output_with_the_build_args() {
    let shop = Workshop::new().await;
    let context = shop.context(
        "app",
        "ARG VERSION\nLABEL version=$VERSION\n\
         ARG UNSET_PASSTHROUGH=fallback\nLABEL passthrough=$UNSET_PASSTHROUGH\n\
         ARG API_TOKEN\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"test -n \\\"$API_TOKEN\\\"\"]\n\
         RUN [\"/bin/busybox\", \"echo\", \"first-marker\"]\n\
         RUN [\"/bin/busybox\", \"sleep\", \"2\"]\n\
         RUN [\"/bin/busybox\", \"echo\", \"second-marker\"]\n",
    );
    let token = "tok-5ecret-9d1b";
    let plan = shop.plan(
        &context,
        vec![
            arg("VERSION", Some("1.2.3"), false),
            arg("UNSET_PASSTHROUGH", None, true),
            arg("API_TOKEN", Some(token), true),
        ],
    );
    let reference = shop.reference("app");
    let mut lines = Vec::new();

    let id = build_image(&shop.docker, &plan, &reference, |o| lines.push(stamped(o)))
        .await
        .unwrap_or_else(|err| panic!("build failed: {err:#}"));
    let finished = Instant::now();

    let text = text_of(&lines);
    assert!(id.starts_with("sha256:"), "image id {id:?}");
    assert!(
        text.contains("Step 1/"),
        "no build steps in the output:\n{text}"
    );
    assert!(
        !text.contains(token),
        "the sensitive argument leaked:\n{text}"
    );
    // Streaming, not collected at the end: the first marker arrived while the
    // two-second step still had to run.
    let (first_at, _) = lines
        .iter()
        .find(|(_, l)| l.trim() == "first-marker")
        .unwrap_or_else(|| panic!("no first marker in:\n{text}"));
    assert!(
        finished.duration_since(*first_at).as_millis() >= 1500,
        "output was not streamed as it arrived:\n{text}"
    );
    assert!(
        lines.iter().any(|(_, l)| l.trim() == "second-marker"),
        "{text}"
    );

    let image = shop
        .docker
        .inspect_image(&reference)
        .await
        .expect("inspect");
    assert_eq!(image.id.as_deref(), Some(id.as_str()));
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("version").map(String::as_str), Some("1.2.3"));
    // An unset pass-through argument is not passed, so the Dockerfile's default holds.
    assert_eq!(
        labels.get("passthrough").map(String::as_str),
        Some("fallback")
    );
    assert_eq!(labels.get("dev.haloy.test").map(String::as_str), Some("1"));
}

#[tokio::test]
async fn sensitive_values_are_masked_even_when_the_build_prints_them() {
    let shop = Workshop::new().await;
    let context = shop.context(
        "echo",
        "ARG DB_PASSWORD\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo password is $DB_PASSWORD\"]\n",
    );
    let secret = "pw-0a9c7e51";
    let plan = shop.plan(&context, vec![arg("DB_PASSWORD", Some(secret), true)]);
    let mut lines = Vec::new();
    build_image(&shop.docker, &plan, &shop.reference("echo"), |o| {
        lines.push(stamped(o))
    })
    .await
    .unwrap_or_else(|err| panic!("build failed: {err:#}"));
    let text = text_of(&lines);
    assert!(text.contains("password is ********"), "{text}");
    assert!(!text.contains(secret), "{text}");
}

#[tokio::test]
async fn dockerignore_and_git_stay_out_of_the_context() {
    let shop = Workshop::new().await;
    let context = shop.context(
        "ignore",
        "COPY . /ctx/\n\
         RUN [\"/bin/busybox\", \"ls\", \"-a\", \"/ctx\"]\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"test -e /ctx/keep.txt && test -e /ctx/logs/keep.log \
         && test ! -e /ctx/secret.txt && test ! -e /ctx/debug.log && test ! -e /ctx/.git \
         && test ! -e /ctx/logs/drop.log\"]\n",
    );
    for (file, text) in [
        ("keep.txt", "keep"),
        ("secret.txt", "do not send"),
        ("debug.log", "noise"),
        (".git/HEAD", "ref: refs/heads/main"),
        ("logs/drop.log", "noise"),
        ("logs/keep.log", "kept by an exception"),
    ] {
        let path = context.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    std::fs::write(
        context.join(".dockerignore"),
        "# files that never leave the workstation\nsecret.txt\n*.log\nlogs\n!logs/keep.log\n",
    )
    .expect("write .dockerignore");
    let plan = shop.plan(&context, vec![]);
    let mut lines = Vec::new();
    let result = build_image(&shop.docker, &plan, &shop.reference("ignore"), |o| {
        lines.push(stamped(o))
    })
    .await;
    let text = text_of(&lines);
    result.unwrap_or_else(|err| panic!("{err:#}; the build saw:\n{text}"));
}

#[tokio::test]
async fn a_dockerfile_outside_the_context_is_used() {
    let shop = Workshop::new().await;
    let context = shop.raw_context("outside-context");
    std::fs::write(context.join("hello.txt"), "hello\n").expect("write");
    let elsewhere = shop.dir.path().join("ops");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(
        elsewhere.join("app.Dockerfile"),
        format!(
            "{}COPY hello.txt /hello.txt\nRUN [\"/bin/busybox\", \"cat\", \"/hello.txt\"]\n",
            shop.header()
        ),
    )
    .expect("write Dockerfile");
    let mut plan = shop.plan(&context, vec![]);
    plan.dockerfile = elsewhere.join("app.Dockerfile");
    let mut lines = Vec::new();
    build_image(&shop.docker, &plan, &shop.reference("outside"), |o| {
        lines.push(stamped(o))
    })
    .await
    .unwrap_or_else(|err| panic!("{err:#}"));
    let text = text_of(&lines);
    assert!(text.lines().any(|l| l.trim() == "hello"), "{text}");
}

/// Builds `dockerfile` (written as is) and returns the error's message.
async fn failure(shop: &Workshop, name: &str, dockerfile: &str) -> (BuildError, String) {
    let context = shop.raw_context(name);
    std::fs::write(context.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let plan = shop.plan(&context, vec![]);
    let err = build_image(&shop.docker, &plan, &shop.reference(name), |_| {})
        .await
        .expect_err("the build must fail");
    let message = err.to_string();
    let dockerfile = context.join("Dockerfile").display().to_string();
    assert!(
        message.contains(&dockerfile),
        "the error must name {dockerfile}: {message}"
    );
    (err, message)
}

#[tokio::test]
async fn broken_builds_name_the_dockerfile_and_give_dockers_reason() {
    let shop = Workshop::new().await;

    let (err, message) = failure(&shop, "syntax", "FORM scratch\n").await;
    assert!(matches!(err, BuildError::Failed { .. }), "{err:?}");
    assert!(message.contains("unknown instruction"), "{message}");

    let failing_run = format!("{}RUN [\"/bin/busybox\", \"false\"]\n", shop.header());
    let (_, message) = failure(&shop, "run", &failing_run).await;
    assert!(message.contains("non-zero code: 1"), "{message}");

    let missing_file = format!("{}COPY missing.txt /missing.txt\n", shop.header());
    let (_, message) = failure(&shop, "copy", &missing_file).await;
    assert!(message.contains("missing.txt"), "{message}");
}

#[tokio::test]
async fn a_missing_dockerfile_or_context_is_caught_before_docker() {
    let shop = Workshop::new().await;
    let context = shop.raw_context("nodockerfile");
    let plan = shop.plan(&context, vec![]);
    let err = build_image(&shop.docker, &plan, &shop.reference("x"), |_| {})
        .await
        .expect_err("no Dockerfile");
    assert!(matches!(err, BuildError::DockerfileMissing(_)), "{err:?}");
    assert!(
        err.to_string().contains("image.builder.dockerfile"),
        "{err}"
    );

    let plan = shop.plan(&shop.dir.path().join("nowhere"), vec![]);
    let err = build_image(&shop.docker, &plan, &shop.reference("x"), |_| {})
        .await
        .expect_err("no context");
    assert!(matches!(err, BuildError::ContextMissing(_)), "{err:?}");
}

#[tokio::test]
async fn without_docker_the_error_says_it_must_be_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("docker.sock");
    let err = connect_socket(&missing.display().to_string())
        .await
        .expect_err("no socket");
    assert!(matches!(err, BuildError::DockerUnavailable(_)), "{err:?}");
    assert!(err.to_string().contains("Docker must be running"), "{err}");

    // A socket file nobody listens on any more: connection refused.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let err = connect_socket(&stale.display().to_string())
        .await
        .expect_err("nobody listening");
    assert!(err.to_string().contains("Docker must be running"), "{err}");
}
