//! SentencePiece unigram tokenisation for the encoder's vocabulary.
//!
//! The model file is SentencePiece's `ModelProto`, read with prost (only the fields used here
//! are declared; prost skips the rest). Normalisation is the model's precompiled `nmt_nfkc`
//! character map, applied with Hugging Face's `spm_precompiled` (the code the `tokenizers`
//! crate uses for the same purpose). The segmentation itself, a Viterbi search over the
//! pieces' log-probabilities, is written here: no crate offers a SentencePiece unigram model
//! without C++ (`sentencepiece` binds the C++ library) or without the whole `tokenizers`
//! stack, and it is twenty lines.

use std::collections::HashMap;

use spm_precompiled::Precompiled;

use crate::EncoderError;

/// Id of the unknown piece.
pub const UNK: u32 = 0;
/// Id of the start-of-sentence piece, put before every sentence.
pub const BOS: u32 = 1;
/// Id of the end-of-sentence piece, put after every sentence.
pub const EOS: u32 = 2;

/// SentencePiece's word-boundary mark, which stands for a space inside pieces.
const SPACE: char = '\u{2581}';

/// Piece types of `ModelProto.SentencePiece.Type` that take part in segmentation.
const NORMAL: i32 = 1;
const USER_DEFINED: i32 = 4;

#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<PieceProto>,
    #[prost(message, optional, tag = "3")]
    normalizer: Option<NormalizerProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PieceProto {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
    #[prost(int32, optional, tag = "3")]
    kind: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NormalizerProto {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
}

/// A SentencePiece unigram tokenizer.
pub struct Tokenizer {
    /// Piece text to (id, log-probability), for the pieces that segmentation may use.
    pieces: HashMap<String, (u32, f32)>,
    /// Longest piece, in characters.
    max_chars: usize,
    /// Score of the one-character unknown piece: below every real piece, as SentencePiece does.
    unk_score: f32,
    normalizer: Option<Precompiled>,
    vocabulary: usize,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocabulary", &self.vocabulary)
            .field("max_chars", &self.max_chars)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Reads a SentencePiece model file (`.model`).
    pub fn from_bytes(model: &[u8]) -> Result<Tokenizer, EncoderError> {
        use prost::Message;
        let proto = ModelProto::decode(model)
            .map_err(|e| EncoderError::Tokenizer(format!("not a SentencePiece model: {e}")))?;
        if proto.pieces.is_empty() {
            return Err(EncoderError::Tokenizer("the model has no pieces".into()));
        }
        let vocabulary = proto.pieces.len();
        let mut pieces = HashMap::with_capacity(vocabulary);
        let mut max_chars = 1;
        let mut min_score = f32::INFINITY;
        for (id, piece) in proto.pieces.into_iter().enumerate() {
            let kind = piece.kind.unwrap_or(NORMAL);
            let score = piece.score.unwrap_or(0.0);
            min_score = min_score.min(score);
            let Some(text) = piece.piece else { continue };
            if (kind == NORMAL || kind == USER_DEFINED) && !text.is_empty() {
                max_chars = max_chars.max(text.chars().count());
                let id = u32::try_from(id)
                    .map_err(|_| EncoderError::Tokenizer("more than 2^32 pieces".into()))?;
                pieces.insert(text, (id, score));
            }
        }
        let normalizer = match proto.normalizer.and_then(|n| n.precompiled_charsmap) {
            Some(map) if !map.is_empty() => Some(Precompiled::from(&map).map_err(|e| {
                EncoderError::Tokenizer(format!("the normalisation map is unreadable: {e}"))
            })?),
            _ => None,
        };
        Ok(Tokenizer {
            pieces,
            max_chars,
            unk_score: min_score - 10.0,
            normalizer,
            vocabulary,
        })
    }

    /// Number of pieces in the model, control pieces included.
    pub fn vocabulary(&self) -> usize {
        self.vocabulary
    }

    /// The model's normal form of `text`: the character map applied, spaces collapsed and
    /// trimmed, every word boundary written as `▁`, one before the first word.
    pub fn normalize(&self, text: &str) -> String {
        let mapped = match &self.normalizer {
            Some(map) => map.normalize_string(text),
            None => text.to_string(),
        };
        let mut out = String::with_capacity(mapped.len() + 8);
        for word in mapped.split(' ').filter(|w| !w.is_empty()) {
            out.push(SPACE);
            out.push_str(word);
        }
        out
    }

    /// Piece ids of `text`, wrapped in [`BOS`] and [`EOS`], at most `max_pieces` pieces between
    /// them (the rest of the text is not read).
    pub fn encode(&self, text: &str, max_pieces: usize) -> Vec<u32> {
        let normalized = self.normalize(text);
        let mut ids = Vec::with_capacity(max_pieces.min(normalized.len()) + 2);
        ids.push(BOS);
        if normalized.is_empty() {
            ids.push(UNK);
        } else {
            ids.extend(self.segment(&normalized).into_iter().take(max_pieces));
        }
        ids.push(EOS);
        ids
    }

    /// The most probable segmentation of a normalised text (SentencePiece's unigram Viterbi:
    /// every piece that starts at a position extends the best path ending there; a position
    /// no one-character piece covers gets the unknown piece; ties keep the earlier start).
    fn segment(&self, normalized: &str) -> Vec<u32> {
        let bounds: Vec<usize> = normalized
            .char_indices()
            .map(|(at, _)| at)
            .chain(std::iter::once(normalized.len()))
            .collect();
        let chars = bounds.len() - 1;
        let mut best = vec![f32::NEG_INFINITY; chars + 1];
        let mut from = vec![0usize; chars + 1];
        let mut piece = vec![UNK; chars + 1];
        best[0] = 0.0;
        for start in 0..chars {
            let base = best[start];
            let mut single = false;
            for end in start + 1..=(start + self.max_chars).min(chars) {
                let Some(&(id, score)) = self.pieces.get(&normalized[bounds[start]..bounds[end]])
                else {
                    continue;
                };
                single |= end == start + 1;
                if base + score > best[end] {
                    best[end] = base + score;
                    from[end] = start;
                    piece[end] = id;
                }
            }
            if !single && base + self.unk_score > best[start + 1] {
                best[start + 1] = base + self.unk_score;
                from[start + 1] = start;
                piece[start + 1] = UNK;
            }
        }
        let mut ids = Vec::new();
        let mut at = chars;
        while at > 0 {
            ids.push(piece[at]);
            at = from[at];
        }
        ids.reverse();
        ids
    }
}
