//! The cascade's third stage reads a document's meaning: a multilingual sentence encoder
//! (Google's Universal Sentence Encoder v3, in process; crate `sentence-encoder`) embeds the
//! opening and each of the first sentences, and the model weighs those embeddings beside the
//! structured features and the n-grams. It costs tens of milliseconds per document, a thousand
//! times the other stages, so it reads only the documents the second stage leaves near the
//! threshold (docs/detection.md, "The model").

use std::sync::OnceLock;

use sentence_encoder::Encoder;

/// Characters of the opening embedded as one piece.
pub const OPENING_CHARS: usize = 512;
/// Characters from the start within which sentences are embedded.
pub const SENTENCE_CHARS: usize = 1500;
/// Sentences embedded at most.
pub const MAX_SENTENCES: usize = 24;
/// Width of a document's embedding: the opening's, then the mean of its sentences'.
pub const DIM: usize = 2 * sentence_encoder::DIM;

/// The shipped encoder, unpacked on first use (about 0.3 s and 70 MB), shared by every scorer
/// of the process. `None` when it cannot be read, which only a broken build can cause: the
/// third stage is then skipped and the second stage decides, and the error is logged once.
pub fn encoder() -> Option<&'static Encoder> {
    static ENCODER: OnceLock<Option<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| match Encoder::shipped() {
            Ok(encoder) => Some(encoder),
            Err(err) => {
                tracing::error!(error = %err, "the sentence encoder cannot be loaded; the third detection stage is off");
                None
            }
        })
        .as_ref()
}

/// Seconds' worth of documents the third stage's budget holds, for the bursts of a feed poll.
pub const BURST_SECONDS: u32 = 10;

/// How many documents the third stage may read: a token bucket of `per_second` documents a
/// second, holding at most [`BURST_SECONDS`]' worth. Pure: the caller says the time.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    refilled: Option<std::time::Instant>,
}

impl Budget {
    /// A full bucket for `per_second` (0: the third stage never runs).
    pub fn new(per_second: u32) -> Budget {
        let capacity = f64::from(per_second) * f64::from(BURST_SECONDS);
        Budget {
            per_second: f64::from(per_second),
            capacity,
            tokens: capacity,
            refilled: None,
        }
    }

    /// Whether one more document may be read now; takes its token if so, and counts the
    /// outcome in `tge_swarm_detection_sentence_stage_total`. What the keyword agents and
    /// `POST /classify` ask.
    pub fn admit(&mut self) -> bool {
        let allowed = self.take(std::time::Instant::now());
        swarm_shared::telemetry::sentence_stage(allowed);
        allowed
    }

    /// Whether one more document may be read at `now`; takes its token if so.
    pub fn take(&mut self, now: std::time::Instant) -> bool {
        if self.per_second <= 0.0 {
            return false;
        }
        if let Some(last) = self.refilled {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The first `chars` characters of `text`.
fn prefix(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The sentences of the first [`SENTENCE_CHARS`] characters, at most [`MAX_SENTENCES`]: cut at
/// line breaks and after `.`, `!`, `?` followed by a space, and after the full-width stops of
/// Chinese and Japanese; pieces of fewer than three letters or digits are dropped.
pub fn sentences(joined: &str) -> Vec<&str> {
    let head = prefix(joined, SENTENCE_CHARS);
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = head.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        let end = match c {
            '\n' | '\r' => Some(at),
            '.' | '!' | '?' if next_is_space => Some(at + c.len_utf8()),
            '。' | '！' | '？' => Some(at + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            push_sentence(&mut out, &head[start..end]);
            start = at + c.len_utf8();
        }
        if out.len() >= MAX_SENTENCES {
            return out;
        }
    }
    push_sentence(&mut out, &head[start..]);
    out.truncate(MAX_SENTENCES);
    out
}

fn push_sentence<'a>(out: &mut Vec<&'a str>, piece: &'a str) {
    let piece = piece.trim();
    if piece.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        out.push(piece);
    }
}

/// A document's embedding ([`DIM`] values): the opening's embedding, then the mean of its
/// sentences' (zeros when it has none).
pub fn embed(encoder: &Encoder, joined: &str) -> Vec<f32> {
    let sentences = sentences(joined);
    let mut texts = Vec::with_capacity(sentences.len() + 1);
    texts.push(prefix(joined, OPENING_CHARS));
    texts.extend(sentences.iter().copied());
    let vectors = encoder.embed(&texts);
    let mut out = vec![0.0f32; DIM];
    if let Some(opening) = vectors.first() {
        out[..sentence_encoder::DIM].copy_from_slice(opening);
    }
    let rest = &vectors[1.min(vectors.len())..];
    if !rest.is_empty() {
        let share = 1.0 / rest.len() as f32;
        for vector in rest {
            for (sum, value) in out[sentence_encoder::DIM..].iter_mut().zip(vector) {
                *sum += value * share;
            }
        }
    }
    out
}

/// Log-odds contribution of an embedding under `weights`.
pub fn score(weights: &[f32], embedding: &[f32]) -> f64 {
    weights
        .iter()
        .zip(embedding)
        .map(|(w, v)| f64::from(*w) * f64::from(*v))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_its_rate_in_bursts_of_ten_seconds() {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let mut budget = Budget::new(4);
        let taken = (0..100).filter(|_| budget.take(at(0))).count();
        assert_eq!(taken, 40, "ten seconds' worth at once");
        assert!(!budget.take(at(100)), "0.4 of a token after 100 ms");
        assert!(budget.take(at(250)), "one token after 250 ms");
        // A long pause refills no more than ten seconds' worth.
        let taken = (0..100).filter(|_| budget.take(at(600_000))).count();
        assert_eq!(taken, 40);
        let mut off = Budget::new(0);
        assert!(!off.take(at(0)) && !off.take(at(10_000)));
    }

    #[test]
    fn sentences_are_cut_at_stops_and_lines() {
        let text = "Claim opens today. Check eligibility at 10.30 UTC!\nOK\n代币今天上线。空投明天开始？ v1.2 is out";
        assert_eq!(
            sentences(text),
            vec![
                "Claim opens today.",
                "Check eligibility at 10.30 UTC!",
                "代币今天上线。",
                "空投明天开始？",
                "v1.2 is out"
            ]
        );
        let many = "One two three. ".repeat(100);
        assert_eq!(sentences(&many).len(), MAX_SENTENCES);
        assert!(sentences("").is_empty());
    }

    #[test]
    fn a_document_embeds_as_opening_then_mean_of_sentences() {
        let encoder = encoder().expect("shipped encoder");
        let text = "The airdrop claim opens on Monday. Eligible wallets can check now.";
        let v = embed(encoder, text);
        assert_eq!(v.len(), DIM);
        let opening = encoder.embed(&[text]);
        assert_eq!(&v[..sentence_encoder::DIM], &opening[0][..]);
        let each = encoder.embed(&sentences(text));
        for (k, value) in v[sentence_encoder::DIM..].iter().enumerate() {
            let mean = (each[0][k] + each[1][k]) / 2.0;
            assert!((value - mean).abs() < 1e-6);
        }
        // No sentence of three letters: the second half stays zero.
        let v = embed(encoder, "?!");
        assert!(v[sentence_encoder::DIM..].iter().all(|x| *x == 0.0));
    }
}
