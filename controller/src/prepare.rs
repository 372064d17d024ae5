//! Before any target deploys: build each distinct image once on the workstation and
//! push it once per registry, then say for every target where its server gets the
//! image; an upload is skipped for a server on this machine's own Docker engine.

use haloy_api::spec::ImageSource;
use tokio::sync::mpsc;

use crate::build::{self, BuildError, BuildOutput};
use crate::client::Client;
use crate::config::plan::{BuildPlan, PushTo, TargetPlan};
use crate::deployment::ImageChoice;
use crate::registry::{self, PushError};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Push(#[from] PushError),
}

/// Builds and pushes what the targets need; lines of build and push output go to
/// `lines` as `(stage, text)`, stage being "build" or "push".
pub async fn prepare(
    targets: &[TargetPlan],
    lines: &mpsc::UnboundedSender<(String, String)>,
) -> Result<Vec<ImageChoice>, PrepareError> {
    let mut built: Vec<(BuildPlan, String)> = Vec::new();
    let mut pushed: Vec<(String, String)> = Vec::new();
    let mut plans = Vec::new();
    let mut docker = None;
    for target in targets {
        let spec = &target.spec;
        let Some(build_plan) = &target.build else {
            plans.push(match spec.image.source {
                ImageSource::Local => ImageChoice::Existing,
                ImageSource::Registry => ImageChoice::Pull,
            });
            continue;
        };
        let docker = match &docker {
            Some(docker) => docker,
            None => docker.insert(build::connect_local().await?),
        };
        let reference = spec.image.reference();
        let image_id = match built.iter().find(|(plan, _)| plan == build_plan) {
            Some((_, id)) => id.clone(),
            None => {
                let _ = lines.send((
                    "build".into(),
                    format!(
                        "building {reference} from {}",
                        build_plan.dockerfile.display()
                    ),
                ));
                let id = build::build_image(docker, build_plan, &reference, |output| {
                    let text = match output {
                        BuildOutput::Line(line) => line,
                        BuildOutput::Progress {
                            id: Some(id),
                            status,
                        } => format!("{id}: {status}"),
                        BuildOutput::Progress { id: None, status } => status,
                    };
                    let _ = lines.send(("build".into(), text));
                })
                .await?;
                built.push((build_plan.clone(), id.clone()));
                id
            }
        };
        // Targets may override the tag; every one gets its own name for the image.
        registry::tag_image(docker, &image_id, &reference).await?;
        match (build_plan.push, &spec.image.registry) {
            (PushTo::Registry, Some(auth)) => {
                let key = (reference.clone(), auth.server.clone());
                if !pushed.contains(&key) {
                    let _ = lines.send((
                        "push".into(),
                        format!("pushing {reference} to {}", auth.server),
                    ));
                    let mut last = String::new();
                    let image = registry::push_image(docker, &reference, auth, |p| {
                        if p.status != last {
                            let _ = lines.send(("push".into(), p.status.clone()));
                            last = p.status;
                        }
                    })
                    .await?;
                    let _ = lines.send((
                        "push".into(),
                        format!(
                            "pushed {} ({})",
                            image.reference,
                            image.digest.as_deref().unwrap_or("no digest reported")
                        ),
                    ));
                    pushed.push(key);
                }
                plans.push(ImageChoice::Pull);
            }
            // Validation guarantees credentials for push: registry.
            _ => plans.push(ImageChoice::UploadFromDocker(reference)),
        }
    }
    Ok(plans)
}

/// This machine's Docker engine as haloyd names one (`<engine id>@<data root>`), when
/// some image would be uploaded from it and Docker answers.
pub async fn local_engine<'a>(images: impl IntoIterator<Item = &'a ImageChoice>) -> Option<String> {
    let uploads = images
        .into_iter()
        .any(|image| matches!(image, ImageChoice::UploadFromDocker(_)));
    if !uploads {
        return None;
    }
    let docker = build::connect_local().await.ok()?;
    let info = docker.info().await.ok()?;
    let id = info.id.filter(|id| !id.is_empty())?;
    Some(haloy_docker::engine_identity(
        &id,
        &info.docker_root_dir.unwrap_or_default(),
    ))
}

/// Whether `image`'s upload can be skipped because the server behind `client` runs on
/// `local_engine`, which already has every image built here.
pub async fn shares_engine(
    image: &ImageChoice,
    local_engine: Option<&str>,
    client: &mut Client,
) -> bool {
    let (ImageChoice::UploadFromDocker(_), Some(local)) = (image, local_engine) else {
        return false;
    };
    client
        .docker_id()
        .await
        .is_ok_and(|id| !id.is_empty() && id == local)
}
