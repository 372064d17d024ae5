//! After a healthy deploy the app's domains get certificates: one per canonical
//! domain, with its aliases, obtained in the background by the renewal loop.

use haloy_api::spec::AppSpec;

use super::Engine;
use super::events::{Events, Phase, phase};
use crate::certs::Wanted;

impl Engine {
    pub(super) async fn request_certificates(&self, spec: &AppSpec, events: &Events) {
        let Some((certificates, default_email)) = &self.certificates else {
            return;
        };
        let email = spec.acme_email.clone().or_else(|| default_email.clone());
        let wanted: Vec<Wanted> = match &email {
            Some(email) => spec
                .domains
                .iter()
                .map(|d| Wanted {
                    domain: d.canonical.clone(),
                    names: std::iter::once(&d.canonical)
                        .chain(&d.aliases)
                        .cloned()
                        .collect(),
                    email: email.clone(),
                    app: spec.name.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        if !spec.domains.is_empty() {
            let message = if email.is_none() {
                "no acme_email in the app or on the server (haloyadm init --acme-email): serving HTTP only".to_string()
            } else {
                let have: Vec<String> = certificates
                    .status(&spec.name)
                    .into_iter()
                    .filter(|c| c.not_after.is_some())
                    .map(|c| c.domain)
                    .collect();
                let missing: Vec<&str> = wanted
                    .iter()
                    .map(|w| w.domain.as_str())
                    .filter(|d| !have.iter().any(|h| h == d))
                    .collect();
                if missing.is_empty() {
                    "certificates are in place; renewals happen in the background".to_string()
                } else {
                    format!(
                        "requesting certificates for {} in the background; `haloy status` shows them",
                        missing.join(", ")
                    )
                }
            };
            phase(events, Phase::Certificates, &message).await;
        }
        certificates.want(&spec.name, wanted);
    }
}
