//! Recording what clients do: the user and host a client reports in its metadata,
//! an [`Audit`] for one action written to the store when the action ends, and the
//! History RPC that lists the entries.

use std::sync::Arc;

use haloy_api::v1;
use tonic::metadata::MetadataMap;

use super::error::AgentError;
use crate::engine::{Engine, EngineError};
use crate::ids;
use crate::store::audit::{AuditEntry, client_field, first_line};

/// The metadata key of the client's user name.
pub const USER_KEY: &str = "x-haloy-user";
/// The metadata key of the client's host name.
pub const HOST_KEY: &str = "x-haloy-host";

/// Who asked, as the client reported it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub host: String,
}

/// The caller named by `metadata`, `unknown` for what is missing.
pub fn caller(metadata: &MetadataMap) -> Caller {
    let field = |key: &str| {
        metadata
            .get(key)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    Caller {
        user: client_field(field(USER_KEY).as_deref()),
        host: client_field(field(HOST_KEY).as_deref()),
    }
}

/// One action to record once its result is known.
pub struct Audit {
    engine: Arc<Engine>,
    caller: Caller,
    app: String,
    action: &'static str,
}

impl Audit {
    pub fn new(engine: &Arc<Engine>, caller: Caller, app: &str, action: &'static str) -> Self {
        Self {
            engine: engine.clone(),
            caller,
            app: app.to_string(),
            action,
        }
    }

    /// Records the action with `detail` and its result; a store that fails is
    /// logged, never the action's failure.
    pub fn record(&self, detail: &str, result: Result<(), &str>) {
        let entry = AuditEntry {
            time_ms: ids::now_ms(),
            user: self.caller.user.clone(),
            host: self.caller.host.clone(),
            app: self.app.clone(),
            action: self.action.to_string(),
            detail: detail.to_string(),
            ok: result.is_ok(),
            error: result.err().map(first_line).unwrap_or_default(),
        };
        if let Err(e) = self.engine.store().record_audit(&entry) {
            tracing::warn!(app = %self.app, action = self.action, "audit entry not recorded: {e}");
        }
    }

    /// Records the result of an action that returns at once.
    pub fn outcome<T>(&self, detail: &str, result: &Result<T, AgentError>) {
        match result {
            Ok(_) => self.record(detail, Ok(())),
            Err(e) => self.record(detail, Err(&e.to_string())),
        }
    }
}

/// What a maintenance switch is recorded with: the start of its message (control
/// characters dropped) and whether the app's own page is shown.
pub fn maintenance_detail(message: &str, custom_page: bool) -> String {
    let mut detail: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    if message.chars().count() > 80 {
        detail.push('…');
    }
    if custom_page {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str("own page");
    }
    detail
}

/// The History RPC.
pub fn history(
    engine: &Engine,
    request: v1::HistoryRequest,
) -> Result<v1::HistoryResponse, AgentError> {
    let app = if request.app.is_empty() {
        None
    } else {
        haloy_api::rules::app_name(&request.app)
            .map_err(|v| AgentError::Protocol(format!("app: {v}")))?;
        Some(request.app.as_str())
    };
    let entries = engine
        .store()
        .audit(app, request.limit as usize)
        .map_err(|e| AgentError::Engine(EngineError::Store(e)))?;
    Ok(v1::HistoryResponse {
        entries: entries
            .into_iter()
            .map(|e| v1::AuditEntry {
                time: Some(ids::to_system_time(e.time_ms).into()),
                user: e.user,
                host: e.host,
                app: e.app,
                action: e.action,
                detail: e.detail,
                ok: e.ok,
                error: e.error,
            })
            .collect(),
    })
}
