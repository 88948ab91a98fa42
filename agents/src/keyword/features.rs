//! Feature extraction, pure: turns a document into the fixed feature vector the model scores,
//! plus the spans that made each feature fire (the evidence), the project, the token and the
//! stated event date.
//!
//! Speed matters here (every document goes through it), so the text is scanned once by one
//! Aho-Corasick automaton for all cue phrases, once by the watchlist automaton and once by a
//! byte loop for code density; regular expressions (dates, tickers, project names) only run in
//! windows around the event phrases. Word boundaries are checked on every match, so "tge"
//! never matches inside "outage" and a ticker with digits (SP1, HUD01) matches whole words only.

use std::collections::HashSet;

use aho_corasick::{
    AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Anchored, Input as Haystack, MatchKind,
    StartKind,
};
use regex::Regex;
use swarm_shared::domain::Company;

use super::lexicon::{Cue, PHRASES};

/// A whole-word match: pattern index and byte range.
type WordMatch = (usize, usize, usize);

/// The leftmost-longest *whole-word* matches of an automaton, without overlaps. When the
/// longest phrase at a position is only part of a longer word ("token debut" in "token
/// debuted"), anchored searches inside it look for the shorter phrases at the same start
/// ("token"), so a failed long phrase never hides a valid short one. Failures are rare, so the
/// scan stays on the automaton's fast unanchored search.
fn whole_words(matcher: &AhoCorasick, text: &str, out: &mut Vec<WordMatch>) {
    out.clear();
    let mut at = 0;
    while at < text.len() {
        let Some(found) = matcher.find(Haystack::new(text).range(at..)) else {
            break;
        };
        let (start, end) = (found.start(), found.end());
        if at_word_boundary(text, start, end) {
            out.push((found.pattern().as_usize(), start, end));
            at = end;
            continue;
        }
        let mut shorter_end = end;
        let mut accepted = None;
        while shorter_end > start + 1 {
            let anchored = Haystack::new(text)
                .range(start..shorter_end - 1)
                .anchored(Anchored::Yes);
            let Some(shorter) = matcher.find(anchored) else {
                break;
            };
            if at_word_boundary(text, shorter.start(), shorter.end()) {
                accepted = Some(shorter);
                break;
            }
            shorter_end = shorter.end();
        }
        match accepted {
            Some(shorter) => {
                out.push((shorter.pattern().as_usize(), shorter.start(), shorter.end()));
                at = shorter.end();
            }
            None => {
                let width = text[start..].chars().next().map_or(1, char::len_utf8);
                at = start + width;
            }
        }
    }
}

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

/// Whether `text[start..end]` stands as a whole word (or words).
fn at_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
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

const NOT_PROJECT_NAMES: &[&str] = &[
    "the",
    "a",
    "an",
    "this",
    "that",
    "its",
    "their",
    "our",
    "today",
    "breaking",
    "new",
    "crypto",
    "token",
    "tokens",
    "tge",
    "airdrop",
    "why",
    "how",
    "what",
    "when",
    "after",
    "before",
    "in",
    "on",
    "and",
    "but",
    "as",
    "it",
    "we",
    "they",
    "binance",
    "coinbase",
    "okx",
    "bybit",
    "kucoin",
    "upbit",
    "exclusive",
    "report",
    "update",
    "news",
    "week",
    "daily",
    "listing",
    "trading",
    "claims",
    "heads",
    "big",
    "tomorrow",
];

/// Upper-case words that precede "token" or "airdrop" without being tickers.
const NOT_TICKERS: &[&str] = &[
    "NFT", "DAO", "ERC", "API", "AI", "USD", "TGE", "IDO", "ICO", "IEO", "DEX", "CEX", "L1", "L2",
    "ETF", "DEFI", "WEB", "THE", "NEW", "BEP", "SPL", "OFT", "JWT", "LLM", "ID", "UTC", "KRW",
];

const MONTHS: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";

/// How far around an event phrase dates, tickers and project names are looked for.
const EVENT_WINDOW: usize = 240;
/// How close a launch verb must be to the word "token".
const VERB_TOKEN_DISTANCE: usize = 48;

fn is_plausible_project(name: &str) -> bool {
    let first = name.split_whitespace().next().unwrap_or("");
    !NOT_PROJECT_NAMES.contains(&first.to_lowercase().as_str()) && name.len() >= 2
}

/// Bytes that are code punctuation: braces, semicolons, `=`, `_`, parentheses, `<>`, `#`.
const CODE_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let code = b"{};=_()<>#";
    let mut index = 0;
    while index < code.len() {
        table[code[index] as usize] = true;
        index += 1;
    }
    table
};

/// Share of bytes that are code punctuation; a hex literal (`0x`) or an indented line counts
/// as four. A table lookup without branches: this runs over every document.
fn code_density(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let bytes = text.as_bytes();
    let mut code = 0usize;
    for byte in bytes {
        code += usize::from(CODE_BYTES[usize::from(*byte)]);
    }
    code += 4 * memchr::memmem::find_iter(bytes, b"0x").count();
    code += 4 * memchr::memmem::find_iter(bytes, b"\n ").count();
    code as f64 / text.len() as f64
}

fn is_question_title(title: &str) -> bool {
    let trimmed = title.trim();
    if trimmed.ends_with('?') {
        return true;
    }
    let first = trimmed
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "what" | "how" | "why" | "should" | "is" | "are" | "does" | "can" | "apa" | "cos'è"
    )
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

    /// Extracts the features of a document.
    pub fn extract(&self, input: Input<'_>) -> Extracted {
        let mut joined = String::with_capacity(input.title.len() + 1 + input.text.len());
        joined.push_str(input.title);
        joined.push('\n');
        joined.push_str(input.text);
        // A text without a title (a social post, a page's body) opens with its headline.
        let title_end = if input.title.trim().is_empty() {
            let first_line = input
                .text
                .trim_start()
                .find('\n')
                .unwrap_or(input.text.trim_start().len());
            let leading = input.text.len() - input.text.trim_start().len();
            // Joined is title + '\n' + text; the headline ends within 200 bytes, on a char
            // boundary.
            let mut end = (1 + leading + first_line.min(200)).min(joined.len());
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            end
        } else {
            input.title.len()
        };
        let mut values = [0.0f64; FEATURE_COUNT];
        let mut spans: Vec<Span> = Vec::new();
        let mut fired = [false; FEATURE_COUNT];
        let mut note = |spans: &mut Vec<Span>, feature: usize, label: &str, start, end| {
            if !fired[feature] {
                fired[feature] = true;
                spans.push(Span {
                    feature,
                    label: label.to_owned(),
                    start,
                    end,
                });
            }
        };

        // One pass over the cue phrases; distinct phrases per cue.
        // Distinct phrases so far (a handful per document: a vector beats hashing).
        let mut seen: Vec<usize> = Vec::new();
        let mut event_positions: Vec<usize> = Vec::new();
        let mut verb_spans: Vec<(usize, usize)> = Vec::new();
        let mut token_starts: Vec<(usize, usize)> = Vec::new();
        let mut groups = [false; 5];
        let mut counts = [0u32; Cue::COUNT];
        let mut tge_only_crypto_check = false;
        let mut matches: Vec<WordMatch> = Vec::new();
        whole_words(&self.phrases, &joined, &mut matches);
        let mut company_matches: Vec<(usize, usize, usize)> = Vec::new();
        for &(pattern, start, end) in &matches {
            if pattern >= self.companies.first_pattern {
                let owner = self.companies.owners[pattern - self.companies.first_pattern];
                company_matches.push((owner, start, end));
                continue;
            }
            let (cue, phrase) = self.phrase_cues[pattern];
            match cue {
                Cue::LaunchVerb => {
                    verb_spans.push((start, end));
                    continue;
                }
                Cue::TokenWord => {
                    token_starts.push((start, end));
                    continue;
                }
                _ => {}
            }
            let group = match cue {
                Cue::Tge => Some((0, f::TGE)),
                Cue::Launch => Some((1, f::LAUNCH)),
                Cue::Listing => Some((2, f::LISTING)),
                Cue::Sale => Some((3, f::SALE)),
                Cue::Claim => Some((4, f::CLAIM)),
                _ => None,
            };
            if let Some((group, feature)) = group {
                groups[group] = true;
                event_positions.push(start);
                if cue == Cue::Tge {
                    tge_only_crypto_check = true;
                }
                if start < title_end {
                    note(&mut spans, f::EVENT_IN_TITLE, phrase, start, end);
                    values[f::EVENT_IN_TITLE] = 1.0;
                }
                values[feature] = 1.0;
                note(&mut spans, feature, phrase, start, end);
                continue;
            }
            // "governance token", "native token": the word token for the launch-verb check.
            if phrase.ends_with("token") || phrase.ends_with("tokens") {
                token_starts.push((start, end));
            }
            if seen.contains(&pattern) {
                continue;
            }
            seen.push(pattern);
            let count = &mut counts[cue as usize];
            *count += 1;
            let (feature, cap) = match cue {
                Cue::Medium => (f::MEDIUM, 4),
                Cue::Timing => (f::TIMING, 3),
                Cue::Explainer => (f::EXPLAINER, 2),
                Cue::Denial => (f::DENIAL, 2),
                Cue::Scam => (f::SCAM, 2),
                Cue::Retro => (f::RETROSPECTIVE, 2),
                Cue::Price => (f::PRICE, 3),
                Cue::AlreadyTrading => (f::ALREADY_TRADING, 2),
                Cue::Season => (f::SEASON, 2),
                Cue::Speculation => (f::SPECULATION, 2),
                Cue::Job => (f::JOB, 2),
                Cue::OtherMeaning => (f::OTHER_MEANING, 3),
                Cue::Crypto => (f::CRYPTO, 4),
                _ => continue,
            };
            if f64::from(*count) <= f64::from(cap) {
                values[feature] = f64::from(*count);
            }
            note(&mut spans, feature, phrase, start, end);
        }

        // A launch verb shortly before or after the word "token": "launched its WAL token",
        // "the token $SMOL launches Friday".
        'verbs: for &(verb_start, verb_end) in &verb_spans {
            for &(token_start, token_end) in &token_starts {
                let before =
                    token_start >= verb_end && token_start - verb_end <= VERB_TOKEN_DISTANCE;
                let after =
                    verb_start >= token_end && verb_start - token_end <= VERB_TOKEN_DISTANCE / 2;
                if before || after {
                    values[f::LAUNCH_NEAR_TOKEN] = 1.0;
                    note(
                        &mut spans,
                        f::LAUNCH_NEAR_TOKEN,
                        "launch verb near token",
                        token_start,
                        token_end,
                    );
                    event_positions.push(token_start);
                    if token_start < title_end {
                        values[f::EVENT_IN_TITLE] = 1.0;
                    }
                    break 'verbs;
                }
            }
        }
        let launch_group = groups[1] || values[f::LAUNCH_NEAR_TOKEN] > 0.0;
        let group_count =
            groups.iter().filter(|g| **g).count() + usize::from(launch_group && !groups[1]);
        values[f::EVENT_GROUPS] = group_count.min(4) as f64;
        values[f::NO_EVENT] = if group_count == 0 { 1.0 } else { 0.0 };
        if tge_only_crypto_check && values[f::CRYPTO] == 0.0 && group_count == 1 {
            values[f::TGE_WITHOUT_CRYPTO] = 1.0;
        }
        event_positions.sort_unstable();
        let first_event = event_positions.first().copied();

        // Watchlist companies, unless used in an excluded (homonym) sense.
        let mut project: Option<String> = None;
        let mut token: Option<String> = None;
        {
            let mut best: Option<(usize, usize, usize)> = None;
            let distance = |start: usize| first_event.map_or(start, |at| at.abs_diff(start));
            for &(owner, found_start, found_end) in &company_matches {
                let closer =
                    best.is_none_or(|(_, start, _)| distance(found_start) < distance(start));
                if closer {
                    best = Some((owner, found_start, found_end));
                }
            }
            if let Some((owner, start, end)) = best {
                let homonym = self.homonym_of(&joined, owner);
                match homonym {
                    Some(exclusion) => {
                        values[f::HOMONYM] = 1.0;
                        note(&mut spans, f::HOMONYM, &exclusion, start, end);
                    }
                    None => {
                        values[f::COMPANY] = 1.0;
                        project = Some(self.companies.names[owner].clone());
                        token = self.companies.tickers[owner].clone();
                        let name = self.companies.names[owner].clone();
                        note(&mut spans, f::COMPANY, &name, start, end);
                    }
                }
            }
        }

        // Tickers, dates and project names near the event phrases.
        let mut ticker: Option<(String, usize, usize)> = None;
        if let Some(found) = self.dollar_ticker.captures(&joined)
            && let Some(symbol) = found.get(1)
            && !NOT_TICKERS.contains(&symbol.as_str())
        {
            ticker = Some((symbol.as_str().to_owned(), symbol.start(), symbol.end()));
        }
        let mut event_date: Option<(String, usize, usize)> = None;
        let mut project_near: Option<(String, usize, usize)> = None;
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for &position in event_positions.iter().take(8) {
            let (from, to) = window(&joined, position, position, EVENT_WINDOW);
            match windows.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => windows.push((from, to)),
            }
        }
        for &(from, to) in &windows {
            let slice = &joined[from..to];
            if event_date.is_none()
                && let Some(found) = self.dates.find(slice)
            {
                event_date = Some((
                    found.as_str().trim().to_owned(),
                    from + found.start(),
                    from + found.end(),
                ));
            }
            if let Some(found) = self.paren_ticker.captures(slice)
                && let (Some(name), Some(symbol)) = (found.get(1), found.get(2))
            {
                if project.is_none()
                    && project_near.is_none()
                    && is_plausible_project(name.as_str())
                {
                    project_near = Some((
                        name.as_str().to_owned(),
                        from + name.start(),
                        from + name.end(),
                    ));
                }
                if ticker.is_none() && !NOT_TICKERS.contains(&symbol.as_str()) {
                    ticker = Some((
                        symbol.as_str().to_owned(),
                        from + symbol.start(),
                        from + symbol.end(),
                    ));
                }
            }
            if ticker.is_none() {
                for found in self.word_ticker.captures_iter(slice) {
                    let Some(symbol) = found.get(1) else { continue };
                    if !NOT_TICKERS.contains(&symbol.as_str()) {
                        ticker = Some((
                            symbol.as_str().to_owned(),
                            from + symbol.start(),
                            from + symbol.end(),
                        ));
                        break;
                    }
                }
            }
            if project.is_none() && project_near.is_none() {
                for found in self.project_before.captures_iter(slice) {
                    let Some(name) = found.get(1) else { continue };
                    if is_plausible_project(name.as_str()) {
                        project_near = Some((
                            name.as_str().to_owned(),
                            from + name.start(),
                            from + name.end(),
                        ));
                        break;
                    }
                }
            }
        }
        if ticker.is_none()
            && let (Some(matcher), Some(named)) = (&self.companies.ticker_matcher, &project)
        {
            whole_words(matcher, &joined, &mut matches);
            for &(pattern, found_start, found_end) in &matches {
                let owner = self.companies.ticker_owners[pattern];
                // A bare ticker counts only for the company already named (XAI vs xAI).
                if named == &self.companies.names[owner] {
                    let symbol = joined[found_start..found_end].to_owned();
                    ticker = Some((symbol, found_start, found_end));
                    break;
                }
            }
        }
        if let Some((symbol, start, end)) = ticker {
            values[f::TICKER] = 1.0;
            note(&mut spans, f::TICKER, &symbol, start, end);
            token = Some(symbol);
        }
        if let Some((name, start, end)) = project_near {
            values[f::PROJECT] = 1.0;
            note(&mut spans, f::PROJECT, &name, start, end);
            project = Some(name);
        }
        if let Some((date, start, end)) = &event_date {
            values[f::DATE_NEAR_EVENT] = 1.0;
            note(&mut spans, f::DATE_NEAR_EVENT, date, *start, *end);
        }

        // Years before this one: a retrospective cue.
        let mut past_years = 0u32;
        for found in self.year.captures_iter(&joined) {
            let Some(year) = found.get(1).and_then(|m| m.as_str().parse::<i32>().ok()) else {
                continue;
            };
            if year < input.year && year >= 2009 {
                past_years += 1;
                note(
                    &mut spans,
                    f::PAST_YEAR,
                    &year.to_string(),
                    found.get(0).map_or(0, |m| m.start()),
                    found.get(0).map_or(0, |m| m.end()),
                );
                if past_years >= 2 {
                    break;
                }
            }
        }
        values[f::PAST_YEAR] = f64::from(past_years);

        let opening_end = {
            let mut end = joined.len().min(OPENING_BYTES);
            while !joined.is_char_boundary(end) {
                end -= 1;
            }
            end
        };
        let opening = &joined[..opening_end];
        let paren_tickers = self.any_paren_ticker.find_iter(opening).take(3).count();
        if paren_tickers > 0 {
            values[f::PAREN_TICKER] = (1.0 + paren_tickers as f64).ln();
        }
        if let Some(found) = self.utc_time.find(opening) {
            values[f::UTC_TIME] = 1.0;
            note(
                &mut spans,
                f::UTC_TIME,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        let mut rules = 0;
        for found in self.generic_rules.find_iter(opening).take(3) {
            rules += 1;
            note(
                &mut spans,
                f::GENERIC_RULES,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        if rules > 0 {
            values[f::GENERIC_RULES] = (1.0 + f64::from(rules)).ln();
        }
        if let Some(found) = self.cjk_date.find(opening) {
            values[f::CJK_DATE] = 1.0;
            note(
                &mut spans,
                f::CJK_DATE,
                found.as_str(),
                found.start(),
                found.end(),
            );
        }
        let headline = if input.title.trim().is_empty() {
            &joined[..title_end.min(joined.len())]
        } else {
            input.title
        };
        if is_question_title(headline) {
            values[f::QUESTION_TITLE] = 1.0;
            note(
                &mut spans,
                f::QUESTION_TITLE,
                "question title",
                0,
                title_end,
            );
        }
        if code_density(&joined) > 0.02 {
            values[f::CODE] = 1.0;
            note(&mut spans, f::CODE, "code", 0, joined.len().min(80));
        }
        spans.retain(|span| values[span.feature] != 0.0);
        Extracted {
            values,
            spans,
            project,
            token,
            event_date: event_date.map(|(date, _, _)| date),
            joined,
        }
    }

    fn homonym_of(&self, joined: &str, owner: usize) -> Option<String> {
        let matcher = self.companies.exclusion_matcher.as_ref()?;
        let mut found_all = Vec::new();
        whole_words(matcher, joined, &mut found_all);
        for &(pattern, start, end) in &found_all {
            if self.companies.exclusion_owners[pattern] == owner {
                return Some(joined[start..end].to_lowercase());
            }
        }
        None
    }
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("companies", &self.companies.names.len())
            .finish()
    }
}
