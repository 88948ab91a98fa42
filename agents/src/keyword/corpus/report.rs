//! Judging a scorer on a labelled corpus: the report (precision, recall and F1 with bootstrap
//! intervals, errors by category, format and language, calibration, extraction) and how its
//! figures are counted.

use crate::keyword::features::FEATURE_NAMES;
use crate::keyword::model::figures;
use crate::keyword::scorer::Scorer;
use serde::Serialize;
use std::collections::BTreeMap;

use super::*;

/// Counts of one slice of a corpus (a category, a format, a language).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryCounts {
    /// Items.
    pub items: usize,
    /// Misclassified items.
    pub errors: usize,
    /// Of the items, positives.
    pub positives: usize,
    /// Negatives called announcements.
    pub false_alarms: usize,
    /// Positives not called announcements.
    pub misses: usize,
}

impl CategoryCounts {
    fn count(&mut self, is_tge: bool, predicted: bool) {
        self.items += 1;
        self.positives += usize::from(is_tge);
        if predicted != is_tge {
            self.errors += 1;
            if is_tge {
                self.misses += 1;
            } else {
                self.false_alarms += 1;
            }
        }
    }
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
    /// The non-zero structured features, by name.
    pub features: BTreeMap<String, f64>,
}

/// A 95 % interval.
pub type Interval = [f64; 2];

/// Bootstrap intervals of the headline figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Intervals {
    /// Resamples drawn.
    pub resamples: usize,
    /// Precision, 2.5th and 97.5th percentiles.
    pub precision: Interval,
    /// Recall.
    pub recall: Interval,
    /// F1.
    pub f1: Interval,
}

/// One row of the reliability table: items whose probability fell in `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Lower bound of the probability.
    pub from: f64,
    /// Upper bound (exclusive; the last bin includes 1).
    pub to: f64,
    /// Items in the bin.
    pub items: usize,
    /// Their mean predicted probability.
    pub mean_probability: f64,
    /// The share of them that are announcements.
    pub observed_rate: f64,
}

/// Accuracy of what is extracted from the positives that name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extraction {
    /// Positives with a labelled project.
    pub projects: usize,
    /// Of which the extracted project matches.
    pub projects_right: usize,
    /// Positives with a labelled token.
    pub tokens: usize,
    /// Of which the extracted ticker matches.
    pub tokens_right: usize,
    /// Positives for which an event date was extracted (the corpus labels no event dates,
    /// so this is coverage, not accuracy).
    pub dates_found: usize,
    /// Positives in all.
    pub positives: usize,
    /// Labelled project and token against what was extracted, for the wrong ones.
    pub wrong: Vec<ExtractionMiss>,
}

/// A positive whose project or token was extracted wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractionMiss {
    /// Item id.
    pub id: String,
    /// Labelled project and extracted one.
    pub project: (Option<String>, Option<String>),
    /// Labelled token and extracted one.
    pub token: (Option<String>, Option<String>),
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
    /// 95 % bootstrap intervals of precision, recall and F1.
    pub intervals: Intervals,
    /// Mean squared error of the probability against the label (calibration; lower is better).
    pub brier: f64,
    /// Threshold used.
    pub threshold: f64,
    /// Items the cascade's third stage (the sentence encoder) read.
    pub sentence_stage_items: usize,
    /// Counts by category.
    pub categories: BTreeMap<String, CategoryCounts>,
    /// Counts by format (genre).
    pub formats: BTreeMap<String, CategoryCounts>,
    /// Counts by language.
    pub languages: BTreeMap<String, CategoryCounts>,
    /// Negatives by the kind of false alarm they risk (see [`false_alarm_kind`]).
    pub false_alarm_kinds: BTreeMap<String, CategoryCounts>,
    /// Calibration: ten bins of predicted probability.
    pub reliability: Vec<ReliabilityBin>,
    /// Project, token and date extraction on the positives.
    pub extraction: Extraction,
    /// Every misclassified item.
    pub misses: Vec<Miss>,
}

/// The kind of false alarm a negative category risks, as the detection issue names them;
/// categories of no such kind are `other`.
pub fn false_alarm_kind(category: &str) -> &'static str {
    const KINDS: [(&str, &[&str]); 12] = [
        (
            "glossary or explainer",
            &[
                "glossary",
                "explainer",
                "guide",
                "faq",
                "tutorial",
                "definition",
            ],
        ),
        ("retrospective", &["retrospective", "post_launch_review"]),
        (
            "post-launch price or on-chain analysis",
            &[
                "price",
                "onchain",
                "post_launch",
                "market",
                "unlock",
                "tokenomics",
            ],
        ),
        (
            "later airdrop season",
            &[
                "later_airdrop",
                "season",
                "existing_token",
                "holder_airdrop",
            ],
        ),
        (
            "new listing of a trading token",
            &["secondary_listing", "perpetual", "delisting"],
        ),
        (
            "points programme",
            &["points", "incentive", "rewards", "quest"],
        ),
        (
            "denial or no date",
            &["denial", "not_launched", "delay_no_date", "cancelled"],
        ),
        ("scam warning", &["scam", "fake_announcement", "phishing"]),
        (
            "forum opinion",
            &[
                "opinion",
                "wen_question",
                "complaint",
                "criticism",
                "controversy",
            ],
        ),
        (
            "launchpad docs",
            &[
                "launchpad_docs",
                "launchpad_mechanism",
                "launchpad_feature",
                "platform_rules",
                "launch_mechanism",
            ],
        ),
        (
            "migration or rebrand",
            &["migration", "redenomination", "rebrand", "swap"],
        ),
        ("other meaning", &["other_meaning"]),
    ];
    for (kind, needles) in KINDS {
        if needles.iter().any(|needle| category.contains(needle)) {
            return kind;
        }
    }
    "other"
}

/// A project name reduced for comparison: lowercase letters and digits, words kept.
fn project_words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether an extracted project names the labelled one: the same words, or one's words
/// begin the other's ("Fhenix" for "Fhenix Protocol").
pub fn same_project(labelled: &str, extracted: &str) -> bool {
    let a = project_words(labelled);
    let b = project_words(extracted);
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let shorter = a.len().min(b.len());
    a[..shorter] == b[..shorter]
}

/// Whether an extracted ticker is the labelled token (`$` and case aside).
pub fn same_token(labelled: &str, extracted: &str) -> bool {
    let clean = |text: &str| text.trim().trim_start_matches('$').to_uppercase();
    !clean(labelled).is_empty() && clean(labelled) == clean(extracted)
}

/// A small deterministic generator (splitmix64) for the bootstrap, so a report is the same
/// on every run and machine; hand-written because the figures must not move with a crate's
/// version.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Bootstrap resamples for the intervals.
pub const RESAMPLES: usize = 2000;

/// 95 % percentile-bootstrap intervals of precision, recall and F1 over `outcomes`
/// (predicted, label), resampling items with replacement.
pub fn bootstrap(outcomes: &[(bool, bool)], resamples: usize, seed: u64) -> Intervals {
    let mut rng = SplitMix(seed);
    let mut precision = Vec::with_capacity(resamples);
    let mut recall = Vec::with_capacity(resamples);
    let mut f1 = Vec::with_capacity(resamples);
    if outcomes.is_empty() {
        return Intervals::default();
    }
    for _ in 0..resamples {
        let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
        for _ in 0..outcomes.len() {
            let (predicted, label) = outcomes[rng.below(outcomes.len())];
            match (predicted, label) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fneg += 1.0,
                (false, false) => {}
            }
        }
        let [p, r, f] = figures(tp, fp, fneg);
        precision.push(p);
        recall.push(r);
        f1.push(f);
    }
    let interval = |values: &mut Vec<f64>| -> Interval {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        [at(0.025), at(0.975)]
    };
    Intervals {
        resamples,
        precision: interval(&mut precision),
        recall: interval(&mut recall),
        f1: interval(&mut f1),
    }
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
        intervals: Intervals::default(),
        brier: 0.0,
        threshold: scorer.threshold(),
        sentence_stage_items: 0,
        categories: BTreeMap::new(),
        formats: BTreeMap::new(),
        languages: BTreeMap::new(),
        false_alarm_kinds: BTreeMap::new(),
        reliability: Vec::new(),
        extraction: Extraction::default(),
        misses: Vec::new(),
    };
    let mut squared = 0.0;
    let mut outcomes = Vec::with_capacity(items.len());
    let mut bins = vec![(0usize, 0.0f64, 0usize); 10];
    for item in items {
        let input = input_of(item, year);
        let detection = scorer.score_within(input, &mut || {
            report.sentence_stage_items += 1;
            true
        });
        let target = if item.is_tge { 1.0 } else { 0.0 };
        squared += (detection.score - target) * (detection.score - target);
        outcomes.push((detection.is_tge, item.is_tge));
        let bin = ((detection.score * 10.0) as usize).min(9);
        bins[bin].0 += 1;
        bins[bin].1 += detection.score;
        bins[bin].2 += usize::from(item.is_tge);
        let unknown = || "unknown".to_owned();
        for (map, key) in [
            (&mut report.categories, item.category.clone()),
            (
                &mut report.formats,
                item.format.clone().unwrap_or_else(unknown),
            ),
            (
                &mut report.languages,
                item.language.clone().unwrap_or_else(unknown),
            ),
        ] {
            map.entry(key)
                .or_default()
                .count(item.is_tge, detection.is_tge);
        }
        if !item.is_tge {
            report
                .false_alarm_kinds
                .entry(false_alarm_kind(&item.category).to_owned())
                .or_default()
                .count(false, detection.is_tge);
        }
        match (detection.is_tge, item.is_tge) {
            (true, true) => report.true_positives += 1,
            (false, false) => report.true_negatives += 1,
            (true, false) => report.false_positives += 1,
            (false, true) => report.false_negatives += 1,
        }
        if item.is_tge {
            let extraction = &mut report.extraction;
            extraction.positives += 1;
            extraction.dates_found += usize::from(detection.event_date.is_some());
            let mut wrong = false;
            if let Some(project) = &item.project {
                extraction.projects += 1;
                let right = detection
                    .project
                    .as_deref()
                    .is_some_and(|found| same_project(project, found));
                extraction.projects_right += usize::from(right);
                wrong |= !right;
            }
            if let Some(token) = &item.token {
                extraction.tokens += 1;
                let right = detection
                    .token
                    .as_deref()
                    .is_some_and(|found| same_token(token, found));
                extraction.tokens_right += usize::from(right);
                wrong |= !right;
            }
            if wrong {
                extraction.wrong.push(ExtractionMiss {
                    id: item.id.clone(),
                    project: (item.project.clone(), detection.project.clone()),
                    token: (item.token.clone(), detection.token.clone()),
                });
            }
        }
        if detection.is_tge != item.is_tge {
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
    [report.precision, report.recall, report.f1] = figures(tp, fp, fneg);
    report.brier = if items.is_empty() {
        0.0
    } else {
        squared / items.len() as f64
    };
    report.intervals = bootstrap(&outcomes, RESAMPLES, 0x7467_655f_6576_616c);
    for (index, (count, sum, positives)) in bins.into_iter().enumerate() {
        report.reliability.push(ReliabilityBin {
            from: index as f64 / 10.0,
            to: (index + 1) as f64 / 10.0,
            items: count,
            mean_probability: if count > 0 { sum / count as f64 } else { 0.0 },
            observed_rate: if count > 0 {
                positives as f64 / count as f64
            } else {
                0.0
            },
        });
    }
    report
}
