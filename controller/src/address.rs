//! A haloyd server as the user writes it (`haloy.example.com`, `127.0.0.1:9999`,
//! `[::1]:9999`): parsed once, shared by the server list, TLS and the client.

use std::fmt;

/// A server as the user writes it: a domain or address with an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    pub host: String,
    pub port: Option<u16>,
}

/// Why a server address was refused, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; {fix}")]
pub struct AddressError {
    pub problem: String,
    pub fix: String,
}

impl ServerAddress {
    /// Parses `haloy.example.com`, `127.0.0.1:9999`, `[::1]:9999`. A leading
    /// `https://` is dropped (Haloy picks the scheme itself); paths are refused.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let fix = "write a domain or address with an optional port, e.g. haloy.example.com or 127.0.0.1:9999";
        let err = |problem: String| AddressError {
            problem,
            fix: fix.to_string(),
        };
        let trimmed = text.trim();
        let bare = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .unwrap_or(trimmed)
            .trim_end_matches('/');
        if bare.is_empty() {
            return Err(err("the server is empty".into()));
        }
        if bare.contains('/') || bare.contains("://") {
            return Err(err(format!("server {text:?} has a path or scheme")));
        }
        let (host, port) = if let Some(rest) = bare.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| err(format!("server {text:?} has an unclosed '['")))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(err(format!("{host:?} is not an IPv6 address")));
            }
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| err(format!("unexpected {p:?} after ']'")))?,
                ),
            };
            (format!("[{host}]"), port)
        } else {
            match bare.rsplit_once(':') {
                Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
                None => (bare.to_ascii_lowercase(), None),
            }
        };
        let port = match port {
            Some(p) => Some(haloy_api::rules::port_str(p).map_err(|_| {
                err(format!(
                    "port {p:?} of server {text:?} is not a port number"
                ))
            })?),
            None => None,
        };
        let is_ip = host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[');
        if !is_ip && haloy_api::rules::domain_name(&host).is_err() {
            return Err(err(format!("{host:?} is not a valid host name")));
        }
        Ok(Self { host, port })
    }

    /// Loopback servers may be reached without TLS.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self.host == "[::1]"
            || self
                .host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_addresses() {
        let a = ServerAddress::parse("https://Haloy.Example.com/").unwrap();
        assert_eq!(a.to_string(), "haloy.example.com");
        assert_eq!(
            ServerAddress::parse("127.0.0.1:9999").unwrap().port,
            Some(9999)
        );
        assert_eq!(
            ServerAddress::parse("[::1]:9999").unwrap().to_string(),
            "[::1]:9999"
        );
        assert!(
            ServerAddress::parse("127.0.0.1:9999")
                .unwrap()
                .is_loopback()
        );
        assert!(
            !ServerAddress::parse("haloy.example.com")
                .unwrap()
                .is_loopback()
        );
        assert!(
            ServerAddress::parse("host:99999")
                .unwrap_err()
                .problem
                .contains("port")
        );
        assert!(
            ServerAddress::parse("host/path")
                .unwrap_err()
                .problem
                .contains("path")
        );
        assert!(ServerAddress::parse("bad host").is_err());
    }
}
