//! Training the detection model, pure and deterministic: L2-regularised logistic regression
//! over the structured features and the hashed n-grams, fitted by L-BFGS, the cascade's
//! first stage over the structured features alone, and its third stage over both and the
//! sentence encoder's embedding; the threshold and the stages' bands chosen on out-of-fold
//! predictions of a cross-validation grouped by website and project, so
//! a fold never sees the same site's prose or the same project's launch it is judged on (the
//! way the corpus's held-out split was made).
//!
//! Hand-written (L-BFGS, about a hundred lines): the optimisation crates (argmin, linfa) bring
//! ndarray and generic solver stacks for one convex objective of 66,592 parameters that this
//! fits in about a second.

//!
//! Files: the examples and `train` here, the solver in `fit.rs`, the folds in `folds.rs`, the
//! choices of bands and threshold in `choose.rs`.

mod choose;
mod extraction;
mod fit;
mod folds;

pub use choose::{BAND_TOLERANCE, cascade, choose_threshold};
pub use extraction::{
    Accuracy, ExtractionExample, ExtractionFigures, add_extraction, extraction_examples,
    train_extraction,
};
pub use folds::assign_folds;

use super::features::FEATURE_COUNT;
use super::model::{FirstStage, Model, SentenceStage, TrainingInfo, round};
use super::sentence;
use super::text::Sparse;

use choose::*;
use fit::*;
use folds::*;

/// One labelled document as the model sees it.
#[derive(Debug, Clone)]
pub struct Example {
    /// Structured features.
    pub values: [f64; FEATURE_COUNT],
    /// Text-stage features (empty when the gate stopped it).
    pub text: Sparse,
    /// The sentence encoder's embedding ([`sentence::DIM`]; empty when the gate stopped it).
    pub embedding: Vec<f32>,
    /// The label.
    pub label: bool,
    /// Items sharing a website or a project share a key; cross-validation keeps them in one
    /// fold. Empty: a group of its own.
    pub group_keys: Vec<String>,
    /// In the training part of every fold and never judged: texts that may help training but
    /// must not count in a figure (the project's own written texts).
    pub always_train: bool,
}

/// The example of a labelled item: its features under `scorer` (any model: features do
/// not depend on it), grouped by website and, for positives, project.
pub fn example_of(
    scorer: &super::scorer::Scorer,
    item: &super::corpus::LabelledItem,
    year: i32,
    always_train: bool,
) -> Example {
    let (values, text, joined) = scorer.examples_of(super::corpus::input_of(item, year));
    let embedding = match sentence::encoder() {
        Some(encoder) if !text.is_empty() => sentence::embed(encoder, &joined),
        _ => Vec::new(),
    };
    let mut group_keys = Vec::new();
    if let Some(website) = &item.website {
        group_keys.push(format!("site:{}", website.to_lowercase()));
    }
    if item.is_tge
        && let Some(project) = &item.project
    {
        group_keys.push(format!("project:{}", project.to_lowercase()));
    }
    Example {
        values,
        text,
        embedding,
        label: item.is_tge,
        group_keys,
        always_train,
    }
}

/// The examples of many items, on every core (the sentence encoder costs tens of milliseconds
/// per item), in the items' order.
pub fn examples_of(
    scorer: &super::scorer::Scorer,
    items: &[&super::corpus::LabelledItem],
    year: i32,
    always_train: bool,
) -> Vec<Example> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|item| example_of(scorer, item, year, always_train))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(examples) => examples,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// L2 penalty on the structured weights, per weight, on the mean log-loss.
    pub l2: f64,
    /// L2 penalty on the text weights.
    pub l2_text: f64,
    /// L2 penalty on the embedding weights of the third stage.
    pub l2_embedding: f64,
    /// L2 penalty on the extraction ranker's weights.
    pub l2_extraction: f64,
    /// L-BFGS iterations at most.
    pub iterations: usize,
    /// Cross-validation folds used to choose the threshold.
    pub folds: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 1e-3,
            // Chosen by cross-validation (docs/detection.md, "Ablations").
            l2_text: 3e-5,
            // Chosen by cross-validation (docs/detection.md, "Ablations").
            l2_embedding: 1e-5,
            // Chosen by cross-validation (docs/detection.md, "Extraction").
            l2_extraction: 1e-4,
            iterations: 300,
            folds: 5,
        }
    }
}

/// Trains a model on `examples`: the threshold from grouped cross-validation, the weights
/// from all of them. Also returns each example's out-of-fold probability (for error
/// analysis). `data` says what was trained on, for the record.
pub fn train(
    examples: &[Example],
    options: &TrainOptions,
    data: &str,
) -> (Model, Vec<Option<f64>>) {
    let folded = folded(examples, options);
    let labels: Vec<bool> = examples
        .iter()
        .filter(|example| !example.always_train)
        .map(|example| example.label)
        .collect();
    let (band, _, _, skipped) = choose_band(&folded, &labels);
    let SentenceChoice {
        band: sentence_band,
        threshold,
        figures,
        read: sentence_share,
    } = choose_sentence_band(&folded, &labels, band);
    let probabilities = spread(
        examples,
        folded.iter().map(|f| cascade3(f, band, sentence_band)),
    );
    let all: Vec<&Example> = examples.iter().collect();
    let theta = fit(&all, options, Blocks::Text);
    let first = fit(&all, options, Blocks::Structured);
    let sentence_stage = sentence_band.map(|(low, high)| {
        let third = fit(&all, options, Blocks::Sentence);
        let mut weights = [0.0; FEATURE_COUNT];
        weights.copy_from_slice(&third[1..DENSE]);
        SentenceStage {
            bias: third[0],
            weights,
            text: third[DENSE..EMBEDDING].iter().map(|w| *w as f32).collect(),
            embedding: third[EMBEDDING..].iter().map(|w| *w as f32).collect(),
            low,
            high,
        }
    });
    let mut weights = [0.0; FEATURE_COUNT];
    weights.copy_from_slice(&theta[1..DENSE]);
    let mut first_weights = [0.0; FEATURE_COUNT];
    first_weights.copy_from_slice(&first[1..DENSE]);
    let model = Model {
        bias: theta[0],
        weights,
        text: theta[DENSE..EMBEDDING].iter().map(|w| *w as f32).collect(),
        first_stage: Some(FirstStage {
            bias: first[0],
            weights: first_weights,
            low: band.0,
            high: band.1,
        }),
        sentence_stage,
        threshold,
        extraction: None,
        training: TrainingInfo {
            items: examples.len(),
            positives: examples.iter().filter(|e| e.label).count(),
            l2: options.l2,
            l2_text: options.l2_text,
            l2_embedding: options.l2_embedding,
            iterations: options.iterations,
            folds: options.folds.max(2),
            cross_validation: figures.map(round),
            skipped_text_stage: round(skipped),
            sentence_stage_share: round(sentence_share),
            data: data.to_owned(),
            l2_extraction: 0.0,
            extraction_cross_validation: [0.0; 2],
        },
    };
    (model, probabilities)
}

#[cfg(test)]
mod tests;
