//! Which project and ticker a text is about, pure: the best-ranked candidates of its opening
//! bytes, for documents the watchlist does not name.
//!
//! A ticker candidate is an upper-case symbol (`SOMI`, `SP1`); a project candidate is a run
//! of one to three capitalised words (`Yield Guild Games`, `ZetaChain`) or a name written
//! lower case first (`edgeX`). Each is described by features (`candidates.rs`: how often and
//! where it appears, how it is written, `$SOMI`, `(SOMI)`, `SOMI/USDT`, `Somnia (SOMI)`,
//! whether the ticker abbreviates it, whether it is an exchange, a symbol of the trade or a
//! word written in lower case elsewhere, whether the text links a site or handle of that
//! name) and a linear ranker scores them: its weights are learned by `tge-swarm train` from
//! the labelled positives (`train/extraction.rs`) and shipped in the model file. The ticker
//! is chosen first; the project's features read it.

mod candidates;
mod file;
mod words;

pub use candidates::{Candidate, PROJECT_FEATURES, TICKER_FEATURES};
pub use file::RankerFile;

/// Bytes of the text read.
pub const OPENING_BYTES: usize = 4096;

/// Log-odds under which the best ticker candidate is not taken: a text whose only symbols
/// are `USDT` and `UTC` names no ticker. Projects have no floor: the best-ranked name is
/// taken (a floor cost accuracy out of fold).
pub const TICKER_FLOOR: f64 = -4.0;

/// A linear scorer of candidates: the bias and one weight per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Intercept.
    pub bias: f64,
    /// One weight per feature, in the feature list's order.
    pub weights: Vec<f64>,
}

impl Linear {
    /// A candidate's log-odds of being the one.
    pub fn score(&self, values: &[f64]) -> f64 {
        self.bias
            + self
                .weights
                .iter()
                .zip(values)
                .map(|(weight, value)| weight * value)
                .sum::<f64>()
    }

    /// The weights of `named` (feature name, weight), zero for the others.
    fn of(names: &[&str], named: &[(&str, f64)]) -> Linear {
        Linear {
            bias: 0.0,
            weights: names
                .iter()
                .map(|name| {
                    named
                        .iter()
                        .find(|(known, _)| known == name)
                        .map_or(0.0, |(_, weight)| *weight)
                })
                .collect(),
        }
    }
}

/// The two rankers: tickers, then projects.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranker {
    /// Scores ticker candidates ([`TICKER_FEATURES`]).
    pub ticker: Linear,
    /// Scores project candidates ([`PROJECT_FEATURES`]).
    pub project: Linear,
}

impl Ranker {
    /// Hand-set weights for a model file without learned ones (and for training, which
    /// reads candidates only): a symbol's `$`, parentheses and pairs, a name in the opening
    /// sentence, beside the ticker or abbreviated by it; symbols of the trade, common words
    /// and words written in lower case elsewhere ruled out.
    pub fn hand_set() -> Ranker {
        Ranker {
            ticker: Linear::of(
                TICKER_FEATURES,
                &[
                    ("count", 1.0),
                    ("dollar", 3.0),
                    ("parenthesised", 3.0),
                    ("token_word_after", 2.0),
                    ("quote_pair_after", 3.0),
                    ("shouted_heading", -0.5),
                    ("word_of_the_trade", -10.0),
                ],
            ),
            project: Linear::of(
                PROJECT_FEATURES,
                &[
                    ("count", 1.0),
                    ("in_first_sentence", 1.5),
                    ("ticker_in_parentheses_after", 4.0),
                    ("ticker_abbreviates", 2.0),
                    ("capitals_only", -1.0),
                    ("written_lower_case_elsewhere", -10.0),
                    ("common_words_only", -10.0),
                    ("time_or_period", -10.0),
                    ("description_based", -10.0),
                ],
            ),
        }
    }
}

/// The salient project and ticker of a text.
#[derive(Debug)]
pub struct Salience {
    patterns: candidates::Patterns,
    ranker: Ranker,
}

/// Whether the match at `start` opens a sentence: the text's start, or after a line break or
/// a sentence's end.
fn opens_sentence(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t']);
    before.is_empty() || before.ends_with(['.', '!', '?', '\n', ':', '。', '"', '“'])
}

/// A word of a time or a period, not of a name: `AM`, `UTC`, `Q3`, `H2`, `2024`, `14:00`.
fn is_time_word(word: &str) -> bool {
    let upper = word.to_ascii_uppercase();
    matches!(upper.as_str(), "AM" | "PM" | "UTC" | "GMT")
        || (upper.len() == 2
            && (upper.starts_with('Q') || upper.starts_with('H'))
            && upper.as_bytes()[1].is_ascii_digit())
        || word
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ':')
}
/// Whether `ticker` abbreviates `name`: the name, letters only, begins with the ticker's
/// first three letters, or with its first letter and contains the rest in order
/// (AXL, Axelar; ZETA, ZetaChain).
fn abbreviates(ticker: &str, name: &str) -> bool {
    let letters: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let symbol = ticker.to_lowercase();
    if letters.is_empty() || symbol.len() < 2 {
        return false;
    }
    let head: String = symbol.chars().take(3).collect();
    if letters.starts_with(&head) {
        return true;
    }
    let mut rest = letters.chars();
    let mut symbol_chars = symbol.chars();
    if symbol_chars.next() != rest.next() {
        return false;
    }
    for wanted in symbol_chars {
        if !rest.any(|c| c == wanted) {
            return false;
        }
    }
    true
}

impl Salience {
    /// Compiles the patterns; `ranker` (a model's learned weights) or the hand-set weights.
    pub fn new(ranker: Option<Ranker>) -> Result<Salience, regex::Error> {
        Ok(Salience {
            patterns: candidates::Patterns::new()?,
            ranker: ranker.unwrap_or_else(Ranker::hand_set),
        })
    }

    /// The most salient `(project, ticker)` of `text`, either possibly none.
    pub fn find(&self, text: &str) -> (Option<String>, Option<String>) {
        let opening = opening(text);
        let ticker = pick(
            &self.ranker.ticker,
            self.patterns.tickers(opening),
            TICKER_FLOOR,
        );
        let project = pick(
            &self.ranker.project,
            self.patterns.projects(opening, ticker.as_deref()),
            f64::NEG_INFINITY,
        );
        (project, ticker)
    }

    /// The ticker candidates of `text`'s opening (for training).
    pub fn ticker_candidates(&self, text: &str) -> Vec<Candidate> {
        self.patterns.tickers(opening(text))
    }

    /// The project candidates of `text`'s opening given the chosen ticker (for training).
    pub fn project_candidates(&self, text: &str, ticker: Option<&str>) -> Vec<Candidate> {
        self.patterns.projects(opening(text), ticker)
    }
}

/// The first [`OPENING_BYTES`] of `text`, on a character boundary.
fn opening(text: &str) -> &str {
    let mut end = text.len().min(OPENING_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The best-scoring candidate (the earliest among equals), unless it scores under `floor`.
pub fn pick(scorer: &Linear, candidates: Vec<Candidate>, floor: f64) -> Option<String> {
    let mut best: Option<(f64, Candidate)> = None;
    for candidate in candidates {
        let score = scorer.score(&candidate.values);
        if best.as_ref().is_none_or(|(top, _)| score > *top) {
            best = Some((score, candidate));
        }
    }
    best.filter(|(score, _)| *score >= floor)
        .map(|(_, candidate)| candidate.name)
}

/// Whether `word` occurs in `text` in lower case as a whole word.
fn appears_lowercase(text: &str, word: &str) -> bool {
    let lower = word.to_lowercase();
    if lower == word {
        return false;
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find(&lower) {
        let start = from + offset;
        let end = start + lower.len();
        // In running prose: after a space, before a space or a comma (not a domain or a
        // handle such as `evmos.org` or `@evmos`).
        let before_ok = start > 0 && bytes[start - 1] == b' ';
        let after_ok = end < bytes.len() && matches!(bytes[end], b' ' | b',');
        if before_ok && after_ok {
            return true;
        }
        from = end;
    }
    false
}

#[cfg(test)]
mod tests;
