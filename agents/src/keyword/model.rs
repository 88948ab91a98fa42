//! The detection model, pure: logistic regression over the extracted features, trained from the
//! labelled corpus and shipped as `model.json` beside this file; and the online adaptation layer
//! that analyst feedback trains.
//!
//! Training is hand-written (L2-regularised logistic regression by Newton's method, about
//! eighty lines): the linear
//! algebra crates (linfa, smartcore) would bring ndarray and a solver stack for a 31-weight
//! model that trains in milliseconds. The decision threshold is the one that maximises F1 on
//! out-of-fold predictions (5-fold cross-validation on the training split), so it is never
//! tuned on the data it is judged on.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::features::{FEATURE_COUNT, FEATURE_NAMES};

/// The model shipped with the binary.
const SHIPPED_MODEL: &str = include_str!("model.json");

/// A trained model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Intercept (log-odds).
    pub bias: f64,
    /// One weight per feature, in [`FEATURE_NAMES`] order.
    pub weights: [f64; FEATURE_COUNT],
    /// Probability at or above which a document is an announcement.
    pub threshold: f64,
    /// How it was trained.
    pub training: TrainingInfo,
}

/// How a model was trained, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingInfo {
    /// Labelled items.
    pub items: usize,
    /// Of which positive.
    pub positives: usize,
    /// L2 penalty.
    pub l2: f64,
    /// Newton steps allowed.
    pub iterations: usize,
    /// Precision, recall and F1 of the out-of-fold predictions at the chosen threshold.
    pub cross_validation: [f64; 3],
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: u32,
    bias: f64,
    threshold: f64,
    weights: std::collections::BTreeMap<String, f64>,
    training: TrainingInfo,
}

/// A model file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid detection model: {0}")]
pub struct ModelError(String);

/// The logistic function: log-odds to probability.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Model {
    /// The model shipped in the repository.
    pub fn shipped() -> Result<Model, ModelError> {
        Model::from_json(SHIPPED_MODEL)
    }

    /// Reads a model file; every feature must have a weight and no unknown name may appear.
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        let file: ModelFile =
            serde_json::from_str(text).map_err(|err| ModelError(err.to_string()))?;
        if file.format != 1 {
            return Err(ModelError(format!(
                "format {} is not supported (expected 1)",
                file.format
            )));
        }
        let mut weights = [0.0; FEATURE_COUNT];
        for (name, weight) in &file.weights {
            let Some(index) = FEATURE_NAMES.iter().position(|known| known == name) else {
                return Err(ModelError(format!("unknown feature `{name}`")));
            };
            if !weight.is_finite() {
                return Err(ModelError(format!("weight of `{name}` is not finite")));
            }
            weights[index] = *weight;
        }
        if let Some(missing) = FEATURE_NAMES
            .iter()
            .find(|name| !file.weights.contains_key(**name))
        {
            return Err(ModelError(format!("no weight for feature `{missing}`")));
        }
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err(ModelError("threshold must be between 0 and 1".into()));
        }
        Ok(Model {
            bias: file.bias,
            weights,
            threshold: file.threshold,
            training: file.training,
        })
    }

    /// The model as a JSON document (the format `from_json` reads).
    pub fn to_json(&self) -> String {
        let weights = FEATURE_NAMES
            .iter()
            .zip(self.weights.iter())
            .map(|(name, weight)| ((*name).to_owned(), round(*weight)))
            .collect();
        let file = ModelFile {
            format: 1,
            bias: round(self.bias),
            threshold: round(self.threshold),
            weights,
            training: self.training.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Log-odds of a feature vector.
    pub fn logit(&self, values: &[f64; FEATURE_COUNT]) -> f64 {
        let mut z = self.bias;
        for (weight, value) in self.weights.iter().zip(values.iter()) {
            z += weight * value;
        }
        z
    }
}

/// Rounds to 1e-6 so the shipped file is stable and readable.
fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Precision the product promises analysts.
pub const TARGET_PRECISION: f64 = 0.95;
/// Recall the product promises analysts.
pub const TARGET_RECALL: f64 = 0.90;

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// L2 penalty per weight (not on the bias).
    pub l2: f64,
    /// Newton steps at most (it converges in about ten).
    pub iterations: usize,
    /// Cross-validation folds used to choose the threshold.
    pub folds: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 0.01,
            iterations: 50,
            folds: 5,
        }
    }
}

/// One labelled feature vector.
pub type Example = ([f64; FEATURE_COUNT], bool);

/// Parameters in the solver's layout: the bias first, then the weights.
const PARAMS: usize = FEATURE_COUNT + 1;

/// Solves `a x = b` by Gaussian elimination with partial pivoting (`a` is symmetric positive
/// definite here, thanks to the L2 term). Hand-written: 32 unknowns do not justify a linear
/// algebra dependency.
// Matrix code reads best with indices.
#[allow(clippy::needless_range_loop)]
fn solve(mut a: [[f64; PARAMS]; PARAMS], mut b: [f64; PARAMS]) -> Option<[f64; PARAMS]> {
    for column in 0..PARAMS {
        let mut pivot = column;
        for row in column + 1..PARAMS {
            if a[row][column].abs() > a[pivot][column].abs() {
                pivot = row;
            }
        }
        if a[pivot][column].abs() < 1e-12 {
            return None;
        }
        a.swap(column, pivot);
        b.swap(column, pivot);
        for row in column + 1..PARAMS {
            let factor = a[row][column] / a[column][column];
            for k in column..PARAMS {
                a[row][k] -= factor * a[column][k];
            }
            b[row] -= factor * b[column];
        }
    }
    let mut x = [0.0; PARAMS];
    for row in (0..PARAMS).rev() {
        let mut sum = b[row];
        for k in row + 1..PARAMS {
            sum -= a[row][k] * x[k];
        }
        x[row] = sum / a[row][row];
    }
    Some(x)
}

/// Fits L2-regularised logistic regression by Newton's method (iteratively reweighted least
/// squares): the mean log-loss plus `l2 / 2 * |w|^2` (the bias is not penalised).
#[allow(clippy::needless_range_loop)]
fn fit(examples: &[&Example], options: &TrainOptions) -> (f64, [f64; FEATURE_COUNT]) {
    let mut theta = [0.0; PARAMS];
    if examples.is_empty() {
        return (0.0, [0.0; FEATURE_COUNT]);
    }
    let n = examples.len() as f64;
    for _ in 0..options.iterations {
        let mut gradient = [0.0; PARAMS];
        let mut hessian = [[0.0; PARAMS]; PARAMS];
        for (values, label) in examples {
            let mut x = [0.0; PARAMS];
            x[0] = 1.0;
            x[1..].copy_from_slice(values);
            let z: f64 = theta.iter().zip(x.iter()).map(|(t, v)| t * v).sum();
            let p = sigmoid(z);
            let error = p - if *label { 1.0 } else { 0.0 };
            let curvature = (p * (1.0 - p)).max(1e-9);
            for i in 0..PARAMS {
                gradient[i] += error * x[i] / n;
                for j in 0..PARAMS {
                    hessian[i][j] += curvature * x[i] * x[j] / n;
                }
            }
        }
        for i in 1..PARAMS {
            gradient[i] += options.l2 * theta[i];
            hessian[i][i] += options.l2;
        }
        hessian[0][0] += 1e-9;
        let Some(step) = solve(hessian, gradient) else {
            break;
        };
        let mut largest: f64 = 0.0;
        for i in 0..PARAMS {
            theta[i] -= step[i];
            largest = largest.max(step[i].abs());
        }
        if largest < 1e-10 {
            break;
        }
    }
    let mut weights = [0.0; FEATURE_COUNT];
    weights.copy_from_slice(&theta[1..]);
    (theta[0], weights)
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

/// Trains a model; also returns each example's out-of-fold probability (for error analysis).
/// Deterministic: folds are assigned round-robin in input order.
pub fn train(examples: &[Example], options: &TrainOptions) -> (Model, Vec<f64>) {
    let folds = options.folds.max(2);
    let mut out_of_fold: Vec<(f64, bool)> = vec![(0.0, false); examples.len()];
    for fold in 0..folds {
        let training: Vec<&Example> = examples
            .iter()
            .enumerate()
            .filter(|(index, _)| index % folds != fold)
            .map(|(_, example)| example)
            .collect();
        let (bias, weights) = fit(&training, options);
        let model = Model {
            bias,
            weights,
            threshold: 0.5,
            training: TrainingInfo::default(),
        };
        for (index, (values, label)) in examples.iter().enumerate() {
            if index % folds == fold {
                out_of_fold[index] = (sigmoid(model.logit(values)), *label);
            }
        }
    }
    // The threshold with the best out-of-fold F1 among those that meet the product's targets
    // (precision >= 0.95, recall >= 0.90), or among all when none does; among equals, the one
    // nearest 0.5.
    let candidates: Vec<(f64, [f64; 3])> = (10..=90)
        .map(|step| {
            let threshold = f64::from(step) / 100.0;
            (threshold, precision_recall_f1(&out_of_fold, threshold))
        })
        .collect();
    let meets = |figures: &[f64; 3]| figures[0] >= TARGET_PRECISION && figures[1] >= TARGET_RECALL;
    let any_meets = candidates.iter().any(|(_, figures)| meets(figures));
    let mut best: (f64, [f64; 3]) = (0.5, precision_recall_f1(&out_of_fold, 0.5));
    let mut best_eligible = !any_meets || meets(&best.1);
    for (threshold, figures) in candidates {
        if any_meets && !meets(&figures) {
            continue;
        }
        let better = !best_eligible
            || figures[2] > best.1[2] + 1e-12
            || ((figures[2] - best.1[2]).abs() <= 1e-12
                && (threshold - 0.5).abs() < (best.0 - 0.5).abs());
        if better {
            best = (threshold, figures);
            best_eligible = true;
        }
    }
    let all: Vec<&Example> = examples.iter().collect();
    let (bias, weights) = fit(&all, options);
    let model = Model {
        bias,
        weights,
        threshold: best.0,
        training: TrainingInfo {
            items: examples.len(),
            positives: examples.iter().filter(|(_, label)| *label).count(),
            l2: options.l2,
            iterations: options.iterations,
            cross_validation: best.1.map(round),
        },
    };
    (model, out_of_fold.iter().map(|(p, _)| *p).collect())
}

/// Analyst feedback as the adaptation layer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSample {
    /// Pattern keys of the judged document (see [`pattern_keys`]).
    pub keys: Vec<String>,
    /// The model's log-odds for it when judged (without adaptation).
    pub logit: f64,
    /// True for a true positive, false for a false positive.
    pub is_tge: bool,
}

/// The online layer that analyst feedback trains: a weight per *pattern key* (the source host,
/// the project, word pairs of the title), added to the model's log-odds. A repeated false
/// positive from one pattern drives its keys negative until it no longer passes; documents that
/// share none of its keys are untouched, which is what keeps the held-back figures stable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adaptation {
    weights: HashMap<String, f64>,
}

/// Step size of one feedback update.
const ADAPT_RATE: f64 = 1.0;
/// Bound on one key's weight, so no single key can veto or force a verdict on its own.
const ADAPT_BOUND: f64 = 3.0;

/// Words too common to make a title pattern on their own.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "its", "at", "by", "with",
    "as", "from", "it", "this", "that", "will", "be", "has", "new", "token", "tokens", "tge",
    "launch", "airdrop", "claim", "sale", "listing", "list", "lists",
];

/// The pattern keys of a document: `host:`, `project:` and `title:` word pairs.
pub fn pattern_keys(title: &str, url: Option<&str>, project: Option<&str>) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(host) = url
        .and_then(|raw| url::Url::parse(raw).ok())
        .and_then(|parsed| {
            parsed
                .host_str()
                .map(|h| h.trim_start_matches("www.").to_owned())
        })
    {
        keys.push(format!("host:{host}"));
    }
    if let Some(project) = project {
        keys.push(format!("project:{}", project.to_lowercase()));
    }
    let words: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric() && c != '$')
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    for pair in words.windows(2) {
        let both_common =
            STOPWORDS.contains(&pair[0].as_str()) && STOPWORDS.contains(&pair[1].as_str());
        if !both_common {
            keys.push(format!("title:{} {}", pair[0], pair[1]));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

impl Adaptation {
    /// Replays feedback in order (the layer is a pure function of the feedback history).
    pub fn from_feedback(samples: &[FeedbackSample]) -> Adaptation {
        let mut adaptation = Adaptation::default();
        for sample in samples {
            adaptation.learn(sample);
        }
        adaptation
    }

    /// One logistic-loss gradient step on the sample's keys.
    pub fn learn(&mut self, sample: &FeedbackSample) {
        if sample.keys.is_empty() {
            return;
        }
        let z = sample.logit + self.adjustment(&sample.keys);
        let error = if sample.is_tge { 1.0 } else { 0.0 } - sigmoid(z);
        let step = ADAPT_RATE * error / (sample.keys.len() as f64).sqrt();
        for key in &sample.keys {
            let weight = self.weights.entry(key.clone()).or_insert(0.0);
            *weight = (*weight + step).clamp(-ADAPT_BOUND, ADAPT_BOUND);
        }
    }

    /// The log-odds adjustment for a document's keys.
    pub fn adjustment(&self, keys: &[String]) -> f64 {
        let total: f64 = keys.iter().filter_map(|key| self.weights.get(key)).sum();
        total.clamp(-2.0 * ADAPT_BOUND, 2.0 * ADAPT_BOUND)
    }

    /// Keys with a weight, for evidence and inspection.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether no feedback has been learned.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}
