//! Choices made on out-of-fold predictions: the cascade's bands and the threshold.

use crate::keyword::model::{TARGET_PRECISION, TARGET_RECALL, precision_recall_f1};

use super::*;

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
pub(super) fn cascade3(f: &Folded, band: (f64, f64), sentence_band: Option<(f64, f64)>) -> f64 {
    let second = cascade(f.first, f.full, f.gated, band);
    if reads_sentences(f, band, sentence_band) {
        f.sentence
    } else {
        second
    }
}

/// Whether the third stage reads a document.
pub(super) fn reads_sentences(
    f: &Folded,
    band: (f64, f64),
    sentence_band: Option<(f64, f64)>,
) -> bool {
    let second_read = f.gated && f.first >= band.0 && f.first <= band.1;
    second_read && sentence_band.is_some_and(|(low, high)| f.full >= low && f.full <= high)
}

/// The second-stage bands tried for the third stage: within them it decides. None: no third
/// stage.
pub(super) const SENTENCE_BANDS: [Option<(f64, f64)>; 9] = [
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
pub(super) struct SentenceChoice {
    /// The second-stage band within which the third stage decides; none: no third stage.
    pub(super) band: Option<(f64, f64)>,
    /// The cascade's threshold with it.
    pub(super) threshold: f64,
    /// Precision, recall and F1 there.
    pub(super) figures: [f64; 3],
    /// Share of the gated documents the third stage reads.
    pub(super) read: f64,
}

/// The third stage's band chosen on out-of-fold predictions, given the first stage's band:
/// among those within [`BAND_TOLERANCE`] of the best F1, the one that reads the fewest
/// documents (none when the third stage does not gain more than the tolerance).
pub(super) fn choose_sentence_band(
    folded: &[Folded],
    labels: &[bool],
    band: (f64, f64),
) -> SentenceChoice {
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
    cheapest(&rows, |row| row.figures[2], |row| row.read)
}

/// Of `rows` (at least one), the one with the least `work` among those whose F1 is within
/// [`BAND_TOLERANCE`] of the best; the first of equals.
fn cheapest<T: Copy>(rows: &[T], f1: impl Fn(&T) -> f64, work: impl Fn(&T) -> f64) -> T {
    let best_f1 = rows.iter().map(&f1).fold(0.0, f64::max);
    let within = |row: &T| f1(row) + BAND_TOLERANCE >= best_f1;
    let mut chosen = rows[0];
    for row in rows {
        if within(row) && (!within(&chosen) || work(row) < work(&chosen) - 1e-12) {
            chosen = *row;
        }
    }
    chosen
}

/// The first-stage bands tried: below `low` or above `high` the first stage decides alone.
pub(super) const BANDS: [(f64, f64); 12] = [
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
pub(super) fn choose_band(folded: &[Folded], labels: &[bool]) -> ((f64, f64), f64, [f64; 3], f64) {
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
    // The less the first stage leaves to the second, the less work.
    cheapest(&rows, |row| row.2[2], |row| -row.3)
}

/// Puts judged values back beside every example.
pub(super) fn spread(examples: &[Example], judged: impl Iterator<Item = f64>) -> Vec<Option<f64>> {
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
pub(super) type Eligible = dyn Fn(&[f64; 3]) -> bool;

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
