//! The keyword precision scorer, pure: the features of a document (see `features.rs`) scored
//! by the learned model (see `model.rs`), shifted by the feedback adaptation layer and the
//! source prior, into a probability with the evidence spans that drove it.

use std::sync::Arc;

use swarm_shared::domain::{Company, Detection, Evidence};

pub use super::features::{BuildError, Input};
use super::features::{Extracted, Extractor, FEATURE_COUNT, FEATURE_NAMES, window};
use super::model::{Adaptation, Model, pattern_keys, sigmoid};

/// Log-odds prior by source tier 1..=4: a tier-1 newsroom is likelier to report a real launch
/// than an aggregator. The corpus carries no tiers, so this prior is set, not learned; tier 2 is
/// the neutral default used for offline classification.
pub const TIER_PRIOR: [f64; 4] = [0.3, 0.0, -0.1, -0.2];

/// Evidence items kept per detection, strongest first.
pub const MAX_EVIDENCE: usize = 8;

/// The scorer: compiled patterns, the model and the feedback layer. Cheap to share; build once
/// per watchlist.
pub struct Scorer {
    extractor: Extractor,
    model: Model,
    threshold: f64,
    adaptation: Arc<Adaptation>,
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

impl Scorer {
    /// Builds a scorer for a watchlist. `threshold` overrides the model's own when set.
    pub fn new(
        companies: &[Company],
        model: Model,
        threshold: Option<f64>,
    ) -> Result<Scorer, BuildError> {
        let threshold = threshold.unwrap_or(model.threshold);
        Ok(Scorer {
            extractor: Extractor::new(companies)?,
            model,
            threshold,
            adaptation: Arc::new(Adaptation::default()),
        })
    }

    /// The same scorer with a new feedback layer.
    pub fn with_adaptation(mut self, adaptation: Arc<Adaptation>) -> Scorer {
        self.adaptation = adaptation;
        self
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

    /// The model's log-odds for a document, before adaptation and prior (what feedback
    /// samples record).
    pub fn base_logit(&self, input: Input<'_>) -> f64 {
        self.model.logit(&self.extractor.extract(input).values)
    }

    /// Scores a document.
    pub fn score(&self, input: Input<'_>) -> Detection {
        let extracted = self.extractor.extract(input);
        let Extracted {
            values,
            spans,
            project,
            token,
            event_date,
            joined,
        } = extracted;
        let mut z = self.model.logit(&values);
        // The strongest contributions only: snippets cost more than the scoring itself.
        let mut contributions: Vec<(f64, &super::features::Span)> = spans
            .iter()
            .map(|span| {
                (
                    self.model.weights[span.feature] * values[span.feature],
                    span,
                )
            })
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
        let tier_index = usize::from(input.tier.clamp(1, 4) - 1);
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
        }
    }
}
