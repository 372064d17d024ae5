//! The canary calls: a running canary's traffic, and its promote or abort.

use haloy_api::v1;

use super::{Client, ClientError};

pub use haloy_api::status::{CanaryReport, VersionTraffic};

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
