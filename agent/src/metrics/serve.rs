//! The metrics endpoint: plain HTTP/1.1 (hyper, already haloyd's HTTP stack) at
//! `metrics_address`, `GET /metrics` in Prometheus' text format and nothing else.
//! No token: like any exporter it is meant for loopback or a private network, and
//! haloyd logs a warning when it listens anywhere else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::scrape::{CONTENT_TYPE, exposition};
use crate::engine::Engine;

/// How long a scraper may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on `addr`; the caller reports a failure naming `metrics_address`.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "metrics are served beyond loopback without authentication; keep the port private (metrics_address in haloyd.yaml)");
    }
    crate::net::listen(addr)
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, engine: Arc<Engine>) {
    loop {
        let Some((tcp, _)) = crate::net::accepted(listener.accept().await, "metrics_address").await
        else {
            continue;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let engine = engine.clone();
                async move { Ok::<_, Infallible>(answer(&request, &engine).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("a metrics connection ended: {e}");
            }
        });
    }
}

async fn answer(request: &Request<Incoming>, engine: &Engine) -> Response<String> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, exposition(engine).await),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET /metrics\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "haloyd serves its metrics at /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
