//! Text helpers the domain's identities are built on.

use sha2::{Digest, Sha256};

use super::*;

/// Collapses runs of whitespace into single spaces and trims.
pub fn normalise_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Content fingerprint of a text: sha256 of its normalised form, 16 bytes in hex.
pub fn fingerprint(text: &str) -> String {
    let digest = Sha256::digest(normalise_for_hash(text).as_bytes());
    hex::encode(&digest[..16])
}
