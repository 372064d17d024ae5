//! What a server reports about deployments and replicas, as values to compare rather
//! than strings: a deployment's status and a replica's health.

use std::fmt;

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStatus {
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
    /// A status this client does not know (a newer server).
    Unknown,
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InProgress => "in progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        })
    }
}

/// A replica's health as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Routed and passing its health checks.
    Up,
    /// Not (yet) in the proxy's backend.
    Unrouted,
    /// Any other proxy state, lower-case (e.g. "down", "maint", "drain").
    Other(String),
}

impl Health {
    /// Reads the health a server reports ("up", "unrouted", "down", ...).
    pub fn parse(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "up" => Self::Up,
            "unrouted" => Self::Unrouted,
            other => Self::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Up => f.write_str("up"),
            Self::Unrouted => f.write_str("unrouted"),
            Self::Other(state) => f.write_str(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_back_as_reported() {
        for text in ["up", "unrouted", "down", "maint"] {
            assert_eq!(Health::parse(text).to_string(), text);
        }
        assert_eq!(Health::parse("UP"), Health::Up);
        assert_ne!(Health::parse("down"), Health::Up);
    }
}
