//! Accessories (`preset: database | service`): one stable container name across
//! deploys, so the previous container is moved aside under another name while the
//! new one starts, and put back if the deploy is undone.

use haloy_api::spec::AppSpec;

use super::Engine;
use super::events::Abort;
use crate::runtime::ContainerInfo;

/// Whether HAProxy routes the app: every app does, except accessories without
/// domains, which only the app network reaches.
pub(super) fn is_routed(spec: &AppSpec) -> bool {
    spec.preset.is_none() || !spec.domains.is_empty()
}

impl Engine {
    /// The name a previous accessory container carries while it is set aside.
    pub(super) fn aside_name(name: &str, deployment: &str) -> String {
        format!("{name}-previous-{deployment}")
    }

    /// Renames those of `old` that hold one of the accessory's stable names, so the
    /// new deployment can take them; (id, original name) of each goes to `renamed`.
    pub(super) async fn set_aside(
        &self,
        spec: &AppSpec,
        deployment: &str,
        old: &[ContainerInfo],
        renamed: &mut Vec<(String, String)>,
    ) -> Result<(), Abort> {
        if spec.preset.is_none() {
            return Ok(());
        }
        for container in old {
            let stable = (1..=spec.replicas.max(1))
                .any(|n| self.stable_name(&spec.name, n) == container.name);
            if !stable {
                continue;
            }
            let aside = Self::aside_name(&container.name, deployment);
            self.runtime.rename(&container.id, &aside).await?;
            renamed.push((container.id.clone(), container.name.clone()));
        }
        Ok(())
    }

    /// Gives set-aside containers their names back (the new ones are gone by now).
    pub(super) async fn put_back(&self, renamed: &[(String, String)]) {
        for (id, name) in renamed {
            if let Err(e) = self.runtime.rename(id, name).await {
                tracing::warn!(container = %name, "cannot give the previous accessory container its name back: {e}");
            }
        }
    }
}
