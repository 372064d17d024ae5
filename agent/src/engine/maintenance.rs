//! Maintenance mode: an app's domains answer 503 with a page while its containers
//! keep running. The state is the store's (so it outlives haloyd); every route the
//! engine gives HAProxy carries the page, so a deploy or a restart keeps it on.

use std::sync::Arc;

use haloy_api::rules::MAX_MAINTENANCE_ANSWER;
use tokio::sync::oneshot;

use super::Engine;
use super::events::EngineError;
use super::owner::Command;
use crate::store::maintenance::Maintenance;

/// The page shown when the app has none of its own; `{{message}}` is replaced.
const DEFAULT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Down for maintenance</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; display: flex; min-height: 100vh; align-items: center; justify-content: center; background: #f6f6f4; color: #222; }
main { max-width: 32rem; padding: 2rem; text-align: center; }
h1 { font-size: 1.6rem; }
</style>
</head>
<body>
<main>
<h1>Down for maintenance</h1>
<p>This site is being worked on and will be back shortly.</p>
<p>{{message}}</p>
</main>
</body>
</html>
"#;

/// Where a custom page takes the message.
pub const MESSAGE_PLACEHOLDER: &str = "{{message}}";

/// A switch as the API hands it over, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceSwitch {
    On {
        message: String,
        /// The app's own page; the default one when `None`.
        page: Option<String>,
    },
    Off,
}

impl Engine {
    /// Turns the app's maintenance mode on or off through its owner (so no deploy
    /// of the app runs meanwhile); answers with the state now.
    pub async fn maintenance(
        self: &Arc<Self>,
        app: &str,
        switch: MaintenanceSwitch,
    ) -> Result<Option<Maintenance>, EngineError> {
        if let MaintenanceSwitch::On { message, page } = &switch {
            haloy_api::rules::maintenance_message(message)
                .map_err(|v| EngineError::Invalid(format!("message: {v}")))?;
            if let Some(page) = page {
                haloy_api::rules::maintenance_page(page)
                    .map_err(|v| EngineError::Invalid(format!("page: {v}")))?;
            }
            let rendered = render_page(&Maintenance {
                since_ms: 0,
                message: message.clone(),
                page: page.clone(),
            });
            if rendered.len() > MAX_MAINTENANCE_ANSWER {
                return Err(EngineError::Invalid(format!(
                    "page: with the message in it the page has {} bytes, more than the {MAX_MAINTENANCE_ANSWER} HAProxy can answer with; write {MESSAGE_PLACEHOLDER} once, or shorten the page or the message",
                    rendered.len()
                )));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.send(app, Command::Maintenance(switch, reply));
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Records the switch, then tells HAProxy. Run by the app's owner.
    pub(super) async fn switch_maintenance(
        &self,
        app: &str,
        switch: MaintenanceSwitch,
    ) -> Result<Option<Maintenance>, EngineError> {
        let now = match switch {
            MaintenanceSwitch::On { message, page } => {
                // Turning it on again changes the page, not since when it is on.
                let since_ms = match self.store.maintenance(app)? {
                    Some(earlier) => earlier.since_ms,
                    None => self.clock.now_ms(),
                };
                Some(Maintenance {
                    since_ms,
                    message,
                    page,
                })
            }
            MaintenanceSwitch::Off => None,
        };
        self.store.set_maintenance(app, now.as_ref())?;
        let page = now.as_ref().map(render_page);
        // A HAProxy that misses it is brought in line by the supervisor (the driver
        // keeps the change), and a restart rebuilds it from the store.
        self.proxy.set_maintenance(app, page.as_deref()).await?;
        tracing::info!(app, on = now.is_some(), "maintenance mode switched");
        Ok(now)
    }

    /// The page the app's domains answer with now, `None` when not in maintenance.
    pub(super) fn maintenance_page(&self, app: &str) -> Result<Option<String>, EngineError> {
        Ok(self.store.maintenance(app)?.as_ref().map(render_page))
    }
}

/// The page with the message in it, HTML-escaped.
pub fn render_page(maintenance: &Maintenance) -> String {
    let page = maintenance.page.as_deref().unwrap_or(DEFAULT_PAGE);
    page.replace(MESSAGE_PLACEHOLDER, &escape_html(&maintenance.message))
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(message: &str, page: Option<&str>) -> Maintenance {
        Maintenance {
            since_ms: 1,
            message: message.into(),
            page: page.map(str::to_string),
        }
    }

    #[test]
    fn the_message_is_escaped_into_the_page() {
        let page = render_page(&on("<b>back</b> at 5 & \"soon\"", None));
        assert!(
            page.contains("<p>&lt;b&gt;back&lt;/b&gt; at 5 &amp; &quot;soon&quot;</p>"),
            "{page}"
        );
        let custom = render_page(&on("db upgrade", Some("<h1>Later</h1>{{message}}\n")));
        assert_eq!(custom, "<h1>Later</h1>db upgrade\n");
        assert_eq!(render_page(&on("", Some("<p>x</p>"))), "<p>x</p>");
    }

    #[test]
    fn the_largest_page_with_the_longest_message_once_fits_haproxy() {
        use haloy_api::rules::{MAX_MAINTENANCE_MESSAGE, MAX_MAINTENANCE_PAGE};
        let mut page = MESSAGE_PLACEHOLDER.to_string();
        page.push_str(&"x".repeat(MAX_MAINTENANCE_PAGE - page.len()));
        let message = "&".repeat(MAX_MAINTENANCE_MESSAGE);
        let rendered = render_page(&on(&message, Some(&page)));
        assert!(
            rendered.len() <= MAX_MAINTENANCE_ANSWER,
            "{}",
            rendered.len()
        );
        assert!(render_page(&on(&message, None)).len() <= MAX_MAINTENANCE_ANSWER);
    }
}
