//! Building the app's image on the workstation with Docker's build API: the context
//! goes over as a tar stream, Docker's output comes back line by line.

mod context;
pub mod ignore;
mod redact;
mod stream;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::BuildInfo;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::{Stream, StreamExt};

use crate::config::plan::BuildPlan;
use context::{Context, Dockerfile};
use ignore::IgnoreRules;
pub(crate) use redact::Redactor;

/// How long to wait for Docker's first answer to a build: the whole context is
/// uploaded before it, which can take a while for big contexts.
const BUILD_ANSWER_TIMEOUT: Duration = Duration::from_secs(3600);
/// The usual wait for Docker's answer to anything else.
const ANSWER_TIMEOUT: u64 = 120;

/// What a build prints, passed to the caller as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutput {
    /// One line of the build's log: steps, output of `RUN` commands, warnings.
    Line(String),
    /// A progress report, such as a base image being pulled.
    Progress { id: Option<String>, status: String },
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "cannot reach Docker on this machine ({0}); Docker must be running to build images: start it and try again"
    )]
    DockerUnavailable(String),
    #[error(
        "build context {} is not a directory; point image.builder.context at the directory to build from",
        .0.display()
    )]
    ContextMissing(PathBuf),
    #[error(
        "Dockerfile {} does not exist; create it or point image.builder.dockerfile at it",
        .0.display()
    )]
    DockerfileMissing(PathBuf),
    #[error("cannot read {} from the build context: {source}", path.display())]
    Context { path: PathBuf, source: io::Error },
    #[error("building {} failed: {message}", dockerfile.display())]
    Failed {
        dockerfile: PathBuf,
        message: String,
    },
    #[error("docker: {0}")]
    Docker(String),
}

/// Connects to the workstation's Docker (`DOCKER_HOST`, else the local socket) and
/// agrees on an API version with it.
pub async fn connect_local() -> Result<Docker, BuildError> {
    let docker = Docker::connect_with_defaults().map_err(unavailable)?;
    negotiate(docker).await
}

/// Connects to the Docker listening on the unix socket at `path`.
pub async fn connect_socket(path: &str) -> Result<Docker, BuildError> {
    let docker = Docker::connect_with_unix(path, ANSWER_TIMEOUT, bollard::API_DEFAULT_VERSION)
        .map_err(unavailable)?;
    negotiate(docker).await
}

async fn negotiate(docker: Docker) -> Result<Docker, BuildError> {
    let docker = docker.negotiate_version().await.map_err(unavailable)?;
    tracing::debug!(api = %docker.client_version(), "connected to docker");
    Ok(docker)
}

fn unavailable(err: bollard::errors::Error) -> BuildError {
    BuildError::DockerUnavailable(match err {
        bollard::errors::Error::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => other.to_string(),
    })
}

/// Builds `plan` into an image tagged `reference` and returns the image id.
///
/// Every line of Docker's output goes to `output` as it arrives, with the values of
/// sensitive build arguments masked. A pass-through argument whose variable is not
/// set is not passed, as with `docker build --build-arg NAME`.
pub async fn build_image(
    docker: &Docker,
    plan: &BuildPlan,
    reference: &str,
    output: impl FnMut(BuildOutput),
) -> Result<String, BuildError> {
    let context = prepare(plan)?;
    let redactor = Redactor::new(
        plan.args
            .iter()
            .filter(|arg| arg.sensitive)
            .filter_map(|arg| arg.value.as_ref().map(|v| v.expose())),
    );
    // Build arguments reach Docker in the query string and nowhere else.
    let args: HashMap<&str, &str> = plan
        .args
        .iter()
        .filter_map(|arg| Some((arg.name.as_str(), arg.value.as_ref()?.expose())))
        .collect();
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(context.dockerfile.name_in_archive())
        .t(reference)
        .buildargs(&args)
        .rm(true)
        .forcerm(true);
    if !plan.platform.is_empty() {
        options = options.platform(&plan.platform);
    }
    tracing::debug!(
        %reference,
        context = %plan.context.display(),
        dockerfile = %plan.dockerfile.display(),
        args = ?args.keys().collect::<Vec<_>>(),
        "building image"
    );

    let (chunks, archiving) = stream::archive(context);
    let patient = docker.clone().with_timeout(BUILD_ANSWER_TIMEOUT);
    let answer = patient.build_image(
        options.build(),
        None,
        Some(bollard::body_try_stream(chunks)),
    );
    // Following the answer to its end (or first error) drops the request, and with
    // it the chunks' receiver, so archiving never waits on a build that is over.
    let followed = follow(answer, output, &redactor).await;

    let archived = archiving
        .await
        .map_err(|err| BuildError::Docker(format!("writing the build context failed: {err}")))?;
    if let Err(err) = archived
        && !err.aborted()
    {
        return Err(BuildError::Context {
            path: err.path,
            source: err.source,
        });
    }
    match followed {
        Err(err) => Err(build_error(&plan.dockerfile, err, &redactor)),
        Ok(Some(id)) => Ok(id),
        // Older engines only say "Successfully built <short id>"; ask for the full one.
        Ok(None) => {
            let image = docker
                .inspect_image(reference)
                .await
                .map_err(|err| build_error(&plan.dockerfile, err, &redactor))?;
            image.id.ok_or_else(|| {
                BuildError::Docker(format!("docker built {reference} but reports no image id"))
            })
        }
    }
}

/// Passes Docker's answer to `output` line by line and returns the image id it
/// reported, or its first error.
async fn follow(
    answer: impl Stream<Item = Result<BuildInfo, bollard::errors::Error>>,
    mut output: impl FnMut(BuildOutput),
    redactor: &Redactor,
) -> Result<Option<String>, bollard::errors::Error> {
    let mut answer = std::pin::pin!(answer);
    let mut lines = Lines::default();
    let mut image_id = None;
    let mut result = Ok(());
    while let Some(item) = answer.next().await {
        let info = match item {
            Ok(info) => info,
            Err(err) => {
                result = Err(err);
                break;
            }
        };
        if let Some(text) = info.stream {
            for line in lines.push(&text) {
                output(BuildOutput::Line(redactor.redact(&line)));
            }
        }
        if let Some(status) = info.status {
            output(BuildOutput::Progress {
                id: info.id,
                status: redactor.redact(&status),
            });
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
    }
    if let Some(rest) = lines.finish() {
        output(BuildOutput::Line(redactor.redact(&rest)));
    }
    result.map(|()| image_id)
}

/// Checks the plan's paths and reads `.dockerignore`.
fn prepare(plan: &BuildPlan) -> Result<Context, BuildError> {
    if !plan.context.is_dir() {
        return Err(BuildError::ContextMissing(plan.context.clone()));
    }
    if !plan.dockerfile.is_file() {
        return Err(BuildError::DockerfileMissing(plan.dockerfile.clone()));
    }
    let ignore_file = plan.context.join(".dockerignore");
    let rules = match std::fs::read_to_string(&ignore_file) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(source) => {
            return Err(BuildError::Context {
                path: ignore_file,
                source,
            });
        }
    };
    Ok(Context {
        root: plan.context.clone(),
        rules,
        dockerfile: Dockerfile::locate(&plan.context, &plan.dockerfile),
    })
}

fn build_error(dockerfile: &Path, err: bollard::errors::Error, redactor: &Redactor) -> BuildError {
    use bollard::errors::Error;
    let message = match err {
        Error::DockerStreamError { error } => error,
        Error::DockerResponseServerError { message, .. } => message,
        Error::SocketNotFoundError(_)
        | Error::HyperLegacyError { .. }
        | Error::HyperResponseError { .. }
        | Error::IOError { .. }
        | Error::RequestTimeoutError => return unavailable(err),
        other => other.to_string(),
    };
    BuildError::Failed {
        dockerfile: dockerfile.to_path_buf(),
        message: redactor.redact(message.trim()),
    }
}

/// Docker's `stream` pieces split into whole lines.
#[derive(Default)]
struct Lines {
    pending: String,
}

impl Lines {
    fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        lines
    }

    fn finish(self) -> Option<String> {
        let rest = self.pending.trim_end_matches(['\n', '\r']);
        (!rest.is_empty()).then(|| rest.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_pieces_become_whole_lines() {
        let mut lines = Lines::default();
        assert_eq!(
            lines.push("Step 1/2 : FROM scratch\n ---"),
            ["Step 1/2 : FROM scratch"]
        );
        assert!(lines.push("> Running").is_empty());
        assert_eq!(
            lines.push(" in abc\r\nok\n"),
            [" ---> Running in abc", "ok"]
        );
        assert_eq!(lines.push("tail").len(), 0);
        assert_eq!(lines.finish().as_deref(), Some("tail"));
    }

    #[test]
    fn daemon_messages_name_the_dockerfile_and_hide_secrets() {
        let redactor = Redactor::new(["s3cret-value"]);
        let err = build_error(
            Path::new("/app/Dockerfile"),
            bollard::errors::Error::DockerStreamError {
                error: "The command '/bin/sh -c echo s3cret-value' returned a non-zero code: 1"
                    .into(),
            },
            &redactor,
        );
        let text = err.to_string();
        assert!(
            text.starts_with("building /app/Dockerfile failed: "),
            "{text}"
        );
        assert!(!text.contains("s3cret-value"), "{text}");
    }
}
