//! What recording a batch of classified documents does, decided in memory before any of it
//! is written, so that the SQL stores write a whole batch with one statement per table
//! (`Store::record_classified_batch`) instead of about seven per document.
//!
//! The store reads three things first: which of the batch's document ids are stored already,
//! the fingerprints that share a band with the batch's documents (each band's newest
//! [`NEAR_DUPLICATE_CANDIDATES`](super::fingerprint::NEAR_DUPLICATE_CANDIDATES) within the merge
//! window), and the newest event within the window of each merge key the batch names.
//! [`plan_batch`] then takes the documents in order, exactly as recording them one at a time
//! would: a document sees the ones before it in the batch as if they were stored already.

use std::collections::{HashMap, HashSet};

use super::fingerprint::{NEAR_DUPLICATE_DISTANCE, simhash_bands};
use super::key::merge_keys_compatible;
use crate::ports::ToRecord;

/// A stored fingerprint that shares a band with a document of the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its document.
    pub document_id: String,
    /// Body SimHash.
    pub simhash: u64,
    /// Source the document came from.
    pub source_name: String,
    /// Merge key the document was recorded with.
    pub merge_key: String,
    /// When it was stored (milliseconds): older candidates are looked at first.
    pub stored_at: i64,
    /// The event the document belongs to, with that event's merge key, if any.
    pub event: Option<(i64, String)>,
}

/// The event a TGE document goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A stored event.
    Existing(i64),
    /// The batch's `n`th new event (see [`BatchPlan::new_events`]).
    New(usize),
}

/// What happens to one document of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemPlan {
    /// Already stored, a repeat within the batch, or a near copy from the same source:
    /// nothing is written.
    Duplicate,
    /// Stored with its detection; not a TGE.
    Stored,
    /// Stored and merged into an event; `creates` when it is the document that creates a
    /// new one.
    Tge {
        /// The event.
        target: Target,
        /// Whether this document creates the event.
        creates: bool,
    },
}

/// The plan of a whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// One per document, in order.
    pub items: Vec<ItemPlan>,
    /// The merge key of each new event, by [`Target::New`] index (distinct keys).
    pub new_events: Vec<String>,
}

/// The stored fingerprints indexed by the bands they share with the batch.
#[derive(Debug, Default)]
pub struct Candidates {
    candidates: Vec<Candidate>,
    by_id: HashMap<String, usize>,
    by_band: HashMap<(usize, i32), Vec<usize>>,
}

impl Candidates {
    /// Adds a stored fingerprint found through band `band` (0..5) with value `value`. The same
    /// document may come once per band it shares and once per event it belongs to: the first
    /// event link is kept.
    pub fn add(&mut self, band: usize, value: i32, candidate: Candidate) {
        let index = match self.by_id.get(&candidate.document_id) {
            Some(&index) => {
                if self.candidates[index].event.is_none() {
                    self.candidates[index].event = candidate.event;
                }
                index
            }
            None => {
                self.by_id
                    .insert(candidate.document_id.clone(), self.candidates.len());
                self.candidates.push(candidate);
                self.candidates.len() - 1
            }
        };
        let slot = self.by_band.entry((band, value)).or_default();
        if !slot.contains(&index) {
            slot.push(index);
        }
    }

    /// The stored fingerprints sharing a band with `simhash`, oldest first.
    fn sharing(&self, simhash: u64) -> Vec<&Candidate> {
        let mut indexes: Vec<usize> = simhash_bands(simhash)
            .iter()
            .enumerate()
            .filter_map(|(band, value)| self.by_band.get(&(band, *value)))
            .flatten()
            .copied()
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut found: Vec<&Candidate> = indexes.iter().map(|&i| &self.candidates[i]).collect();
        found.sort_by(|a, b| (a.stored_at, &a.document_id).cmp(&(b.stored_at, &b.document_id)));
        found
    }
}

/// A document of the batch planned to be stored, as later documents of the batch see it.
struct Planned<'a> {
    simhash: u64,
    source_name: &'a str,
    merge_key: &'a str,
    /// Its event and that event's merge key (not always the document's own: a near copy
    /// joins its original's event).
    event: Option<(Target, String)>,
}

/// Plans the batch (see the module's documentation). `stored` holds the batch's document ids
/// that are stored already; `latest` the newest event within the merge window by merge key.
pub fn plan_batch(
    batch: &[ToRecord<'_>],
    stored: &HashSet<String>,
    candidates: &Candidates,
    mut latest: HashMap<String, i64>,
) -> BatchPlan {
    let mut items = Vec::with_capacity(batch.len());
    let mut new_events: Vec<String> = Vec::new();
    // The new events by merge key (the newest of a key, like `latest`).
    let mut latest_new: HashMap<String, usize> = HashMap::new();
    let mut planned_ids: HashSet<&str> = HashSet::with_capacity(batch.len());
    let mut planned: Vec<Planned<'_>> = Vec::new();
    'items: for record in batch {
        let document = &record.item.document;
        if stored.contains(&document.id) || planned_ids.contains(document.id.as_str()) {
            items.push(ItemPlan::Duplicate);
            continue;
        }
        // Near copies: one from the same source is dropped; one from another source joins the
        // event its original belongs to, whatever project each copy names.
        let mut near: Option<(Target, String)> = None;
        if let Some(simhash) = record.simhash {
            // The stored fingerprints (oldest first), then the batch's earlier documents, as
            // (SimHash, merge key, source, event with its merge key): one rule for both.
            let stored = candidates
                .sharing(simhash)
                .into_iter()
                .filter(|candidate| candidate.document_id != document.id)
                .map(|candidate| {
                    let event = candidate
                        .event
                        .as_ref()
                        .map(|(id, key)| (Target::Existing(*id), key.as_str()));
                    (
                        candidate.simhash,
                        candidate.merge_key.as_str(),
                        candidate.source_name.as_str(),
                        event,
                    )
                });
            let earlier = planned.iter().map(|earlier| {
                let event = earlier
                    .event
                    .as_ref()
                    .map(|(target, key)| (*target, key.as_str()));
                (
                    earlier.simhash,
                    earlier.merge_key,
                    earlier.source_name,
                    event,
                )
            });
            for (other, key, source, event) in stored.chain(earlier) {
                if (other ^ simhash).count_ones() > NEAR_DUPLICATE_DISTANCE
                    || !merge_keys_compatible(key, record.merge_key)
                {
                    continue;
                }
                if source == document.source_name {
                    items.push(ItemPlan::Duplicate);
                    continue 'items;
                }
                if near.is_none()
                    && let Some((target, event_key)) = event
                    && merge_keys_compatible(event_key, record.merge_key)
                {
                    near = Some((target, event_key.to_owned()));
                }
            }
        }
        planned_ids.insert(&document.id);
        let detection = &record.item.detection;
        let joins = near.is_some()
            || latest_new.contains_key(record.merge_key)
            || latest.contains_key(record.merge_key);
        // A join-only detection (a secondary listing) with no event to join is only stored.
        let event = if detection.is_tge && (joins || !detection.join_only) {
            let (target, key, creates) = match near {
                Some((target, key)) => (target, key, false),
                None => match latest_new.get(record.merge_key) {
                    Some(&index) => (Target::New(index), record.merge_key.to_owned(), false),
                    None => match latest.get(record.merge_key) {
                        Some(&id) => (Target::Existing(id), record.merge_key.to_owned(), false),
                        None => {
                            new_events.push(record.merge_key.to_owned());
                            let index = new_events.len() - 1;
                            (Target::New(index), record.merge_key.to_owned(), true)
                        }
                    },
                },
            };
            // The event it touches is now its key's newest (its last sighting is now).
            match target {
                Target::Existing(id) => {
                    latest_new.remove(&key);
                    latest.insert(key.clone(), id);
                }
                Target::New(index) => {
                    latest_new.insert(key.clone(), index);
                }
            }
            items.push(ItemPlan::Tge { target, creates });
            Some((target, key))
        } else {
            items.push(ItemPlan::Stored);
            None
        };
        if let Some(simhash) = record.simhash {
            planned.push(Planned {
                simhash,
                source_name: &document.source_name,
                merge_key: record.merge_key,
                event,
            });
        }
    }
    BatchPlan { items, new_events }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{ClassifiedDocument, Detection, Document};

    fn item(id: &str, source: &str, is_tge: bool) -> ClassifiedDocument {
        ClassifiedDocument {
            document: Document {
                source_kind: None,
                id: id.to_owned(),
                source_id: 1,
                source_name: source.to_owned(),
                source_tier: 2,
                url: format!("https://{source}.example/{id}"),
                title: id.to_owned(),
                text: String::new(),
                published_at: None,
                fetched_at: Utc::now(),
                facts: Default::default(),
            },
            detection: Detection {
                score: if is_tge { 0.9 } else { 0.1 },
                is_tge,
                project: None,
                token: None,
                event_date: None,
                evidence: Vec::new(),
                join_only: false,
            },
        }
    }

    /// A secondary listing joins the event of its project, in the store or earlier in the
    /// batch, and without one is only stored: it never creates a TGE.
    #[test]
    fn a_join_only_detection_never_creates_an_event() {
        let join_only = |id: &str| {
            let mut item = item(id, id, true);
            item.detection.join_only = true;
            item
        };
        let alone = join_only("alone");
        let plan = plan_batch(
            &[record(&alone, "vlr", 1)],
            &HashSet::new(),
            &Candidates::default(),
            HashMap::new(),
        );
        assert!(plan.new_events.is_empty());
        assert_eq!(plan.items, vec![ItemPlan::Stored]);

        let stored = plan_batch(
            &[record(&alone, "vlr", 1)],
            &HashSet::new(),
            &Candidates::default(),
            HashMap::from([("vlr".to_owned(), 7)]),
        );
        assert_eq!(
            stored.items,
            vec![ItemPlan::Tge {
                target: Target::Existing(7),
                creates: false
            }]
        );

        let first = item("first", "binance", true);
        let second = join_only("second");
        let batch = plan_batch(
            &[record(&first, "vlr", 0), record(&second, "vlr", u64::MAX)],
            &HashSet::new(),
            &Candidates::default(),
            HashMap::new(),
        );
        assert_eq!(batch.new_events, vec!["vlr".to_owned()]);
        assert_eq!(
            batch.items[1],
            ItemPlan::Tge {
                target: Target::New(0),
                creates: false
            }
        );
    }

    fn record<'a>(item: &'a ClassifiedDocument, key: &'a str, simhash: u64) -> ToRecord<'a> {
        ToRecord {
            item,
            merge_key: key,
            simhash: Some(simhash),
        }
    }

    #[test]
    fn documents_see_the_ones_before_them_in_the_batch() {
        let a = item("a", "one", true);
        let copy = item("b", "one", true); // a near copy of `a` from the same source
        let syndicated = item("c", "two", true); // a near copy from another source
        let repeat = item("a", "one", true);
        let other = item("d", "three", true); // another project
        let same_key = item("e", "four", true); // the first project again, no copy
        let batch = [
            record(&a, "fhenix", 0),
            record(&copy, "fhenix", 0b1),
            record(&syndicated, "title:x", 0b11),
            record(&repeat, "fhenix", 0),
            record(&other, "caldera", u64::MAX),
            record(&same_key, "fhenix", 0xF0F0_F0F0_F0F0_F0F0),
        ];
        let plan = plan_batch(
            &batch,
            &HashSet::new(),
            &Candidates::default(),
            HashMap::new(),
        );
        assert_eq!(
            plan.new_events,
            vec!["fhenix".to_owned(), "caldera".to_owned()]
        );
        assert_eq!(
            plan.items,
            vec![
                ItemPlan::Tge {
                    target: Target::New(0),
                    creates: true
                },
                ItemPlan::Duplicate,
                ItemPlan::Tge {
                    target: Target::New(0),
                    creates: false
                },
                ItemPlan::Duplicate,
                ItemPlan::Tge {
                    target: Target::New(1),
                    creates: true
                },
                ItemPlan::Tge {
                    target: Target::New(0),
                    creates: false
                },
            ]
        );
    }

    #[test]
    fn stored_documents_and_events_are_found() {
        let stored_copy = item("a", "one", true);
        let syndicated = item("b", "two", true);
        let known = item("c", "three", true);
        let fresh = item("d", "four", false);
        let batch = [
            record(&stored_copy, "fhenix", 0),
            record(&syndicated, "title:copy", 0b1),
            record(&known, "caldera", u64::MAX),
            record(&fresh, "title:y", 0x0F0F_0F0F_0F0F_0F0F),
        ];
        let mut candidates = Candidates::default();
        let original = Candidate {
            document_id: "old".to_owned(),
            simhash: 0,
            source_name: "elsewhere".to_owned(),
            merge_key: "fhenix".to_owned(),
            stored_at: 1,
            event: Some((7, "fhenix".to_owned())),
        };
        for (band, value) in simhash_bands(0).iter().enumerate() {
            candidates.add(band, *value, original.clone());
        }
        let stored: HashSet<String> = ["a".to_owned()].into();
        let latest: HashMap<String, i64> = [("caldera".to_owned(), 9)].into();
        let plan = plan_batch(&batch, &stored, &candidates, latest);
        assert!(plan.new_events.is_empty());
        assert_eq!(
            plan.items,
            vec![
                ItemPlan::Duplicate,
                ItemPlan::Tge {
                    target: Target::Existing(7),
                    creates: false
                },
                ItemPlan::Tge {
                    target: Target::Existing(9),
                    creates: false
                },
                ItemPlan::Stored,
            ]
        );
    }
}
