//! Shared memory, pure: namespaced keys with a version per key, an optional expiry, and a
//! bound on the number of entries. Time is passed in, so TTL behaviour is tested without
//! waiting.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use swarm_shared::domain::MemoryEntry;

/// A change to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Version after the change.
    pub version: u64,
    /// `put`, `delete`, `expire` or `evict`.
    pub op: &'static str,
}

/// The memory.
#[derive(Debug, Default)]
pub struct Memory {
    entries: BTreeMap<(String, String), MemoryEntry>,
    /// Last version per key, kept after deletion so versions never go back.
    versions: BTreeMap<(String, String), u64>,
    max_entries: usize,
}

impl Memory {
    /// An empty memory holding at most `max_entries`.
    pub fn new(max_entries: usize) -> Self {
        Memory {
            entries: BTreeMap::new(),
            versions: BTreeMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// Writes a value; returns the changes (the write, and an eviction if the bound was hit).
    pub fn put(
        &mut self,
        namespace: &str,
        key: &str,
        value: serde_json::Value,
        written_by: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let id = (namespace.to_owned(), key.to_owned());
        let mut changes = Vec::new();
        if !self.entries.contains_key(&id) && self.entries.len() >= self.max_entries {
            changes.extend(self.evict_one());
        }
        let version = self.versions.get(&id).copied().unwrap_or(0) + 1;
        self.versions.insert(id.clone(), version);
        self.entries.insert(
            id,
            MemoryEntry {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                value,
                version,
                written_by: written_by.to_owned(),
                updated_at: now,
                expires_at,
            },
        );
        changes.push(Change {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            version,
            op: "put",
        });
        changes
    }

    /// Evicts the entry that expires first (entries without expiry last, then the oldest).
    fn evict_one(&mut self) -> Option<Change> {
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| {
                (
                    entry.expires_at.is_none(),
                    entry.expires_at,
                    entry.updated_at,
                )
            })
            .map(|(id, _)| id.clone())?;
        let entry = self.entries.remove(&victim)?;
        Some(Change {
            namespace: entry.namespace,
            key: entry.key,
            version: entry.version,
            op: "evict",
        })
    }

    /// Puts back an entry as it was persisted (version and expiry kept), at start-up.
    pub fn restore(&mut self, entry: MemoryEntry) {
        let id = (entry.namespace.clone(), entry.key.clone());
        let known = self.versions.get(&id).copied().unwrap_or(0);
        self.versions.insert(id.clone(), known.max(entry.version));
        self.entries.insert(id, entry);
    }

    /// An entry as held, expired or not (for persisting it).
    pub fn entry(&self, namespace: &str, key: &str) -> Option<&MemoryEntry> {
        self.entries.get(&(namespace.to_owned(), key.to_owned()))
    }

    /// Reads a live entry.
    pub fn get(&self, namespace: &str, key: &str, now: DateTime<Utc>) -> Option<&MemoryEntry> {
        let entry = self.entries.get(&(namespace.to_owned(), key.to_owned()))?;
        if entry.expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some(entry)
    }

    /// Live entries of a namespace, by key.
    pub fn list(&self, namespace: &str, now: DateTime<Utc>) -> Vec<MemoryEntry> {
        self.entries
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|(_, entry)| entry.expires_at.is_none_or(|at| at > now))
            .map(|(_, entry)| entry.clone())
            .collect()
    }

    /// Deletes an entry; returns the change if it existed.
    pub fn delete(&mut self, namespace: &str, key: &str) -> Option<Change> {
        let entry = self
            .entries
            .remove(&(namespace.to_owned(), key.to_owned()))?;
        Some(Change {
            namespace: entry.namespace,
            key: entry.key,
            version: entry.version,
            op: "delete",
        })
    }

    /// Removes expired entries; returns the changes.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let expired: Vec<(String, String)> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.expires_at.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut changes = Vec::new();
        for id in expired {
            if let Some(entry) = self.entries.remove(&id) {
                changes.push(Change {
                    namespace: entry.namespace,
                    key: entry.key,
                    version: entry.version,
                    op: "expire",
                });
            }
        }
        changes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live entry counts per namespace.
    pub fn namespaces(&self, now: DateTime<Utc>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for ((namespace, _), entry) in &self.entries {
            if entry.expires_at.is_none_or(|at| at > now) {
                *counts.entry(namespace.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn versions_ttl_namespaces_and_bounds() {
        let mut memory = Memory::new(3);
        memory.put("a", "k", json!(1), "w", None, at(0));
        let changes = memory.put("a", "k", json!(2), "w", Some(at(10)), at(1));
        assert_eq!(changes[0].version, 2);
        assert_eq!(memory.get("a", "k", at(5)).unwrap().value, json!(2));
        assert!(
            memory.get("a", "k", at(10)).is_none(),
            "expired entries are not read"
        );
        memory.put("b", "x", json!(3), "w", None, at(2));
        memory.put("ab", "y", json!(4), "w", None, at(2));
        assert_eq!(
            memory.list("a", at(5)).len(),
            1,
            "namespaces do not bleed into each other"
        );
        // the fourth entry evicts the one expiring first
        let changes = memory.put("c", "z", json!(5), "w", None, at(3));
        assert_eq!(changes[0].op, "evict");
        assert_eq!(changes[0].key, "k");
        assert_eq!(memory.len(), 3);
        // versions survive deletion
        memory.delete("c", "z").unwrap();
        assert_eq!(
            memory.put("c", "z", json!(6), "w", None, at(4))[0].version,
            2
        );
        let expired = memory.expire(at(100));
        assert!(expired.is_empty());
        memory.put("t", "short", json!(0), "w", Some(at(50)), at(4));
        let expired = memory.expire(at(100));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].op, "expire");
    }

    #[test]
    fn restored_entries_keep_their_versions() {
        let mut first = Memory::new(10);
        first.put(
            "breakers",
            "a.example",
            json!({"state": "open"}),
            "w",
            None,
            at(0),
        );
        first.put(
            "breakers",
            "a.example",
            json!({"state": "closed"}),
            "w",
            None,
            at(1),
        );
        let saved = first.entry("breakers", "a.example").unwrap().clone();
        let mut second = Memory::new(10);
        second.restore(saved);
        assert_eq!(
            second.get("breakers", "a.example", at(2)).unwrap().value,
            json!({"state": "closed"})
        );
        let changes = second.put(
            "breakers",
            "a.example",
            json!({"state": "open"}),
            "w",
            None,
            at(3),
        );
        assert_eq!(changes[0].version, 3, "versions continue after a restart");
    }
}
