//! Maintenance mode through the engine: the state is the store's and every route the
//! engine gives the proxy carries the page, so deploys and restarts keep it.

use super::*;

fn on(message: &str) -> MaintenanceSwitch {
    MaintenanceSwitch::On {
        message: message.into(),
        page: None,
    }
}

fn page_of(r: &Rig) -> Option<String> {
    r.proxy.maintenance.lock().unwrap().get("web").cloned()
}

#[tokio::test(start_paused = true)]
async fn maintenance_is_kept_by_deploys_and_restarts_until_off() {
    let r = rig();
    // Before the first deploy: recorded, and the first route carries it.
    let state = r.engine.maintenance("web", on("soon")).await.unwrap();
    let since = state.expect("on").since_ms;
    let (v1, _) = r.deploy(&spec("v1"), ImageInput::Pull).await;
    assert_eq!(v1.status, Status::Succeeded, "{}", v1.reason);
    let page = page_of(&r).expect("routed in maintenance");
    assert!(page.contains("<p>soon</p>"), "{page}");

    // On again: a new message, the same start.
    let again = r.engine.maintenance("web", on("later")).await.unwrap();
    assert_eq!(again.map(|m| m.since_ms), Some(since));
    let (v2, _) = r.deploy(&spec("v2"), ImageInput::Pull).await;
    assert_eq!(v2.status, Status::Succeeded, "{}", v2.reason);
    assert!(page_of(&r).unwrap().contains("<p>later</p>"));

    let engine = r.restart().await;
    assert!(
        page_of(&r).unwrap().contains("<p>later</p>"),
        "sync keeps it"
    );
    let status = engine.status("web").await.unwrap();
    assert_eq!(status.maintenance.map(|m| m.message), Some("later".into()));

    assert_eq!(
        engine
            .maintenance("web", MaintenanceSwitch::Off)
            .await
            .unwrap(),
        None
    );
    assert_eq!(page_of(&r), None);
    assert_eq!(engine.status("web").await.unwrap().maintenance, None);
}

#[tokio::test(start_paused = true)]
async fn bad_messages_and_pages_are_refused_naming_the_field() {
    let r = rig();
    let error = r
        .engine
        .maintenance("web", on("two\nlines"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("message: "), "{error}");
    let page = format!("{}{}", "{{message}}".repeat(2), "x".repeat(8000));
    let error = r
        .engine
        .maintenance(
            "web",
            MaintenanceSwitch::On {
                message: "&".repeat(256),
                page: Some(page),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("page: with the message in it") && error.contains("{{message}} once"),
        "{error}"
    );
    assert_eq!(r.engine.store().maintenance("web").unwrap(), None);
}
