//! Text features learned from data, pure: hashed word unigrams and bigrams and character
//! 3- and 4-grams of a document's opening bytes, weighted `1 + ln(count)` and L2-normalised
//! per block, for the detection model's text stage (see `model.rs`).
//!
//! Hand-written rather than a crate: the hashing vectorisers on crates.io either pull a whole
//! ML stack or hash with a per-process random seed, and the shipped model's weights are
//! indexed by these exact hashes, so the function must be fixed forever. It is FNV-1a (64 bit)
//! over a namespace byte and the feature's UTF-8 bytes, folded to `BITS` bits; a test pins it.
//!
//! Tokens are maximal runs of alphanumeric characters of the lowercased text. Scripts written
//! without spaces (Chinese, Japanese) give long tokens; their character n-grams carry them.
//! Only the first [`MAX_TEXT_BYTES`] bytes are read: announcements say what they are early, and
//! the budget keeps classification fast on long pages.

use std::cell::RefCell;

/// Hash buckets: `2^BITS`.
pub const BITS: u32 = 16;
/// Number of buckets.
pub const DIM: usize = 1 << BITS;
/// Bytes of title + text read by the text stage.
pub const MAX_TEXT_BYTES: usize = 2048;
/// Weight of the word block in the combined vector.
pub const WORD_SCALE: f32 = 0.5;
/// Weight of the character block.
pub const CHAR_SCALE: f32 = 1.0;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Namespace bytes: a word, a word pair, a character n-gram.
const NS_WORD: u8 = b'w';
const NS_PAIR: u8 = b'W';
const NS_CHAR: u8 = b'c';

#[inline]
fn fnv_byte(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
}

#[inline]
fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash = fnv_byte(hash, *byte);
    }
    hash
}

#[inline]
fn bucket(hash: u64) -> u32 {
    ((hash ^ (hash >> 32)) & (DIM as u64 - 1)) as u32
}

/// The bucket of one feature string under a namespace (for tests and evidence).
pub fn bucket_of(namespace: u8, feature: &str) -> u32 {
    bucket(fnv_bytes(
        fnv_byte(FNV_OFFSET, namespace),
        feature.as_bytes(),
    ))
}

/// A sparse, normalised feature vector: `(bucket, value)` sorted by bucket, buckets unique.
pub type Sparse = Vec<(u32, f32)>;

/// Reused per thread: counts by bucket and the buckets touched, so featurising allocates
/// nothing per document but its output. One per block.
struct Scratch {
    counts: Vec<u16>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<(Scratch, Scratch)> = RefCell::new((Scratch::new(), Scratch::new()));
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            counts: vec![0; DIM],
            touched: Vec::new(),
        }
    }

    #[inline]
    fn add(&mut self, hash: u64) {
        let index = bucket(hash);
        let count = &mut self.counts[index as usize];
        if *count == 0 {
            self.touched.push(index);
        }
        *count = count.saturating_add(1);
    }

    /// The counted block's dot product with `weights` (values as in [`Scratch::drain_into`]),
    /// and clears it.
    fn drain_dot(&mut self, weights: &[f32], scale: f32) -> f64 {
        let mut squared = 0.0f32;
        let mut dot = 0.0f32;
        for index in self.touched.drain(..) {
            let count = std::mem::take(&mut self.counts[index as usize]);
            let weight = if count == 1 {
                1.0
            } else {
                1.0 + f32::from(count).ln()
            };
            squared += weight * weight;
            dot += weight * weights[index as usize];
        }
        if squared > 0.0 {
            f64::from(dot * scale / squared.sqrt())
        } else {
            0.0
        }
    }

    /// Moves the counted block into `out` as `scale * (1 + ln c) / norm`, and clears it.
    fn drain_into(&mut self, scale: f32, out: &mut Sparse) {
        let mut squared = 0.0f32;
        for index in &self.touched {
            let weight = 1.0 + f32::from(self.counts[*index as usize]).ln();
            squared += weight * weight;
        }
        let factor = if squared > 0.0 {
            scale / squared.sqrt()
        } else {
            0.0
        };
        for index in self.touched.drain(..) {
            let count = std::mem::take(&mut self.counts[index as usize]);
            let weight = 1.0 + f32::from(count).ln();
            out.push((index, weight * factor));
        }
    }
}

/// Hashes the word and character n-grams of `text` (its first [`MAX_TEXT_BYTES`] bytes).
pub fn featurize(text: &str) -> Sparse {
    let lowered = prefix(text, MAX_TEXT_BYTES).to_lowercase();
    SCRATCH.with(|scratch| {
        let (words, chars) = &mut *scratch.borrow_mut();
        let mut out: Sparse = Vec::with_capacity(lowered.len());
        count_grams(&lowered, words, chars);
        words.drain_into(WORD_SCALE, &mut out);
        chars.drain_into(CHAR_SCALE, &mut out);
        merge_sorted(out)
    })
}

/// `weights · featurize(text)`, without building the vector: the scoring path, run for every
/// document past the gate.
pub fn score(weights: &[f32], text: &str) -> f64 {
    if weights.len() != DIM {
        return 0.0;
    }
    let lowered = prefix(text, MAX_TEXT_BYTES).to_lowercase();
    SCRATCH.with(|scratch| {
        let (words, chars) = &mut *scratch.borrow_mut();
        count_grams(&lowered, words, chars);
        words.drain_dot(weights, WORD_SCALE) + chars.drain_dot(weights, CHAR_SCALE)
    })
}

/// Tokens: maximal runs of alphanumeric characters.
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
}

/// One step of the n-gram hash: folds a character's hash into a running one.
#[inline]
fn mix(hash: u64, char_hash: u64) -> u64 {
    (hash ^ char_hash).wrapping_mul(FNV_PRIME)
}

/// A character's own hash: FNV-1a of its UTF-8 bytes.
#[inline]
fn char_hash(c: char) -> u64 {
    let mut buffer = [0u8; 4];
    fnv_bytes(FNV_OFFSET, c.encode_utf8(&mut buffer).as_bytes())
}

/// Counts, in one pass over the tokens of lowercased `text`: words and word pairs into
/// `words`; character 3- and 4-grams of each token padded with one space on each side into
/// `chars` (an n-gram longer than the padded token is skipped). A character n-gram's hash is
/// its characters' hashes folded in order by [`mix`] from the `c` namespace, so each
/// character is hashed once.
fn count_grams(text: &str, words: &mut Scratch, chars: &mut Scratch) {
    let word_seed = fnv_byte(FNV_OFFSET, NS_WORD);
    let pair_seed = fnv_byte(FNV_OFFSET, NS_PAIR);
    let char_seed = fnv_byte(FNV_OFFSET, NS_CHAR);
    let pad = char_hash(' ');
    let mut previous: Option<&str> = None;
    for token in tokens(text) {
        words.add(fnv_bytes(word_seed, token.as_bytes()));
        if let Some(before) = previous {
            let pair = fnv_byte(fnv_bytes(pair_seed, before.as_bytes()), b' ');
            words.add(fnv_bytes(pair, token.as_bytes()));
        }
        previous = Some(token);
        // The last three characters' hashes, oldest first, and the 3-gram that began one
        // character before the newest window (to extend into a 4-gram).
        let mut window = [0u64; 3];
        let mut seen = 0usize;
        let mut three_before: Option<u64> = None;
        let mut push = |hash: u64, chars: &mut Scratch| {
            window = [window[1], window[2], hash];
            seen += 1;
            if seen >= 3 {
                let three = mix(mix(mix(char_seed, window[0]), window[1]), window[2]);
                if let Some(before) = three_before {
                    chars.add(mix(before, hash));
                }
                chars.add(three);
                three_before = Some(three);
            }
        };
        push(pad, chars);
        for c in token.chars() {
            push(char_hash(c), chars);
        }
        push(pad, chars);
    }
}

/// Sorts by bucket and adds the values of a bucket both blocks share.
fn merge_sorted(mut entries: Sparse) -> Sparse {
    entries.sort_unstable_by_key(|(index, _)| *index);
    let mut merged: Sparse = Vec::with_capacity(entries.len());
    for (index, value) in entries {
        match merged.last_mut() {
            Some((last, sum)) if *last == index => *sum += value,
            _ => merged.push((index, value)),
        }
    }
    merged
}

/// The words of `text` whose own weight (as unigrams) pushes hardest, either way, for
/// evidence: the n-gram model has no spans of its own, so its strongest words stand in.
/// Reads the first 128 words.
pub fn strongest_words(weights: &[f32], text: &str, count: usize) -> Vec<String> {
    if weights.len() != DIM {
        return Vec::new();
    }
    let lowered = prefix(text, MAX_TEXT_BYTES).to_lowercase();
    let seed = fnv_byte(FNV_OFFSET, NS_WORD);
    let mut scored: Vec<(&str, f32)> = tokens(&lowered)
        .take(128)
        .map(|token| {
            let weight = weights[bucket(fnv_bytes(seed, token.as_bytes())) as usize];
            (token, weight)
        })
        .collect();
    scored.sort_unstable_by(|a, b| a.0.cmp(b.0));
    scored.dedup_by(|a, b| a.0 == b.0);
    scored.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(b.0)));
    scored
        .into_iter()
        .take(count)
        .map(|(token, weight)| format!("{token} ({weight:+.2})"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a 64 of `wtoken`, computed independently of this code.
    const HASH_OF_WTOKEN: u64 = 0xa0f4_1f5b_2b9e_f143;

    #[test]
    fn the_hash_is_pinned() {
        // FNV-1a 64 of "wtoken" folded to 16 bits; changing it invalidates every shipped model.
        let hash = fnv_bytes(FNV_OFFSET, b"wtoken");
        assert_eq!(hash, HASH_OF_WTOKEN, "fnv-1a of wtoken: {hash:#x}");
        assert_eq!(bucket_of(NS_WORD, "token"), 60952);
    }

    #[test]
    fn blocks_are_normalised_and_scaled() {
        let features = featurize("Token launch: the TOKEN launches today");
        assert!(!features.is_empty());
        let mut previous = None;
        for (index, _) in &features {
            assert!(previous.is_none_or(|p| p < *index), "sorted, unique");
            previous = Some(*index);
        }
        let norm: f32 = features.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        // Two orthogonal-ish blocks of norms 0.5 and 1.0 (collisions aside).
        assert!((norm - (0.25f32 + 1.0).sqrt()).abs() < 0.05, "{norm}");
        // Case does not matter; "token" counted twice weighs more than "launch" once.
        let token = bucket_of(NS_WORD, "token");
        let launch = bucket_of(NS_WORD, "launch");
        let value = |bucket| features.iter().find(|(i, _)| *i == bucket).map(|(_, v)| *v);
        assert!(value(token).unwrap() > value(launch).unwrap());
    }

    #[test]
    fn non_latin_scripts_give_character_grams() {
        let features = featurize("代币生成事件将于三月举行");
        // One long token: one word, no pairs, and its character n-grams.
        assert!(features.len() > 10, "{}", features.len());
        let gram = " 代币"
            .chars()
            .fold(fnv_byte(FNV_OFFSET, NS_CHAR), |hash, c| {
                mix(hash, char_hash(c))
            });
        assert!(features.iter().any(|(i, _)| *i == bucket(gram)));
    }

    #[test]
    fn only_the_opening_bytes_are_read_and_boundaries_hold() {
        let long = format!("{}{}", "é".repeat(MAX_TEXT_BYTES), "tail words here");
        let features = featurize(&long);
        assert!(
            !features
                .iter()
                .any(|(i, _)| *i == bucket_of(NS_WORD, "tail"))
        );
        assert!(featurize("").is_empty());
        assert!(featurize("!!! ...").is_empty());
    }
}
