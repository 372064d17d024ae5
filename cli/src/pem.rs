//! Checking a PEM certificate file given on the command line before it is recorded,
//! so a typo fails now and not at the first connection.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// `path` (given as `flag`) must hold a PEM certificate; returns its absolute path.
/// `what` says what the file should be, for the error.
pub fn checked_pem(flag: &str, path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("{flag} {}: cannot resolve the path", path.display()))?;
    let text = std::fs::read_to_string(&absolute).with_context(|| {
        format!(
            "{flag} {}: cannot read the file; give {what}",
            absolute.display()
        )
    })?;
    anyhow::ensure!(
        text.contains("-----BEGIN CERTIFICATE-----"),
        "{flag} {} holds no PEM certificate; give {what}",
        absolute.display()
    );
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readable_pem_certificates_pass() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, "-----BEGIN CERTIFICATE-----\nMII\n").unwrap();
        assert_eq!(checked_pem("--ca-cert", &good, "a CA").unwrap(), good);
        let bad = dir.path().join("ca.txt");
        std::fs::write(&bad, "not a certificate").unwrap();
        let err = format!("{:#}", checked_pem("--ca-cert", &bad, "a CA").unwrap_err());
        assert!(err.contains("--ca-cert") && err.contains("no PEM"), "{err}");
        let missing = dir.path().join("none.pem");
        let err = format!(
            "{:#}",
            checked_pem("--ca-cert", &missing, "a CA").unwrap_err()
        );
        assert!(err.contains("cannot read"), "{err}");
    }
}
