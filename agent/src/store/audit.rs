//! The audit log: who did what to which app and how it ended, newest
//! [`AUDIT_KEEP`] entries per server, in the store's `audit` tree keyed by a
//! monotonic id so that a reverse scan lists them newest first.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, io};

/// How many audit entries a server keeps; the oldest go first.
pub const AUDIT_KEEP: usize = 1000;

/// The longest user or host name kept, in characters.
pub const CLIENT_FIELD_MAX: usize = 64;

/// What a client's user or host is recorded as when it sent none.
pub const UNKNOWN: &str = "unknown";

/// One action on an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time_ms: u64,
    /// The user and host the client reported.
    pub user: String,
    pub host: String,
    pub app: String,
    /// `deploy`, `rollback`, `stop`, `canary promote`, `canary abort`, ...
    pub action: String,
    /// E.g. the deployment id.
    #[serde(default)]
    pub detail: String,
    /// Whether it finished; `error` says why not.
    pub ok: bool,
    /// The first line of the error when it failed.
    #[serde(default)]
    pub error: String,
}

/// A user or host name as a client sent it, made safe to store and print: control
/// characters dropped, at most [`CLIENT_FIELD_MAX`] characters, [`UNKNOWN`] when
/// nothing is left.
pub fn client_field(raw: Option<&str>) -> String {
    let clean: String = raw
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(CLIENT_FIELD_MAX)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        UNKNOWN.to_string()
    } else {
        clean.to_string()
    }
}

/// The first line of an error message, for an audit entry.
pub fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Store {
    fn audit_tree(&self) -> Result<sled::Tree, StoreError> {
        self.db.open_tree("audit").map_err(io)
    }

    /// Records `entry`, dropping the oldest entries past `keep`.
    pub fn record_audit_keeping(&self, entry: &AuditEntry, keep: usize) -> Result<(), StoreError> {
        let tree = self.audit_tree()?;
        let id = self.db.generate_id().map_err(io)?;
        let value = serde_json::to_vec(entry).map_err(io)?;
        tree.insert(id.to_be_bytes(), value).map_err(io)?;
        while tree.len() > keep {
            if tree.pop_min().map_err(io)?.is_none() {
                break;
            }
        }
        self.db.flush().map_err(io)?;
        Ok(())
    }

    /// Records `entry`, keeping the newest [`AUDIT_KEEP`].
    pub fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.record_audit_keeping(entry, AUDIT_KEEP)
    }

    /// Audit entries newest first, of `app` only when given, at most `limit`
    /// (all when 0).
    pub fn audit(&self, app: Option<&str>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut entries = Vec::new();
        for item in self.audit_tree()?.iter().rev() {
            let (_, value) = item.map_err(io)?;
            let entry: AuditEntry = serde_json::from_slice(&value).map_err(io)?;
            if app.is_none_or(|a| a == entry.app) {
                entries.push(entry);
                if entries.len() >= limit {
                    break;
                }
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: &str, n: u64) -> AuditEntry {
        AuditEntry {
            time_ms: n,
            user: "ann".into(),
            host: "laptop".into(),
            app: app.into(),
            action: "deploy".into(),
            detail: format!("#{n}"),
            ok: true,
            error: String::new(),
        }
    }

    #[test]
    fn keeps_the_newest_entries_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for n in 0..10 {
            store.record_audit_keeping(&entry("web", n), 4).unwrap();
        }
        let times: Vec<u64> = store
            .audit(None, 0)
            .unwrap()
            .iter()
            .map(|e| e.time_ms)
            .collect();
        assert_eq!(times, vec![9, 8, 7, 6]);
    }

    #[test]
    fn the_bound_holds_across_a_reopen_and_filters_by_app() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for n in 0..5 {
                store.record_audit_keeping(&entry("web", n), 6).unwrap();
            }
        }
        let store = Store::open(dir.path()).unwrap();
        for n in 5..8 {
            store.record_audit_keeping(&entry("api", n), 6).unwrap();
        }
        let all = store.audit(None, 0).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(
            all[0].time_ms, 7,
            "entries after a reopen sort after older ones"
        );
        let web: Vec<u64> = store
            .audit(Some("web"), 0)
            .unwrap()
            .iter()
            .map(|e| e.time_ms)
            .collect();
        assert_eq!(web, vec![4, 3, 2]);
        assert_eq!(store.audit(Some("api"), 2).unwrap().len(), 2);
    }

    #[test]
    fn client_fields_are_bounded_and_printable() {
        assert_eq!(client_field(None), "unknown");
        assert_eq!(client_field(Some(" \n\t")), "unknown");
        assert_eq!(client_field(Some("ann\x1b[31m\n")), "ann[31m");
        assert_eq!(client_field(Some(&"x".repeat(500))).len(), CLIENT_FIELD_MAX);
    }
}
