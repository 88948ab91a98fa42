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
//! This directory also holds texts written for this project (`own-train.jsonl`,
//! `own-heldout.jsonl`, formerly the only corpus). They may help training; they never count in
//! a reported figure, because a model learns the prose of whoever wrote its texts.
//!
//! Files: reading here; judging a scorer in `report.rs`.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use super::scorer::Input;

mod report;

pub use report::*;

/// The year the project's own texts were written in: their "past years" are the years
/// before it. Items of the real-text corpus carry their own date.
pub const CORPUS_YEAR: i32 = 2026;

/// Texts written for this project, first part (see the module header).
pub const TRAIN: &str = include_str!("own-train.jsonl");
/// Texts written for this project, second part.
pub const HELDOUT: &str = include_str!("own-heldout.jsonl");

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

#[cfg(test)]
mod tests;
