//! Labelled corpora and their evaluation, pure: reading JSON Lines of labelled documents and
//! scoring a scorer against them (precision, recall and F1 with bootstrap intervals,
//! calibration, errors by category, format, language and false-alarm kind).
//!
//! Two formats are read, line by line:
//! - the project's own: `{"id", "is_tge", "text", "title"?, "category"?, "url"?}`;
//! - the labelled corpus of real texts beside the repository (`../shared/corpus/labelled.jsonl`,
//!   see its README): `{"id", "text", "label", "second_label", "consensus", "kind",
//!   "category", "format", "language", "project", "token", "source", "website", "date",
//!   "split", "note"}`. Its texts are never copied into the repository.
//!
//! `corpus/` beside this file holds texts written for this project (`own-train.jsonl`,
//! `own-heldout.jsonl`, formerly the only corpus). They may help training; they never count in
//! a reported figure, because a model learns the prose of whoever wrote its texts.

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::features::FEATURE_NAMES;
use super::model::figures;
use super::scorer::{Input, Scorer};

/// The year the project's own texts were written in: their "past years" are the years
/// before it. Items of the real-text corpus carry their own date.
pub const CORPUS_YEAR: i32 = 2026;

/// Texts written for this project, first part (see the module header).
pub const TRAIN: &str = include_str!("corpus/own-train.jsonl");
/// Texts written for this project, second part.
pub const HELDOUT: &str = include_str!("corpus/own-heldout.jsonl");

/// One labelled document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledItem {
    /// Identifier, unique in its file.
    pub id: String,
    /// Labelling-policy category (`pos_listing`, `glossary`...); `unlabelled` when absent.
    pub category: String,
    /// Whether it announces a TGE.
    pub is_tge: bool,
    /// Title.
    pub title: Option<String>,
    /// Body text.
    pub text: String,
    /// Where it came from.
    pub url: Option<String>,
    /// Genre (`news`, `exchange_notice`, `docs`...), when known.
    pub format: Option<String>,
    /// ISO 639-1 language, when known.
    pub language: Option<String>,
    /// Registered domain it came from, when known (cross-validation groups by it).
    pub website: Option<String>,
    /// `train` or `heldout`, when the corpus is split.
    pub split: Option<String>,
    /// Whether both labelling passes agreed (true when there was one pass).
    pub consensus: bool,
    /// The project a positive names, when known.
    pub project: Option<String>,
    /// The token a positive names, when known.
    pub token: Option<String>,
    /// Publication date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), when known.
    pub date: Option<String>,
}

impl LabelledItem {
    /// The year the text was written in: its date's, else `default`.
    pub fn year(&self, default: i32) -> i32 {
        self.date
            .as_deref()
            .and_then(|date| date.get(..4))
            .and_then(|year| year.parse::<i32>().ok())
            .filter(|year| (2000..=2100).contains(year))
            .unwrap_or(default)
    }
}

/// A line as written, in either format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    is_tge: Option<bool>,
    #[serde(default)]
    label: Option<u8>,
    #[serde(default)]
    title: Option<String>,
    text: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    second_label: Option<u8>,
    #[serde(default)]
    consensus: Option<bool>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    website: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

impl RawItem {
    fn into_item(self) -> Result<LabelledItem, String> {
        let is_tge = match (self.is_tge, self.label) {
            (Some(is_tge), None) => is_tge,
            (None, Some(0)) => false,
            (None, Some(1)) => true,
            (None, Some(other)) => return Err(format!("label must be 0 or 1, got {other}")),
            (Some(_), Some(_)) => return Err("give either is_tge or label, not both".into()),
            (None, None) => return Err("missing field `is_tge` (or `label`)".into()),
        };
        if let Some(second) = self.second_label
            && second > 1
        {
            return Err(format!("second_label must be 0 or 1, got {second}"));
        }
        // Read for validation only: the kind is implied by the label and category, the note
        // is for people.
        let _ = (self.kind, self.note);
        let empty_to_none = |value: Option<String>| value.filter(|text| !text.trim().is_empty());
        Ok(LabelledItem {
            id: self.id,
            category: self.category.unwrap_or_else(|| "unlabelled".into()),
            is_tge,
            title: self.title,
            text: self.text,
            url: self.url.or(self.source),
            format: empty_to_none(self.format),
            language: empty_to_none(self.language),
            website: empty_to_none(self.website),
            split: empty_to_none(self.split),
            consensus: self.consensus.unwrap_or(true),
            project: empty_to_none(self.project),
            token: empty_to_none(self.token),
            date: empty_to_none(self.date),
        })
    }
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
        let parse_error = |message: String| CorpusError::Parse {
            source_name: source_name.to_owned(),
            line: line_number,
            message,
        };
        let raw: RawItem = serde_json::from_str(&line).map_err(|err| {
            parse_error(format!(
                "not a labelled item ({{\"id\", \"is_tge\" or \"label\", \"text\", ...}}): {err}"
            ))
        })?;
        let item = raw.into_item().map_err(parse_error)?;
        items.push(item);
    }
    Ok(items)
}

/// The scorer input of a labelled item (tier 2, the neutral prior); `year` is used when the
/// item has no date.
pub fn input_of(item: &LabelledItem, year: i32) -> Input<'_> {
    Input {
        title: item.title.as_deref().unwrap_or(""),
        text: &item.text,
        tier: 2,
        year: item.year(year),
        url: item.url.as_deref(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_are_read_and_bad_lines_named() {
        let text = concat!(
            "{\"id\": \"a\", \"is_tge\": true, \"text\": \"x\"}\n",
            "\n",
            "{\"id\": \"b\", \"text\": \"y\", \"label\": 0, \"second_label\": 1, \"consensus\": false, \"kind\": \"hard_negative\", \"category\": \"glossary\", \"format\": \"docs\", \"language\": \"en\", \"project\": \"\", \"token\": \"\", \"source\": \"https://a.example/x\", \"website\": \"a.example\", \"date\": \"2024-05\", \"split\": \"train\", \"note\": \"n\"}\n",
        );
        let items = read_labelled(text.as_bytes(), "t.jsonl").unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_tge && items[0].consensus);
        assert!(!items[1].is_tge && !items[1].consensus);
        assert_eq!(items[1].project, None, "empty strings are absent");
        assert_eq!(items[1].year(2026), 2024);
        assert_eq!(items[0].year(2026), 2026);
        for (line, needle) in [
            ("{\"id\": \"c\", \"text\": \"z\"}", "missing field `is_tge`"),
            (
                "{\"id\": \"c\", \"text\": \"z\", \"label\": 2}",
                "label must be 0 or 1",
            ),
            (
                "{\"id\": \"c\", \"text\": \"z\", \"is_tge\": true, \"lable\": 1}",
                "unknown field",
            ),
            ("not json", "t.jsonl:1"),
        ] {
            let err = read_labelled(line.as_bytes(), "t.jsonl")
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{line} -> {err}");
        }
    }

    #[test]
    fn bootstrap_intervals_contain_the_figures_and_are_reproducible() {
        let mut outcomes = Vec::new();
        for index in 0..200 {
            // 90 tp, 10 fp, 20 fn, 80 tn.
            let pair = match index {
                0..90 => (true, true),
                90..100 => (true, false),
                100..120 => (false, true),
                _ => (false, false),
            };
            outcomes.push(pair);
        }
        let intervals = bootstrap(&outcomes, 500, 1);
        assert!(
            intervals.precision[0] < 0.9 && intervals.precision[1] > 0.9,
            "{intervals:?}"
        );
        assert!(intervals.recall[0] < 90.0 / 110.0 && intervals.recall[1] > 90.0 / 110.0);
        assert!(intervals.precision[1] - intervals.precision[0] < 0.2);
        assert_eq!(bootstrap(&outcomes, 500, 1), intervals);
    }

    #[test]
    fn extraction_matches_are_lenient_on_suffixes_and_dollar_signs() {
        assert!(same_project("Fhenix Protocol", "Fhenix"));
        assert!(same_project("Kelvora 12", "kelvora 12"));
        assert!(!same_project("Kelvora 12", "KV12"));
        assert!(!same_project("", "x"));
        assert!(same_token("KV12", "$kv12"));
        assert!(!same_token("KV12", "KV"));
        assert_eq!(false_alarm_kind("glossary_docs"), "glossary or explainer");
        assert_eq!(
            false_alarm_kind("later_airdrop_season"),
            "later airdrop season"
        );
        assert_eq!(false_alarm_kind("wallet_outage"), "other");
    }
}
