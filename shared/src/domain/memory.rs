//! Desired state, shared memory entries and synthesis snapshots.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One piece of desired state written by a queen command (see [`crate::commands`]); each write
/// bumps `generation`, which is how hosts tell a new restart request from one already applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredEntry {
    /// What it is about (`replicas/keyword`, `restart/node-a/keyword-0`, `drain/node-a`).
    pub key: String,
    /// The desired value.
    pub value: serde_json::Value,
    /// Writes so far, starting at 1.
    pub generation: i64,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A synthesis snapshot of shared memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SynthesisSnapshot {
    /// Identifier.
    pub id: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The synthesis.
    pub body: serde_json::Value,
}

/// A memory entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryEntry {
    /// Namespace (`breakers`, `sources`, ...).
    pub namespace: String,
    /// Key within the namespace.
    pub key: String,
    /// Value.
    pub value: serde_json::Value,
    /// Version, incremented on every write.
    pub version: u64,
    /// Who wrote it last.
    pub written_by: String,
    /// When it was written.
    pub updated_at: DateTime<Utc>,
    /// When it expires, if it has a TTL.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Key-value tags of a service instance.
pub type Meta = BTreeMap<String, String>;
