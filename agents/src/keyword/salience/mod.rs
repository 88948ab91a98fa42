//! Which project and ticker a text is about, pure: the most salient candidates of its opening
//! bytes, for documents the watchlist does not name.
//!
//! A ticker candidate is an upper-case symbol (`SOMI`, `SP1`); it scores by how often it
//! appears and how it is written (`$SOMI`, `(SOMI)`, `SOMI token`, `SOMI/USDT`). A project
//! candidate is a run of one to three capitalised words (`Yield Guild Games`, `ZetaChain`);
//! it scores by how often it appears, whether the opening sentence names it, whether the
//! chosen ticker stands beside it (`Somnia (SOMI)`) and whether the ticker abbreviates it
//! (SOMI, Somnia). Exchanges, months, weekdays and sentence-initial words are not projects;
//! quote currencies and acronyms of the trade (USDT, TGE, UTC) are not tickers.

use std::collections::HashMap;

use regex::Regex;

mod words;

use words::{NOT_PROJECTS, NOT_TICKERS};

/// Bytes of the text read.
const OPENING_BYTES: usize = 4096;

/// The salient project and ticker of a text.
#[derive(Debug)]
pub struct Salience {
    symbol: Regex,
    name: Regex,
}

fn is_not_ticker(symbol: &str) -> bool {
    NOT_TICKERS.contains(&symbol)
}

fn is_not_project_word(word: &str) -> bool {
    NOT_PROJECTS.contains(&word.to_lowercase().as_str())
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

/// Whether the match at `start` opens a sentence: the text's start, or after a line break or
/// a sentence's end.
fn opens_sentence(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t']);
    before.is_empty() || before.ends_with(['.', '!', '?', '\n', ':', '。', '"', '“'])
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
    /// Compiles the patterns.
    pub fn new() -> Result<Salience, regex::Error> {
        Ok(Salience {
            symbol: Regex::new(r"(\$)?(?-u:\b)([A-Z][A-Z0-9]{1,9})(?-u:\b)")?,
            name: Regex::new(
                r"(?-u:\b)((?:[A-Z][A-Za-z0-9]*|[a-z]+[A-Z][A-Za-z0-9]*)(?:[.\-][A-Za-z0-9]+)?(?: (?:[A-Z][A-Za-z0-9]*|[0-9]+(?:\.[0-9]+)?)){0,2})(?-u:\b)",
            )?,
        })
    }

    /// The most salient `(project, ticker)` of `text`, either possibly none.
    pub fn find(&self, text: &str) -> (Option<String>, Option<String>) {
        let mut end = text.len().min(OPENING_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let opening = &text[..end];
        let ticker = self.ticker(opening);
        let project = self.project(opening, ticker.as_deref());
        (project, ticker)
    }

    fn ticker(&self, text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut scores: HashMap<&str, (f64, usize)> = HashMap::new();
        for found in self.symbol.captures_iter(text) {
            let Some(symbol) = found.get(2) else { continue };
            let word = symbol.as_str();
            if is_not_ticker(word) || word.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let mut score = 1.0;
            if found.get(1).is_some() {
                score += 3.0;
            }
            let before = symbol.start().checked_sub(1).map(|at| bytes[at]);
            let after = bytes.get(symbol.end()).copied();
            if before == Some(b'(') && after == Some(b')') {
                score += 3.0;
            }
            let rest = &text[symbol.end()..];
            if rest.starts_with(" token")
                || rest.starts_with(" airdrop")
                || rest.starts_with(" coin")
            {
                score += 2.0;
            }
            if rest.starts_with("/USDT") || rest.starts_with("/USDC") || rest.starts_with("USDT") {
                score += 3.0;
            }
            // A shouted heading is not a ticker: neighbours in capitals too.
            let shouted = rest
                .split_whitespace()
                .next()
                .is_some_and(|next| next.len() > 3 && next.chars().all(|c| c.is_ascii_uppercase()));
            if shouted {
                score -= 0.5;
            }
            let entry = scores.entry(word).or_insert((0.0, symbol.start()));
            entry.0 += score;
        }
        best(scores, 1.0)
    }

    fn project(&self, text: &str, ticker: Option<&str>) -> Option<String> {
        let first_sentence_end = text
            .find(['.', '\n', '!', '?', '。'])
            .unwrap_or(text.len())
            .max(80)
            .min(text.len());
        let mut scores: HashMap<String, (f64, usize)> = HashMap::new();
        let mut named_in_running_text: std::collections::HashSet<String> =
            std::collections::HashSet::new();
        for found in self.name.find_iter(text) {
            let mut words: Vec<&str> = found.as_str().split(' ').collect();
            // Drop leading words that are not names ("Today Somnia" -> "Somnia"), and
            // trailing ones that name the event ("Connext Airdrop" -> "Connext").
            while words.first().is_some_and(|word| is_not_project_word(word)) {
                words.remove(0);
            }
            while words.len() > 1 && words.last().is_some_and(|word| is_not_project_word(word)) {
                words.pop();
            }
            if words.is_empty() || words[0].chars().all(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            let candidate = words.join(" ");
            // A capitalised common word ("Introducing", "Summary") is written in lower case
            // elsewhere, or is a sentence opener; a name is not.
            if words.len() == 1 && appears_lowercase(text, &candidate) {
                continue;
            }
            // Times and periods ("AM UTC", "Q3 2024") and descriptions ("Solana-based") are
            // not names.
            if words.iter().all(|word| is_time_word(word)) || candidate.ends_with("-based") {
                continue;
            }
            if candidate.len() < 2
                || ticker.is_some_and(|symbol| symbol == candidate)
                || candidate
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && is_not_ticker(&candidate)
            {
                continue;
            }
            // Where the kept words begin (leading and trailing words may have been dropped).
            let start = found.start() + found.as_str().find(candidate.as_str()).unwrap_or(0);
            let mut score = 1.0;
            if start < first_sentence_end {
                score += 1.5;
            }
            let mut tied = false;
            if let Some(symbol) = ticker {
                let after = &text[found.end()..];
                let paren = format!(" ({symbol})");
                let dollar = format!(" (${symbol})");
                if after.starts_with(&paren) || after.starts_with(&dollar) {
                    score += 4.0;
                    tied = true;
                }
                if abbreviates(symbol, &candidate) {
                    score += 2.0;
                    tied = true;
                }
            }
            if candidate.len() > 1
                && candidate
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                // Capitals alone are likelier a ticker or an acronym than a project's name.
                score *= 0.5;
            }
            if words.len() == 1 && (tied || !opens_sentence(text, start)) {
                named_in_running_text.insert(candidate.clone());
            }
            let entry = scores.entry(candidate).or_insert((0.0, start));
            entry.0 += score;
        }
        // A single capitalised word seen only where sentences open ("Having", "Allocation")
        // is likelier an ordinary word than a name, unless the ticker stands by it.
        for (candidate, (score, _)) in scores.iter_mut() {
            if !candidate.contains(' ') && !named_in_running_text.contains(candidate) {
                *score *= 0.5;
            }
        }
        let borrowed: HashMap<&str, (f64, usize)> =
            scores.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        if let Some(found) = best(borrowed, 2.5) {
            return Some(found);
        }
        // Below the bar, a name the ticker abbreviates still beats none.
        let symbol = ticker?;
        let abbreviated: HashMap<&str, (f64, usize)> = scores
            .iter()
            .filter(|(name, _)| abbreviates(symbol, name))
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        best(abbreviated, 0.0)
    }
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

/// The highest-scoring candidate at or above `floor` (earliest among equals).
fn best(scores: HashMap<&str, (f64, usize)>, floor: f64) -> Option<String> {
    let mut ranked: Vec<(&str, f64, usize)> = scores
        .into_iter()
        .map(|(name, (score, first))| (name, score, first))
        .filter(|(_, score, _)| *score >= floor)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    ranked.first().map(|(name, _, _)| (*name).to_owned())
}

#[cfg(test)]
mod tests;
