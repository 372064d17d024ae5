//! The audit log call: what was done to an app, by whom, and how it ended.

use haloy_api::v1;
use serde::Serialize;

use super::{Client, ClientError};

/// One recorded action, as haloyd returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub user: String,
    pub host: String,
    pub app: String,
    pub action: String,
    pub detail: String,
    /// `finished` or `failed`.
    pub result: &'static str,
    /// The first line of the error when it failed.
    pub error: String,
}

impl Client {
    /// The server's audit entries for `app`, newest first, at most `limit` (all it
    /// keeps when 0).
    pub async fn history(
        &mut self,
        app: &str,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ClientError> {
        let response = self
            .inner
            .history(v1::HistoryRequest {
                app: app.to_string(),
                limit,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(response
            .entries
            .into_iter()
            .map(|e| AuditRecord {
                time_ms: e
                    .time
                    .map(|t| {
                        u64::try_from(t.seconds).unwrap_or(0) * 1000
                            + u64::try_from(t.nanos / 1_000_000).unwrap_or(0)
                    })
                    .unwrap_or(0),
                user: e.user,
                host: e.host,
                app: e.app,
                action: e.action,
                detail: e.detail,
                result: if e.ok { "finished" } else { "failed" },
                error: e.error,
            })
            .collect())
    }
}
