//! `tags` against a registry on loopback: a small HTTP/1.1 server in the test answers
//! like docker-registry with token auth does, and records what it was sent.

use std::sync::{Arc, Mutex};

use haloy_api::spec::{RegistryAuth, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Answers each request with `answer(request head)`, then closes; returns the port
/// and the request heads received.
async fn serve(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let response = answer(&head);
            log.lock().unwrap().push(head);
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (port, seen)
}

fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

fn auth(server: &str) -> RegistryAuth {
    RegistryAuth {
        server: server.to_string(),
        username: Secret::new("user"),
        password: Secret::new("hunter2-secret"),
    }
}

#[tokio::test]
async fn an_unreachable_registry_is_named_and_no_secret_leaks() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = tags(
        &format!("127.0.0.1:{port}/app"),
        Some(&auth(&format!("127.0.0.1:{port}"))),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach registry 127.0.0.1:{port}: connect to 127.0.0.1:{port}: "
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[tokio::test]
async fn a_bearer_challenge_is_answered_with_a_token_from_the_realm() {
    let (port, seen) = serve(|head| {
        let first = head.lines().next().unwrap_or_default();
        if first.starts_with("GET /token?") {
            // "user:hunter2-secret" in base64.
            if head.contains("authorization: Basic dXNlcjpodW50ZXIyLXNlY3JldA==") {
                response("200 OK", "", r#"{"token":"tok-123"}"#)
            } else {
                response("401 Unauthorized", "", "{}")
            }
        } else if head.contains("authorization: Bearer tok-123") {
            response("200 OK", "", r#"{"name":"team/app","tags":["v1","v2"]}"#)
        } else {
            // The realm is read from the Host the client used, like a registry
            // configured with its own address.
            let host = head
                .lines()
                .find_map(|l| l.strip_prefix("host: "))
                .unwrap_or_default()
                .to_string();
            response(
                "401 Unauthorized",
                &format!(
                    "www-authenticate: Bearer realm=\"http://{host}/token\",service=\"test-registry\",scope=\"repository:team/app:pull\"\r\n"
                ),
                "{}",
            )
        }
    })
    .await;
    let server = format!("127.0.0.1:{port}");
    let found = tags(&format!("{server}/team/app"), Some(&auth(&server)))
        .await
        .unwrap();
    assert_eq!(found, ["v1", "v2"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen[1].starts_with(
            "GET /token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull HTTP/1.1"
        ),
        "{}",
        seen[1]
    );
    assert!(seen[2].contains("authorization: Bearer tok-123"));
}

#[tokio::test]
async fn credentials_for_another_registry_are_not_sent_and_refusal_is_named() {
    let (port, seen) = serve(|_| {
        response(
            "401 Unauthorized",
            "www-authenticate: Basic realm=\"registry\"\r\n",
            "{}",
        )
    })
    .await;
    let err = tags(&format!("127.0.0.1:{port}/app"), Some(&auth("ghcr.io")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RegistryError::Unauthorized {
            server: format!("127.0.0.1:{port}")
        }
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].to_ascii_lowercase().contains("authorization"));
}

#[tokio::test]
async fn a_missing_repository_and_a_non_json_answer_are_told_apart() {
    let (port, _) = serve(|head| {
        if head.starts_with("GET /v2/gone/") {
            response("404 Not Found", "", "{}")
        } else {
            response("200 OK", "", "<html>")
        }
    })
    .await;
    let gone = tags(&format!("127.0.0.1:{port}/gone"), None).await;
    assert!(
        matches!(gone, Err(RegistryError::NotFound { .. })),
        "{gone:?}"
    );
    let html = tags(&format!("127.0.0.1:{port}/app"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        html.starts_with(&format!(
            "registry 127.0.0.1:{port} answered unexpectedly: the tag list is not JSON"
        )),
        "{html}"
    );
}

#[tokio::test]
async fn how_a_token_service_elsewhere_failed_is_not_told() {
    // The registry names a realm on a port where nothing listens: what connecting
    // there met (refused, timed out) would make the API a port scanner.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (port, _) = serve(move |_| {
        response(
            "401 Unauthorized",
            &format!("www-authenticate: Bearer realm=\"http://127.0.0.1:{closed}/token\"\r\n"),
            "{}",
        )
    })
    .await;
    let text = tags(&format!("127.0.0.1:{port}/app"), None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        text,
        format!(
            "cannot reach registry 127.0.0.1:{port}: the token service it named does not answer; check that it is running and reachable from this server"
        )
    );
}
