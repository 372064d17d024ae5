//! The real [`super::AcmeDirectory`]: an ACME server (Let's Encrypt, or any RFC 8555
//! directory such as pebble) spoken to with instant-acme, proving control of each
//! name by HTTP-01 through HAProxy and [`super::challenge`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::challenge::Challenges;
use super::files::{CertDir, write_private};
use super::{AcmeDirectory, AcmeError, Issued};

/// How long an order may take from challenges to certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

pub struct AcmeClient {
    directory_url: String,
    /// A PEM root to trust for the directory's own HTTPS (pebble, a private CA).
    ca_cert: Option<PathBuf>,
    files: CertDir,
    challenges: Challenges,
    /// By email: apps may name different contacts, each with its own account.
    accounts: Mutex<HashMap<String, Account>>,
}

/// The stored account: which directory and address it belongs to.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    email: String,
    credentials: AccountCredentials,
}

impl AcmeClient {
    pub fn new(
        directory_url: String,
        ca_cert: Option<PathBuf>,
        files: CertDir,
        challenges: Challenges,
    ) -> Self {
        Self {
            directory_url,
            ca_cert,
            files,
            challenges,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, AcmeError> {
        let built = match &self.ca_cert {
            Some(path) => Account::builder_with_root(path).map_err(|source| AcmeError::CaCert {
                path: path.to_path_buf(),
                source,
            })?,
            None => Account::builder().map_err(AcmeError::Client)?,
        };
        Ok(built)
    }

    /// The account for `email`: the stored one when it matches the directory and
    /// address, else a new one (stored for next time, in the file of its address).
    async fn account(&self, email: &str) -> Result<Account, AcmeError> {
        let mut accounts = self.accounts.lock().await;
        if let Some(account) = accounts.get(email) {
            return Ok(account.clone());
        }
        let path = self.files.account_path(email);
        // Releases before one file per address kept a single acme-account.json.
        let stored = read_account(&path, &self.directory_url, email).or_else(|| {
            read_account(
                &self.files.legacy_account_path(),
                &self.directory_url,
                email,
            )
        });
        let account = match stored {
            Some(stored) => self
                .builder()?
                .from_credentials(stored.credentials)
                .await
                .map_err(|e| self.unreachable(e))?,
            None => {
                let contact = format!("mailto:{email}");
                let (account, credentials) = self
                    .builder()?
                    .create(
                        &NewAccount {
                            contact: &[&contact],
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.directory_url.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| self.unreachable(e))?;
                let stored = StoredAccount {
                    directory_url: self.directory_url.clone(),
                    email: email.to_string(),
                    credentials,
                };
                store_account(&path, &stored)?;
                account
            }
        };
        accounts.insert(email.to_string(), account.clone());
        Ok(account)
    }

    fn unreachable(&self, source: instant_acme::Error) -> AcmeError {
        AcmeError::Directory {
            url: self.directory_url.clone(),
            source,
        }
    }

    /// A problem document while validating is the challenge failing; anything else
    /// is the directory.
    fn challenge_failed(&self, e: instant_acme::Error) -> AcmeError {
        match e {
            instant_acme::Error::Api(problem) => AcmeError::Refused(format!(
                "the HTTP-01 challenge failed ({problem}); check that the domain points at this server and that HAProxy's HTTP port is reachable on port 80"
            )),
            other => self.unreachable(other),
        }
    }

    /// While the challenges are set up one name after another: the validation of an
    /// earlier name may already have failed (a directory that validates at once), and
    /// the next request gets its problem back. That is the challenge failing too;
    /// any other problem is the directory's.
    fn while_validating(&self, e: instant_acme::Error) -> AcmeError {
        match &e {
            instant_acme::Error::Api(problem) if is_validation_problem(problem) => {
                self.challenge_failed(e)
            }
            _ => self.unreachable(e),
        }
    }

    async fn order(
        &self,
        account: &Account,
        names: &[String],
        tokens: &mut Vec<String>,
    ) -> Result<Issued, AcmeError> {
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| self.while_validating(e))?;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => {
                    return Err(AcmeError::Refused(format!(
                        "the authorization for {} is {status:?}",
                        authz.identifier()
                    )));
                }
            }
            let mut challenge = authz.challenge(ChallengeType::Http01).ok_or_else(|| {
                AcmeError::Refused("the ACME directory offers no HTTP-01 challenge".into())
            })?;
            let key_authorization = challenge.key_authorization();
            self.challenges
                .insert(&challenge.token, key_authorization.as_str());
            tokens.push(challenge.token.clone());
            challenge
                .set_ready()
                .await
                .map_err(|e| self.while_validating(e))?;
        }
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(ORDER_TIMEOUT);
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| self.challenge_failed(e))?;
        if status != OrderStatus::Ready {
            return Err(AcmeError::Refused(challenge_problem(&mut order).await));
        }
        let key_error = |what: String| move |source| AcmeError::Key { what, source };
        let key = rcgen::KeyPair::generate().map_err(key_error("a key".into()))?;
        let params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(key_error(format!("a CSR for {names:?}")))?;
        let csr = params
            .serialize_request(&key)
            .map_err(key_error("the CSR's signature".into()))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| self.unreachable(e))?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(Issued {
            chain_pem,
            key_pem: key.serialize_pem(),
        })
    }
}

/// The account stored in `path` if it belongs to `directory_url` and `email`.
fn read_account(path: &Path, directory_url: &str, email: &str) -> Option<StoredAccount> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<StoredAccount>(&text)
        .ok()
        .filter(|s| s.directory_url == directory_url && s.email == email)
}

fn store_account(path: &Path, stored: &StoredAccount) -> Result<(), AcmeError> {
    let text = serde_json::to_string(stored).map_err(AcmeError::Encode)?;
    write_private(path, text.as_bytes()).map_err(|source| AcmeError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Names under the top-level domains RFC 2606 and 6761 reserve, which no public CA
/// issues for; asking would only spend the account's rate limits.
fn is_reserved(name: &str) -> bool {
    let tld = name.rsplit('.').next().unwrap_or(name);
    !name.contains('.')
        || [
            "test",
            "localhost",
            "invalid",
            "example",
            "local",
            "internal",
        ]
        .contains(&tld)
}

/// RFC 8555's problem types that mean a name could not be validated (section 6.7).
fn is_validation_problem(problem: &instant_acme::Problem) -> bool {
    const VALIDATION: &[&str] = &[
        "connection",
        "dns",
        "unauthorized",
        "incorrectResponse",
        "tls",
        "caa",
    ];
    problem
        .r#type
        .as_deref()
        .and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:"))
        .is_some_and(|kind| VALIDATION.contains(&kind))
}

/// Why an order became invalid, from its failed challenges.
async fn challenge_problem(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for challenge in &authz.challenges {
            if let Some(error) = &challenge.error {
                reasons.push(format!("{}: {error}", authz.identifier()));
            }
        }
    }
    if reasons.is_empty() {
        "the ACME directory did not validate the order".into()
    } else {
        format!(
            "the HTTP-01 challenge failed ({}); check that the domain points at this server and that HAProxy's HTTP port is reachable on port 80",
            reasons.join("; ")
        )
    }
}

#[async_trait]
impl AcmeDirectory for AcmeClient {
    async fn issue(&self, names: &[String], email: &str) -> Result<Issued, AcmeError> {
        if self.directory_url.contains("letsencrypt.org")
            && let Some(name) = names.iter().find(|n| is_reserved(n))
        {
            return Err(AcmeError::Refused(format!(
                "Let's Encrypt never issues certificates for {name}, a reserved name; use a public domain, or another ACME directory (acme_directory in haloyd.yaml)"
            )));
        }
        let account = self.account(email).await?;
        let mut tokens = Vec::new();
        let result = tokio::time::timeout(
            ORDER_TIMEOUT + Duration::from_secs(30),
            self.order(&account, names, &mut tokens),
        )
        .await
        .unwrap_or_else(|_| {
            Err(AcmeError::Timeout {
                url: self.directory_url.clone(),
                waited: ORDER_TIMEOUT + Duration::from_secs(30),
            })
        });
        for token in tokens {
            self.challenges.remove(&token);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(email: &str) -> StoredAccount {
        let credentials = serde_json::json!({
            "id": format!("https://acme.test/acct/{email}"),
            "key_pkcs8": "AAAA",
            "directory": "https://acme.test/dir",
        });
        StoredAccount {
            directory_url: "https://acme.test/dir".into(),
            email: email.into(),
            credentials: serde_json::from_value(credentials).unwrap(),
        }
    }

    #[test]
    fn each_email_keeps_its_own_account() {
        let dir = tempfile::tempdir().unwrap();
        let files = CertDir::new(dir.path().to_path_buf());
        let (a, b) = ("ops@a.com", "web@b.com");
        assert_ne!(files.account_path(a), files.account_path(b));
        store_account(&files.account_path(a), &stored(a)).unwrap();
        store_account(&files.account_path(b), &stored(b)).unwrap();
        let url = "https://acme.test/dir";
        let read = |email: &str| read_account(&files.account_path(email), url, email).unwrap();
        assert_eq!(read(a).email, a);
        assert_eq!(read(b).email, b, "the second address replaced the first");
        assert!(read_account(&files.account_path(a), "https://other.test/dir", a).is_none());
    }

    #[test]
    fn only_validation_problems_count_as_the_challenge_failing() {
        let problem = |kind: Option<&str>| {
            serde_json::from_value::<instant_acme::Problem>(serde_json::json!({
                "type": kind,
                "detail": "x",
                "status": 400,
            }))
            .unwrap()
        };
        for kind in ["connection", "dns", "unauthorized", "incorrectResponse"] {
            let t = format!("urn:ietf:params:acme:error:{kind}");
            assert!(is_validation_problem(&problem(Some(&t))), "{kind}");
        }
        for kind in ["rateLimited", "badNonce", "malformed", "serverInternal"] {
            let t = format!("urn:ietf:params:acme:error:{kind}");
            assert!(!is_validation_problem(&problem(Some(&t))), "{kind}");
        }
        assert!(!is_validation_problem(&problem(None)));
    }
}
