//! What is wrong with a `haloyd.yaml` beyond its syntax: each rule serde cannot
//! express, with the key it concerns and the fix.

use std::path::PathBuf;

use haloy_api::rules::Violation;

use crate::api::guard::ZeroLimit;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error(transparent)]
    Limit(#[from] ZeroLimit),
    #[error("{0} is 0; use a port between 1 and 65535")]
    ZeroPort(&'static str),
    #[error("{first} and {second} are both {port}; give each its own port")]
    SamePort {
        first: &'static str,
        second: &'static str,
        port: u16,
    },
    #[error("instance {0:?} must be letters, digits, '-' or '_'")]
    Instance(String),
    /// A setting that must be at least 1; `fix` says what to give.
    #[error("{key} is 0; {fix}")]
    Zero {
        key: &'static str,
        fix: &'static str,
    },
    /// A value that breaks one of the shared rules (a domain, an e-mail address).
    #[error("{key}: {violation}")]
    Rule {
        key: &'static str,
        #[source]
        violation: Violation,
    },
    #[error(
        "haproxy_image {0:?} is not an image reference; name one such as {image}, or one that scripts/haproxy-image built",
        image = super::DEFAULT_HAPROXY_IMAGE
    )]
    HaproxyImage(String),
    #[error("api_domain is set without acme_email; add acme_email for its certificate")]
    ApiDomainWithoutEmail,
    #[error(
        "acme_directory {url:?} is not an https:// URL; give the ACME directory's URL, e.g. {example}"
    )]
    AcmeDirectory { url: String, example: &'static str },
    #[error(
        "acme_directory and acme_staging are both set; keep one (acme_staging means Let's Encrypt's staging directory)"
    )]
    AcmeDirectoryAndStaging,
    #[error(
        "acme_ca_cert {} is not an absolute path; give the full path of the PEM file",
        .0.display()
    )]
    RelativeCaCert(PathBuf),
    #[error(
        "metrics_address {0:?} is not an address; give host:port such as {default}, or off to serve no metrics",
        default = super::DEFAULT_METRICS_ADDRESS
    )]
    MetricsAddress(String),
}
