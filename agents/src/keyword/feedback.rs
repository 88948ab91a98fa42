//! The analyst-feedback layer: what a verdict on a stored event teaches (a [`FeedbackSample`]),
//! and the online [`Adaptation`] it trains, a weight per pattern key added to the model's
//! log-odds (README, "Feedback").

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::model::sigmoid;

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

impl FeedbackSample {
    /// What the adaptation layer learns from an analyst's verdict on a stored event: the
    /// pattern keys of every source document (or of the project alone when it has none),
    /// sorted and without repeats, and the log-odds of the event's score (clamped away from
    /// 0 and 1 so it stays finite).
    pub fn of_event(event: &swarm_shared::domain::TgeEvent, is_tge: bool) -> FeedbackSample {
        let mut keys = Vec::new();
        for source in &event.sources {
            keys.extend(pattern_keys(
                &source.title,
                Some(&source.url),
                event.project.as_deref(),
            ));
        }
        if event.sources.is_empty() {
            keys.extend(pattern_keys("", None, event.project.as_deref()));
        }
        keys.sort();
        keys.dedup();
        let probability = event.score.clamp(1e-6, 1.0 - 1e-6);
        FeedbackSample {
            keys,
            logit: (probability / (1.0 - probability)).ln(),
            is_tge,
        }
    }
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
