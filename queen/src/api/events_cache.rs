//! The response cache of `GET /api/v1/events`: analysts' dashboards poll the same few pages,
//! and each costs the store a query of the events and of their sources.
//!
//! Invariants:
//! - An entry is served only while the events generation it was computed under is current
//!   and it is younger than `server.events_cache_ttl`.
//! - The generation moves on every `EventRecorded` the data quality agents announce on
//!   `agent-communication` (after their transaction commits), so a page never outlives a
//!   change it can hear of. The generation is read *before* the store is queried: a page
//!   read before a commit is stored under the old generation and is never served after it.
//! - Pub/sub is at-most-once: an announcement that is lost leaves a page stale for at most
//!   the TTL.
//!
//! Written by hand: the cache is a map with a generation check, not worth a crate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use futures::StreamExt;
use swarm_shared::channels::Channel;
use swarm_shared::context::AgentContext;
use swarm_shared::messages::{AgentMessage, agent_tags, decode, tag_of};
use swarm_shared::telemetry;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most pages held; past it, pages past their TTL go first, and if none has, all are
/// dropped.
const MAX_ENTRIES: usize = 1_024;
/// Most bytes of pages held, the same way: a page of 200 events with their sources is about
/// half a megabyte.
const MAX_BYTES: usize = 32 << 20;

/// A cached page: its JSON body and when it was computed.
#[derive(Debug, Clone)]
struct Entry {
    at: Instant,
    body: Bytes,
}

/// The pages of one generation (pages of an older one can never be served again, so they
/// are dropped as soon as a page of a newer one is cached: keeping them until the map was
/// full held a thousand dead pages, 120 MB in the soak, and made the process' memory a saw).
#[derive(Debug, Default)]
struct Pages {
    generation: u64,
    bytes: usize,
    map: HashMap<String, Entry>,
}

/// The cache; clones share it.
#[derive(Debug, Clone)]
pub struct EventsCache {
    ttl: Duration,
    generation: Arc<AtomicU64>,
    entries: Arc<Mutex<Pages>>,
}

impl EventsCache {
    /// A cache whose pages live at most `ttl`; a zero TTL turns it off.
    pub fn new(ttl: Duration) -> Self {
        EventsCache {
            ttl,
            generation: Arc::new(AtomicU64::new(0)),
            entries: Arc::new(Mutex::new(Pages::default())),
        }
    }

    /// Whether pages are cached at all.
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The current events generation: read it before querying the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The events changed: no page computed before now is served again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Pages> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The page cached under `key`, if it is still current.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let generation = self.generation();
        let pages = self.entries();
        let Some(entry) = pages.map.get(key) else {
            telemetry::api_cache_lookup(telemetry::CacheLookup::Miss);
            return None;
        };
        let fresh = pages.generation == generation && entry.at.elapsed() < self.ttl;
        telemetry::api_cache_lookup(if fresh {
            telemetry::CacheLookup::Hit
        } else {
            telemetry::CacheLookup::Stale
        });
        fresh.then(|| entry.body.clone())
    }

    /// Caches `body` under `key`, computed under `generation` (read before the query).
    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        let mut pages = self.entries();
        // Checked under the lock: the events changed while the page was computed, or another
        // request already cached a page of a newer generation (moving the map back to this
        // one would drop its live pages for dead ones). An invalidation right after this check
        // leaves this page in a generation the next newer page clears.
        if generation != self.generation() || generation < pages.generation {
            return;
        }
        if pages.generation != generation {
            // Only pages of the current generation are ever served.
            pages.map.clear();
            pages.bytes = 0;
            pages.generation = generation;
        }
        if body.len() > MAX_BYTES {
            // Never held: served from the store each time, without evicting the others.
            return;
        }
        if let Some(replaced) = pages.map.remove(&key) {
            pages.bytes -= replaced.body.len();
        }
        if pages.map.len() >= MAX_ENTRIES || pages.bytes + body.len() > MAX_BYTES {
            let ttl = self.ttl;
            pages.map.retain(|_, entry| entry.at.elapsed() < ttl);
            pages.bytes = pages.map.values().map(|entry| entry.body.len()).sum();
            if pages.map.len() >= MAX_ENTRIES || pages.bytes + body.len() > MAX_BYTES {
                pages.map.clear();
                pages.bytes = 0;
            }
        }
        pages.bytes += body.len();
        pages.map.insert(
            key,
            Entry {
                at: Instant::now(),
                body,
            },
        );
    }

    /// Follows `agent-communication` until `cancel`: every `EventRecorded` invalidates the
    /// cache. Other messages are skipped by their tag, without being decoded.
    pub async fn follow(
        &self,
        ctx: &AgentContext,
        cancel: CancellationToken,
    ) -> swarm_shared::Result<JoinHandle<()>> {
        let mut subscription = ctx.bus.subscribe(Channel::AgentCommunication).await?;
        let cache = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let payload = tokio::select! {
                    () = cancel.cancelled() => return,
                    next = subscription.next() => match next {
                        Some(payload) => payload,
                        None => return,
                    },
                };
                match tag_of(&payload) {
                    Some(agent_tags::EVENT_RECORDED) => cache.invalidate(),
                    Some(_) => {}
                    // Not as `encode` writes it: decode to be sure.
                    None => {
                        if let Ok(AgentMessage::EventRecorded { .. }) =
                            decode::<AgentMessage>(&payload)
                        {
                            cache.invalidate();
                        }
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pages_are_served_until_the_events_change_or_the_ttl_passes() {
        let cache = EventsCache::new(Duration::from_secs(1));
        let generation = cache.generation();
        cache.put("a".into(), generation, Bytes::from_static(b"[1]"));
        assert_eq!(cache.get("a"), Some(Bytes::from_static(b"[1]")));
        assert_eq!(cache.get("b"), None);

        cache.invalidate();
        assert_eq!(cache.get("a"), None, "a newer generation hides older pages");

        // A page computed under a generation that moved on meanwhile is not kept.
        let before = cache.generation();
        cache.invalidate();
        cache.put("a".into(), before, Bytes::from_static(b"[2]"));
        assert_eq!(cache.get("a"), None);

        cache.put("a".into(), cache.generation(), Bytes::from_static(b"[3]"));
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(cache.get("a"), Some(Bytes::from_static(b"[3]")));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get("a"), None, "expired after the TTL");
    }

    #[test]
    fn the_map_stays_bounded() {
        let cache = EventsCache::new(Duration::from_secs(60));
        for index in 0..MAX_ENTRIES + 10 {
            cache.put(format!("k{index}"), cache.generation(), Bytes::new());
        }
        assert!(cache.entries().map.len() <= MAX_ENTRIES);
        assert!(
            cache
                .entries()
                .map
                .contains_key(&format!("k{}", MAX_ENTRIES + 9))
        );
    }

    #[test]
    fn the_pages_bytes_stay_bounded() {
        let cache = EventsCache::new(Duration::from_secs(60));
        let page = Bytes::from(vec![b' '; MAX_BYTES / 4 + 1]);
        for index in 0..10 {
            cache.put(format!("k{index}"), cache.generation(), page.clone());
            let pages = cache.entries();
            assert!(pages.bytes <= MAX_BYTES, "{} bytes", pages.bytes);
            let held: usize = pages.map.values().map(|entry| entry.body.len()).sum();
            assert_eq!(pages.bytes, held);
        }
        assert_eq!(cache.get("k9"), Some(page.clone()));
        // The same key again replaces its page and its bytes.
        cache.put("k9".into(), cache.generation(), Bytes::from_static(b"[]"));
        let pages = cache.entries();
        let held: usize = pages.map.values().map(|entry| entry.body.len()).sum();
        assert_eq!(pages.bytes, held);
        drop(pages);
        // A page larger than the whole budget is served from the store, never held, and
        // leaves the pages held alone.
        let huge = Bytes::from(vec![b' '; MAX_BYTES + 1]);
        cache.put("huge".into(), cache.generation(), huge);
        assert_eq!(cache.get("huge"), None);
        assert_eq!(cache.get("k9"), Some(Bytes::from_static(b"[]")));
    }

    #[test]
    fn pages_of_an_older_generation_go_when_a_newer_page_is_cached() {
        let cache = EventsCache::new(Duration::from_secs(60));
        for index in 0..100 {
            cache.put(
                format!("k{index}"),
                cache.generation(),
                Bytes::from_static(b"[1]"),
            );
        }
        assert_eq!(cache.entries().map.len(), 100);
        cache.invalidate();
        cache.put(
            "fresh".into(),
            cache.generation(),
            Bytes::from_static(b"[2]"),
        );
        let pages = cache.entries();
        assert_eq!(
            pages.map.len(),
            1,
            "only the current generation's page is held"
        );
        assert_eq!(pages.bytes, 3);
    }
}
