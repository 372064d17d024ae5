//! Bearer-token authentication for every call, compared in constant time. A wrong or
//! missing token gets UNAUTHENTICATED and nothing else.

use haloy_api::spec::Secret;
use tonic::{Request, Status};

/// The interceptor applied to every service (API, health, reflection).
#[derive(Clone)]
pub struct Auth {
    token: Secret,
}

impl Auth {
    pub fn new(token: Secret) -> Self {
        Self { token }
    }

    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if constant_time_eq(presented.as_bytes(), self.token.expose().as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("unauthenticated"))
        }
    }
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
}
