//! The near-duplicate band index of the embedded (SQLite) store, held in memory: for each band
//! value of a SimHash (see [`simhash_bands`]), the newest
//! [`NEAR_DUPLICATE_CANDIDATES`] stored fingerprints that have it, as (rowid, SimHash).
//!
//! The SQL stores answer the same question from five band indexes on
//! `document_fingerprints`. On SQLite those indexes were the largest part of recording a
//! batch: five B-tree inserts per document at random keys, and as many index seeks per
//! lookup (BENCHMARKS.md, "In-memory band index"). Here an insert is a ring-buffer write.
//!
//! Invariants:
//! * the index holds only fingerprints that were committed (it is filled from the table by
//!   [`BandIndex::last_rowid`] catch-up inside a write transaction, never from a batch still
//!   being written), so a rolled-back batch leaves nothing behind;
//! * each slot keeps the newest [`NEAR_DUPLICATE_CANDIDATES`] by rowid, which is insertion
//!   order: the store's writers record batches one at a time, each stamped with the time it
//!   was recorded, so rowid order is `stored_at` order up to clock skew between writers;
//! * its memory is fixed: one table of 5 × 8,192 slots of 64 entries of 16 bytes (42 MB),
//!   allocated zeroed at start, so its pages cost nothing until a slot is first written and
//!   the RSS reaches that ceiling within the first tens of thousands of documents, then stays
//!   there. Slots that grew one by one doubled their size all at once, about half-way through
//!   a million documents (BENCHMARKS.md, "In-memory band index").

use crate::dedup::fingerprint::{NEAR_DUPLICATE_CANDIDATES, simhash_bands};

/// Values a band can take: the widest band has 13 bits.
const BAND_VALUES: usize = 1 << 13;
/// Bands of a SimHash.
const BANDS: usize = 5;
/// Entries kept per slot.
const SLOT_CAPACITY: usize = NEAR_DUPLICATE_CANDIDATES as usize;
/// Slots: one per band value.
const SLOTS: usize = BANDS * BAND_VALUES;

/// See the module documentation. Not `Clone`: a copy would be 42 MB.
#[derive(Debug)]
pub struct BandIndex {
    /// Slot `s` holds its entries' rowids at `s * SLOT_CAPACITY ..`, `lengths[s]` of them.
    rowids: Vec<i64>,
    /// The entries' SimHashes, laid out as `rowids`.
    simhashes: Vec<u64>,
    /// Entries held per slot (at most [`SLOT_CAPACITY`]).
    lengths: Vec<u8>,
    /// Per full slot, the entry the next insert overwrites (the oldest).
    next: Vec<u8>,
    /// The highest rowid folded in (0: none yet).
    last_rowid: i64,
    /// Entries held.
    entries: usize,
}

impl Default for BandIndex {
    fn default() -> Self {
        BandIndex::new()
    }
}

impl BandIndex {
    /// An empty index. Its tables are allocated zeroed (`vec![0; n]`, which asks the
    /// allocator for zeroed memory): their pages are resident only once written.
    pub fn new() -> BandIndex {
        BandIndex {
            rowids: vec![0; SLOTS * SLOT_CAPACITY],
            simhashes: vec![0; SLOTS * SLOT_CAPACITY],
            lengths: vec![0; SLOTS],
            next: vec![0; SLOTS],
            last_rowid: 0,
            entries: 0,
        }
    }

    /// The highest rowid added: a catch-up reads the rows after it.
    pub fn last_rowid(&self) -> i64 {
        self.last_rowid
    }

    /// Entries held (at most five per fingerprint added).
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Records that every row up to `rowid` has been read.
    fn seen(&mut self, rowid: i64) {
        self.last_rowid = self.last_rowid.max(rowid);
    }

    /// Adds the fingerprint of row `rowid`; rows are added in rowid order.
    pub fn add(&mut self, rowid: i64, simhash: u64) {
        for (band, value) in simhash_bands(simhash).into_iter().enumerate() {
            let Some(slot) = slot_index(band, value) else {
                continue;
            };
            let length = usize::from(self.lengths[slot]);
            let position = if length < SLOT_CAPACITY {
                self.lengths[slot] += 1;
                self.entries += 1;
                length
            } else {
                let oldest = usize::from(self.next[slot]);
                self.next[slot] = ((oldest + 1) % SLOT_CAPACITY) as u8;
                oldest
            };
            let at = slot * SLOT_CAPACITY + position;
            self.rowids[at] = rowid;
            self.simhashes[at] = simhash;
        }
        self.seen(rowid);
    }

    /// The fingerprints held for value `value` of band `band`, as (rowid, SimHash), in no
    /// particular order.
    pub fn neighbours(&self, band: usize, value: i32) -> impl Iterator<Item = (i64, u64)> + '_ {
        let range = match slot_index(band, value) {
            Some(slot) => {
                let start = slot * SLOT_CAPACITY;
                start..start + usize::from(self.lengths[slot])
            }
            None => 0..0,
        };
        self.rowids[range.clone()]
            .iter()
            .copied()
            .zip(self.simhashes[range].iter().copied())
    }
}

/// The slot of value `value` of band `band`; `None` outside the bands' ranges.
fn slot_index(band: usize, value: i32) -> Option<usize> {
    let value = usize::try_from(value).ok()?;
    if band >= BANDS || value >= BAND_VALUES {
        return None;
    }
    Some(band * BAND_VALUES + value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the SQL lookup returns: the newest `NEAR_DUPLICATE_CANDIDATES` rows sharing the
    /// value, from a plain list of every row added.
    fn reference(rows: &[(i64, u64)], band: usize, value: i32) -> Vec<(i64, u64)> {
        let mut sharing: Vec<(i64, u64)> = rows
            .iter()
            .filter(|(_, simhash)| simhash_bands(*simhash)[band] == value)
            .copied()
            .collect();
        sharing.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        sharing.truncate(SLOT_CAPACITY);
        sharing.sort_unstable();
        sharing
    }

    #[test]
    fn each_value_keeps_its_newest_fingerprints() {
        // Few distinct band values, so that slots fill and wrap several times.
        let mut rows = Vec::new();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for rowid in 1..=2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Four values per band: the two lowest bits of each band vary, the rest stay
            // clear.
            let mut simhash = 0u64;
            for (band, shift) in [0u32, 13, 26, 39, 52].into_iter().enumerate() {
                simhash |= ((state >> (2 * band)) & 0b11) << shift;
            }
            rows.push((rowid, simhash));
        }
        let mut index = BandIndex::new();
        for &(rowid, simhash) in &rows {
            index.add(rowid, simhash);
        }
        assert_eq!(index.last_rowid(), 2_000);
        let mut checked = 0;
        for &(_, simhash) in &rows {
            for (band, value) in simhash_bands(simhash).into_iter().enumerate() {
                let mut held: Vec<(i64, u64)> = index.neighbours(band, value).collect();
                held.sort_unstable();
                assert_eq!(
                    held,
                    reference(&rows, band, value),
                    "band {band} value {value}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 10_000);
        assert!(index.len() <= BANDS * 4 * SLOT_CAPACITY, "{}", index.len());
    }

    #[test]
    fn unknown_values_hold_nothing() {
        let mut index = BandIndex::new();
        index.add(1, 0);
        assert_eq!(index.neighbours(0, 0).collect::<Vec<_>>(), vec![(1, 0)]);
        assert_eq!(index.neighbours(5, 0).count(), 0);
        assert_eq!(index.neighbours(0, -1).count(), 0);
        assert_eq!(index.neighbours(0, 1 << 13).count(), 0);
    }

    #[test]
    fn rows_read_but_not_added_still_advance_the_catch_up() {
        let mut index = BandIndex::new();
        index.seen(41);
        assert_eq!(index.last_rowid(), 41);
        assert!(index.is_empty());
        index.add(42, 7);
        index.seen(10);
        assert_eq!(index.last_rowid(), 42);
        assert_eq!(index.len(), 5);
    }
}
