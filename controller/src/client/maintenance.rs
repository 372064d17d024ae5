//! The maintenance call: an app's domains answer 503 with a page, or serve again.

use haloy_api::status::MaintenanceInfo;
use haloy_api::v1;

use super::{Client, ClientError};

/// A switch as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceChange {
    On {
        message: String,
        /// The app's own page (`maintenance.page`); the server's default when `None`.
        page: Option<String>,
    },
    Off,
}

impl Client {
    /// Switches the app's maintenance mode; answers with the state now (`None`: off).
    pub async fn maintenance(
        &mut self,
        app: &str,
        change: MaintenanceChange,
    ) -> Result<Option<MaintenanceInfo>, ClientError> {
        let request = match change {
            MaintenanceChange::On { message, page } => v1::MaintenanceRequest {
                app: app.to_string(),
                on: true,
                message,
                page: page.unwrap_or_default(),
            },
            MaintenanceChange::Off => v1::MaintenanceRequest {
                app: app.to_string(),
                ..Default::default()
            },
        };
        let response = self
            .inner
            .maintenance(request)
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(response.state.map(Into::into))
    }
}
