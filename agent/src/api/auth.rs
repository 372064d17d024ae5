//! Bearer-token authentication for every call, compared in constant time. A wrong or
//! missing token gets UNAUTHENTICATED and nothing else. haloyd follows the token
//! file: after `haloyadm api token --rotate` the old token stops working with the
//! next call, without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use haloy_api::spec::Secret;
use tonic::{Request, Status};

use super::guard::ConnInfo;

/// The interceptor applied to every service (API, health, reflection).
#[derive(Clone)]
pub struct Auth {
    token: Arc<RwLock<Token>>,
}

struct Token {
    value: Secret,
    /// The file the token comes from and its version when read.
    source: Option<(PathBuf, Option<FileVersion>)>,
}

impl Auth {
    /// A fixed token.
    pub fn new(token: Secret) -> Self {
        Self {
            token: Arc::new(RwLock::new(Token {
                value: token,
                source: None,
            })),
        }
    }

    /// `token`, read from `file` (the config directory's `.env`), read again
    /// whenever the file changes.
    pub fn following(token: Secret, file: PathBuf) -> Self {
        let modified = modified(&file);
        Self {
            token: Arc::new(RwLock::new(Token {
                value: token,
                source: Some((file, modified)),
            })),
        }
    }

    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let token = self.current();
        if !constant_time_eq(presented.as_bytes(), token.expose().as_bytes()) {
            return Err(Status::unauthenticated("unauthenticated"));
        }
        if let Some(connection) = request.extensions().get::<ConnInfo>() {
            connection.authenticated();
        }
        Ok(request)
    }

    /// The token in force: the file's again if it changed since it was read. A file
    /// that cannot be read or holds no token keeps the last good one (a rotation
    /// writes it atomically, so this is a transient state or an operator's slip).
    fn current(&self) -> Secret {
        let read = |t: &Token| (t.value.clone(), t.source.clone());
        let (value, source) = read(&self.token.read().unwrap_or_else(|p| p.into_inner()));
        let Some((file, seen)) = source else {
            return value;
        };
        let now = modified(&file);
        if now == seen {
            return value;
        }
        let Some(fresh) =
            crate::setup::token_from_text(&std::fs::read_to_string(&file).unwrap_or_default())
        else {
            return value;
        };
        let mut token = self.token.write().unwrap_or_else(|p| p.into_inner());
        token.value = fresh.clone();
        token.source = Some((file, now));
        tracing::info!("the API token changed; the previous one no longer works");
        fresh
    }
}

/// What tells one version of the token file from the next: its inode (a rotation
/// writes a new file and renames it over the old) and its modification time.
type FileVersion = (u64, SystemTime);

fn modified(file: &std::path::Path) -> Option<FileVersion> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(file).ok()?;
    Some((metadata.ino(), metadata.modified().ok()?))
}

/// Compares without an early exit, so timing reveals nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn accepts_only_the_bearer_token() {
        let auth = Auth::new(Secret::new("s3cret"));
        let with = |value: &str| {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("authorization", value.parse().unwrap());
            r
        };
        assert!(auth.check(with("Bearer s3cret")).is_ok());
        let denied = auth.check(with("Bearer wrong")).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::Unauthenticated);
        assert_eq!(denied.message(), "unauthenticated");
        assert!(auth.check(with("s3cret")).is_err());
        assert!(auth.check(Request::new(())).is_err());
    }

    #[test]
    fn a_rotated_token_replaces_the_old_one_at_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env");
        std::fs::write(&file, "HALOY_API_TOKEN=first\n").unwrap();
        let auth = Auth::following(Secret::new("first"), file.clone());
        let with = |token: &str| {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            r
        };
        assert!(auth.check(with("first")).is_ok());
        std::fs::write(&file, "HALOY_API_TOKEN=second\n").unwrap();
        // A later modification time, whatever the file system's clock granularity.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(
            auth.check(with("first")).is_err(),
            "the old token still works"
        );
        assert!(auth.check(with("second")).is_ok());
        // A broken file keeps the last good token.
        std::fs::write(&file, "nothing here\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(auth.check(with("second")).is_ok());
    }
}
