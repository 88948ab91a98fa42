//! API keys as a feature, for the API (`/api/v1/keys`) and the CLI (`tge-swarm keys`): create
//! with scopes and an optional expiry, list (never a secret), rotate (a new secret, the old one
//! revoked in the same transaction) and revoke. Secrets are shown once and stored as SHA-256
//! hashes. The last working admin key cannot be revoked, so a swarm is never locked out
//! (`TGE_SWARM_ADMIN_KEY` can always set a new one).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use swarm_shared::domain::ApiKey;
use swarm_shared::error::{Error, Result};
use swarm_shared::ports::Store;
use utoipa::ToSchema;

/// The scope that may do everything.
pub const ADMIN_SCOPE: &str = "admin";
/// Every scope: `read` (reads, when keys are required for them), `write` (changes), `admin`
/// (everything, keys and commands included).
pub const SCOPES: [&str; 3] = ["read", "write", ADMIN_SCOPE];
/// The name of the key set by `TGE_SWARM_ADMIN_KEY` (or generated at the first start);
/// reserved, since a new bootstrap key revokes every key of that name.
pub const BOOTSTRAP_NAME: &str = "bootstrap-admin";
/// Shortest expiry.
pub const MIN_EXPIRY: Duration = Duration::from_secs(60);
/// Longest expiry (ten years).
pub const MAX_EXPIRY: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Hash under which an API key is stored (the key itself is never stored).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new secret: `tgs_` and 48 hex digits (192 random bits).
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("tgs_{}", hex::encode(bytes))
}

/// A key to create.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// Who or what holds it: 1–100 characters of letters, digits, `.`, `_` and `-`.
    #[schema(example = "alerts-bot")]
    pub name: String,
    /// One or more of `read`, `write`, `admin`.
    #[schema(example = json!(["read", "write"]))]
    pub scopes: Vec<String>,
    /// Lifetime from now (1 minute to 3650 days); none: until revoked.
    #[serde(default, with = "humantime_serde::option")]
    #[schema(value_type = Option<String>, example = "90days")]
    pub expires_in: Option<Duration>,
}

/// A key just made, with its secret: shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IssuedKey {
    /// The key as listed.
    pub key: ApiKey,
    /// The secret to send as `X-API-Key`. Only its hash is stored.
    pub secret: String,
}

impl KeyInput {
    /// Checks the input; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.as_str();
        if name.is_empty()
            || name.len() > 100
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(Error::Invalid(
                "name: must be 1 to 100 letters, digits, `.`, `_` or `-`".into(),
            ));
        }
        if name == BOOTSTRAP_NAME {
            return Err(Error::Invalid(format!(
                "name: `{BOOTSTRAP_NAME}` is reserved for TGE_SWARM_ADMIN_KEY"
            )));
        }
        if self.scopes.is_empty() || self.scopes.len() > SCOPES.len() {
            return Err(Error::Invalid(
                "scopes: give one or more of read, write, admin".into(),
            ));
        }
        if let Some(unknown) = self
            .scopes
            .iter()
            .find(|scope| !SCOPES.contains(&scope.as_str()))
        {
            return Err(Error::Invalid(format!(
                "scopes: unknown scope `{}` (read, write, admin)",
                unknown.chars().take(40).collect::<String>()
            )));
        }
        if let Some(expiry) = self.expires_in
            && !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expiry)
        {
            return Err(Error::Invalid(
                "expires_in: must be between 1m and 3650days".into(),
            ));
        }
        Ok(())
    }
}

/// Creates a key; its secret is in the answer and nowhere else.
pub async fn create(store: &dyn Store, input: &KeyInput, now: DateTime<Utc>) -> Result<IssuedKey> {
    input.validate()?;
    let mut scopes = input.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let expires_at = input
        .expires_in
        .map(|expiry| swarm_shared::time::after(now, expiry));
    let secret = new_secret();
    let key = store
        .create_api_key(&input.name, &hash_key(&secret), &scopes, expires_at)
        .await?;
    Ok(IssuedKey { key, secret })
}

/// A new secret for key `id` (same name, scopes and expiry); the old secret stops working.
pub async fn rotate(store: &dyn Store, id: i64, now: DateTime<Utc>) -> Result<IssuedKey> {
    let secret = new_secret();
    let key = store.rotate_api_key(id, &hash_key(&secret), now).await?;
    Ok(IssuedKey { key, secret })
}

/// Revokes key `id`, unless it is the last working admin key (a conflict: the swarm would
/// be locked out of its keys and commands).
pub async fn revoke(store: &dyn Store, id: i64, now: DateTime<Utc>) -> Result<ApiKey> {
    let keys = store.list_api_keys().await?;
    let Some(key) = keys.iter().find(|key| key.id == id) else {
        return Err(Error::not_found("api key", id));
    };
    let working_admin = |key: &ApiKey| {
        key.unusable(now).is_none() && key.scopes.iter().any(|scope| scope == ADMIN_SCOPE)
    };
    if working_admin(key) && keys.iter().filter(|key| working_admin(key)).count() == 1 {
        return Err(Error::Conflict(format!(
            "API key `{}` is the last working admin key: create another admin key first",
            key.name
        )));
    }
    store.revoke_api_key(id, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_by_field() {
        let ok = KeyInput {
            name: "alerts-bot".into(),
            scopes: vec!["read".into(), "write".into()],
            expires_in: Some(Duration::from_secs(3600)),
        };
        ok.validate().unwrap();
        let cases = [
            (
                KeyInput {
                    name: String::new(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                KeyInput {
                    name: "a b".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                KeyInput {
                    name: "x".repeat(101),
                    ..ok.clone()
                },
                "name",
            ),
            (
                KeyInput {
                    name: BOOTSTRAP_NAME.into(),
                    ..ok.clone()
                },
                "reserved",
            ),
            (
                KeyInput {
                    scopes: vec![],
                    ..ok.clone()
                },
                "scopes",
            ),
            (
                KeyInput {
                    scopes: vec!["root".into()],
                    ..ok.clone()
                },
                "unknown scope `root`",
            ),
            (
                KeyInput {
                    expires_in: Some(Duration::from_secs(1)),
                    ..ok.clone()
                },
                "expires_in",
            ),
            (
                KeyInput {
                    expires_in: Some(MAX_EXPIRY * 2),
                    ..ok.clone()
                },
                "expires_in",
            ),
        ];
        for (input, needle) in cases {
            let err = input.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let secret = new_secret();
        assert!(secret.starts_with("tgs_") && secret.len() == 52);
        assert_ne!(secret, new_secret());
    }
}
