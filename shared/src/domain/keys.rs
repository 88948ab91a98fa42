//! API keys as stored (hashed) and shown.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A key's last use is recorded at most this often (milliseconds), so a busy key costs one
/// write a minute: the API skips the write, and the store's update does nothing, when the
/// stored time is newer.
pub const API_KEY_USE_RECORDED_EVERY_MS: i64 = 60_000;

/// A stored API key, as listed: never its secret, which is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// Identifier.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Scopes (`admin`, `read`, `write`).
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last time a request carried it (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked (rotated or deleted), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Why the key does not work at `now`, if it does not.
    pub fn unusable(&self, now: DateTime<Utc>) -> Option<String> {
        if let Some(at) = self.revoked_at {
            return Some(format!(
                "API key `{}` was revoked at {}",
                self.name,
                at.to_rfc3339()
            ));
        }
        match self.expires_at {
            Some(at) if at <= now => Some(format!(
                "API key `{}` expired at {}",
                self.name,
                at.to_rfc3339()
            )),
            _ => None,
        }
    }
}
