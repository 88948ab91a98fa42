//! Training the detection model, pure and deterministic: L2-regularised logistic regression
//! over the structured features and the hashed n-grams, fitted by L-BFGS, the cascade's
//! first stage over the structured features alone, and its third stage over both and the
//! sentence encoder's embedding; the threshold and the stages' bands chosen on out-of-fold
//! predictions of a cross-validation grouped by website and project, so
//! a fold never sees the same site's prose or the same project's launch it is judged on (the
//! way the corpus's held-out split was made).
//!
//! Hand-written (L-BFGS, about a hundred lines): the optimisation crates (argmin, linfa) bring
//! ndarray and generic solver stacks for one convex objective of 65,568 parameters that this
//! fits in about a second.

use std::collections::{BTreeMap, HashMap};

use super::features::FEATURE_COUNT;
use super::model::{
    FirstStage, Model, SentenceStage, TARGET_PRECISION, TARGET_RECALL, TrainingInfo,
    precision_recall_f1, round, sigmoid,
};
use super::sentence;
use super::text::{DIM, Sparse};

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
            iterations: 300,
            folds: 5,
        }
    }
}

/// Parameters in the solver's layout: the bias, the structured weights, the text weights,
/// the embedding weights.
const DENSE: usize = 1 + FEATURE_COUNT;
const EMBEDDING: usize = DENSE + DIM;
const PARAMS: usize = EMBEDDING + sentence::DIM;

/// Which blocks a stage of the cascade reads; the blocks it does not read keep their zero
/// start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocks {
    /// The first stage: the structured features.
    Structured,
    /// The second stage: and the n-grams.
    Text,
    /// The third stage: and the embedding.
    Sentence,
}

impl Blocks {
    fn text(self) -> bool {
        self != Blocks::Structured
    }

    fn embedding(self) -> bool {
        self == Blocks::Sentence
    }
}

/// Mean log-loss plus the L2 terms, and its gradient into `gradient`, over the blocks given.
fn objective(
    theta: &[f64],
    examples: &[&Example],
    options: &TrainOptions,
    blocks: Blocks,
    gradient: &mut [f64],
) -> f64 {
    gradient.iter_mut().for_each(|g| *g = 0.0);
    let n = examples.len().max(1) as f64;
    let mut loss = 0.0;
    for example in examples {
        let mut z = theta[0];
        for (index, value) in example.values.iter().enumerate() {
            z += theta[1 + index] * value;
        }
        let text: &[(u32, f32)] = if blocks.text() { &example.text } else { &[] };
        for (bucket, value) in text {
            z += theta[DENSE + *bucket as usize] * f64::from(*value);
        }
        let embedding: &[f32] = if blocks.embedding() {
            &example.embedding
        } else {
            &[]
        };
        for (index, value) in embedding.iter().enumerate() {
            z += theta[EMBEDDING + index] * f64::from(*value);
        }
        let y = if example.label { 1.0 } else { 0.0 };
        // log(1 + e^z) - y z, stably.
        let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
        loss += softplus - y * z;
        let error = (sigmoid(z) - y) / n;
        gradient[0] += error;
        for (index, value) in example.values.iter().enumerate() {
            gradient[1 + index] += error * value;
        }
        for (bucket, value) in text {
            gradient[DENSE + *bucket as usize] += error * f64::from(*value);
        }
        for (index, value) in embedding.iter().enumerate() {
            gradient[EMBEDDING + index] += error * f64::from(*value);
        }
    }
    loss /= n;
    for index in 1..PARAMS {
        let l2 = if index < DENSE {
            options.l2
        } else if index < EMBEDDING {
            options.l2_text
        } else {
            options.l2_embedding
        };
        loss += 0.5 * l2 * theta[index] * theta[index];
        gradient[index] += l2 * theta[index];
    }
    loss
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises [`objective`] by L-BFGS (ten corrections) with a backtracking Armijo line search.
fn fit(examples: &[&Example], options: &TrainOptions, blocks: Blocks) -> Vec<f64> {
    const MEMORY: usize = 10;
    let mut theta = vec![0.0; PARAMS];
    if examples.is_empty() {
        return theta;
    }
    let mut gradient = vec![0.0; PARAMS];
    let mut loss = objective(&theta, examples, options, blocks, &mut gradient);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::with_capacity(MEMORY);
    let mut candidate = vec![0.0; PARAMS];
    let mut candidate_gradient = vec![0.0; PARAMS];
    for _ in 0..options.iterations {
        // Two-loop recursion: direction = -H g.
        let mut direction: Vec<f64> = gradient.iter().map(|g| -g).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &direction);
            for (d, yi) in direction.iter_mut().zip(y) {
                *d -= alpha * yi;
            }
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.back() {
            let scale = dot(s, y) / dot(y, y).max(1e-300);
            direction.iter_mut().for_each(|d| *d *= scale);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &direction);
            for (d, si) in direction.iter_mut().zip(s) {
                *d += (alpha - beta) * si;
            }
        }
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature went stale): restart from steepest descent.
            history.clear();
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&gradient, &direction);
        }
        let mut step = if history.is_empty() {
            1.0 / dot(&gradient, &gradient).sqrt().max(1e-12)
        } else {
            1.0
        };
        let mut accepted = false;
        for _ in 0..40 {
            for ((c, t), d) in candidate.iter_mut().zip(&theta).zip(&direction) {
                *c = t + step * d;
            }
            let candidate_loss = objective(
                &candidate,
                examples,
                options,
                blocks,
                &mut candidate_gradient,
            );
            if candidate_loss <= loss + 1e-4 * step * slope {
                let s: Vec<f64> = candidate.iter().zip(&theta).map(|(c, t)| c - t).collect();
                let y: Vec<f64> = candidate_gradient
                    .iter()
                    .zip(&gradient)
                    .map(|(c, g)| c - g)
                    .collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut theta, &mut candidate);
                std::mem::swap(&mut gradient, &mut candidate_gradient);
                let improvement = loss - candidate_loss;
                loss = candidate_loss;
                accepted = true;
                if improvement < 1e-10 * loss.abs().max(1.0) {
                    return theta;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        if gradient.iter().map(|g| g.abs()).fold(0.0, f64::max) < 1e-7 {
            break;
        }
    }
    theta
}

/// Logit of an example under fitted parameters.
fn logit(theta: &[f64], example: &Example) -> f64 {
    let mut z = theta[0];
    for (index, value) in example.values.iter().enumerate() {
        z += theta[1 + index] * value;
    }
    for (bucket, value) in &example.text {
        z += theta[DENSE + *bucket as usize] * f64::from(*value);
    }
    for (index, value) in example.embedding.iter().enumerate() {
        z += theta[EMBEDDING + index] * f64::from(*value);
    }
    z
}

/// Assigns each example a fold: examples linked by a shared group key (website, project)
/// form one group, groups are dealt to folds largest first onto the fold with the fewest
/// examples (ties by fold number), so folds are balanced and deterministic.
pub fn assign_folds(examples: &[&Example], folds: usize) -> Vec<usize> {
    let folds = folds.max(2);
    // Union-find over examples through their keys.
    let mut parent: Vec<usize> = (0..examples.len()).collect();
    fn root(parent: &mut [usize], mut index: usize) -> usize {
        while parent[index] != index {
            parent[index] = parent[parent[index]];
            index = parent[index];
        }
        index
    }
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (index, example) in examples.iter().enumerate() {
        for key in &example.group_keys {
            match first_with_key.get(key.as_str()) {
                Some(&other) => {
                    let a = root(&mut parent, index);
                    let b = root(&mut parent, other);
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    first_with_key.insert(key.as_str(), index);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for index in 0..examples.len() {
        let group = root(&mut parent, index);
        groups.entry(group).or_default().push(index);
    }
    let mut ordered: Vec<Vec<usize>> = groups.into_values().collect();
    // Largest first; among equals, the group of the earliest example first.
    ordered.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    let mut sizes = vec![0usize; folds];
    let mut assignment = vec![0usize; examples.len()];
    for group in ordered {
        let mut target = 0;
        for fold in 1..folds {
            if sizes[fold] < sizes[target] {
                target = fold;
            }
        }
        sizes[target] += group.len();
        for index in group {
            assignment[index] = target;
        }
    }
    assignment
}

/// Out-of-fold predictions of one judged example: the first stage's probability, the
/// second's (the full model without the embedding), the third's, and whether the example
/// passed the text gate.
#[derive(Debug, Clone, Copy)]
struct Folded {
    first: f64,
    full: f64,
    sentence: f64,
    gated: bool,
}

/// Out-of-fold predictions of every judged example (grouped folds), in the order of the
/// examples that are not always trained on.
fn folded(examples: &[Example], options: &TrainOptions) -> Vec<Folded> {
    let folds = options.folds.max(2);
    let judged: Vec<&Example> = examples
        .iter()
        .filter(|example| !example.always_train)
        .collect();
    let assignment = assign_folds(&judged, folds);
    let mut out = vec![
        Folded {
            first: 0.0,
            full: 0.0,
            sentence: 0.0,
            gated: false,
        };
        judged.len()
    ];
    for fold in 0..folds {
        let mut training: Vec<&Example> = judged
            .iter()
            .zip(&assignment)
            .filter(|(_, assigned)| **assigned != fold)
            .map(|(example, _)| *example)
            .collect();
        training.extend(examples.iter().filter(|example| example.always_train));
        // A stage's unread blocks keep zero weights, so `logit` reads only its own.
        let full = fit(&training, options, Blocks::Text);
        let first = fit(&training, options, Blocks::Structured);
        let third = fit(&training, options, Blocks::Sentence);
        for (index, example) in judged.iter().enumerate() {
            if assignment[index] == fold {
                out[index] = Folded {
                    first: sigmoid(logit(&first, example)),
                    full: sigmoid(logit(&full, example)),
                    sentence: sigmoid(logit(&third, example)),
                    gated: !example.text.is_empty(),
                };
            }
        }
    }
    out
}

/// The probability the cascade gives: the full model's for a gated example whose first-stage
/// probability lies in `[low, high]`, the first stage's otherwise.
pub fn cascade(first: f64, full: f64, gated: bool, (low, high): (f64, f64)) -> f64 {
    if gated && first >= low && first <= high {
        full
    } else {
        first
    }
}

/// The probability the three-stage cascade gives: as [`cascade`], then the third stage's for
/// a document the second stage read and scored within `sentence_band` (when there is one).
fn cascade3(f: &Folded, band: (f64, f64), sentence_band: Option<(f64, f64)>) -> f64 {
    let second = cascade(f.first, f.full, f.gated, band);
    if reads_sentences(f, band, sentence_band) {
        f.sentence
    } else {
        second
    }
}

/// Whether the third stage reads a document.
fn reads_sentences(f: &Folded, band: (f64, f64), sentence_band: Option<(f64, f64)>) -> bool {
    let second_read = f.gated && f.first >= band.0 && f.first <= band.1;
    second_read && sentence_band.is_some_and(|(low, high)| f.full >= low && f.full <= high)
}

/// The second-stage bands tried for the third stage: within them it decides. None: no third
/// stage.
const SENTENCE_BANDS: [Option<(f64, f64)>; 9] = [
    None,
    Some((0.0, 1.0)),
    Some((0.05, 0.95)),
    Some((0.1, 0.9)),
    Some((0.2, 0.9)),
    Some((0.2, 0.8)),
    Some((0.3, 0.8)),
    Some((0.3, 0.7)),
    Some((0.4, 0.7)),
];

/// A third-stage band judged out of fold.
#[derive(Debug, Clone, Copy)]
struct SentenceChoice {
    /// The second-stage band within which the third stage decides; none: no third stage.
    band: Option<(f64, f64)>,
    /// The cascade's threshold with it.
    threshold: f64,
    /// Precision, recall and F1 there.
    figures: [f64; 3],
    /// Share of the gated documents the third stage reads.
    read: f64,
}

/// The third stage's band chosen on out-of-fold predictions, given the first stage's band:
/// among those within [`BAND_TOLERANCE`] of the best F1, the one that reads the fewest
/// documents (none when the third stage does not gain more than the tolerance).
fn choose_sentence_band(folded: &[Folded], labels: &[bool], band: (f64, f64)) -> SentenceChoice {
    let gated = folded.iter().filter(|f| f.gated).count().max(1) as f64;
    let rows: Vec<SentenceChoice> = SENTENCE_BANDS
        .iter()
        .map(|&sentence_band| {
            let scored: Vec<(f64, bool)> = folded
                .iter()
                .zip(labels)
                .map(|(f, label)| (cascade3(f, band, sentence_band), *label))
                .collect();
            let (threshold, figures) = choose_threshold(&scored);
            let read = folded
                .iter()
                .filter(|f| reads_sentences(f, band, sentence_band))
                .count() as f64
                / gated;
            SentenceChoice {
                band: sentence_band,
                threshold,
                figures,
                read,
            }
        })
        .collect();
    let best_f1 = rows.iter().map(|row| row.figures[2]).fold(0.0, f64::max);
    let mut chosen = rows[0];
    for row in &rows {
        if row.figures[2] + BAND_TOLERANCE >= best_f1
            && (chosen.figures[2] + BAND_TOLERANCE < best_f1 || row.read < chosen.read - 1e-12)
        {
            chosen = *row;
        }
    }
    chosen
}

/// The first-stage bands tried: below `low` or above `high` the first stage decides alone.
const BANDS: [(f64, f64); 12] = [
    (0.0, 1.0),
    (0.02, 1.0),
    (0.05, 1.0),
    (0.1, 1.0),
    (0.0, 0.95),
    (0.02, 0.95),
    (0.05, 0.95),
    (0.1, 0.95),
    (0.0, 0.9),
    (0.02, 0.9),
    (0.05, 0.9),
    (0.1, 0.9),
];

/// How much out-of-fold F1 a band may give up for speed.
pub const BAND_TOLERANCE: f64 = 0.01;

/// The band chosen on out-of-fold predictions: among those within [`BAND_TOLERANCE`] of the
/// best F1 (each at its own chosen threshold), the one that lets the most gated examples skip
/// the text stage. Returns the band, its threshold and figures, and the share skipped.
fn choose_band(folded: &[Folded], labels: &[bool]) -> ((f64, f64), f64, [f64; 3], f64) {
    let mut rows = Vec::with_capacity(BANDS.len());
    let gated = folded.iter().filter(|f| f.gated).count().max(1) as f64;
    for band in BANDS {
        let scored: Vec<(f64, bool)> = folded
            .iter()
            .zip(labels)
            .map(|(f, label)| (cascade(f.first, f.full, f.gated, band), *label))
            .collect();
        let (threshold, figures) = choose_threshold(&scored);
        let skipped = folded
            .iter()
            .filter(|f| f.gated && (f.first < band.0 || f.first > band.1))
            .count() as f64
            / gated;
        rows.push((band, threshold, figures, skipped));
    }
    let best_f1 = rows.iter().map(|row| row.2[2]).fold(0.0, f64::max);
    let mut chosen = rows[0];
    for row in &rows {
        if row.2[2] + BAND_TOLERANCE >= best_f1 && row.3 > chosen.3 + 1e-12 {
            chosen = *row;
        }
    }
    if chosen.2[2] + BAND_TOLERANCE < best_f1 {
        // The full model everywhere was not within reach of the best: take the best.
        for row in &rows {
            if row.2[2] >= best_f1 {
                chosen = *row;
                break;
            }
        }
    }
    chosen
}

/// Puts judged values back beside every example.
fn spread(examples: &[Example], judged: impl Iterator<Item = f64>) -> Vec<Option<f64>> {
    let mut next = judged;
    examples
        .iter()
        .map(|example| {
            if example.always_train {
                None
            } else {
                next.next()
            }
        })
        .collect()
}

/// Whether a threshold's precision, recall and F1 make it eligible.
type Eligible = dyn Fn(&[f64; 3]) -> bool;

/// The threshold chosen on out-of-fold predictions: the best F1 among those that meet the
/// product's targets (precision >= 0.95, recall >= 0.90); when none does, the best F1 among
/// those with precision at least 0.75 (an analyst stops reading a feed where one alert in
/// four is wrong); when none does either, the best F1. Among equals, the one nearest 0.5.
/// Candidates are 0.05 to 0.95 in steps of 0.01.
pub fn choose_threshold(scored: &[(f64, bool)]) -> (f64, [f64; 3]) {
    let candidates: Vec<(f64, [f64; 3])> = (5..=95)
        .map(|step| {
            let threshold = f64::from(step) / 100.0;
            (threshold, precision_recall_f1(scored, threshold))
        })
        .collect();
    let tiers: [&Eligible; 3] = [
        &|figures| figures[0] >= TARGET_PRECISION && figures[1] >= TARGET_RECALL,
        &|figures| figures[0] >= 0.75,
        &|_| true,
    ];
    for eligible in tiers {
        let mut best: Option<(f64, [f64; 3])> = None;
        for (threshold, figures) in &candidates {
            if !eligible(figures) {
                continue;
            }
            let better = match best {
                None => true,
                Some((best_threshold, best_figures)) => {
                    figures[2] > best_figures[2] + 1e-12
                        || ((figures[2] - best_figures[2]).abs() <= 1e-12
                            && (threshold - 0.5).abs() < (best_threshold - 0.5).abs())
                }
            };
            if better {
                best = Some((*threshold, *figures));
            }
        }
        if let Some(found) = best {
            return found;
        }
    }
    (0.5, precision_recall_f1(scored, 0.5))
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
        },
    };
    (model, probabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(label: bool, keys: &[&str], signal: f64, bucket: u32) -> Example {
        let mut values = [0.0; FEATURE_COUNT];
        values[0] = signal;
        Example {
            values,
            text: vec![(bucket, 1.0)],
            embedding: Vec::new(),
            label,
            group_keys: keys.iter().map(|k| k.to_string()).collect(),
            always_train: false,
        }
    }

    #[test]
    fn linked_items_share_a_fold_and_folds_balance() {
        let examples = [
            example(true, &["site:a", "project:x"], 1.0, 1),
            example(false, &["site:a"], 0.0, 2),
            example(true, &["site:b", "project:x"], 1.0, 3),
            example(false, &["site:c"], 0.0, 4),
            example(false, &["site:d"], 0.0, 5),
            example(true, &[], 1.0, 6),
        ];
        let refs: Vec<&Example> = examples.iter().collect();
        let folds = assign_folds(&refs, 3);
        // a, b joined through project x: one group of three.
        assert_eq!(folds[0], folds[1]);
        assert_eq!(folds[0], folds[2]);
        let mut sizes = [0; 3];
        for fold in &folds {
            sizes[*fold] += 1;
        }
        // The group of three fills one fold; the singles go to the emptiest folds.
        assert_eq!(sizes, [3, 2, 1], "{sizes:?}");
        assert_eq!(assign_folds(&refs, 3), folds, "deterministic");
    }

    #[test]
    fn fitting_separates_a_learnable_signal_through_both_blocks() {
        // The label is carried by the structured feature for some items and by a text bucket
        // for others: the fit must use both.
        let mut examples = Vec::new();
        for index in 0..60u32 {
            let label = index % 2 == 0;
            let through_text = index % 3 == 0;
            let mut item = example(
                label,
                &[],
                if label && !through_text { 1.0 } else { 0.0 },
                if label && through_text {
                    7
                } else {
                    100 + index
                },
            );
            if !label {
                item.text = vec![(200 + index, 1.0)];
            }
            examples.push(item);
        }
        let options = TrainOptions {
            l2: 1e-3,
            l2_text: 1e-3,
            l2_embedding: 1e-3,
            iterations: 200,
            folds: 3,
        };
        let (model, _) = train(&examples, &options, "synthetic");
        assert!(model.weights[0] > 1.0, "{}", model.weights[0]);
        assert!(model.text[7] > 1.0, "{}", model.text[7]);
        let refit = train(&examples, &options, "synthetic").0;
        assert_eq!(model, refit, "deterministic");
    }

    #[test]
    fn a_third_stage_ships_only_when_the_embedding_carries_what_the_rest_misses() {
        // Structured feature 0 and a text bucket say nothing; the first embedding dimension
        // carries the label. Sites group the items in pairs, so folds are not trivial.
        let mut examples = Vec::new();
        for index in 0..80u32 {
            let label = index % 2 == 0;
            let mut item = example(label, &[&format!("site:{}", index / 2)], 0.0, index);
            item.embedding = vec![0.0; sentence::DIM];
            item.embedding[0] = if label { 1.0 } else { -1.0 };
            item.embedding[1] = f32::from(u8::try_from(index % 7).unwrap_or(0)) / 7.0;
            examples.push(item);
        }
        let options = TrainOptions {
            l2: 1e-3,
            l2_text: 1e-3,
            l2_embedding: 1e-4,
            iterations: 200,
            folds: 4,
        };
        let (model, _) = train(&examples, &options, "synthetic");
        let stage = model.sentence_stage.expect("a third stage");
        assert!(stage.embedding[0] > 1.0, "{}", stage.embedding[0]);
        assert!(
            model.training.cross_validation[2] > 0.95,
            "{:?}",
            model.training
        );

        // Without the embedding the same items give no third stage.
        for item in &mut examples {
            item.embedding.clear();
        }
        let (model, _) = train(&examples, &options, "synthetic");
        assert!(model.sentence_stage.is_none());
    }

    #[test]
    fn threshold_prefers_the_targets_then_precision() {
        // Positives score 0.6 to 0.9, negatives 0.1 to 0.7: above 0.7 precision is perfect.
        let mut scored = Vec::new();
        for step in 0..10 {
            scored.push((0.6 + f64::from(step) * 0.03, true));
            scored.push((0.1 + f64::from(step) * 0.066, false));
        }
        let (threshold, figures) = choose_threshold(&scored);
        assert!(figures[0] >= 0.8, "{figures:?} at {threshold}");
        assert!(threshold > 0.55, "{threshold}");
    }
}
