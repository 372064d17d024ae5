//! Contract tests: the real tonic service over an in-memory connection, with the
//! engine on recording fakes.

use std::sync::Arc;

use haloy_api::spec::{AppSpec, ImageSpec, Secret};
use haloy_api::v1::{self, deploy_event, deploy_request, haloy_client::HaloyClient, image_source};
use hyper_util::rt::TokioIo;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

mod audit;
mod canary;
mod hostile;
mod sessions;
mod upload;
mod upload_limits;

use super::serve;
use crate::engine::Engine;
use crate::engine::fakes::FakeRuntime;
use crate::protection::Protection;
use crate::store::Store;

const TOKEN: &str = "test-token";

struct Rig {
    channel: Channel,
    runtime: Arc<FakeRuntime>,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    rig_with_api_domain(None).await
}

async fn rig_with_api_domain(api_domain: Option<&str>) -> Rig {
    rig_with(api_domain, None).await
}

async fn rig_with(api_domain: Option<&str>, protection: Option<Protection>) -> Rig {
    let api_domain = api_domain.map(str::to_string);
    rig_configured(move |engine| {
        let engine = engine.with_api_domain(api_domain);
        match protection {
            Some(protection) => engine.with_protection(protection),
            None => engine,
        }
    })
    .await
}

/// A rig whose engine `configure` adjusts.
async fn rig_configured(configure: impl FnOnce(Engine) -> Engine) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (seams, runtime, _proxy) = crate::engine::fakes::seams();
    let settings = crate::engine::fakes::quick_settings();
    let engine = Arc::new(configure(Engine::new(
        seams,
        Store::open(&dir.path().join("db")).unwrap(),
        settings,
    )));
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        // The server stops when its incoming stream ends, so keep it open.
        let incoming = futures_util::StreamExt::chain(
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(server_io)]),
            futures_util::stream::pending(),
        );
        let auth = super::Auth::new(Secret::new(TOKEN));
        serve(
            engine,
            auth,
            &super::ApiLimits::default(),
            incoming,
            std::future::pending(),
        )
        .await
    });
    let mut client_io = Some(client_io);
    let channel = Endpoint::try_from("http://in-memory.test")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let io = client_io.take();
            async move {
                io.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("connected twice"))
            }
        }))
        .await
        .unwrap();
    Rig {
        channel,
        runtime,
        _dir: dir,
    }
}

type Client = HaloyClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

/// Adds the bearer token, if any, to every request.
#[derive(Clone)]
struct Bearer(Option<tonic::metadata::AsciiMetadataValue>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.0 {
            r.metadata_mut().insert("authorization", h.clone());
        }
        Ok(r)
    }
}

impl Rig {
    fn client(&self, token: Option<&str>) -> Client {
        let header = token.map(|t| format!("Bearer {t}").parse().unwrap());
        HaloyClient::with_interceptor(self.channel.clone(), Bearer(header))
    }
}

fn spec(tag: &str) -> AppSpec {
    AppSpec::new("web", ImageSpec::registry("web", tag))
}

fn start(spec: AppSpec, source: image_source::Source) -> v1::DeployRequest {
    v1::DeployRequest {
        message: Some(deploy_request::Message::Start(v1::DeployStart {
            spec: Some(spec.into()),
            image: Some(v1::ImageSource {
                source: Some(source),
            }),
            deployment_id: String::new(),
            ..Default::default()
        })),
    }
}

fn msg(message: deploy_request::Message) -> v1::DeployRequest {
    v1::DeployRequest {
        message: Some(message),
    }
}

/// Sends the messages, closes the sending side, and collects every event.
async fn deploy(
    rig: &Rig,
    messages: Vec<v1::DeployRequest>,
) -> Result<Vec<deploy_event::Event>, tonic::Status> {
    let mut client = rig.client(Some(TOKEN));
    let mut events = client
        .deploy(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(event) = events.message().await? {
        out.push(event.event.unwrap());
    }
    Ok(out)
}

fn result(events: &[deploy_event::Event]) -> &v1::DeployResult {
    match events.last() {
        Some(deploy_event::Event::Result(r)) => r,
        other => panic!("the last event is not a result: {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthenticated_and_nothing_else() {
    let rig = rig().await;
    for token in [None, Some("wrong")] {
        let err = rig
            .client(token)
            .version(v1::VersionRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.message(), "unauthenticated");
    }
    let version = rig
        .client(Some(TOKEN))
        .version(v1::VersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(version.api, "v1");
    assert_eq!(version.docker, "fake");
}

#[tokio::test]
async fn deploy_streams_acceptance_phases_and_a_result() {
    let rig = rig().await;
    let events = deploy(
        &rig,
        vec![start(spec("v1"), image_source::Source::Pull(v1::Pull {}))],
    )
    .await
    .unwrap();
    let deploy_event::Event::Accepted(accepted) = &events[0] else {
        panic!("{events:?}")
    };
    let phases: Vec<i32> = events
        .iter()
        .filter_map(|e| match e {
            deploy_event::Event::Phase(p) => Some(p.phase),
            _ => None,
        })
        .collect();
    assert!(
        phases.contains(&(v1::Phase::HealthChecking as i32)),
        "{phases:?}"
    );
    let result = result(&events);
    assert_eq!(
        result.status,
        v1::DeploymentStatus::Succeeded as i32,
        "{}",
        result.reason
    );
    assert_eq!(result.deployment_id, accepted.deployment_id);

    let mut client = rig.client(Some(TOKEN));
    let status = client
        .status(v1::StatusRequest { app: "web".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.current.unwrap().id, accepted.deployment_id);
    assert_eq!(status.replicas.len(), 1);
    let missing = client
        .status(v1::StatusRequest { app: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn the_server_validates_the_spec_again() {
    let rig = rig().await;
    let mut bad = v1::AppSpec::from(spec("v1"));
    bad.volumes.push(v1::Volume {
        source: "./data".into(),
        target: "/data".into(),
        options: vec![],
    });
    let request = v1::DeployRequest {
        message: Some(deploy_request::Message::Start(v1::DeployStart {
            spec: Some(bad),
            image: Some(v1::ImageSource {
                source: Some(image_source::Source::Pull(v1::Pull {})),
            }),
            deployment_id: String::new(),
            ..Default::default()
        })),
    };
    let err = deploy(&rig, vec![request]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("spec.volumes[0]") && err.message().contains("relative host path"),
        "{}",
        err.message()
    );

    let mut odd_id = start(spec("v1"), image_source::Source::Pull(v1::Pull {}));
    if let Some(deploy_request::Message::Start(start)) = &mut odd_id.message {
        start.deployment_id = "../../latest".into();
    }
    let err = deploy(&rig, vec![odd_id]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("DeployStart.deployment_id")
            && err.message().contains("20261125104631250-ab12"),
        "{}",
        err.message()
    );

    let err = deploy(
        &rig,
        vec![msg(deploy_request::Message::Cancel(v1::Cancel::default()))],
    )
    .await
    .unwrap_err();
    assert!(
        err.message().contains("first message must be DeployStart"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn an_app_cannot_claim_the_servers_api_domain() {
    let rig = rig_with_api_domain(Some("haloy.example.com")).await;
    let mut claims = spec("v1");
    claims.domains = vec![haloy_api::spec::DomainSpec {
        canonical: "web.example.com".into(),
        aliases: vec!["haloy.example.com".into()],
    }];
    let source = image_source::Source::Pull(v1::Pull {});
    let err = deploy(&rig, vec![start(claims, source)]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("haloy.example.com") && err.message().contains("API domain"),
        "{}",
        err.message()
    );
    assert!(
        rig.runtime.log.calls().is_empty(),
        "the deploy began anyway"
    );
}

#[tokio::test]
async fn a_second_deploy_of_the_same_app_is_refused_while_one_runs() {
    let rig = rig().await;
    let mut client = rig.client(Some(TOKEN));
    // An unhealthy image keeps the first deploy busy until its health timeout.
    let mut first = client
        .deploy(tokio_stream::iter(vec![start(
            spec("slow-unhealthy"),
            image_source::Source::Pull(v1::Pull {}),
        )]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1::DeployEvent {
        event: Some(deploy_event::Event::Accepted(accepted)),
    }) = first.message().await.unwrap()
    else {
        panic!()
    };
    let err = deploy(
        &rig,
        vec![start(spec("v2"), image_source::Source::Pull(v1::Pull {}))],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains(&accepted.deployment_id),
        "{}",
        err.message()
    );
    while first.message().await.unwrap().is_some() {}
}

#[tokio::test]
async fn oversize_messages_are_refused() {
    let rig = rig().await;
    let huge = vec![
        start(
            spec("v1"),
            // An upload must name its image to get as far as its chunks.
            image_source::Source::Upload(upload::announce(&upload::digest("img"), &[])),
        ),
        msg(deploy_request::Message::Chunk(v1::UploadChunk {
            data: vec![0; super::MAX_MESSAGE_BYTES + 1],
        })),
    ];
    let outcome = deploy(&rig, huge).await;
    let failed_with_limit = match outcome {
        Err(e) => {
            e.code() == Code::ResourceExhausted || e.message().contains("message length too large")
        }
        Ok(events) => {
            matches!(events.last(), Some(deploy_event::Event::Result(r)) if r.reason.contains("message length too large"))
        }
    };
    assert!(failed_with_limit);
}
