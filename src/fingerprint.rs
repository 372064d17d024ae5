//! SHA-256 certificate fingerprints, as haloyd prints them and the CLI pins them:
//! one definition, so both sides always agree on the form.

use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's DER as 64 upper-case hex digits.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(der))
}

/// `AABB…` → `AA:BB:…`, the form `openssl x509 -fingerprint -sha256` prints.
pub fn with_colons(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_openssls_form() {
        // printf '' | sha256sum
        let empty = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(sha256_hex(b""), empty);
        assert_eq!(with_colons("E3B0C4"), "E3:B0:C4");
    }
}
