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
//! * memory is bounded whatever the table's size: at most 5 × 8,192 slots of 64 entries of
//!   16 bytes (42 MB), reached only when every band value has been seen 64 times.

use super::sql::{NEAR_DUPLICATE_CANDIDATES, simhash_bands};

/// Values a band can take: the widest band has 13 bits.
const BAND_VALUES: usize = 1 << 13;
/// Bands of a SimHash.
const BANDS: usize = 5;
/// Entries kept per slot.
const SLOT_CAPACITY: usize = NEAR_DUPLICATE_CANDIDATES as usize;

/// One band value's newest fingerprints: a ring once full.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// (rowid, SimHash), in insertion order until full, then overwritten oldest first.
    entries: Vec<(i64, u64)>,
    /// The entry the next insert overwrites once the slot is full.
    next: usize,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct BandIndex {
    slots: Vec<Slot>,
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
    /// An empty index.
    pub fn new() -> BandIndex {
        BandIndex {
            slots: vec![Slot::default(); BANDS * BAND_VALUES],
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

    /// Records that every row up to `rowid` has been read, including rows not added (older
    /// than the merge window).
    pub fn seen(&mut self, rowid: i64) {
        self.last_rowid = self.last_rowid.max(rowid);
    }

    /// Adds the fingerprint of row `rowid`; rows are added in rowid order.
    pub fn add(&mut self, rowid: i64, simhash: u64) {
        for (band, value) in simhash_bands(simhash).into_iter().enumerate() {
            let Some(slot) = slot_index(band, value).and_then(|i| self.slots.get_mut(i)) else {
                continue;
            };
            if slot.entries.len() < SLOT_CAPACITY {
                slot.entries.push((rowid, simhash));
                self.entries += 1;
            } else if let Some(entry) = slot.entries.get_mut(slot.next) {
                *entry = (rowid, simhash);
                slot.next = (slot.next + 1) % SLOT_CAPACITY;
            }
        }
        self.seen(rowid);
    }

    /// The fingerprints held for value `value` of band `band`, as (rowid, SimHash), in no
    /// particular order.
    pub fn neighbours(&self, band: usize, value: i32) -> &[(i64, u64)] {
        match slot_index(band, value).and_then(|i| self.slots.get(i)) {
            Some(slot) => &slot.entries,
            None => &[],
        }
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
                let mut held = index.neighbours(band, value).to_vec();
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
        assert_eq!(index.neighbours(0, 0), &[(1, 0)]);
        assert!(index.neighbours(5, 0).is_empty());
        assert!(index.neighbours(0, -1).is_empty());
        assert!(index.neighbours(0, 1 << 13).is_empty());
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
