//! The bridge networks apps join.
//!
//! Docker 20.10 does not refuse a second network with a name already taken: it
//! creates it and only adds a warning (API 1.41 has `CheckDuplicate`, which bollard's
//! request body no longer carries, and even that check is racy). Two networks with
//! one name make every later use of the name ambiguous, so `ensure` converges:
//! after creating, whoever sees several networks of that name removes all but the
//! one with the lowest id. Nobody removes the lowest id, and the last creator sees
//! every network, so exactly one remains. Within one haloyd the caller also
//! serialises `ensure`, so only separate processes race here.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptionsBuilder;

use super::error;
use crate::runtime::RuntimeError;

/// Marks networks Haloy created.
pub(super) const MANAGED_LABEL: &str = "dev.haloy.managed";

pub(super) async fn ensure(client: &bollard::Docker, name: &str) -> Result<(), RuntimeError> {
    match client.inspect_network(name, None).await {
        Ok(_) => return Ok(()),
        Err(err) if error::status(&err) == Some(404) => {}
        // Left over from an earlier race that did not finish converging.
        Err(err) if error::message(&err).contains("ambiguous") => {
            return deduplicate(client, name).await;
        }
        Err(err) => return Err(error::doing(&format!("cannot inspect network {name}"), err)),
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(HashMap::from([(MANAGED_LABEL.into(), "true".into())])),
        ..Default::default()
    };
    let created = client
        .create_network(request)
        .await
        .map_err(|err| error::doing(&format!("cannot create network {name}"), err))?;
    tracing::debug!(network = %name, id = %created.id, warning = %created.warning, "created network");
    deduplicate(client, name).await
}

/// Removes every network called `name` but the one with the lowest id.
async fn deduplicate(client: &bollard::Docker, name: &str) -> Result<(), RuntimeError> {
    let mut same_name = named(client, name).await?;
    same_name.sort();
    for duplicate in same_name.iter().skip(1) {
        tracing::debug!(network = %name, id = %duplicate, "removing a duplicate network");
        match client.remove_network(duplicate).await {
            Ok(()) => {}
            Err(err) if error::status(&err) == Some(404) => {}
            Err(err) => {
                return Err(error::doing(
                    &format!("cannot remove duplicate network {name} ({duplicate})"),
                    err,
                ));
            }
        }
    }
    Ok(())
}

/// Ids of the networks called exactly `name` (Docker's filter matches substrings).
async fn named(client: &bollard::Docker, name: &str) -> Result<Vec<String>, RuntimeError> {
    let options = ListNetworksOptionsBuilder::new()
        .filters(&HashMap::from([("name", vec![name])]))
        .build();
    let networks = client
        .list_networks(Some(options))
        .await
        .map_err(|err| error::doing("cannot list networks", err))?;
    Ok(networks
        .into_iter()
        .filter(|network| network.name.as_deref() == Some(name))
        .filter_map(|network| network.id)
        .collect())
}
