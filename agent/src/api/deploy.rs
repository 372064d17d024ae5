//! The Deploy and Rollback streams: receive the start message (and an upload), run the
//! engine, forward its events, and cancel when the client asks or goes away.

use std::io;
use std::sync::Arc;

use futures_util::StreamExt;

use haloy_api::spec::AppSpec;
use haloy_api::v1::{self, deploy_event, deploy_request, image_source};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::error::AgentError;
use super::upload;
use crate::engine::{AppLock, Engine, Event, ImageInput, Phase, Upload};
use crate::store::Status as RecordStatus;

pub type EventSender = mpsc::Sender<Result<v1::DeployEvent, Status>>;

/// Reads the first message, validates it and takes the app's lock, so errors before
/// the deploy begins are plain gRPC errors.
pub async fn start(
    engine: &Engine,
    inbound: &mut Streaming<v1::DeployRequest>,
) -> Result<(AppSpec, image_source::Source, AppLock), AgentError> {
    let first = inbound
        .message()
        .await
        .map_err(|e| AgentError::Protocol(format!("reading DeployStart: {}", e.message())))?
        .ok_or_else(|| AgentError::Protocol("the stream ended before DeployStart".into()))?;
    let Some(deploy_request::Message::Start(start)) = first.message else {
        return Err(AgentError::Protocol(
            "the first message must be DeployStart".into(),
        ));
    };
    let spec: AppSpec = start
        .spec
        .ok_or_else(|| AgentError::Protocol("DeployStart.spec is required".into()))?
        .try_into()?;
    let source = start.image.and_then(|i| i.source).ok_or_else(|| {
        AgentError::Protocol("DeployStart.image is required: pull, existing or upload".into())
    })?;
    if let image_source::Source::Upload(announced) = &source {
        upload::check(announced)?;
    }
    engine.check_spec(&spec)?;
    let proposed = proposed_id("DeployStart.deployment_id", &start.deployment_id)?;
    let lock = engine.lock_as(&spec.name, proposed)?;
    Ok((spec, source, lock))
}

/// Runs an accepted deploy to its end, streaming events to `tx`.
pub async fn run(
    engine: Arc<Engine>,
    lock: AppLock,
    spec: AppSpec,
    source: image_source::Source,
    mut inbound: Option<Streaming<v1::DeployRequest>>,
    tx: EventSender,
) {
    let id = lock.deployment_id.clone();
    send(
        &tx,
        deploy_event::Event::Accepted(v1::DeployAccepted {
            deployment_id: id.clone(),
        }),
    )
    .await;

    // An upload's receiver owns the request stream until the upload ends.
    let mut receiving = None;
    let image = match source {
        image_source::Source::Pull(_) => ImageInput::Pull,
        image_source::Source::Existing(_) => ImageInput::Existing,
        image_source::Source::Upload(upload) => {
            let Some(mut stream) = inbound.take() else {
                return finish(
                    &tx,
                    &id,
                    RecordStatus::Failed,
                    "uploads need the Deploy stream",
                )
                .await;
            };
            let wanted = upload::answer(engine.runtime().as_ref(), &spec, &upload).await;
            let have = wanted.have_image;
            send(&tx, deploy_event::Event::UploadWanted(wanted)).await;
            phase(&tx, Phase::ReceivingImage, "receiving the image").await;
            let image_id = (!upload.image_id.is_empty()).then_some(upload.image_id);
            if have {
                // The client sends nothing but the end of the upload.
                if let Err(reason) = upload::receive(&mut stream, None).await {
                    let reason = reason.unwrap_or_default();
                    let outcome = engine.record_failure(&lock, &spec, &reason);
                    return finish(&tx, &outcome.deployment_id, outcome.status, &outcome.reason)
                        .await;
                }
                inbound = Some(stream);
                image_id.map_or(ImageInput::Existing, ImageInput::Id)
            } else {
                // Docker loads the archive while it arrives.
                let (sink, chunks) = mpsc::channel(4);
                let (done, received) = oneshot::channel();
                receiving = Some(tokio::spawn(async move {
                    let result = upload::receive(&mut stream, Some(&sink)).await;
                    if let Err(Some(reason)) = &result {
                        let _ = sink.send(Err(io::Error::other(reason.clone()))).await;
                    }
                    drop(sink);
                    let _ = done.send(result);
                    stream
                }));
                ImageInput::Upload(Upload {
                    archive: ReceiverStream::new(chunks).boxed(),
                    image_id,
                    received,
                })
            }
        }
    };

    // Cancel on request, when the client goes away, or when its stream breaks; a
    // client that merely finished sending (half-close) keeps listening.
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let watcher = {
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Some(upload) = receiving {
                inbound = upload.await.ok();
            }
            loop {
                let message = match inbound.as_mut() {
                    Some(stream) => tokio::select! {
                        m = stream.message() => m,
                        () = tx.closed() => break,
                    },
                    None => {
                        tx.closed().await;
                        break;
                    }
                };
                match message {
                    Ok(Some(v1::DeployRequest {
                        message: Some(deploy_request::Message::Cancel(_)),
                    })) => break,
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        inbound = None;
                    }
                    Err(_) => break,
                }
            }
            let _ = cancel_tx.send(true);
        })
    };

    let (events_tx, mut events_rx) = mpsc::channel(64);
    let forward = {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                send(&tx, to_pb(event)).await;
            }
        })
    };
    let outcome = engine
        .deploy(&lock, &spec, image, &events_tx, cancel_rx)
        .await;
    drop(events_tx);
    let _ = forward.await;
    watcher.abort();
    drop(lock);
    finish(&tx, &outcome.deployment_id, outcome.status, &outcome.reason).await;
}

/// A client's proposed deployment id: `None` when empty, an error naming `field`
/// when it is not an id.
pub fn proposed_id<'a>(field: &str, id: &'a str) -> Result<Option<&'a str>, AgentError> {
    if id.is_empty() {
        return Ok(None);
    }
    if !crate::ids::is_deployment_id(id) {
        return Err(AgentError::Protocol(format!(
            "{field} must look like 20261125104631250-ab12 (UTC time to the millisecond, then 4 hex digits), not {id:?}"
        )));
    }
    Ok(Some(id))
}

pub async fn send(tx: &EventSender, event: deploy_event::Event) {
    // A closed channel means the client left; the deploy notices through `closed()`.
    let _ = tx.send(Ok(v1::DeployEvent { event: Some(event) })).await;
}

async fn phase(tx: &EventSender, phase: Phase, message: &str) {
    send(tx, to_pb(Event::Phase(phase, message.to_string()))).await;
}

async fn finish(tx: &EventSender, id: &str, status: RecordStatus, reason: &str) {
    send(
        tx,
        deploy_event::Event::Result(v1::DeployResult {
            deployment_id: id.to_string(),
            status: super::status_to_pb(status).into(),
            reason: reason.to_string(),
        }),
    )
    .await;
}

fn to_pb(event: Event) -> deploy_event::Event {
    match event {
        Event::Phase(phase, message) => deploy_event::Event::Phase(v1::PhaseChange {
            phase: phase_to_pb(phase).into(),
            message,
        }),
        Event::Log {
            replica,
            stderr,
            text,
        } => {
            let stream = match (replica.as_str(), stderr) {
                ("haloyd", _) => v1::LogStream::Agent,
                (_, true) => v1::LogStream::Stderr,
                (_, false) => v1::LogStream::Stdout,
            };
            deploy_event::Event::Log(v1::LogLine {
                replica,
                stream: stream.into(),
                text,
                time: Some(std::time::SystemTime::now().into()),
            })
        }
    }
}

fn phase_to_pb(phase: Phase) -> v1::Phase {
    match phase {
        Phase::ReceivingImage => v1::Phase::ReceivingImage,
        Phase::PullingImage => v1::Phase::PullingImage,
        Phase::LoadingImage => v1::Phase::LoadingImage,
        Phase::StoppingOld => v1::Phase::StoppingOld,
        Phase::Starting => v1::Phase::Starting,
        Phase::HealthChecking => v1::Phase::HealthChecking,
        Phase::SwitchingTraffic => v1::Phase::SwitchingTraffic,
        Phase::RetiringOld => v1::Phase::RetiringOld,
        Phase::Certificates => v1::Phase::Certificates,
        Phase::CleaningUp => v1::Phase::CleaningUp,
    }
}
