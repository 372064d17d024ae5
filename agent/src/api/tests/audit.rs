//! The audit log through the real service: who the client said it was, what was
//! done and how it ended, newest first; callers that say nothing are `unknown`.

use haloy_api::v1::{self, image_source};
use tonic::Request;

use super::{TOKEN, deploy, result, rig, spec, start};

#[tokio::test]
async fn actions_are_listed_newest_first_with_the_callers_names() {
    let rig = rig().await;
    let events = deploy(
        &rig,
        vec![start(spec("v1"), image_source::Source::Pull(v1::Pull {}))],
    )
    .await
    .unwrap();
    let deployed = result(&events).deployment_id.clone();

    let mut client = rig.client(Some(TOKEN));
    let mut stop = Request::new(v1::StopRequest {
        app: "web".into(),
        ..Default::default()
    });
    stop.metadata_mut()
        .insert("x-haloy-user", "ann\tsmith".parse().unwrap());
    stop.metadata_mut()
        .insert("x-haloy-host", "laptop".parse().unwrap());
    client.stop(stop).await.unwrap();
    let missing = client
        .stop(v1::StopRequest {
            app: "nope".into(),
            ..Default::default()
        })
        .await;
    assert!(missing.is_err());

    let history = client
        .history(v1::HistoryRequest {
            app: "web".into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let entries: Vec<(&str, &str, &str, bool)> = history
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.user.as_str(), e.host.as_str(), e.ok))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("stop", "annsmith", "laptop", true),
            ("deploy", "unknown", "unknown", true),
        ]
    );
    assert_eq!(history.entries[1].detail, deployed);

    let all = client
        .history(v1::HistoryRequest {
            app: String::new(),
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.entries.len(), 1);
    assert_eq!(all.entries[0].app, "nope");
    assert!(!all.entries[0].ok);
    assert!(!all.entries[0].error.is_empty());
}
