//! The keyword precision scorer, pure: the features of a document (see `features/`) and,
//! past the cheap gate, its hashed n-grams (see `text.rs`) scored by the learned model (see
//! `model.rs`), shifted by the feedback adaptation layer, the tokens that already trade (see
//! `trading.rs`) and the source prior, into a probability with the evidence spans that drove
//! it.

use std::sync::Arc;

use swarm_shared::domain::{Company, Detection, Evidence, ticker_key};

pub use super::features::{BuildError, Input};
use super::features::{Extracted, Extractor, FEATURE_COUNT, FEATURE_NAMES, window};
use super::model::{Adaptation, Model, passes_gate, pattern_keys, sigmoid, text_input};
use super::sentence;
use super::trading::TradingTokens;

/// Log-odds prior by source tier 1..=4: a tier-1 newsroom is likelier to report a real launch
/// than an aggregator. The corpus carries no tiers, so this prior is set, not learned; tier 2 is
/// the neutral default used for offline classification.
pub const TIER_PRIOR: [f64; 4] = [0.3, 0.0, -0.1, -0.2];

/// Probability (before feedback) from which the salient project and ticker are looked for.
pub const SALIENCE_FROM: f64 = 0.1;

/// Evidence items kept per detection, strongest first.
pub const MAX_EVIDENCE: usize = 8;

/// The scorer: compiled patterns, the model and the feedback layer. Cheap to share; build once
/// per watchlist.
pub struct Scorer {
    extractor: Extractor,
    salience: super::salience::Salience,
    model: Model,
    threshold: f64,
    adaptation: Arc<Adaptation>,
    trading: Arc<TradingTokens>,
    already_trading_shift: f64,
    /// The watchlist's tickers (upper case, without `$`) and the company each names.
    watch_tickers: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("extractor", &self.extractor)
            .field("threshold", &self.threshold)
            .field("adapted_keys", &self.adaptation.len())
            .finish()
    }
}

/// A window of `text` around a byte range, on char boundaries, whitespace collapsed.
fn snippet(text: &str, start: usize, end: usize) -> String {
    const CONTEXT: usize = 60;
    let (from, to) = window(text, start, end, CONTEXT);
    // Whitespace collapsed in one pass (snippets are built for every scored document).
    let mut out = String::with_capacity(to - from + 8);
    if from > 0 {
        out.push('…');
    }
    let mut pending_space = false;
    for c in text[from..to].chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() && !out.ends_with('…') {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    if to < text.len() {
        out.push('…');
    }
    out
}

/// The model's log-odds for a document and the parts behind them.
struct Logit<'m> {
    /// The log-odds, before feedback and prior.
    z: f64,
    /// The structured weights of the stage that decided.
    dense_weights: &'m [f64; FEATURE_COUNT],
    /// The n-gram weights of the stage that decided (empty when no stage read the n-grams).
    text_weights: &'m [f32],
    /// The n-grams' share of `z`.
    text: f64,
    /// The embedding's share of `z`, when the third stage decided.
    meaning: Option<f64>,
}

impl Scorer {
    /// The cascade: the first stage, the n-grams of a gated document it is unsure of, and the
    /// sentence encoder for one the second stage leaves near the threshold.
    /// `may_read_meaning` is asked before the third stage runs and may refuse (a budget); the
    /// second stage then decides.
    fn logit(
        &self,
        values: &[f64; FEATURE_COUNT],
        joined: &str,
        may_read_meaning: &mut dyn FnMut() -> bool,
    ) -> Logit<'_> {
        let gated = passes_gate(values, joined);
        let (dense, dense_weights, with_text) = self.model.route(values, gated);
        if !with_text {
            return Logit {
                z: dense,
                dense_weights,
                text_weights: &[],
                text: 0.0,
                meaning: None,
            };
        }
        let text = super::text::score(&self.model.text, joined);
        let second = Logit {
            z: dense + text,
            dense_weights,
            text_weights: &self.model.text,
            text,
            meaning: None,
        };
        let Some(stage) = &self.model.sentence_stage else {
            return second;
        };
        if !stage.decides(sigmoid(second.z)) || !may_read_meaning() {
            return second;
        }
        let Some(encoder) = sentence::encoder() else {
            return second;
        };
        let meaning = sentence::score(&stage.embedding, &sentence::embed(encoder, joined));
        let text = super::text::score(&stage.text, joined);
        Logit {
            z: stage.dense_logit(values) + text + meaning,
            dense_weights: &stage.weights,
            text_weights: &stage.text,
            text,
            meaning: Some(meaning),
        }
    }

    /// Builds a scorer for a watchlist. `threshold` overrides the model's own when set.
    pub fn new(
        companies: &[Company],
        model: Model,
        threshold: Option<f64>,
    ) -> Result<Scorer, BuildError> {
        let threshold = threshold.unwrap_or(model.threshold);
        Ok(Scorer {
            extractor: Extractor::new(companies)?,
            salience: super::salience::Salience::new(model.extraction.clone())
                .map_err(|err| BuildError(format!("salience patterns: {err}")))?,
            model,
            threshold,
            adaptation: Arc::new(Adaptation::default()),
            trading: Arc::new(TradingTokens::default()),
            already_trading_shift: 0.0,
            watch_tickers: companies
                .iter()
                .flat_map(|company| {
                    company.tickers.iter().map(|ticker| {
                        (
                            ticker.trim_start_matches('$').to_uppercase(),
                            company.name.clone(),
                        )
                    })
                })
                .collect(),
        })
    }

    /// The watchlist company whose ticker `ticker` is, if any.
    pub fn company_of_ticker(&self, ticker: &str) -> Option<&str> {
        self.watch_tickers
            .get(&ticker.trim_start_matches('$').to_uppercase())
            .map(String::as_str)
    }

    /// The same scorer with the tokens that already trade, and the log-odds a document about
    /// one of them is shifted by (`detection.already_trading_shift`).
    pub fn with_trading(mut self, trading: Arc<TradingTokens>, shift: f64) -> Scorer {
        self.trading = trading;
        self.already_trading_shift = shift;
        self
    }

    /// The same scorer with a new feedback layer.
    pub fn with_adaptation(mut self, adaptation: Arc<Adaptation>) -> Scorer {
        self.adaptation = adaptation;
        self
    }

    /// Why `ticker` is known to trade already (the operator's list, an older event), if it is.
    pub fn already_trading(&self, ticker: &str) -> Option<&str> {
        self.trading.why(ticker)
    }

    /// The decision threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The feature vector of a document (for training and inspection).
    pub fn features(&self, input: Input<'_>) -> [f64; FEATURE_COUNT] {
        self.extractor.extract(input).values
    }

    /// The structured features, the text-stage input and the text the stages read (title and
    /// text joined) of a document (for training).
    pub fn examples_of(
        &self,
        input: Input<'_>,
    ) -> ([f64; FEATURE_COUNT], super::text::Sparse, String) {
        let extracted = self.extractor.extract(input);
        let text = text_input(&extracted.values, &extracted.joined);
        (extracted.values, text, extracted.joined)
    }

    /// The model's log-odds for a document, before adaptation and prior (what feedback
    /// samples record).
    pub fn base_logit(&self, input: Input<'_>) -> f64 {
        let extracted = self.extractor.extract(input);
        self.logit(&extracted.values, &extracted.joined, &mut || true)
            .z
    }

    /// Scores a document, every stage it needs included.
    pub fn score(&self, input: Input<'_>) -> Detection {
        self.score_within(input, &mut || true)
    }

    /// Scores a document; `may_read_meaning` is asked before the third stage (the sentence
    /// encoder) reads it and may refuse, for a budget: the second stage then decides.
    pub fn score_within(
        &self,
        input: Input<'_>,
        may_read_meaning: &mut dyn FnMut() -> bool,
    ) -> Detection {
        let extracted = self.extractor.extract(input);
        let Extracted {
            values,
            spans,
            mut project,
            mut token,
            event_date,
            joined,
        } = extracted;
        let Logit {
            mut z,
            dense_weights,
            text_weights,
            text: text_logit,
            meaning,
        } = self.logit(&values, &joined, may_read_meaning);
        let tier_index = usize::from(input.tier.clamp(1, 4) - 1);
        // A watchlist company is known for sure; otherwise the text's most salient names
        // (see `salience/`) beat what was found near the event phrases. Looked for only
        // where an announcement is within reach (the bulk of a feed is not), since it costs
        // more than the scoring.
        let within_reach = sigmoid(z + TIER_PRIOR[tier_index]) >= SALIENCE_FROM;
        if values[super::features::f::COMPANY] == 0.0 && within_reach {
            let (salient_project, salient_token) = self.salience.find(&joined);
            if salient_project.is_some() {
                project = salient_project;
            }
            if salient_token.is_some() {
                token = salient_token;
            }
        }
        // The strongest contributions only: snippets cost more than the scoring itself.
        let mut contributions: Vec<(f64, &super::features::Span)> = spans
            .iter()
            .map(|span| (dense_weights[span.feature] * values[span.feature], span))
            .filter(|(contribution, _)| contribution.abs() >= 0.05)
            .collect();
        contributions.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
        let mut evidence: Vec<Evidence> = Vec::with_capacity(MAX_EVIDENCE + 1);
        for (contribution, span) in contributions.into_iter().take(MAX_EVIDENCE) {
            evidence.push(Evidence {
                feature: format!("{}:{}", FEATURE_NAMES[span.feature], span.label),
                snippet: snippet(&joined, span.start, span.end),
                weight: contribution,
            });
        }
        if text_logit.abs() >= 0.05 {
            let strongest = if within_reach {
                format!(
                    "; strongest words: {}",
                    super::text::strongest_words(text_weights, &joined, 3).join(", ")
                )
            } else {
                String::new()
            };
            evidence.push(Evidence {
                feature: "text".into(),
                snippet: format!(
                    "wording learned from labelled texts ({text_logit:+.2}){strongest}"
                ),
                weight: text_logit,
            });
        }
        if let Some(meaning) = meaning
            && meaning.abs() >= 0.05
        {
            evidence.push(Evidence {
                feature: "meaning".into(),
                snippet: format!(
                    "meaning read by the sentence encoder, for a text near the threshold ({meaning:+.2})"
                ),
                weight: meaning,
            });
        }
        if !self.adaptation.is_empty() {
            let keys = pattern_keys(input.title, input.url, project.as_deref());
            let adjustment = self.adaptation.adjustment(&keys);
            if adjustment.abs() >= 0.05 {
                z += adjustment;
                evidence.push(Evidence {
                    feature: "feedback".into(),
                    snippet: format!("analyst feedback on similar documents ({adjustment:+.2})"),
                    weight: adjustment,
                });
            }
        }
        if self.already_trading_shift != 0.0
            && let Some(ticker) = &token
            && let Some(why) = self.trading.why(ticker)
        {
            let shift = self.already_trading_shift;
            z += shift;
            evidence.push(Evidence {
                feature: format!("already_trading:{}", ticker_key(ticker)),
                snippet: format!(
                    "{} already trades ({why}) ({shift:+.2})",
                    ticker_key(ticker)
                ),
                weight: shift,
            });
        }
        z += TIER_PRIOR[tier_index];
        let score = sigmoid(z);
        evidence.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        Detection {
            score,
            is_tge: score >= self.threshold,
            project,
            token,
            event_date,
            evidence,
            join_only: false,
        }
    }
}
