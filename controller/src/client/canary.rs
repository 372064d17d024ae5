//! The canary calls: a running canary's traffic, and its promote or abort.

use haloy_api::v1;

use super::{Client, ClientError};

/// Requests one version answered during a canary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTraffic {
    pub deployment_id: String,
    pub image: String,
    pub replicas: Vec<String>,
    pub responses: u64,
    pub errors: u64,
}

/// A running canary and the version beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryReport {
    pub percent: u32,
    pub canary: VersionTraffic,
    pub stable: Option<VersionTraffic>,
}

impl Client {
    /// The app's running canary and the version beside it.
    pub async fn canary_status(&mut self, app: &str) -> Result<CanaryReport, ClientError> {
        let response = self
            .inner
            .canary_status(v1::CanaryRequest {
                app: app.to_string(),
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(response.into())
    }

    /// Promotes (`true`) or aborts the app's canary; the server's sentence.
    pub async fn canary_finish(&mut self, app: &str, promote: bool) -> Result<String, ClientError> {
        let request = v1::CanaryRequest {
            app: app.to_string(),
        };
        let result = if promote {
            self.inner.canary_promote(request).await
        } else {
            self.inner.canary_abort(request).await
        };
        Ok(result.map_err(|s| self.error(s))?.into_inner().message)
    }
}
