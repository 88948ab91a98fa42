//! Google's multilingual Universal Sentence Encoder v3 (the CNN variant), run in process with
//! no network: a SentencePiece unigram tokenizer and the forward pass on `ndarray`.
//!
//! Sixteen languages, 512 dimensions, unit length; about 1.7 million multiply-adds per piece,
//! so a sentence of 30 pieces costs well under a millisecond and a page of 500 pieces tens of
//! milliseconds on one core. The model files and their provenance are in `model/`
//! (`model/README.md`).
//!
//! ```no_run
//! let encoder = sentence_encoder::Encoder::shipped()?;
//! let vectors = encoder.embed(&["Claim opens on Monday.", "Der Token startet heute."]);
//! let cosine: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
//! # Ok::<(), sentence_encoder::EncoderError>(())
//! ```

mod network;
mod tokenizer;

pub use network::Network;
pub use tokenizer::Tokenizer;

/// Dimensions of an embedding.
pub const DIM: usize = 512;

/// Pieces read of one text; the rest is cut off. Bounds the cost of a hostile input.
pub const MAX_PIECES: usize = 512;

/// Pieces per forward batch: enough sentences that each weight matrix is read once for many
/// of them, few enough that the working set stays small (a few MB).
const BATCH_PIECES: usize = 384;

const SHIPPED_WEIGHTS: &[u8] = include_bytes!("../model/weights.npz");
const SHIPPED_TOKENIZER: &[u8] = include_bytes!("../model/sp.model");

/// Why the encoder could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The SentencePiece model could not be read.
    #[error("sentence encoder tokenizer: {0}")]
    Tokenizer(String),
    /// The weights could not be read or have the wrong shapes.
    #[error("sentence encoder weights: {0}")]
    Weights(String),
}

/// The tokenizer and the network.
pub struct Encoder {
    tokenizer: Tokenizer,
    network: Network,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("tokenizer", &self.tokenizer)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// The model compiled into the binary (about 0.3 s to unpack; 70 MB resident, most of it
    /// the 8-bit embedding table).
    pub fn shipped() -> Result<Encoder, EncoderError> {
        Encoder::from_bytes(SHIPPED_WEIGHTS, SHIPPED_TOKENIZER)
    }

    /// A model from the bytes of its `weights.npz` and its SentencePiece `.model`.
    pub fn from_bytes(weights: &[u8], tokenizer: &[u8]) -> Result<Encoder, EncoderError> {
        let tokenizer = Tokenizer::from_bytes(tokenizer)?;
        let network = Network::from_npz(weights)?;
        if tokenizer.vocabulary() > network.pieces() {
            return Err(EncoderError::Weights(format!(
                "the embedding table has {} rows for {} pieces",
                network.pieces(),
                tokenizer.vocabulary()
            )));
        }
        Ok(Encoder { tokenizer, network })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// One unit-length embedding per text, each text read as one sentence (at most
    /// [`MAX_PIECES`] pieces of it).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len());
        let mut batch: Vec<Vec<u32>> = Vec::new();
        let mut pieces = 0;
        for text in texts {
            let ids = self.tokenizer.encode(text.as_ref(), MAX_PIECES);
            if !batch.is_empty() && pieces + ids.len() > BATCH_PIECES {
                out.extend(self.network.forward(&batch));
                batch.clear();
                pieces = 0;
            }
            pieces += ids.len();
            batch.push(ids);
        }
        if !batch.is_empty() {
            out.extend(self.network.forward(&batch));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Reference {
        text: String,
        ids: Vec<u32>,
        embedding: Vec<f32>,
    }

    /// Our own sentences (English, German, full-width Latin with odd spacing, Chinese, one
    /// letter), with the piece ids and embeddings the reference implementation (the wheel's
    /// numpy code, which matches Google's model at cosine >= 0.99) gives for them.
    fn references() -> Vec<Reference> {
        serde_json::from_str(include_str!("../tests/reference.json")).expect("reference file")
    }

    #[test]
    fn pieces_and_embeddings_match_the_reference() {
        let encoder = Encoder::shipped().expect("shipped model");
        let refs = references();
        let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
        let vectors = encoder.embed(&texts);
        for (r, v) in refs.iter().zip(&vectors) {
            assert_eq!(
                encoder.tokenizer().encode(&r.text, MAX_PIECES),
                r.ids,
                "{:?}",
                r.text
            );
            assert_eq!(v.len(), DIM);
            let cosine: f32 = v.iter().zip(&r.embedding).map(|(a, b)| a * b).sum();
            assert!(cosine > 0.999, "{:?}: cosine {cosine}", r.text);
        }
        // Batched or one at a time, the same vectors.
        let one = encoder.embed(&texts[1..2]);
        let cosine: f32 = one[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.99999, "batching changed a vector: {cosine}");
    }

    #[test]
    fn similar_meanings_are_near_across_languages() {
        let encoder = Encoder::shipped().expect("shipped model");
        let v = encoder.embed(&[
            "The token claim opens tomorrow.",
            "Die Token-Beanspruchung beginnt morgen.",
            "The weather in Lisbon is mild in winter.",
        ]);
        let cos = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
        assert!(cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2);
    }

    #[test]
    fn empty_odd_and_long_texts_embed_without_panicking() {
        let encoder = Encoder::shipped().expect("shipped model");
        let long = "token ".repeat(10_000);
        let v = encoder.embed(&["", "   ", "\u{0}\u{feff}\u{202e}", &long]);
        assert_eq!(v.len(), 4);
        for e in &v {
            let norm: f32 = e.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
        }
        assert_eq!(
            encoder.tokenizer().encode(&long, MAX_PIECES).len(),
            MAX_PIECES + 2
        );
    }

    #[test]
    fn broken_model_files_are_errors() {
        let e = Encoder::from_bytes(b"not a zip", SHIPPED_TOKENIZER).expect_err("weights");
        assert!(e.to_string().contains("npz"), "{e}");
        let e = Encoder::from_bytes(SHIPPED_WEIGHTS, b"\xff\xff\xff").expect_err("tokenizer");
        assert!(e.to_string().contains("tokenizer"), "{e}");
    }
}
