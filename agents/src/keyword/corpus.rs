//! Labelled corpora and their evaluation, pure: reading JSON Lines of labelled documents and
//! scoring a scorer against them (precision, recall, F1, calibration, errors by category).
//!
//! The shipped corpus lives in `corpus/` beside this file: `train.jsonl` (the model is fitted
//! on it) and `heldout.jsonl` (never used for fitting or for choosing the threshold).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::features::FEATURE_NAMES;
use super::scorer::{Input, Scorer};

/// The year the shipped corpus was written in: its "past years" are the years before it.
pub const CORPUS_YEAR: i32 = 2026;

/// The training split shipped in the repository.
pub const TRAIN: &str = include_str!("corpus/train.jsonl");
/// The held-back split shipped in the repository.
pub const HELDOUT: &str = include_str!("corpus/heldout.jsonl");

/// One labelled document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledItem {
    /// Identifier, unique in its file.
    pub id: String,
    /// Labelling-policy category (`pos_listing`, `neg_scam`...); `unlabelled` when absent.
    #[serde(default = "unlabelled")]
    pub category: String,
    /// Whether it announces a TGE.
    pub is_tge: bool,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Body text.
    pub text: String,
    /// Where it came from.
    #[serde(default)]
    pub url: Option<String>,
}

fn unlabelled() -> String {
    "unlabelled".into()
}

/// A corpus file that cannot be read, with the line that failed.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// Reading failed.
    #[error("{source_name}: reading line {line}: {message}")]
    Read {
        /// File name or `-`.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// A line is not a labelled item.
    #[error("{source_name}:{line}: {message}")]
    Parse {
        /// File name or `-`.
        source_name: String,
        /// 1-based line.
        line: usize,
        /// What went wrong.
        message: String,
    },
}

/// Reads labelled JSON Lines; blank lines are skipped, any other bad line is an error naming it.
pub fn read_labelled(
    reader: impl BufRead,
    source_name: &str,
) -> Result<Vec<LabelledItem>, CorpusError> {
    let mut items = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|err| CorpusError::Read {
            source_name: source_name.to_owned(),
            line: line_number,
            message: err.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let item: LabelledItem =
            serde_json::from_str(&line).map_err(|err| CorpusError::Parse {
                source_name: source_name.to_owned(),
                line: line_number,
                message: format!(
                    "not a labelled item ({{\"id\", \"is_tge\", \"text\", \"title\"?, \"category\"?, \"url\"?}}): {err}"
                ),
            })?;
        items.push(item);
    }
    Ok(items)
}

/// The scorer input of a labelled item (tier 2, the neutral prior).
pub fn input_of(item: &LabelledItem, year: i32) -> Input<'_> {
    Input {
        title: item.title.as_deref().unwrap_or(""),
        text: &item.text,
        tier: 2,
        year,
        url: item.url.as_deref(),
    }
}

/// Counts of one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryCounts {
    /// Items.
    pub items: usize,
    /// Misclassified items.
    pub errors: usize,
}

/// One misclassified item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    /// Item id.
    pub id: String,
    /// Its category.
    pub category: String,
    /// Its label.
    pub is_tge: bool,
    /// The score given.
    pub score: f64,
    /// The strongest evidence.
    pub evidence: Vec<String>,
    /// The non-zero features, by name.
    pub features: BTreeMap<String, f64>,
}

/// Evaluation of a scorer on a labelled corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Items scored.
    pub items: usize,
    /// True positives.
    pub true_positives: usize,
    /// False positives.
    pub false_positives: usize,
    /// False negatives.
    pub false_negatives: usize,
    /// True negatives.
    pub true_negatives: usize,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Mean squared error of the probability against the label (calibration; lower is better).
    pub brier: f64,
    /// Threshold used.
    pub threshold: f64,
    /// Counts by category.
    pub categories: BTreeMap<String, CategoryCounts>,
    /// Every misclassified item.
    pub misses: Vec<Miss>,
}

/// Scores every item and compares with its label.
pub fn evaluate(scorer: &Scorer, items: &[LabelledItem], year: i32) -> Report {
    let mut report = Report {
        items: items.len(),
        true_positives: 0,
        false_positives: 0,
        false_negatives: 0,
        true_negatives: 0,
        precision: 0.0,
        recall: 0.0,
        f1: 0.0,
        brier: 0.0,
        threshold: scorer.threshold(),
        categories: BTreeMap::new(),
        misses: Vec::new(),
    };
    let mut squared = 0.0;
    for item in items {
        let input = input_of(item, year);
        let detection = scorer.score(input);
        let target = if item.is_tge { 1.0 } else { 0.0 };
        squared += (detection.score - target) * (detection.score - target);
        let counts = report.categories.entry(item.category.clone()).or_default();
        counts.items += 1;
        match (detection.is_tge, item.is_tge) {
            (true, true) => report.true_positives += 1,
            (false, false) => report.true_negatives += 1,
            (true, false) => report.false_positives += 1,
            (false, true) => report.false_negatives += 1,
        }
        if detection.is_tge != item.is_tge {
            counts.errors += 1;
            report.misses.push(Miss {
                id: item.id.clone(),
                category: item.category.clone(),
                is_tge: item.is_tge,
                score: detection.score,
                evidence: detection
                    .evidence
                    .iter()
                    .take(4)
                    .map(|e| format!("{} ({:+.2})", e.feature, e.weight))
                    .collect(),
                features: FEATURE_NAMES
                    .iter()
                    .zip(scorer.features(input).iter())
                    .filter(|(_, value)| **value != 0.0)
                    .map(|(name, value)| ((*name).to_owned(), *value))
                    .collect(),
            });
        }
    }
    let tp = report.true_positives as f64;
    let fp = report.false_positives as f64;
    let fneg = report.false_negatives as f64;
    report.precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 };
    report.recall = if tp + fneg > 0.0 {
        tp / (tp + fneg)
    } else {
        1.0
    };
    report.f1 = if report.precision + report.recall > 0.0 {
        2.0 * report.precision * report.recall / (report.precision + report.recall)
    } else {
        0.0
    };
    report.brier = if items.is_empty() {
        0.0
    } else {
        squared / items.len() as f64
    };
    report
}
