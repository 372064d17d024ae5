//! Unit tests of haloyd.yaml: defaults, and the errors of bad settings.

use super::*;

#[test]
fn uploads_are_limited_by_default_and_the_limits_are_checked() {
    let defaults = config("").unwrap().upload_limits();
    assert_eq!(defaults.max_bytes, 10 << 30);
    assert_eq!(defaults.deadline.as_secs(), 1800);
    let set = config("max_upload_bytes: 1000\nupload_deadline_secs: 60\n")
        .unwrap()
        .upload_limits();
    assert_eq!((set.max_bytes, set.deadline.as_secs()), (1000, 60));
    let err = config("max_upload_bytes: 0\n").unwrap_err();
    assert!(err.contains("max_upload_bytes"), "{err}");
    let err = config("upload_deadline_secs: 0\n").unwrap_err();
    assert!(err.contains("upload_deadline_secs"), "{err}");
}

fn config(extra: &str) -> Result<HaloydConfig, String> {
    let yaml = format!("data_dir: /var/lib/haloy\n{extra}");
    let config: HaloydConfig = serde_yaml::from_str(&yaml).map_err(|e| e.to_string())?;
    config
        .validate()
        .map(|()| config)
        .map_err(|e| e.to_string())
}

#[test]
fn the_acme_directory_defaults_to_lets_encrypt_and_is_checked() {
    assert_eq!(
        config("").unwrap().acme_directory_url(),
        crate::certs::LETS_ENCRYPT
    );
    assert_eq!(
        config("acme_staging: true\n").unwrap().acme_directory_url(),
        crate::certs::LETS_ENCRYPT_STAGING
    );
    let custom = config("acme_directory: https://acme.internal/dir\n").unwrap();
    assert_eq!(custom.acme_directory_url(), "https://acme.internal/dir");
    let err = config("acme_directory: http://acme.internal/dir\n").unwrap_err();
    assert!(
        err.contains("acme_directory") && err.contains("https://"),
        "{err}"
    );
    let err = config("acme_directory: https://a/dir\nacme_staging: true\n").unwrap_err();
    assert!(err.contains("keep one"), "{err}");
    let err = config("acme_ca_cert: ca.pem\n").unwrap_err();
    assert!(
        err.contains("acme_ca_cert") && err.contains("absolute"),
        "{err}"
    );
    let err = config("cert_check_interval_secs: 0\n").unwrap_err();
    assert!(err.contains("cert_check_interval_secs"), "{err}");
    let err = config("api_tls_port: 9999\n").unwrap_err();
    assert!(err.contains("api_port and api_tls_port"), "{err}");
}

#[test]
fn metrics_are_served_on_loopback_by_default_and_the_address_is_checked() {
    let default = config("").unwrap();
    assert_eq!(
        default.metrics_addr().unwrap(),
        Some("127.0.0.1:9101".parse().unwrap())
    );
    for off in ["off", "OFF", "''"] {
        let set = config(&format!("metrics_address: {off}\n")).unwrap();
        assert_eq!(set.metrics_addr().unwrap(), None, "{off}");
    }
    let set = config("metrics_address: \"[::1]:9200\"\n").unwrap();
    assert_eq!(
        set.metrics_addr().unwrap(),
        Some("[::1]:9200".parse().unwrap())
    );
    let err = config("metrics_address: localhost:9101\n").unwrap_err();
    assert!(
        err.contains("metrics_address \"localhost:9101\" is not an address")
            && err.contains("127.0.0.1:9101")
            && err.contains("off"),
        "{err}"
    );
    let err = config("metrics_address: 127.0.0.1\n").unwrap_err();
    assert!(err.contains("metrics_address"), "{err}");
    let err = config("metrics_address: 127.0.0.1:0\n").unwrap_err();
    assert!(err.contains("metrics_address is 0"), "{err}");
    let err = config("metrics_address: 127.0.0.1:9999\n").unwrap_err();
    assert!(err.contains("api_port and metrics_address"), "{err}");
}
