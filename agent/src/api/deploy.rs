//! The Deploy and Rollback streams: read and check the start message, hand the deploy
//! to the app's owner, receive an upload once the deploy is on record, forward the
//! engine's events, and cancel when the client asks or goes away.

use std::io;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use haloy_api::spec::AppSpec;
use haloy_api::v1::{self, deploy_request, image_source};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::EventStream;
use super::audit::{Audit, Caller};
use super::error::AgentError;
use super::upload;
use crate::engine::{
    DeployOptions, DeployRequest, Engine, Event, Events, ImageFailure, ImageInput, ImageRequest,
    Outcome, Phase, Upload, UploadLimits,
};
use crate::runtime::ContainerRuntime;
use crate::store::Status as RecordStatus;

type Inbound = Streaming<v1::DeployRequest>;
type EventSender = mpsc::Sender<Result<v1::DeployEvent, Status>>;

/// Reads the first message and validates it, so that errors before the deploy
/// begins are plain gRPC errors; then starts the deploy.
pub async fn start(
    engine: &Arc<Engine>,
    mut inbound: Inbound,
    caller: Caller,
) -> Result<EventStream, AgentError> {
    let first = inbound
        .message()
        .await
        .map_err(|e| AgentError::Protocol(format!("reading DeployStart: {}", e.message())))?
        .ok_or_else(|| AgentError::Protocol("the stream ended before DeployStart".into()))?;
    let Some(deploy_request::Message::Start(mut start)) = first.message else {
        return Err(AgentError::Protocol(
            "the first message must be DeployStart".into(),
        ));
    };
    let spec: AppSpec = start
        .spec
        .take()
        .ok_or_else(|| AgentError::Protocol("DeployStart.spec is required".into()))?
        .try_into()?;
    // From here on the app is known: a refusal is on its record too (a token
    // holder asking for what haloyd refuses is what an audit is for).
    let audit = Audit::new(engine, caller, &spec.name, "deploy");
    let accepted = match accept(engine, &spec, start, inbound) {
        Ok(accepted) => accepted,
        Err(e) => {
            audit.record("refused", Err(&e.to_string()));
            return Err(e);
        }
    };
    run(
        engine,
        spec,
        accepted.image,
        accepted.proposed.as_deref(),
        accepted.options,
        Some(accepted.stream_back),
        audit,
    )
    .await
}

/// A DeployStart that passed every check, ready to hand to the engine.
struct Accepted {
    image: ImageRequest,
    proposed: Option<String>,
    options: DeployOptions,
    stream_back: oneshot::Receiver<Inbound>,
}

/// Checks the rest of `start` against `spec` and haloyd's limits.
fn accept(
    engine: &Arc<Engine>,
    spec: &AppSpec,
    start: v1::DeployStart,
    inbound: Inbound,
) -> Result<Accepted, AgentError> {
    let source = start.image.and_then(|i| i.source).ok_or_else(|| {
        AgentError::Protocol("DeployStart.image is required: pull, existing or upload".into())
    })?;
    if let image_source::Source::Upload(announced) = &source {
        upload::check(announced, &engine.upload_limits())?;
    }
    engine.check_spec(spec)?;
    let proposed =
        proposed_id("DeployStart.deployment_id", &start.deployment_id)?.map(str::to_string);
    let canary_percent = match start.canary_percent {
        0 => None,
        p @ 1..=99 => Some(p as u8),
        p => {
            return Err(AgentError::Protocol(format!(
                "DeployStart.canary_percent is {p}; send 1 to 99, or 0 for an ordinary deploy"
            )));
        }
    };
    // The request stream comes back from an upload once it is received, for the
    // watcher that cancels on the client's word.
    let (give_back, stream_back) = oneshot::channel();
    let image = match source {
        image_source::Source::Pull(_) => {
            let _ = give_back.send(inbound);
            ImageRequest::Ready(ImageInput::Pull)
        }
        image_source::Source::Existing(_) => {
            let _ = give_back.send(inbound);
            ImageRequest::Ready(ImageInput::Existing)
        }
        image_source::Source::Upload(announced) => {
            let runtime = engine.runtime().clone();
            let limits = engine.upload_limits();
            ImageRequest::Prepare(Box::new(move |events| {
                receive_upload(runtime, limits, announced, inbound, events, give_back)
            }))
        }
    };
    Ok(Accepted {
        image,
        proposed,
        options: DeployOptions {
            include_protected: start.include_protected,
            canary_percent,
        },
        stream_back,
    })
}

/// Hands a deploy to the app's owner and streams its events; `stream_back` gives the
/// request stream to watch for a cancel (none for a rollback, which has no stream).
pub async fn run(
    engine: &Arc<Engine>,
    spec: AppSpec,
    image: ImageRequest,
    proposed_id: Option<&str>,
    options: DeployOptions,
    stream_back: Option<oneshot::Receiver<Inbound>>,
    audit: Audit,
) -> Result<EventStream, AgentError> {
    let (events, mut engine_events) = mpsc::channel(64);
    let (cancel_tx, cancel) = watch::channel(false);
    let accepted = engine
        .deploy(DeployRequest {
            spec,
            image,
            proposed_id: proposed_id.map(str::to_string),
            events,
            cancel,
            options,
        })
        .await
        .map_err(AgentError::from);
    if let Err(e) = &accepted {
        audit.record(proposed_id.unwrap_or_default(), Err(&e.to_string()));
    }
    accepted?;
    let (tx, rx) = mpsc::channel(64);
    let watcher = tokio::spawn(watch_for_cancel(stream_back, tx.clone(), cancel_tx));
    tokio::spawn(async move {
        while let Some(event) = engine_events.recv().await {
            let last = matches!(event, Event::Finished(_));
            if let Event::Finished(outcome) = &event {
                record_outcome(&audit, outcome);
            }
            let _ = tx
                .send(Ok(v1::DeployEvent {
                    event: Some(event.into()),
                }))
                .await;
            if last {
                break;
            }
        }
        // The watcher holds a sender too; the client's stream ends once both go.
        watcher.abort();
    });
    Ok(ReceiverStream::new(rx).boxed())
}

/// Records how a deploy or rollback ended: a canary that started counts as done.
fn record_outcome(audit: &Audit, outcome: &Outcome) {
    let id = &outcome.deployment_id;
    match outcome.status {
        RecordStatus::Succeeded | RecordStatus::InProgress => audit.record(id, Ok(())),
        RecordStatus::Canary => audit.record(&format!("{id} (canary)"), Ok(())),
        RecordStatus::Failed => audit.record(id, Err(&outcome.reason)),
        RecordStatus::Cancelled => {
            audit.record(id, Err(&format!("cancelled: {}", outcome.reason)));
        }
    }
}

/// Cancels the deploy when the client sends Cancel, when its stream breaks, or when
/// it goes away; a client that merely finished sending (half-close) keeps listening.
async fn watch_for_cancel(
    stream_back: Option<oneshot::Receiver<Inbound>>,
    tx: EventSender,
    cancel: watch::Sender<bool>,
) {
    let mut inbound = match stream_back {
        Some(back) => back.await.ok(),
        None => None,
    };
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
            Ok(None) => inbound = None,
            Err(_) => break,
        }
    }
    let _ = cancel.send(true);
}

/// Answers an upload announcement and receives the archive: straight into Docker's
/// load while it arrives, or, for an image the server has, just the end message.
fn receive_upload(
    runtime: Arc<dyn ContainerRuntime>,
    limits: UploadLimits,
    announced: v1::Upload,
    mut stream: Inbound,
    events: Events,
    give_back: oneshot::Sender<Inbound>,
) -> BoxFuture<'static, Result<ImageInput, ImageFailure>> {
    Box::pin(async move {
        let wanted = upload::answer(runtime.as_ref(), &announced).await;
        let have = wanted.have_image;
        let _ = events
            .send(Event::UploadWanted {
                have_image: have,
                layers: wanted.layers,
            })
            .await;
        let _ = events
            .send(Event::Phase(
                Phase::ReceivingImage,
                "receiving the image".into(),
            ))
            .await;
        let image_id = announced.image_id;
        let size = announced.archive_size;
        if have {
            // The client sends nothing but the end of the upload.
            let received = upload::receive(&mut stream, None, size, &limits).await;
            let _ = give_back.send(stream);
            received.map_err(|reason| reason.unwrap_or(upload::ReceiveError::EndedEarly))?;
            return Ok(ImageInput::Id(image_id));
        }
        // Docker loads the archive while it arrives.
        let (sink, chunks) = mpsc::channel(4);
        let (done, received) = oneshot::channel();
        tokio::spawn(async move {
            let result = upload::receive(&mut stream, Some(&sink), size, &limits).await;
            if let Err(Some(reason)) = &result {
                let _ = sink.send(Err(io::Error::other(reason.clone()))).await;
            }
            drop(sink);
            let _ = done.send(result.map_err(|e| e.map(ImageFailure::from)));
            let _ = give_back.send(stream);
        });
        Ok(ImageInput::Upload(Upload {
            archive: ReceiverStream::new(chunks).boxed(),
            image_id: Some(image_id),
            received,
        }))
    })
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
