//! Exec and Tunnel through the real service: what a client that does not follow the
//! protocol, names no app haloyd runs, or holds no token gets back, before anything
//! runs in a container or any connection is made.

use haloy_api::v1::{self, exec_input, image_source, tunnel_data};
use tonic::Code;

use super::{TOKEN, deploy, rig, spec, start};

fn exec_start(app: &str, command: &[&str]) -> v1::ExecInput {
    v1::ExecInput {
        input: Some(exec_input::Input::Start(v1::ExecStart {
            app: app.into(),
            command: command.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn tunnel_open(app: &str, port: u32) -> v1::TunnelData {
    v1::TunnelData {
        frame: Some(tunnel_data::Frame::Open(v1::TunnelOpen {
            app: app.into(),
            replica: 0,
            port,
        })),
    }
}

/// The error a session ends with: at once, or after whatever it sent first.
async fn error_of<T>(
    answer: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> tonic::Status {
    let mut output = match answer {
        Err(status) => return status,
        Ok(response) => response.into_inner(),
    };
    loop {
        match output.message().await {
            Err(status) => return status,
            Ok(None) => panic!("the session ended without an error"),
            Ok(Some(_)) => {}
        }
    }
}

async fn exec(token: Option<&str>, rig: &super::Rig, input: Vec<v1::ExecInput>) -> tonic::Status {
    error_of(rig.client(token).exec(tokio_stream::iter(input)).await).await
}

async fn tunnel(
    token: Option<&str>,
    rig: &super::Rig,
    input: Vec<v1::TunnelData>,
) -> tonic::Status {
    error_of(rig.client(token).tunnel(tokio_stream::iter(input)).await).await
}

/// A rig where the app `web` runs.
async fn web_deployed() -> super::Rig {
    let rig = rig().await;
    deploy(
        &rig,
        vec![start(spec("v1"), image_source::Source::Pull(v1::Pull {}))],
    )
    .await
    .unwrap();
    rig
}

#[tokio::test]
async fn exec_refuses_what_is_not_a_start_an_unknown_app_and_no_token() {
    let rig = rig().await;
    let stdin_first = v1::ExecInput {
        input: Some(exec_input::Input::Stdin(b"ls\n".to_vec())),
    };
    let status = exec(Some(TOKEN), &rig, vec![stdin_first]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("ExecStart"), "{status:?}");

    let status = exec(Some(TOKEN), &rig, vec![]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let status = exec(Some(TOKEN), &rig, vec![exec_start("nope", &["true"])]).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("nope"), "{status:?}");

    let status = exec(None, &rig, vec![exec_start("web", &["true"])]).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = exec(Some("wrong"), &rig, vec![exec_start("web", &["true"])]).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn exec_wants_a_command() {
    let rig = web_deployed().await;
    let status = exec(Some(TOKEN), &rig, vec![exec_start("web", &[])]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("command"), "{status:?}");
}

#[tokio::test]
async fn tunnel_refuses_what_is_not_an_open_a_port_out_of_range_and_no_token() {
    let rig = web_deployed().await;

    let data_first = v1::TunnelData {
        frame: Some(tunnel_data::Frame::Data(b"PING\r\n".to_vec())),
    };
    let status = tunnel(Some(TOKEN), &rig, vec![data_first]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("TunnelOpen"), "{status:?}");

    let status = tunnel(Some(TOKEN), &rig, vec![tunnel_open("web", 70_000)]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("TunnelOpen.port"), "{status:?}");

    let status = tunnel(Some(TOKEN), &rig, vec![tunnel_open("nope", 6379)]).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let status = tunnel(None, &rig, vec![tunnel_open("web", 6379)]).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}
