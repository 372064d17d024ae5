//! The tag stripper against archives built by hand, read back with the `tar` crate.

use std::io::Read;

use super::*;

fn entry(name: &str, data: &[u8], kind: u8) -> Vec<u8> {
    let mut out = ustar_header(name, data.len() as u64, kind).to_vec();
    out.extend_from_slice(data);
    out.resize(
        out.len() + (padded(data.len() as u64) as usize - data.len()),
        0,
    );
    out
}

fn pax(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    // The length counts its own digits.
    let mut length = body.len() + 1;
    while format!("{length}{body}").len() != length {
        length += 1;
    }
    entry("PaxHeaders/x", format!("{length}{body}").as_bytes(), b'x')
}

const MANIFEST_JSON: &str = r#"[{"Config":"blobs/sha256/c","RepoTags":["other-app:v1","web:latest"],"Layers":["blobs/sha256/l"]}]"#;

fn archive(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = parts.concat();
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

/// Pushes `input` in pieces of `step` bytes.
fn strip(input: &[u8], step: usize) -> Result<Vec<u8>, String> {
    let mut stripper = TagStripper::default();
    let mut out = Vec::new();
    for piece in input.chunks(step) {
        out.extend(stripper.push(piece).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// (path, contents) of every entry, as an independent reader sees them.
fn entries(archive: &[u8]) -> Vec<(String, String)> {
    let mut reader = tar::Archive::new(archive);
    reader
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mut data = String::new();
            e.read_to_string(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

#[test]
fn the_names_an_archive_carries_are_taken_out_and_the_rest_is_untouched() {
    let layer = "layer data ".repeat(100);
    let input = archive(&[
        entry("blobs/sha256/l", layer.as_bytes(), b'0'),
        entry("manifest.json", MANIFEST_JSON.as_bytes(), b'0'),
        entry("repositories", br#"{"other-app":{"v1":"abc"}}"#, b'0'),
        entry(
            "index.json",
            br#"{"manifests":[{"annotations":{"io.containerd.image.name":"other-app:v1"}}]}"#,
            b'0',
        ),
        entry("blobs/sha256/c", b"{}", b'0'),
    ]);
    for step in [1, 7, 512, 1000, input.len()] {
        let out = strip(&input, step).unwrap();
        let found = entries(&out);
        let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["blobs/sha256/l", "manifest.json", "blobs/sha256/c"],
            "step {step}"
        );
        assert_eq!(found[0].1, layer);
        let manifest: serde_json::Value = serde_json::from_str(&found[1].1).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!([{"Config": "blobs/sha256/c", "Layers": ["blobs/sha256/l"]}])
        );
        assert!(out.ends_with(&[0u8; 2 * BLOCK]), "the end marker stays");
    }
}

#[test]
fn every_way_of_naming_the_manifest_is_rewritten() {
    let mut long_name = entry("././@LongLink", b"manifest.json\0", b'L');
    long_name.extend(entry("ignored", MANIFEST_JSON.as_bytes(), b'0'));
    let mut pax_path = pax("path", "./manifest.json");
    pax_path.extend(entry("ignored", MANIFEST_JSON.as_bytes(), b'0'));
    for (how, named) in [
        (
            "dot slash",
            entry("./manifest.json", MANIFEST_JSON.as_bytes(), b'0'),
        ),
        (
            "dot dot",
            entry("a/../manifest.json", MANIFEST_JSON.as_bytes(), b'0'),
        ),
        ("GNU long name", long_name),
        ("pax path", pax_path),
    ] {
        let out = strip(&archive(&[named]), 100).unwrap();
        let found = entries(&out);
        assert_eq!(found.len(), 1, "{how}: {found:?}");
        assert_eq!(found[0].0, "manifest.json", "{how}");
        assert!(!found[0].1.contains("RepoTags"), "{how}: {}", found[0].1);
    }
}

#[test]
fn a_pax_size_decides_where_the_next_header_is() {
    // The header says 0 bytes, the pax record 600: the next header follows those.
    let data = "x".repeat(600);
    let mut sized = pax("size", "600");
    let mut header = ustar_header("big", 0, b'0').to_vec();
    header.extend_from_slice(data.as_bytes());
    header.resize(header.len() + (padded(600) as usize - 600), 0);
    sized.extend(header);
    let input = archive(&[
        sized,
        entry("manifest.json", MANIFEST_JSON.as_bytes(), b'0'),
    ]);
    let out = strip(&input, 333).unwrap();
    let found = entries(&out);
    assert_eq!(found[0], ("big".to_string(), data));
    assert!(!found[1].1.contains("RepoTags"));
}

#[test]
fn a_manifest_that_is_a_link_or_not_json_is_refused() {
    for kind in [b'1', b'2', b'5'] {
        let err = strip(&archive(&[entry("manifest.json", b"", kind)]), 512).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
    }
    let err = strip(&archive(&[entry("repositories", b"", b'2')]), 512).unwrap_err();
    assert!(err.contains("repositories"), "{err}");
    let err = strip(&archive(&[entry("manifest.json", b"{nope", b'0')]), 512).unwrap_err();
    assert!(err.contains("not JSON"), "{err}");
}

#[test]
fn sizes_are_octal_or_base_256() {
    assert_eq!(parse_size(b"00000001750\0").unwrap(), 1000);
    assert_eq!(parse_size(b"        \0\0\0\0").unwrap(), 0);
    let mut big = [0u8; 12];
    big[0] = 0x80;
    big[7] = 0x02; // 2 << 32
    assert_eq!(parse_size(&big).unwrap(), 2 << 32);
    assert!(parse_size(b"9\0\0\0\0\0\0\0\0\0\0\0").is_err());
}
