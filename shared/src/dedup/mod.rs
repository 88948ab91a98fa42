//! Deduplication, in one place and pure: what makes two documents one, and two announcements
//! one event. The stores only execute the plans made here.
//!
//! - **Exact copies**: a document's id is the hash of its canonical URL, title and text
//!   ([`document_id`](crate::domain::document_id)); the store keeps an id once.
//! - **Merge keys** ([`key`]): the project's letters and digits, or a fingerprint of the
//!   title when no project is named; announcements with one key within the merge window are
//!   one event.
//! - **Near copies** ([`fingerprint`]): a 64-bit SimHash of the body's word 3-shingles;
//!   fingerprints at most [`NEAR_DUPLICATE_DISTANCE`](fingerprint::NEAR_DUPLICATE_DISTANCE)
//!   bits apart are one document, found through five index bands.
//! - **The record plan** ([`plan`]): for a batch of classified documents, what recording it
//!   does (drop, new event, merge, near copy), decided in memory before any of it is written.

pub mod fingerprint;
pub mod key;
pub mod plan;
