//! The steps a deploy takes with each batch of new replicas — start, health-check,
//! route — and, in a batched rollout, taking as many old replicas down (drained,
//! out of HAProxy, stopped but kept so an undo can start them again).

use haloy_api::spec::AppSpec;

use super::Engine;
use super::accessory::is_routed;
use super::container::backend;
use super::events::{Abort, Cancel, Events, Phase, check_cancel, log, phase};
use super::health::Check;
use super::retire::Timing;
use crate::metrics::CheckedDuring;
use crate::proxy::AppRoute;
use crate::runtime::ContainerInfo;
use crate::store::DeploymentRecord;

/// What a deploy has done so far, for undoing it.
#[derive(Default)]
pub(super) struct Work {
    pub created: Vec<ContainerInfo>,
    pub routed: Vec<String>,
    pub stopped_old: Vec<ContainerInfo>,
    /// Accessory containers moved aside: (id, original name).
    pub renamed: Vec<(String, String)>,
    /// The share of requests a canary deploy gives the new version.
    pub canary: Option<u8>,
    /// Old servers whose weight a canary changed.
    pub reweighted: Vec<String>,
}

/// Replica numbers in batches of at most `max_surge` (all at once without it).
pub(super) fn batches(replicas: u32, max_surge: Option<u32>) -> Vec<Vec<u32>> {
    let size = max_surge.unwrap_or(replicas).clamp(1, replicas.max(1)) as usize;
    (1..=replicas)
        .collect::<Vec<_>>()
        .chunks(size)
        .map(<[u32]>::to_vec)
        .collect()
}

impl Engine {
    /// Creates and starts the replicas numbered `numbers`; each goes to `work`.
    pub(super) async fn start_batch(
        &self,
        record: &DeploymentRecord,
        spec: &AppSpec,
        image: &str,
        numbers: &[u32],
        work: &mut Work,
        cancel: &Cancel,
    ) -> Result<Vec<ContainerInfo>, Abort> {
        let mut started = Vec::new();
        for &n in numbers {
            check_cancel(cancel)?;
            let container = self
                .runtime
                .run(&self.container_spec(&record.id, spec, image, n))
                .await?;
            work.created.push(container.clone());
            started.push(container);
        }
        Ok(started)
    }

    /// Waits until each of `batch` is healthy; the containers as last inspected.
    pub(super) async fn check_batch(
        &self,
        batch: Vec<ContainerInfo>,
        check: &Check,
        events: &Events,
        cancel: &mut Cancel,
    ) -> Result<Vec<ContainerInfo>, Abort> {
        let mut healthy = Vec::with_capacity(batch.len());
        for container in batch {
            let info = self
                .wait_healthy(
                    &container,
                    check,
                    events,
                    cancel,
                    Some(CheckedDuring::Deploy),
                )
                .await?;
            log(events, &format!("replica {} is healthy", info.name)).await;
            healthy.push(info);
        }
        Ok(healthy)
    }

    /// Adds `batch` to the app's HAProxy backend and waits until HAProxy has them
    /// up. Accessories without domains are not routed.
    pub(super) async fn route_batch(
        &self,
        spec: &AppSpec,
        batch: &[ContainerInfo],
        work: &mut Work,
        weight: Option<u16>,
    ) -> Result<(), Abort> {
        if !is_routed(spec) {
            return Ok(());
        }
        let app = spec.name.as_str();
        let route = AppRoute {
            app: app.to_string(),
            domains: spec.domains.clone(),
            health_check_path: spec.health_check_path.clone(),
            servers: Vec::new(),
            // A deploy during maintenance keeps it on, new domains included.
            maintenance: self.maintenance_page(app)?,
        };
        self.proxy.ensure_app(&route).await?;
        let mut names = Vec::new();
        for container in batch {
            let server = crate::proxy::Backend {
                weight,
                ..backend(container)?
            };
            self.proxy.add_server(app, &server).await?;
            work.routed.push(container.name.clone());
            names.push(container.name.clone());
        }
        self.wait_routed(app, &names).await
    }

    /// Drains `old` in HAProxy, removes them from it and stops them, keeping the
    /// containers so an undo can start them again. They are on the journal's
    /// `stopping` list before this runs.
    pub(super) async fn take_down(
        &self,
        app: &str,
        old: Vec<ContainerInfo>,
        events: &Events,
        timing: Timing,
        work: &mut Work,
    ) -> Result<(), Abort> {
        let names: Vec<String> = old.iter().map(|c| c.name.clone()).collect();
        phase(
            events,
            Phase::RetiringOld,
            &format!(
                "draining and stopping {} old replica(s) for the next batch",
                names.len()
            ),
        )
        .await;
        for name in &names {
            if let Err(e) = self.proxy.drain_server(app, name).await {
                log(events, &format!("cannot drain {name}: {e}")).await;
            }
        }
        self.wait_drained(app, &names, events, timing.drain_timeout)
            .await;
        self.unroute(app, &names).await;
        for container in old {
            self.runtime.stop(&container.id, timing.stop_grace).await?;
            work.stopped_old.push(container);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::batches;

    #[test]
    fn replicas_come_in_batches_of_max_surge() {
        assert_eq!(batches(3, None), vec![vec![1, 2, 3]]);
        assert_eq!(batches(3, Some(1)), vec![vec![1], vec![2], vec![3]]);
        assert_eq!(batches(5, Some(2)), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(batches(2, Some(9)), vec![vec![1, 2]]);
    }
}
