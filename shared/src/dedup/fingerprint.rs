//! Near-duplicate fingerprints, pure: a 64-bit SimHash of a document's word 3-shingles.
//! Copies of one story that differ by a few words (a syndicated article with another byline,
//! a tracking sentence, a changed headline word) land within a small Hamming distance.
//!
//! Only the body is fingerprinted: syndicated copies often carry another headline.
//!
//! The stores index fingerprints by five bands ([`simhash_bands`]; the fingerprint migrations,
//! `0004_fingerprints.sql`, still name its first home, `ports/sql.rs`, and cannot change):
//! two fingerprints within [`NEAR_DUPLICATE_DISTANCE`] bits differ in at most four bands, so
//! they share at least one band exactly, and candidates come from an indexed lookup rather
//! than a pairwise scan.
//!
//! On a 110-word article, a one-word edit, a byline or a footer sentence stays within the
//! distance (see the tests); on a 40-word note the same edits move 5 or 6 bits, so very short
//! copies are left to the merge key (project and date) instead.

/// Near-duplicate fingerprints at most this many bits apart are copies of one document.
pub const NEAR_DUPLICATE_DISTANCE: u32 = 4;

/// Fingerprints compared per band when recording a document: the newest this many that share
/// the band within the merge window. SimHashes of long texts cluster on common words, so a
/// band can be shared by thousands of unrelated documents; bounding the lookup keeps recording
/// O(1) in the size of the store. A near copy older than the newest 64 documents that share
/// each of its five bands is not found (and is stored as a new document).
pub const NEAR_DUPLICATE_CANDIDATES: i64 = 64;

/// The five index bands of a 64-bit SimHash (13, 13, 13, 13 and 12 bits). Two fingerprints
/// within [`NEAR_DUPLICATE_DISTANCE`] bits differ in at most four bands, so they share one.
pub fn simhash_bands(simhash: u64) -> [i32; 5] {
    let mut bands = [0i32; 5];
    let widths = [13u32, 13, 13, 13, 12];
    let mut shift = 0u32;
    for (band, width) in bands.iter_mut().zip(widths) {
        *band = ((simhash >> shift) & ((1u64 << width) - 1)) as i32;
        shift += width;
    }
    bands
}

/// Fewer words than this give no fingerprint: short texts collide by accident.
const MIN_WORDS: usize = 12;

/// FNV-1a, 64 bit: a stable hash (the fingerprints are stored, so the hash must not change
/// between releases, which `std`'s hasher does not promise). Three lines; no crate needed.
fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// SimHash of a body text: lowercase alphanumeric words, 3-word shingles, each shingle hashed
/// and voting on every bit. `None` for texts too short to fingerprint reliably.
///
/// Stored fingerprints must keep their meaning, so this computes exactly what the plain
/// definition does (one lowercased `String` per word, a branch per bit and shingle; kept as
/// `simhash_reference` in the tests, which compare the two), at about a quarter of its cost:
/// the words are lowercased into one buffer (ASCII words byte by byte, others through
/// `str::to_lowercase` as before, which handles the final sigma), and the votes are counts of
/// set bits, compared with half the shingles at the end.
pub fn simhash(text: &str) -> Option<u64> {
    let mut lowered = String::with_capacity(text.len());
    let mut words: Vec<(usize, usize)> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let start = lowered.len();
        if word.is_ascii() {
            for byte in word.bytes() {
                lowered.push(char::from(byte.to_ascii_lowercase()));
            }
        } else {
            lowered.push_str(&word.to_lowercase());
        }
        words.push((start, lowered.len()));
    }
    if words.len() < MIN_WORDS {
        return None;
    }
    let bytes = lowered.as_bytes();
    let mut ones = [0u32; 64];
    let mut shingles = 0u32;
    for shingle in words.windows(3) {
        let mut hash = FNV_OFFSET;
        for &(start, end) in shingle {
            hash = fnv1a(&bytes[start..end], hash);
            hash = fnv1a(b" ", hash);
        }
        for (bit, count) in ones.iter_mut().enumerate() {
            *count += ((hash >> bit) & 1) as u32;
        }
        shingles += 1;
    }
    // A bit is set when more shingles set it than clear it.
    let mut fingerprint = 0u64;
    for (bit, count) in ones.iter().enumerate() {
        if 2 * *count > shingles {
            fingerprint |= 1 << bit;
        }
    }
    Some(fingerprint)
}

/// Bits in which two fingerprints differ.
pub fn distance(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "After months of anticipation, Succinct's PROVE token went live on Tuesday. The token generation event unlocked roughly 19.5% of the 1 billion supply. PROVE is used to pay for proofs generated on the Succinct Prover Network, and provers must stake it to compete in auctions for proof requests. An airdrop distributed 10% of supply to early provers and Stage 2 participants; claims stay open for 30 days. Binance, Coinbase, Upbit and Bybit listed PROVE at launch. Succinct Labs raised $55 million from Paradigm and others. The company's SP1 zkVM is used by Polygon, Celestia and several rollups. In its first hour, PROVE traded between $1.10 and $1.45.";

    #[test]
    fn copies_are_near_and_other_stories_far() {
        let original = simhash(STORY).unwrap();
        let copies = [
            ("edited", STORY.replace("on Tuesday", "on Wednesday")),
            ("byline", format!("By Jane Doe. {STORY}")),
            (
                "footer",
                format!("{STORY} This article is not financial advice."),
            ),
        ];
        for (name, copy) in copies {
            let bits = distance(original, simhash(&copy).unwrap());
            assert!(bits <= NEAR_DUPLICATE_DISTANCE, "{name}: {bits} bits");
        }
        let other = simhash(
            "Caldera, which builds custom rollups for projects such as ApeChain and Manta, announced the ERA token on Monday. The token generation event will take place on July 17 at 14:00 UTC. ERA will secure the Caldera Metalayer, a network that connects the more than 40 rollups Caldera has launched. The total supply is 1 billion tokens.",
        )
        .unwrap();
        assert!(
            distance(original, other) > 3 * NEAR_DUPLICATE_DISTANCE,
            "{}",
            distance(original, other)
        );
        // Case and punctuation do not matter.
        assert_eq!(
            simhash(&STORY.to_uppercase().replace(',', " ")),
            Some(original)
        );
    }

    /// The plain definition [`simhash`] must agree with.
    fn simhash_reference(text: &str) -> Option<u64> {
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if !word.is_empty() {
                words.push(word.to_lowercase());
            }
        }
        if words.len() < MIN_WORDS {
            return None;
        }
        let mut votes = [0i32; 64];
        for shingle in words.windows(3) {
            let mut hash = FNV_OFFSET;
            for word in shingle {
                hash = fnv1a(word.as_bytes(), hash);
                hash = fnv1a(b" ", hash);
            }
            for (bit, vote) in votes.iter_mut().enumerate() {
                if hash >> bit & 1 == 1 {
                    *vote += 1;
                } else {
                    *vote -= 1;
                }
            }
        }
        let mut fingerprint = 0u64;
        for (bit, vote) in votes.iter().enumerate() {
            if *vote > 0 {
                fingerprint |= 1 << bit;
            }
        }
        Some(fingerprint)
    }

    #[test]
    fn the_fingerprint_is_the_plain_definitions() {
        let mut texts: Vec<String> = vec![
            STORY.to_owned(),
            STORY.to_uppercase(),
            // Non-ASCII words: a final sigma, a dotted capital I, a sharp s, digits of other
            // scripts, and words that mix ASCII and not.
            format!("ΟΔΥΣΣΕΥΣ ΚΑΙ ΠΗΝΕΛΟΠΗ ΣΟΦΟΣ İSTANBUL Straße GROSSE ١٢٣ naïve café {STORY}"),
            "Σ Σ Σ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ ΑΣ".to_owned(),
            // Exactly as many shingles setting a bit as clearing it: a tie leaves it clear.
            "a b c a b c a b c a b c a b c".to_owned(),
        ];
        // 200 texts of 5 to 154 words drawn from a mixed vocabulary by a fixed generator:
        // cases, scripts, punctuation and lengths around the 12-word minimum.
        const WORDS: [&str; 24] = [
            "token",
            "TGE",
            "airdrop",
            "Claim",
            "listing",
            "$SOMI",
            "Binance",
            "launch",
            "14:00",
            "UTC",
            "ΟΔΥΣΣΕΥΣ",
            "İstanbul",
            "Straße",
            "١٢٣",
            "naïve",
            "代币",
            "上线",
            "토큰",
            "the",
            "of",
            "a",
            "—",
            "v2.0",
            "opens",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for _ in 0..200 {
            let count = 5 + next() % 150;
            let words: Vec<&str> = (0..count).map(|_| WORDS[next() % WORDS.len()]).collect();
            texts.push(words.join(if next() % 3 == 0 { ", " } else { " " }));
        }
        let mut fingerprinted = 0;
        for text in &texts {
            let expected = simhash_reference(text);
            assert_eq!(simhash(text), expected, "{text}");
            fingerprinted += usize::from(expected.is_some());
        }
        assert!(fingerprinted > 100, "{fingerprinted} texts fingerprinted");
    }

    #[test]
    fn short_texts_have_no_fingerprint() {
        assert_eq!(simhash("Hello world again"), None);
    }

    #[test]
    fn the_hash_is_pinned() {
        // Stored fingerprints must keep their meaning across releases.
        assert_eq!(fnv1a(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
    }
}
