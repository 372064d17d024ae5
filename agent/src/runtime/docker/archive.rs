//! Takes the names out of an uploaded `docker save` archive on its way into Docker's
//! load, so that loading applies no tag at all.
//!
//! `docker load` tags the image with the `RepoTags` in `manifest.json` (or, in older
//! archives, the `repositories` file; with containerd's store, `index.json`
//! annotations), moving any tag that already names another image, such as another
//! app's version or a rollback target. Removing tags after the load cannot undo
//! that move, so the names are stripped before Docker sees them: `manifest.json` is
//! rewritten without `RepoTags`, `repositories` and `index.json` are left out, and
//! the deploy then tags the loaded image with its own name only.
//!
//! Docker extracts the archive and reads these files by path, so every entry whose
//! cleaned path is one of them counts, however the tar names it (plain header, ustar
//! prefix, GNU long name, pax `path`); one that is not a regular file is refused.

/// Tar works in blocks of 512 bytes.
const BLOCK: usize = 512;
/// Limits what is held in memory: pax and long-name records, and `manifest.json`.
const MAX_META: u64 = 1 << 20;
const MAX_MANIFEST: u64 = 16 << 20;

/// Rewrites an archive as it passes through, chunk by chunk.
#[derive(Default)]
pub struct TagStripper {
    /// The header being read, until it has a whole block.
    header: Vec<u8>,
    state: State,
    /// Pax and long-name entries, held back until the entry they describe is known.
    held: Vec<u8>,
    name: Option<String>,
    size: Option<u64>,
}

#[derive(Default)]
enum State {
    #[default]
    Header,
    /// Bytes of the current entry's data (and padding) to pass on.
    Pass(u64),
    /// Bytes to leave out.
    Skip(u64),
    /// A pax or long-name entry's data, collected to learn the next entry's name.
    Meta {
        kind: u8,
        len: u64,
        padded: u64,
        data: Vec<u8>,
    },
    /// `manifest.json`'s data, collected to be rewritten.
    Manifest {
        len: u64,
        padded: u64,
        data: Vec<u8>,
    },
    /// After the end-of-archive block everything passes.
    Trailer,
}

/// Why an uploaded archive is not one this server loads.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("a tar header record of {0} bytes is over {MAX_META}")]
    RecordTooLarge(u64),
    #[error("{0} in the archive is not a regular file; upload an archive written by docker save")]
    NotRegular(String),
    #[error("{MANIFEST} is {0} bytes, over {MAX_MANIFEST}")]
    ManifestTooLarge(u64),
    #[error("a pax header in the archive is malformed")]
    Pax,
    #[error("a tar entry has a negative size")]
    NegativeSize,
    #[error("a tar entry's size overflows")]
    SizeOverflow,
    #[error("a tar entry's size {0:?} is not octal")]
    SizeNotOctal(String),
    #[error("{MANIFEST} in the archive is not JSON: {0}")]
    ManifestJson(#[source] serde_json::Error),
    #[error("{MANIFEST} in the archive is not a list of images")]
    ManifestNotList,
    #[error("cannot rewrite {MANIFEST}: {0}")]
    ManifestWrite(#[source] serde_json::Error),
}

/// The names Docker's load takes tags from.
const MANIFEST: &str = "manifest.json";
const DROPPED: [&str; 2] = ["repositories", "index.json"];

impl TagStripper {
    /// Rewrites the next part of the archive; an error means it is not an archive
    /// this server loads, and the load must be aborted.
    pub fn push(&mut self, mut input: &[u8]) -> Result<Vec<u8>, TarError> {
        let mut out = Vec::with_capacity(input.len());
        while !input.is_empty() {
            match &mut self.state {
                State::Trailer => {
                    out.extend_from_slice(input);
                    input = &[];
                }
                State::Pass(left) => {
                    let n = advance(left, input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Skip(left) => {
                    let n = advance(left, input.len());
                    input = &input[n..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Meta { padded, data, .. } | State::Manifest { padded, data, .. } => {
                    let n = advance(padded, input.len());
                    data.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if *padded == 0 {
                        self.entry_done(&mut out)?;
                    }
                }
                State::Header => {
                    let n = (BLOCK - self.header.len()).min(input.len());
                    self.header.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.header.len() == BLOCK {
                        let header = std::mem::take(&mut self.header);
                        self.on_header(header, &mut out)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn on_header(&mut self, header: Vec<u8>, out: &mut Vec<u8>) -> Result<(), TarError> {
        if header.iter().all(|&b| b == 0) {
            out.append(&mut self.held);
            out.extend_from_slice(&header);
            self.state = State::Trailer;
            return Ok(());
        }
        let kind = header[156];
        let header_size = parse_size(&header[124..136])?;
        if matches!(kind, b'x' | b'L' | b'K') {
            if header_size > MAX_META {
                return Err(TarError::RecordTooLarge(header_size));
            }
            self.held.extend_from_slice(&header);
            self.state = collecting(header_size, |len, padded| State::Meta {
                kind,
                len,
                padded,
                data: Vec::new(),
            });
            return Ok(());
        }
        let name = self.name.take().unwrap_or_else(|| header_name(&header));
        let size = self.size.take().unwrap_or(header_size);
        let path = clean(&name);
        let named = path == MANIFEST || DROPPED.contains(&path.as_str());
        // Regular files; a link or directory by these names would let Docker read
        // other, unrewritten data.
        if named && !matches!(kind, b'0' | 0 | b'7') {
            return Err(TarError::NotRegular(path));
        }
        let padded = padded(size);
        if path == MANIFEST {
            if size > MAX_MANIFEST {
                return Err(TarError::ManifestTooLarge(size));
            }
            // Its pax or long-name records go too: the new header names it plainly.
            self.held.clear();
            self.state = collecting(size, |len, padded| State::Manifest {
                len,
                padded,
                data: Vec::new(),
            });
        } else if named {
            self.held.clear();
            self.state = State::Skip(padded);
        } else {
            out.append(&mut self.held);
            out.extend_from_slice(&header);
            self.state = State::Pass(padded);
        }
        if padded == 0 {
            self.entry_done(out)?;
        }
        Ok(())
    }

    /// The data of a collected entry is in: use it.
    fn entry_done(&mut self, out: &mut Vec<u8>) -> Result<(), TarError> {
        match std::mem::take(&mut self.state) {
            State::Meta {
                kind, len, data, ..
            } => {
                let record = &data[..len as usize];
                match kind {
                    b'L' => self.name = Some(c_string(record)),
                    b'x' => self.read_pax(record)?,
                    _ => {}
                }
                let meta_len = padded(len) as usize;
                self.held.extend_from_slice(&data[..meta_len]);
            }
            State::Manifest { len, data, .. } => {
                let rewritten = strip_repo_tags(&data[..len as usize])?;
                out.extend_from_slice(&ustar_header(MANIFEST, rewritten.len() as u64, b'0'));
                out.extend_from_slice(&rewritten);
                out.resize(
                    out.len() + (padded(rewritten.len() as u64) as usize - rewritten.len()),
                    0,
                );
            }
            _ => {}
        }
        self.state = State::Header;
        Ok(())
    }

    /// Pax records: `<length> <key>=<value>\n`; `path` and `size` matter here.
    fn read_pax(&mut self, mut records: &[u8]) -> Result<(), TarError> {
        let bad = || TarError::Pax;
        while !records.is_empty() {
            let space = records.iter().position(|&b| b == b' ').ok_or_else(bad)?;
            let length: usize = std::str::from_utf8(&records[..space])
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > space + 1 && n <= records.len())
                .ok_or_else(bad)?;
            let record = &records[space + 1..length];
            let record = record.strip_suffix(b"\n").ok_or_else(bad)?;
            let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            match &record[..eq] {
                b"path" => self.name = Some(value),
                b"size" => self.size = Some(value.parse().map_err(|_| bad())?),
                _ => {}
            }
            records = &records[length..];
        }
        Ok(())
    }
}

/// Takes up to `available` bytes off `left`; returns how many.
fn advance(left: &mut u64, available: usize) -> usize {
    let n = available.min(usize::try_from(*left).unwrap_or(usize::MAX));
    *left -= n as u64;
    n
}

fn collecting(len: u64, state: impl FnOnce(u64, u64) -> State) -> State {
    state(len, padded(len))
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Numbers are octal text, or base-256 when the first byte's high bit is set.
fn parse_size(field: &[u8]) -> Result<u64, TarError> {
    if field[0] & 0x80 != 0 {
        if field[0] & 0x40 != 0 {
            return Err(TarError::NegativeSize);
        }
        let mut value = u64::from(field[0] & 0x3f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or(TarError::SizeOverflow)?;
        }
        return Ok(value);
    }
    let text = String::from_utf8_lossy(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| TarError::SizeNotOctal(text.to_string()))
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The name, with the ustar prefix when the header is ustar or pax (GNU headers
/// keep other fields there).
fn header_name(header: &[u8]) -> String {
    let name = c_string(&header[..100]);
    if &header[257..263] == b"ustar\0" {
        let prefix = c_string(&header[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// The path as extracting it resolves: no `.`, no empty parts, `..` applied.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// `manifest.json` without the `RepoTags` of its images.
fn strip_repo_tags(manifest: &[u8]) -> Result<Vec<u8>, TarError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(TarError::ManifestJson)?;
    let images = value.as_array_mut().ok_or(TarError::ManifestNotList)?;
    for image in images {
        if let Some(image) = image.as_object_mut() {
            image.remove("RepoTags");
        }
    }
    serde_json::to_vec(&value).map_err(TarError::ManifestWrite)
}

/// A plain ustar header (the tests build archives with it too); `size` is below
/// 8 GiB, which an octal field holds.
pub(crate) fn ustar_header(name: &str, size: u64, kind: u8) -> [u8; BLOCK] {
    let mut header = [0u8; BLOCK];
    let name = name.as_bytes();
    let n = name.len().min(100);
    header[..n].copy_from_slice(&name[..n]);
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = kind;
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    header
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
