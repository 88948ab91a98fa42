//! The detection model, pure: logistic regression over three blocks of features in a
//! three-stage cascade, shipped as `model.json` beside this file and trained by `train/`. The
//! online adaptation layer that analyst feedback trains is in `feedback.rs` (re-exported here).
//!
//! The blocks:
//! - the structured features of `features/` (event phrases, dates, tense, company,
//!   ticker, genre, denial and other-meaning cues), which also give the evidence;
//! - hashed word and character n-grams of the document's opening bytes (`text.rs`), learned
//!   from the labelled corpus. They are computed only for documents that pass a cheap gate
//!   (some event vocabulary, or a script the phrase lexicon does not cover): a cascade, so
//!   the bulk of a feed that never speaks of launches costs one Aho-Corasick pass;
//! - the sentence encoder's embedding of the document (`sentence.rs`), read only for the
//!   documents the n-gram stage leaves near the threshold.
//!
//! The file stores the text and embedding weights as base64 of little-endian `f32`s, so the
//! model stays one reviewable JSON document of under a megabyte.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::features::{FEATURE_COUNT, FEATURE_NAMES, f};
use super::salience::{Ranker, RankerFile};
use super::text::{self, Sparse};

pub use super::feedback::{Adaptation, FeedbackSample, pattern_keys};

/// The model shipped with the binary.
const SHIPPED_MODEL: &str = include_str!("model.json");

/// The model file format this build reads and writes.
pub const FORMAT: u32 = 2;

/// A trained model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Intercept (log-odds).
    pub bias: f64,
    /// One weight per structured feature, in [`FEATURE_NAMES`] order.
    pub weights: [f64; FEATURE_COUNT],
    /// One weight per text hash bucket ([`text::DIM`]), or none for a model without a text
    /// stage.
    pub text: Vec<f32>,
    /// The cascade's first stage, or none (every gated document goes through the text stage).
    pub first_stage: Option<FirstStage>,
    /// The cascade's third stage, or none (the second stage decides).
    pub sentence_stage: Option<SentenceStage>,
    /// Probability at or above which a document is an announcement.
    pub threshold: f64,
    /// The learned ranker of project and ticker candidates, or none (hand-set weights).
    pub extraction: Option<Ranker>,
    /// How it was trained.
    pub training: TrainingInfo,
}

/// `bias` plus the weighted structured features: the dense part of every stage's log-odds.
fn linear(bias: f64, weights: &[f64; FEATURE_COUNT], values: &[f64; FEATURE_COUNT]) -> f64 {
    bias + weights
        .iter()
        .zip(values.iter())
        .map(|(weight, value)| weight * value)
        .sum::<f64>()
}

/// A stage's band and bias as read from a file: finite bias, `0 <= low <= high <= 1`.
fn check_band(field: &str, bias: f64, low: f64, high: f64) -> Result<(), ModelError> {
    let valid = (0.0..=1.0).contains(&low)
        && (0.0..=1.0).contains(&high)
        && low <= high
        && bias.is_finite();
    if valid {
        Ok(())
    } else {
        Err(ModelError(format!(
            "{field}: needs a finite bias and 0 <= low <= high <= 1"
        )))
    }
}

/// The cascade's first stage: logistic regression over the structured features alone. A
/// document it scores below `low` or above `high` is decided by it, without the text stage.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstStage {
    /// Intercept.
    pub bias: f64,
    /// One weight per structured feature.
    pub weights: [f64; FEATURE_COUNT],
    /// Probability below which it decides alone.
    pub low: f64,
    /// Probability above which it decides alone.
    pub high: f64,
}

impl FirstStage {
    /// Log-odds of the structured features.
    pub fn logit(&self, values: &[f64; FEATURE_COUNT]) -> f64 {
        linear(self.bias, &self.weights, values)
    }
}

/// The cascade's third stage: logistic regression over the structured features, the n-grams
/// and the sentence encoder's embedding of the document (`sentence.rs`). A document the second
/// stage scores between `low` and `high` is decided by it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceStage {
    /// Intercept.
    pub bias: f64,
    /// One weight per structured feature.
    pub weights: [f64; FEATURE_COUNT],
    /// One weight per text hash bucket.
    pub text: Vec<f32>,
    /// One weight per embedding dimension ([`super::sentence::DIM`]).
    pub embedding: Vec<f32>,
    /// Second-stage probability from which it decides.
    pub low: f64,
    /// Second-stage probability up to which it decides.
    pub high: f64,
}

impl SentenceStage {
    /// Log-odds of the structured features, with the bias.
    pub fn dense_logit(&self, values: &[f64; FEATURE_COUNT]) -> f64 {
        linear(self.bias, &self.weights, values)
    }

    /// Whether it decides a document the second stage gave `probability`.
    pub fn decides(&self, probability: f64) -> bool {
        probability >= self.low && probability <= self.high
    }
}

/// How a model was trained, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// Labelled items fitted.
    pub items: usize,
    /// Of which positive.
    pub positives: usize,
    /// L2 penalty on the structured weights (per weight, on the mean log-loss).
    pub l2: f64,
    /// L2 penalty on the text weights.
    #[serde(default)]
    pub l2_text: f64,
    /// L2 penalty on the embedding weights of the third stage.
    #[serde(default)]
    pub l2_embedding: f64,
    /// Optimiser iterations allowed.
    pub iterations: usize,
    /// Cross-validation folds (grouped by website and project).
    #[serde(default)]
    pub folds: usize,
    /// Precision, recall and F1 of the out-of-fold predictions at the chosen threshold.
    pub cross_validation: [f64; 3],
    /// Share of the gated training texts the first stage decided alone (out of fold).
    #[serde(default)]
    pub skipped_text_stage: f64,
    /// Share of the gated training texts the third stage read (out of fold).
    #[serde(default)]
    pub sentence_stage_share: f64,
    /// What it was trained on (file names and filters), for the record.
    #[serde(default)]
    pub data: String,
    /// L2 penalty on the extraction ranker's weights.
    #[serde(default)]
    pub l2_extraction: f64,
    /// Out-of-fold accuracy of the extraction ranker on the labelled positives (grouped
    /// folds): project, ticker.
    #[serde(default)]
    pub extraction_cross_validation: [f64; 2],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: u32,
    bias: f64,
    threshold: f64,
    weights: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    text: Option<TextFile>,
    #[serde(default)]
    first_stage: Option<FirstStageFile>,
    #[serde(default)]
    sentence_stage: Option<SentenceStageFile>,
    #[serde(default)]
    extraction: Option<RankerFile>,
    training: TrainingInfo,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SentenceStageFile {
    bias: f64,
    low: f64,
    high: f64,
    weights: std::collections::BTreeMap<String, f64>,
    text: TextFile,
    /// Embedding dimensions (must be [`super::sentence::DIM`]).
    dim: usize,
    /// `dim` little-endian f32 weights, base64.
    embedding: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstStageFile {
    bias: f64,
    low: f64,
    high: f64,
    weights: std::collections::BTreeMap<String, f64>,
}

/// Structured weights by name, every feature present and none unknown.
fn read_weights(
    field: &str,
    named: &std::collections::BTreeMap<String, f64>,
) -> Result<[f64; FEATURE_COUNT], ModelError> {
    let mut weights = [0.0; FEATURE_COUNT];
    for (name, weight) in named {
        let Some(index) = FEATURE_NAMES.iter().position(|known| known == name) else {
            return Err(ModelError(format!("{field}: unknown feature `{name}`")));
        };
        if !weight.is_finite() {
            return Err(ModelError(format!(
                "{field}: weight of `{name}` is not finite"
            )));
        }
        weights[index] = *weight;
    }
    if let Some(missing) = FEATURE_NAMES
        .iter()
        .find(|name| !named.contains_key(**name))
    {
        return Err(ModelError(format!(
            "{field}: no weight for feature `{missing}`"
        )));
    }
    Ok(weights)
}

fn named_weights(weights: &[f64; FEATURE_COUNT]) -> std::collections::BTreeMap<String, f64> {
    FEATURE_NAMES
        .iter()
        .zip(weights.iter())
        .map(|(name, weight)| ((*name).to_owned(), round(*weight)))
        .collect()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextFile {
    /// Hash bits (must be [`text::BITS`]).
    bits: u32,
    /// Bytes read (must be [`text::MAX_TEXT_BYTES`]).
    max_bytes: usize,
    /// `2^bits` little-endian f32 weights, base64.
    weights: String,
}

/// A model file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid detection model: {0}")]
pub struct ModelError(String);

/// The logistic function: log-odds to probability.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Whether the text stage reads a document: it has event vocabulary, or it is written in a
/// script the phrase lexicon does not cover (most of it is English and Latin-script
/// languages), so the n-grams are its only reader.
pub fn passes_gate(values: &[f64; FEATURE_COUNT], joined: &str) -> bool {
    if values[f::NO_EVENT] == 0.0 {
        return true;
    }
    let opening = &joined.as_bytes()[..joined.len().min(text::MAX_TEXT_BYTES)];
    // A multi-byte sequence of 3 or 4 bytes: CJK, Hangul, Thai, ...; Latin accents and
    // Cyrillic are 2 bytes. A cheap byte test keeps the gate cheap.
    let wide = opening.iter().filter(|byte| **byte >= 0xE0).count();
    wide >= 8
}

/// The text-stage input of a document: its n-grams when it passes the gate, else none.
pub fn text_input(values: &[f64; FEATURE_COUNT], joined: &str) -> Sparse {
    if passes_gate(values, joined) {
        text::featurize(joined)
    } else {
        Vec::new()
    }
}

impl Model {
    /// A model with every weight zero and no text stage: what feature extraction for
    /// training needs (features do not depend on the model).
    pub fn untrained() -> Model {
        Model {
            bias: 0.0,
            weights: [0.0; FEATURE_COUNT],
            text: Vec::new(),
            first_stage: None,
            sentence_stage: None,
            threshold: 0.5,
            extraction: None,
            training: TrainingInfo::default(),
        }
    }

    /// The model shipped in the repository.
    pub fn shipped() -> Result<Model, ModelError> {
        Model::from_json(SHIPPED_MODEL)
    }

    /// Reads a model file; every feature must have a weight and no unknown name may appear.
    pub fn from_json(text_json: &str) -> Result<Model, ModelError> {
        let file: ModelFile =
            serde_json::from_str(text_json).map_err(|err| ModelError(err.to_string()))?;
        if file.format != FORMAT {
            return Err(ModelError(format!(
                "format {} is not supported (expected {FORMAT}; retrain with `tge-swarm train`)",
                file.format
            )));
        }
        let weights = read_weights("weights", &file.weights)?;
        let first_stage = match file.first_stage {
            None => None,
            Some(stage) => {
                check_band("first_stage", stage.bias, stage.low, stage.high)?;
                Some(FirstStage {
                    bias: stage.bias,
                    weights: read_weights("first_stage.weights", &stage.weights)?,
                    low: stage.low,
                    high: stage.high,
                })
            }
        };
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err(ModelError("threshold must be between 0 and 1".into()));
        }
        if !file.bias.is_finite() {
            return Err(ModelError("bias is not finite".into()));
        }
        let text_weights = match file.text {
            None => Vec::new(),
            Some(stage) => decode_text("text", &stage)?,
        };
        let sentence_stage = match file.sentence_stage {
            None => None,
            Some(stage) => {
                check_band("sentence_stage", stage.bias, stage.low, stage.high)?;
                if stage.dim != super::sentence::DIM {
                    return Err(ModelError(format!(
                        "sentence_stage: {} embedding dimensions; this build embeds {} (retrain)",
                        stage.dim,
                        super::sentence::DIM
                    )));
                }
                Some(SentenceStage {
                    bias: stage.bias,
                    weights: read_weights("sentence_stage.weights", &stage.weights)?,
                    text: decode_text("sentence_stage.text", &stage.text)?,
                    embedding: decode_f32s(
                        "sentence_stage.embedding",
                        &stage.embedding,
                        super::sentence::DIM,
                    )?,
                    low: stage.low,
                    high: stage.high,
                })
            }
        };
        let extraction = match file.extraction {
            None => None,
            Some(extraction) => Some(extraction.read("extraction").map_err(ModelError)?),
        };
        Ok(Model {
            bias: file.bias,
            weights,
            text: text_weights,
            first_stage,
            sentence_stage,
            threshold: file.threshold,
            extraction,
            training: file.training,
        })
    }

    /// The model as a JSON document (the format `from_json` reads).
    pub fn to_json(&self) -> String {
        let weights = named_weights(&self.weights);
        let first_stage = self.first_stage.as_ref().map(|stage| FirstStageFile {
            bias: round(stage.bias),
            low: stage.low,
            high: stage.high,
            weights: named_weights(&stage.weights),
        });
        let text_stage = (!self.text.is_empty()).then(|| text_file(&self.text));
        let sentence_stage = self.sentence_stage.as_ref().map(|stage| SentenceStageFile {
            bias: round(stage.bias),
            low: stage.low,
            high: stage.high,
            weights: named_weights(&stage.weights),
            text: text_file(&stage.text),
            dim: stage.embedding.len(),
            embedding: encode_f32s(&stage.embedding),
        });
        let file = ModelFile {
            format: FORMAT,
            bias: round(self.bias),
            threshold: round(self.threshold),
            weights,
            text: text_stage,
            first_stage,
            sentence_stage,
            extraction: self
                .extraction
                .as_ref()
                .map(|ranker| RankerFile::of(ranker, round)),
            training: self.training.clone(),
        };
        let mut out = serde_json::to_string_pretty(&file).unwrap_or_default();
        out.push('\n');
        out
    }

    /// Log-odds of the structured block, with the bias.
    pub fn logit(&self, values: &[f64; FEATURE_COUNT]) -> f64 {
        linear(self.bias, &self.weights, values)
    }

    /// The cascade's route for a document: the structured log-odds (with the bias) and the
    /// weights behind them, and whether the text stage is to be added. A gated document
    /// goes through the full model unless the first stage is sure of it; the others are
    /// decided by the first stage (or by the full model without text when there is none).
    pub fn route(
        &self,
        values: &[f64; FEATURE_COUNT],
        gated: bool,
    ) -> (f64, &[f64; FEATURE_COUNT], bool) {
        let Some(first) = &self.first_stage else {
            return (
                self.logit(values),
                &self.weights,
                gated && !self.text.is_empty(),
            );
        };
        let first_logit = first.logit(values);
        let probability = sigmoid(first_logit);
        let uncertain = probability >= first.low && probability <= first.high;
        if gated && uncertain && !self.text.is_empty() {
            (self.logit(values), &self.weights, true)
        } else {
            (first_logit, &first.weights, false)
        }
    }
}

fn encode_f32s(weights: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(weights.len() * 4);
    for weight in weights {
        bytes.extend_from_slice(&weight.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text_file(weights: &[f32]) -> TextFile {
    TextFile {
        bits: text::BITS,
        max_bytes: text::MAX_TEXT_BYTES,
        weights: encode_f32s(weights),
    }
}

fn decode_text(field: &str, stage: &TextFile) -> Result<Vec<f32>, ModelError> {
    if stage.bits != text::BITS || stage.max_bytes != text::MAX_TEXT_BYTES {
        return Err(ModelError(format!(
            "{field}: n-grams of {} bits over {} bytes; this build hashes {} bits over {} bytes (retrain)",
            stage.bits,
            stage.max_bytes,
            text::BITS,
            text::MAX_TEXT_BYTES
        )));
    }
    decode_f32s(&format!("{field}.weights"), &stage.weights, text::DIM)
}

/// `len` little-endian f32 weights from base64, every one finite.
fn decode_f32s(field: &str, encoded: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|err| ModelError(format!("{field}: {err}")))?;
    if bytes.len() != len * 4 {
        return Err(ModelError(format!(
            "{field}: {} bytes, expected {}",
            bytes.len(),
            len * 4
        )));
    }
    let mut weights = Vec::with_capacity(len);
    for chunk in bytes.chunks_exact(4) {
        let weight = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if !weight.is_finite() {
            return Err(ModelError(format!("{field}: a weight is not finite")));
        }
        weights.push(weight);
    }
    Ok(weights)
}

/// Rounds to 1e-6 so the shipped file is stable and readable.
pub(super) fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Precision the product promises analysts.
pub const TARGET_PRECISION: f64 = 0.95;
/// Recall the product promises analysts.
pub const TARGET_RECALL: f64 = 0.90;

/// Precision, recall and F1 from true positives, false positives and false negatives
/// (precision and recall are 1 when nothing was called or nothing was to be found).
pub fn figures(tp: f64, fp: f64, fneg: f64) -> [f64; 3] {
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 };
    let recall = if tp + fneg > 0.0 {
        tp / (tp + fneg)
    } else {
        1.0
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    [precision, recall, f1]
}

/// Precision, recall and F1 of `(probability, label)` pairs at a threshold.
pub fn precision_recall_f1(scored: &[(f64, bool)], threshold: f64) -> [f64; 3] {
    let mut tp = 0.0;
    let mut fp = 0.0;
    let mut fneg = 0.0;
    for (probability, label) in scored {
        let predicted = *probability >= threshold;
        match (predicted, *label) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fneg += 1.0,
            (false, false) => {}
        }
    }
    figures(tp, fp, fneg)
}
