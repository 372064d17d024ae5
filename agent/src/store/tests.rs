//! The deployment records: order, retention, locks and records of older versions.

use super::*;

fn record(app: &str, id: &str, phase: JournalPhase) -> DeploymentRecord {
    test_record(app, id, phase)
}

#[test]
fn open_waits_for_a_dying_haloyd_to_let_go_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    first
        .put(&record("a", "001", JournalPhase::Succeeded))
        .unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let second = Store::open(dir.path()).expect("opened once the first let go");
    holder.join().unwrap();
    assert_eq!(second.newest_id("a").unwrap().as_deref(), Some("001"));
}

/// Invariant: the store of an app that deploys forever stays bounded, keeps
/// what rollbacks need and never drops a deploy under way.
#[test]
fn an_app_keeps_a_bounded_number_of_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut under_way = record("a", "0000", JournalPhase::Healthy);
    under_way.spec.history_count = Some(30);
    store.put(&under_way).unwrap();
    for n in 1..=500 {
        let phase = if n % 3 == 0 {
            JournalPhase::Failed
        } else {
            JournalPhase::Succeeded
        };
        let mut r = record("a", &format!("{n:04}"), phase);
        r.spec.history_count = Some(30);
        store.put(&r).unwrap();
    }
    store
        .put(&record("b", "0001", JournalPhase::Succeeded))
        .unwrap();
    let kept = store.list("a").unwrap();
    let count = |status: Status| kept.iter().filter(|r| r.status() == status).count();
    assert_eq!(
        count(Status::Succeeded),
        31,
        "history of 30, plus the current"
    );
    assert_eq!(count(Status::Failed), KEEP_UNSUCCESSFUL);
    assert_eq!(count(Status::InProgress), 1, "the deploy under way stays");
    assert_eq!(kept[0].id, "0500");
    assert_eq!(store.newest_id("a").unwrap().as_deref(), Some("0500"));
    assert_eq!(
        store.list("b").unwrap().len(),
        1,
        "other apps are untouched"
    );
}

#[test]
fn lists_newest_first_per_app_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .put(&record("a", "001", JournalPhase::Succeeded))
            .unwrap();
        store
            .put(&record("a", "002", JournalPhase::Failed))
            .unwrap();
        store
            .put(&record("ab", "003", JournalPhase::Succeeded))
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<_> = store.list("a").unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["002", "001"]);
    assert_eq!(store.apps().unwrap(), ["a", "ab"]);
    assert_eq!(
        store.get("a", "002").unwrap().unwrap().status(),
        Status::Failed
    );
    assert_eq!(store.newest_id("ab").unwrap().as_deref(), Some("003"));
}

#[test]
fn records_from_before_the_journal_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut old = serde_json::to_value(record("a", "001", JournalPhase::Succeeded)).unwrap();
    let object = old.as_object_mut().unwrap();
    for key in [
        "phase",
        "previous",
        "containers",
        "stopping",
        "image_origin",
        "note",
    ] {
        object.remove(key);
    }
    object.insert("status".into(), "in_progress".into());
    store
        .tree
        .insert(key("a", "001"), serde_json::to_vec(&old).unwrap())
        .unwrap();
    let read = store.get("a", "001").unwrap().unwrap();
    assert_eq!(read.phase, JournalPhase::Accepted);
    assert_eq!(read.status(), Status::InProgress);
    assert_eq!(read.image_origin, ImageOrigin::Unknown);
    assert_eq!(store.newest_id("a").unwrap().as_deref(), Some("001"));
    assert_eq!(store.newest_id("b").unwrap(), None);
}
