//! Feature extraction, pure: turns a document into the fixed feature vector the model scores,
//! plus the spans that made each feature fire (the evidence), the project, the token and the
//! stated event date.
//!
//! Speed matters here (every document goes through it), so the text is scanned once by one
//! Aho-Corasick automaton for all cue phrases, once by the watchlist automaton and once by a
//! byte loop for code density; regular expressions (dates, tickers, project names) only run in
//! windows around the event phrases. Word boundaries are checked on every match, so "tge"
//! never matches inside "outage" and a ticker with digits (SP1, HUD01) matches whole words only.
//!
//! Files: the feature vector's names, the document's shapes and building the extractor here;
//! the scan of a document (`Extractor::extract`) and its word lists in `scan.rs`.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind, StartKind};
use regex::Regex;
use swarm_shared::domain::Company;

use super::lexicon::{Cue, PHRASES};

mod scan;

pub(crate) use scan::{MONTHS, NOT_TICKERS};

/// Feature names, in vector order. The model file names its weights by these.
pub const FEATURE_NAMES: [&str; FEATURE_COUNT] = [
    "tge",
    "launch",
    "launch_near_token",
    "listing",
    "sale",
    "claim",
    "event_groups",
    "event_in_title",
    "medium",
    "timing",
    "date_near_event",
    "company",
    "homonym",
    "ticker",
    "project",
    "crypto",
    "tge_without_crypto",
    "no_event",
    "explainer",
    "question_title",
    "denial",
    "scam",
    "retrospective",
    "price",
    "already_trading",
    "past_year",
    "season",
    "speculation",
    "job",
    "code",
    "other_meaning",
    "paren_ticker",
    "utc_time",
    "generic_rules",
    "cjk_date",
];

/// Number of features.
pub const FEATURE_COUNT: usize = 35;

/// Index of each feature in the vector.
#[allow(missing_docs)]
pub mod f {
    pub const TGE: usize = 0;
    pub const LAUNCH: usize = 1;
    pub const LAUNCH_NEAR_TOKEN: usize = 2;
    pub const LISTING: usize = 3;
    pub const SALE: usize = 4;
    pub const CLAIM: usize = 5;
    pub const EVENT_GROUPS: usize = 6;
    pub const EVENT_IN_TITLE: usize = 7;
    pub const MEDIUM: usize = 8;
    pub const TIMING: usize = 9;
    pub const DATE_NEAR_EVENT: usize = 10;
    pub const COMPANY: usize = 11;
    pub const HOMONYM: usize = 12;
    pub const TICKER: usize = 13;
    pub const PROJECT: usize = 14;
    pub const CRYPTO: usize = 15;
    pub const TGE_WITHOUT_CRYPTO: usize = 16;
    pub const NO_EVENT: usize = 17;
    pub const EXPLAINER: usize = 18;
    pub const QUESTION_TITLE: usize = 19;
    pub const DENIAL: usize = 20;
    pub const SCAM: usize = 21;
    pub const RETROSPECTIVE: usize = 22;
    pub const PRICE: usize = 23;
    pub const ALREADY_TRADING: usize = 24;
    pub const PAST_YEAR: usize = 25;
    pub const SEASON: usize = 26;
    pub const SPECULATION: usize = 27;
    pub const JOB: usize = 28;
    pub const CODE: usize = 29;
    pub const OTHER_MEANING: usize = 30;
    pub const PAREN_TICKER: usize = 31;
    pub const UTC_TIME: usize = 32;
    pub const GENERIC_RULES: usize = 33;
    pub const CJK_DATE: usize = 34;
}

/// A document to extract features from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Title (may be empty).
    pub title: &'a str,
    /// Body text, plain.
    pub text: &'a str,
    /// Source tier 1..=4 (2 when unknown).
    pub tier: u8,
    /// The current year: years before it are past (retrospective cue).
    pub year: i32,
    /// Where the document came from, if known (feeds the feedback patterns, not the features).
    pub url: Option<&'a str>,
}

/// Where a feature fired, as a byte range of `title + "\n" + text`.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Feature index.
    pub feature: usize,
    /// What matched (the phrase, the ticker, the date...).
    pub label: String,
    /// Byte range in the joined text.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
}

/// The extracted features of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Feature values, by [`FEATURE_NAMES`] order.
    pub values: [f64; FEATURE_COUNT],
    /// The first span that made each firing feature fire.
    pub spans: Vec<Span>,
    /// Project named, if found.
    pub project: Option<String>,
    /// Token ticker, if found.
    pub token: Option<String>,
    /// Event date as stated, if found near an event phrase.
    pub event_date: Option<String>,
    /// `title + "\n" + text`, the text the spans index.
    pub joined: String,
}

struct CompanyPatterns {
    names: Vec<String>,
    tickers: Vec<Option<String>>,
    /// Index of the first company name in the phrase automaton.
    first_pattern: usize,
    /// Company of each name pattern, from `first_pattern` on.
    owners: Vec<usize>,
    ticker_matcher: Option<AhoCorasick>,
    ticker_owners: Vec<usize>,
    exclusion_matcher: Option<AhoCorasick>,
    exclusion_owners: Vec<usize>,
}

/// Compiled patterns for a watchlist. Cheap to share; build once per watchlist.
pub struct Extractor {
    phrases: AhoCorasick,
    phrase_cues: Vec<(Cue, &'static str)>,
    companies: CompanyPatterns,
    dollar_ticker: Regex,
    paren_ticker: Regex,
    word_ticker: Regex,
    project_before: Regex,
    dates: Regex,
    year: Regex,
    /// The opening's own cues (see [`OPENING_BYTES`]).
    any_paren_ticker: Regex,
    utc_time: Regex,
    generic_rules: Regex,
    cjk_date: Regex,
}

/// Bytes of title and text the opening cues read.
const OPENING_BYTES: usize = 2048;

/// Errors building an extractor (a pattern too large for the automaton, an invalid regex).
#[derive(Debug, thiserror::Error)]
#[error("building the keyword scorer: {0}")]
pub struct BuildError(pub String);

fn build_matcher(
    patterns: &[String],
    case_insensitive: bool,
) -> Result<Option<AhoCorasick>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    // A full DFA: the lexicon is a few hundred phrases (a few MB of transitions), and the NFA
    // the builder picks by default for that size scans about three times slower.
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(case_insensitive)
        .match_kind(MatchKind::LeftmostLongest)
        .start_kind(StartKind::Both)
        .kind(Some(AhoCorasickKind::DFA))
        .build(patterns)
        .map(Some)
        .map_err(|err| BuildError(err.to_string()))
}

fn regex(pattern: &str) -> Result<Regex, BuildError> {
    Regex::new(pattern).map_err(|err| BuildError(err.to_string()))
}

/// `start..end` widened by `by` bytes each side, on char boundaries.
pub(super) fn window(text: &str, start: usize, end: usize, by: usize) -> (usize, usize) {
    let mut from = start.saturating_sub(by);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + by).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    (from, to)
}

impl Extractor {
    /// Builds an extractor for a watchlist.
    pub fn new(companies: &[Company]) -> Result<Extractor, BuildError> {
        let mut phrase_cues = Vec::new();
        let mut patterns = Vec::new();
        for (cue, phrases) in PHRASES {
            for phrase in *phrases {
                phrase_cues.push((*cue, *phrase));
                patterns.push((*phrase).to_owned());
            }
        }
        let mut names = Vec::new();
        let mut tickers = Vec::new();
        let mut name_patterns = Vec::new();
        let mut owners = Vec::new();
        let mut ticker_patterns = Vec::new();
        let mut ticker_owners = Vec::new();
        let mut exclusion_patterns = Vec::new();
        let mut exclusion_owners = Vec::new();
        for (index, company) in companies.iter().enumerate() {
            names.push(company.name.clone());
            tickers.push(company.tickers.first().cloned());
            let mut seen = HashSet::new();
            for name in std::iter::once(&company.name).chain(company.aliases.iter()) {
                let trimmed = name.trim();
                if trimmed.is_empty() || !seen.insert(trimmed.to_lowercase()) {
                    continue;
                }
                name_patterns.push(trimmed.to_owned());
                owners.push(index);
            }
            for ticker in &company.tickers {
                ticker_patterns.push(ticker.to_uppercase());
                ticker_owners.push(index);
            }
            for exclusion in &company.exclusions {
                let trimmed = exclusion.trim();
                if !trimmed.is_empty() {
                    exclusion_patterns.push(trimmed.to_lowercase());
                    exclusion_owners.push(index);
                }
            }
        }
        // Watchlist names ride in the phrase automaton, after the phrases: one pass reads both.
        let first_company_pattern = patterns.len();
        patterns.extend(name_patterns.iter().cloned());
        let phrases =
            build_matcher(&patterns, true)?.ok_or_else(|| BuildError("no phrases".into()))?;
        let companies = CompanyPatterns {
            names,
            tickers,
            first_pattern: first_company_pattern,
            owners,
            ticker_matcher: build_matcher(&ticker_patterns, false)?,
            ticker_owners,
            exclusion_matcher: build_matcher(&exclusion_patterns, true)?,
            exclusion_owners,
        };
        // ASCII word boundaries keep the regex engine on its fast DFA path for non-ASCII text.
        let dates = regex(&format!(
            r"(?-u:\b)(?:20\d{{2}}-[01]\d-[0-3]\d|{MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+20\d{{2}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTHS}(?:,?\s+20\d{{2}})?|(?:in |by |from )?{MONTHS} 20\d{{2}}|(?:in|by|this|next) {MONTHS}|[QH][1-4]\s*'?(?:20)?\d{{2}}|(?:early|mid|late|end of)[\s-]+(?:{MONTHS}|20\d{{2}})|\d{{1,2}}\s+(?:Maret|Februari|Januari|November|Desember|marca|czerwca|settembre|marzo|giugno|tháng\s+\d{{1,2}}))(?-u:\b)|(?i:next week|this week|tomorrow|later today|next month|this quarter|(?:early|late)? ?q[1-4]|(?:first|second) (?:half|quarter))"
        ))?;
        Ok(Extractor {
            phrases,
            phrase_cues,
            companies,
            dollar_ticker: regex(r"\$([A-Z][A-Z0-9]{1,9})(?-u:\b)")?,
            word_ticker: regex(
                r"(?-u:\b)([A-Z][A-Z0-9]{1,9}) +(?:token|tokens|airdrop|coin|governance token)(?-u:\b)",
            )?,
            paren_ticker: regex(
                r"(?-u:\b)([A-Z][A-Za-z0-9.]{1,30}(?: [A-Z][A-Za-z0-9.]{1,30}){0,2}) \(\$?([A-Z][A-Z0-9]{1,9})\)",
            )?,
            project_before: regex(
                r"(?-u:\b)([A-Z][A-Za-z0-9.]{1,30}(?: [A-Z][A-Za-z0-9.]{1,30}){0,2})(?:'s|’s)? +(?:announces|announced|unveils|unveiled|launches|launched|sets|set|reveals|revealed|confirms|confirmed|opens|opened|schedules|scheduled|kicks off|debuts|debuted|airdrops|will launch|will list|will hold|will generate|is launching|is set to|plans|TGE|token generation event|token launch|token sale|airdrop|IDO|ICO|native token|governance token)(?-u:\b)",
            )?,
            dates,
            year: regex(r"(?-u:\b)(20[0-9]{2})(?-u:\b)")?,
            any_paren_ticker: regex(r"\(\$?[A-Z][A-Z0-9]{1,9}\)")?,
            utc_time: regex(
                r"(?i)(?-u:\b)[0-9]{1,2}:[0-9]{2}(?-u:\b)[^\n]{0,8}(?-u:\b)(?:utc|gmt|kst|sgt|hkt|cet|est|pst)(?-u:\b)|\(utc ?[+-]?[0-9]{0,2}\)",
            )?,
            generic_rules: regex(
                r"(?i)(?-u:\b)(?:users must|eligible users|requirements|how it works|terms and conditions|each project|projects (?:that|which)|criteria|step [1-9]|participants must|you must)(?-u:\b)",
            )?,
            cjk_date: regex(
                r"[0-9]{1,2}\s*月\s*[0-9]{1,2}\s*日|[0-9]{1,2}\s*월\s*[0-9]{1,2}\s*일",
            )?,
        })
    }
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("companies", &self.companies.names.len())
            .finish()
    }
}
