//! API keys: how secrets are made, recognised and stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{refusal::Refusal, role::Role};

/// Every secret starts with this, so a leaked one is easy to recognise in a
/// log or a repository.
pub const SECRET_PREFIX: &str = "vd_";

/// How many characters of the secret are kept in clear to tell keys apart.
const SHOWN_PREFIX_CHARS: usize = SECRET_PREFIX.len() + 6;

/// A freshly made secret: the text given to the caller once, and what is
/// stored instead of it.
pub struct GeneratedSecret {
    pub secret: String,
    pub secret_prefix: String,
    pub secret_hash: [u8; 32],
}

/// Makes a new secret from 32 bytes of the operating system's randomness.
/// A 256-bit random secret needs no slow password hash: a plain SHA-256 of it
/// cannot be reversed by guessing.
pub fn generate_secret() -> Result<GeneratedSecret, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    Ok(GeneratedSecret {
        secret_prefix: secret[..SHOWN_PREFIX_CHARS].to_owned(),
        secret_hash: hash_secret(&secret),
        secret,
    })
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The key in an `authorization` header value of the form `Bearer <key>`
/// (the scheme is case-insensitive), if it has that form.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

/// A key as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub display_name: String,
    pub role: Role,
    pub secret_prefix: String,
    pub create_time: DateTime<Utc>,
    pub revoke_time: Option<DateTime<Utc>>,
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub display_name: String,
    pub role: Role,
}

impl ApiKey {
    /// A key may be revoked once, and never when it is the organisation's
    /// last valid admin key: nobody could then manage the organisation.
    pub fn check_revocable(&self, valid_admin_keys: i64) -> Result<(), Refusal> {
        if self.revoke_time.is_some() {
            return Err(Refusal::new(
                "API_KEY_REVOKED",
                format!("api key {} is already revoked", self.id),
            ));
        }
        if self.role == Role::Admin && valid_admin_keys <= 1 {
            return Err(Refusal::new(
                "LAST_ADMIN_KEY",
                "this is the organisation's last valid admin key; create another admin key first",
            ));
        }
        Ok(())
    }
}

/// Who is calling: the organisation and role of a valid key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub organisation_id: Uuid,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn generated_secrets_differ_and_hash_to_what_is_stored() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(SECRET_PREFIX));
        assert!(a.secret.starts_with(&a.secret_prefix));
        assert_eq!(a.secret_prefix.len(), SHOWN_PREFIX_CHARS);
        assert_eq!(hash_secret(&a.secret), a.secret_hash);
        assert_eq!(a.secret.len(), SECRET_PREFIX.len() + 43);
    }

    #[test]
    fn bearer_token_accepts_only_the_bearer_scheme() {
        assert_eq!(bearer_token("Bearer vd_abc"), Some("vd_abc"));
        assert_eq!(bearer_token("bearer   vd_abc "), Some("vd_abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("vd_abc"), None);
    }

    fn key(role: Role, revoked: bool) -> ApiKey {
        ApiKey {
            id: Uuid::now_v7(),
            display_name: "k".into(),
            role,
            secret_prefix: "vd_abcdef".into(),
            create_time: Utc::now(),
            revoke_time: revoked.then(Utc::now),
        }
    }

    #[test]
    fn the_last_admin_key_and_revoked_keys_cannot_be_revoked() {
        assert_eq!(
            key(Role::Admin, false)
                .check_revocable(1)
                .unwrap_err()
                .reason,
            "LAST_ADMIN_KEY"
        );
        assert!(key(Role::Admin, false).check_revocable(2).is_ok());
        assert!(key(Role::Ingest, false).check_revocable(1).is_ok());
        assert_eq!(
            key(Role::Analyst, true)
                .check_revocable(3)
                .unwrap_err()
                .reason,
            "API_KEY_REVOKED"
        );
    }

    proptest! {
        #[test]
        fn bearer_token_never_panics_and_returns_a_part_of_the_header(header in ".*") {
            if let Some(token) = bearer_token(&header) {
                prop_assert!(header.contains(token));
                prop_assert!(!token.is_empty());
            }
        }
    }
}
