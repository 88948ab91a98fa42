//! Offline classification, shared by `tge-swarm classify` and `POST /api/v1/classify`: the
//! request and response shapes and the mapping from a scored document to the contract
//! `{"id", "is_tge", "score", "project", "token", "event_date", "evidence"}`.

use serde::{Deserialize, Serialize};
use swarm_agents::keyword::current_year;
use swarm_agents::keyword::scorer::{Input, Scorer};
use utoipa::ToSchema;

/// One document to classify. Fields other than these are ignored, so records from other tools
/// (with labels, languages, sources) can be piped in as they are.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ClassifyInput {
    /// Any JSON value; echoed back.
    pub id: serde_json::Value,
    /// Body text (plain). May be empty when a title is given.
    #[serde(default)]
    pub text: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Where the document came from.
    #[serde(default)]
    pub url: Option<String>,
}

/// The verdict on one document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassifyOutput {
    /// The input's id.
    pub id: serde_json::Value,
    /// Whether it announces a token generation event.
    pub is_tge: bool,
    /// Calibrated probability, 0..1.
    pub score: f64,
    /// Project named.
    pub project: Option<String>,
    /// Token ticker named.
    pub token: Option<String>,
    /// Event date as stated.
    pub event_date: Option<String>,
    /// The evidence that moved the score, strongest first: `feature:match (+w) — snippet`.
    pub evidence: Vec<String>,
}

/// Why a document cannot be classified.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidInput {
    /// Neither text nor title.
    #[error("document has neither `text` nor `title`")]
    Empty,
}

/// Scores one document (tier 2, the neutral source prior) with every stage it needs.
pub fn classify_one(scorer: &Scorer, input: ClassifyInput) -> Result<ClassifyOutput, InvalidInput> {
    classify_within(scorer, input, &mut || true)
}

/// Scores one document; `may_read_meaning` is asked before the sentence encoder reads it and
/// may refuse (a budget), leaving the verdict to the n-gram stage.
pub fn classify_within(
    scorer: &Scorer,
    input: ClassifyInput,
    may_read_meaning: &mut dyn FnMut() -> bool,
) -> Result<ClassifyOutput, InvalidInput> {
    let title = input.title.as_deref().unwrap_or("");
    if input.text.trim().is_empty() && title.trim().is_empty() {
        return Err(InvalidInput::Empty);
    }
    let detection = scorer.score_within(
        Input {
            title,
            text: &input.text,
            tier: 2,
            year: current_year(),
            url: input.url.as_deref(),
        },
        may_read_meaning,
    );
    let evidence = detection
        .evidence
        .iter()
        .map(|e| format!("{} ({:+.2}) — {}", e.feature, e.weight, e.snippet))
        .collect();
    Ok(ClassifyOutput {
        id: input.id,
        is_tge: detection.is_tge,
        score: (detection.score * 1e4).round() / 1e4,
        project: detection.project,
        token: detection.token,
        event_date: detection.event_date,
        evidence,
    })
}
