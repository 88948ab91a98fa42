//! The keyword precision scorer, pure: features from phrase tiers, watchlist companies (names,
//! aliases, tickers, homonym exclusions), `$TICKER`s, project names near TGE phrases, date and
//! tense cues, genre cues (explainers, denials, scams, retrospectives, other meanings of "TGE"
//! and "airdrop"), title weighting and the source prior, combined as log-odds into a
//! probability. Every feature that moved the score is returned as evidence.
//!
//! Matching is Aho-Corasick over ASCII-case-folded text with word-boundary checks, so "tge"
//! never matches inside "outage" and tickers with digits (SP1, HUD01) match whole words only.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use swarm_shared::domain::{Company, Detection, Evidence};

/// Phrase categories and their log-odds weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cue {
    /// Names the event itself: TGE, token launch, IDO, claim live, trading begins.
    Strong,
    /// Suggests it: airdrop, tokenomics, listing, native token.
    Medium,
    /// Future or just-happened tense: will, upcoming, is live, today.
    Timing,
    /// A generic explainer or glossary.
    Explainer,
    /// A denial, rumour, or "no date set".
    Denial,
    /// A scam or phishing warning.
    Scam,
    /// A retrospective or analysis of a token already trading.
    Retrospective,
    /// Points, farming, later seasons, speculation about a possible airdrop.
    Speculation,
    /// Another meaning of the words (LLM tokens, Apple AirDrop, the Polish power exchange...).
    OtherMeaning,
    /// A job post.
    Job,
}

impl Cue {
    fn label(self) -> &'static str {
        match self {
            Cue::Strong => "phrase:strong",
            Cue::Medium => "phrase:medium",
            Cue::Timing => "timing",
            Cue::Explainer => "genre:explainer",
            Cue::Denial => "genre:denial",
            Cue::Scam => "genre:scam",
            Cue::Retrospective => "genre:retrospective",
            Cue::Speculation => "genre:speculation",
            Cue::OtherMeaning => "other-meaning",
            Cue::Job => "genre:job",
        }
    }
}

const PHRASES: &[(Cue, &[&str])] = &[
    (
        Cue::Strong,
        &[
            "token generation event",
            "tge",
            "tge date",
            "token launch",
            "launches its token",
            "launch its token",
            "launching its token",
            "launches token",
            "launch of its token",
            "launch of the token",
            "native token launch",
            "token debut",
            "debuts its token",
            "initial dex offering",
            "ido",
            "initial coin offering",
            "ico",
            "token sale",
            "public sale",
            "presale",
            "airdrop claim",
            "claim portal",
            "claim is live",
            "claims are live",
            "claiming is live",
            "claiming is now live",
            "claim is now live",
            "airdrop is live",
            "airdrop is now live",
            "airdrop goes live",
            "begins trading",
            "begin trading",
            "starts trading",
            "start trading",
            "trading begins",
            "trading will begin",
            "trading goes live",
            "will list",
            "to list",
            "lists its token",
            "listing of its token",
            "token listing",
            "token is live",
            "token is now live",
            "goes live on binance",
            "token unveiled",
            "unveils token",
            "unveils its token",
            "introduces its token",
            "announces its token",
            "announces token",
            "token generation",
            "airdrop checker",
            "eligibility checker",
            "claim window",
            "launchpool",
            "launchpad sale",
            "pre-market trading",
            "premarket trading",
        ],
    ),
    (
        Cue::Medium,
        &[
            "airdrop",
            "airdrops",
            "tokenomics",
            "native token",
            "governance token",
            "utility token",
            "listing",
            "lists",
            "token supply",
            "total supply",
            "circulating supply",
            "eligible",
            "eligibility",
            "snapshot",
            "claim",
            "claimable",
            "allocation",
            "ticker",
            "binance",
            "coinbase",
            "okx",
            "bybit",
            "kucoin",
            "upbit",
            "token",
            "tokens",
            "coin",
            "launch",
            "launches",
            "mainnet",
            "fdv",
        ],
    ),
    (
        Cue::Timing,
        &[
            "will launch",
            "will go live",
            "will begin",
            "will be listed",
            "will open",
            "is set to",
            "set for",
            "scheduled for",
            "slated for",
            "upcoming",
            "later today",
            "tomorrow",
            "next week",
            "this week",
            "next month",
            "is now live",
            "is live",
            "went live",
            "has launched",
            "just launched",
            "officially launched",
            "today",
            "confirmed",
            "announced",
            "announces",
            "kicks off",
            "opens",
        ],
    ),
    (
        Cue::Explainer,
        &[
            "what is a tge",
            "what is tge",
            "what is a token generation event",
            "what are token generation events",
            "explained",
            "explainer",
            "a guide to",
            "beginner's guide",
            "beginners guide",
            "ultimate guide",
            "how does a tge work",
            "how tges work",
            "glossary",
            "definition of",
            "defined as",
            "refers to",
            "everything you need to know",
            "in simple terms",
            "crypto 101",
        ],
    ),
    (
        Cue::Denial,
        &[
            "no token",
            "no plans to launch a token",
            "no plans for a token",
            "not planning a token",
            "no current plans",
            "has no plans",
            "denied",
            "denies",
            "rumor",
            "rumors",
            "rumour",
            "rumours",
            "no tge",
            "not launching a token",
            "no date has been set",
            "date has not been set",
            "not yet been set",
            "has not announced",
            "hasn't announced",
            "not confirmed",
            "unconfirmed",
            "false reports",
            "debunked",
        ],
    ),
    (
        Cue::Scam,
        &[
            "scam",
            "scams",
            "phishing",
            "fake airdrop",
            "fake token",
            "impersonating",
            "impersonation",
            "beware",
            "drainer",
            "wallet drainer",
            "do not connect",
            "fraudulent",
            "malicious link",
        ],
    ),
    (
        Cue::Retrospective,
        &[
            "anniversary",
            "since its tge",
            "since the tge",
            "since its token launch",
            "since launch",
            "a year after",
            "one year after",
            "years after",
            "post-tge",
            "after its tge",
            "retrospective",
            "looking back",
            "price analysis",
            "price prediction",
            "technical analysis",
            "token unlock",
            "token unlocks",
            "unlock schedule",
            "unlocks",
            "all-time high",
            "all-time low",
            "price action",
            "support level",
            "resistance level",
            "whales",
            "market cap",
            "rallies",
            "plunges",
            "surges",
            "drops",
            "season 2",
            "season 3",
            "season two",
            "season three",
            "second airdrop",
            "new listing on",
            "already trading",
        ],
    ),
    (
        Cue::Speculation,
        &[
            "points program",
            "points programme",
            "earn points",
            "farming guide",
            "how to farm",
            "airdrop farming",
            "potential airdrop",
            "possible airdrop",
            "could airdrop",
            "may airdrop",
            "might airdrop",
            "airdrop hunters",
            "how to qualify",
            "how to be eligible",
            "speculation",
            "speculate",
        ],
    ),
    (
        Cue::OtherMeaning,
        &[
            "towarowa giełda energii",
            "towarowa gielda energii",
            "giełda energii",
            "polish power exchange",
            "power exchange",
            "transmissible gastroenteritis",
            "gastroenteritis",
            "swine",
            "piglets",
            "porcine",
            "pig farm",
            "apple airdrop",
            "airdrop photos",
            "airdrop files",
            "iphone",
            "ipad",
            "macbook",
            "humanitarian",
            "aid drop",
            "food airdrop",
            "aid airdrop",
            "relief supplies",
            "large language model",
            "language model",
            "llm",
            "tokens per second",
            "token generation speed",
            "inference",
            "transformer",
            "authentication token",
            "access token",
            "jwt",
            "oauth",
            "refresh token",
            "bearer token",
            "api token",
        ],
    ),
    (
        Cue::Job,
        &[
            "we're hiring",
            "we are hiring",
            "job opening",
            "apply now",
            "job description",
            "responsibilities",
            "requirements:",
            "salary",
            "full-time",
            "remote position",
        ],
    ),
];

/// Log-odds weights. Issue "Detection precision" replaces them with learned ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Intercept.
    pub bias: f64,
    /// First strong phrase.
    pub strong_first: f64,
    /// Each further distinct strong phrase (up to two).
    pub strong_more: f64,
    /// First medium phrase.
    pub medium_first: f64,
    /// Each further distinct medium phrase (up to three).
    pub medium_more: f64,
    /// A strong phrase in the title.
    pub strong_in_title: f64,
    /// Timing cue (up to two).
    pub timing: f64,
    /// A stated date.
    pub date: f64,
    /// A watchlist company mentioned.
    pub company: f64,
    /// A `$TICKER` or watchlist ticker.
    pub ticker: f64,
    /// Project name found near a TGE phrase.
    pub project: f64,
    /// Explainer genre.
    pub explainer: f64,
    /// Denial.
    pub denial: f64,
    /// Scam warning.
    pub scam: f64,
    /// Retrospective or market analysis (per cue, up to three).
    pub retrospective: f64,
    /// Speculation, points, farming.
    pub speculation: f64,
    /// Another meaning of the words (per cue, up to two).
    pub other_meaning: f64,
    /// Job post.
    pub job: f64,
    /// A watchlist name used in its excluded (homonym) sense.
    pub homonym: f64,
    /// Source prior by tier 1..=4.
    pub tier: [f64; 4],
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            bias: -3.2,
            strong_first: 2.6,
            strong_more: 0.6,
            medium_first: 0.7,
            medium_more: 0.25,
            strong_in_title: 0.9,
            timing: 0.45,
            date: 0.6,
            company: 0.7,
            ticker: 0.6,
            project: 0.4,
            explainer: -2.6,
            denial: -2.8,
            scam: -3.2,
            retrospective: -0.9,
            speculation: -1.6,
            other_meaning: -2.8,
            job: -2.4,
            homonym: -2.0,
            tier: [0.3, 0.15, 0.0, -0.1],
        }
    }
}

/// A document to score.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Title (may be empty).
    pub title: &'a str,
    /// Body text, plain.
    pub text: &'a str,
    /// Source tier 1..=4 (2 when unknown).
    pub tier: u8,
}

struct CompanyPatterns {
    /// Canonical name of each company, by index.
    names: Vec<String>,
    /// Preferred ticker of each company.
    tickers: Vec<Option<String>>,
    /// Lowercased exclusion phrases of each company.
    exclusions: Vec<Vec<String>>,
    /// Names and aliases; pattern index -> company index.
    matcher: Option<AhoCorasick>,
    owners: Vec<usize>,
    /// Tickers (case-sensitive, upper); pattern index -> company index.
    ticker_matcher: Option<AhoCorasick>,
    ticker_owners: Vec<usize>,
}

/// The scorer: compiled patterns and weights. Cheap to share; build once per watchlist.
pub struct Scorer {
    phrases: AhoCorasick,
    phrase_cues: Vec<(Cue, &'static str)>,
    companies: CompanyPatterns,
    weights: Weights,
    threshold: f64,
    dollar_ticker: Regex,
    paren_ticker: Regex,
    word_ticker: Regex,
    project_before: Regex,
    dates: Vec<Regex>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("companies", &self.companies.names.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// Errors building a scorer (a pattern too large for the automaton, an invalid regex).
#[derive(Debug, thiserror::Error)]
#[error("building the keyword scorer: {0}")]
pub struct BuildError(String);

fn build_matcher(
    patterns: &[String],
    case_insensitive: bool,
) -> Result<Option<AhoCorasick>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(case_insensitive)
        .match_kind(MatchKind::LeftmostLongest)
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

/// A window of `text` around a byte range, on char boundaries, whitespace collapsed.
fn snippet(text: &str, start: usize, end: usize) -> String {
    const CONTEXT: usize = 60;
    let mut from = start.saturating_sub(CONTEXT);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + CONTEXT).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.push_str(&swarm_shared::domain::normalise_whitespace(&text[from..to]));
    if to < text.len() {
        out.push('…');
    }
    out
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
];

/// Upper-case words that precede "token" or "airdrop" without being tickers.
const NOT_TICKERS: &[&str] = &[
    "NFT", "DAO", "ERC", "API", "AI", "USD", "TGE", "IDO", "ICO", "IEO", "DEX", "CEX", "L1", "L2",
    "ETF", "DEFI", "WEB", "THE", "NEW", "BEP", "SPL", "OFT", "JWT", "LLM", "ID",
];

const MONTHS: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";

impl Scorer {
    /// Builds a scorer for a watchlist.
    pub fn new(
        companies: &[Company],
        weights: Weights,
        threshold: f64,
    ) -> Result<Scorer, BuildError> {
        let mut phrase_cues = Vec::new();
        let mut patterns = Vec::new();
        for (cue, phrases) in PHRASES {
            for phrase in *phrases {
                phrase_cues.push((*cue, *phrase));
                patterns.push((*phrase).to_owned());
            }
        }
        let phrases =
            build_matcher(&patterns, true)?.ok_or_else(|| BuildError("no phrases".into()))?;

        let mut names = Vec::new();
        let mut tickers = Vec::new();
        let mut exclusions = Vec::new();
        let mut name_patterns = Vec::new();
        let mut owners = Vec::new();
        let mut ticker_patterns = Vec::new();
        let mut ticker_owners = Vec::new();
        for (index, company) in companies.iter().enumerate() {
            names.push(company.name.clone());
            tickers.push(company.tickers.first().cloned());
            exclusions.push(
                company
                    .exclusions
                    .iter()
                    .map(|e| e.to_lowercase())
                    .collect(),
            );
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
        }
        let companies = CompanyPatterns {
            names,
            tickers,
            exclusions,
            matcher: build_matcher(&name_patterns, true)?,
            owners,
            ticker_matcher: build_matcher(&ticker_patterns, false)?,
            ticker_owners,
        };
        let dates = vec![
            regex(r"\b20\d{2}-[01]\d-[0-3]\d\b")?,
            regex(&format!(
                r"\b{MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+20\d{{2}})?\b"
            ))?,
            regex(&format!(
                r"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTHS}(?:,?\s+20\d{{2}})?\b"
            ))?,
            regex(r"\b[QH][1-4]\s*'?(?:20)?\d{2}\b")?,
            regex(&format!(r"\b(?:early|mid|late|end of)[\s-]+{MONTHS}\b"))?,
            regex(r"(?i)\b(?:next week|this week|tomorrow|later today|next month)\b")?,
        ];
        Ok(Scorer {
            phrases,
            phrase_cues,
            companies,
            weights,
            threshold,
            dollar_ticker: regex(r"\$([A-Z][A-Z0-9]{1,9})\b")?,
            word_ticker: regex(r"\b([A-Z][A-Z0-9]{1,9})\s+(?:token|tokens|airdrop|coin)\b")?,
            paren_ticker: regex(
                r"\b([A-Z][A-Za-z0-9.]{1,30}(?:\s[A-Z][A-Za-z0-9.]{1,30}){0,2})\s\(\$?([A-Z][A-Z0-9]{1,9})\)",
            )?,
            project_before: regex(
                r"\b([A-Z][A-Za-z0-9.]{1,30}(?:\s[A-Z][A-Za-z0-9.]{1,30}){0,2})(?:'s|’s)?\s+(?:announces|announced|unveils|unveiled|launches|launched|sets|set|reveals|revealed|confirms|confirmed|opens|opened|schedules|scheduled|kicks off|debuts|airdrops|will launch|will list|is launching|TGE|token generation event|token launch|token sale|airdrop|IDO|ICO|native token|governance token)\b",
            )?,
            dates,
        })
    }

    /// The decision threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Scores a document.
    pub fn score(&self, input: Input<'_>) -> Detection {
        let weights = &self.weights;
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut z = weights.bias;
        let full = format!("{}\n{}", input.title, input.text);
        let title_end = input.title.len();
        let lower_full = full.to_lowercase();

        // Phrase cues, distinct phrases per cue, word boundaries only.
        let mut seen_phrases: HashSet<&'static str> = HashSet::new();
        let mut counts: std::collections::HashMap<Cue, u32> = std::collections::HashMap::new();
        let mut strong_in_title = false;
        let mut first_strong_at: Option<usize> = None;
        for found in self.phrases.find_iter(&full) {
            let (start, end) = (found.start(), found.end());
            if !at_word_boundary(&full, start, end) {
                continue;
            }
            let (cue, phrase) = self.phrase_cues[found.pattern().as_usize()];
            if cue == Cue::Strong && start < title_end {
                strong_in_title = true;
            }
            if cue == Cue::Strong && first_strong_at.is_none() {
                first_strong_at = Some(start);
            }
            if !seen_phrases.insert(phrase) {
                continue;
            }
            let count = counts.entry(cue).or_insert(0);
            *count += 1;
            let weight = match (cue, *count) {
                (Cue::Strong, 1) => weights.strong_first,
                (Cue::Strong, 2..=3) => weights.strong_more,
                (Cue::Medium, 1) => weights.medium_first,
                (Cue::Medium, 2..=4) => weights.medium_more,
                (Cue::Timing, 1..=2) => weights.timing,
                (Cue::Explainer, 1) => weights.explainer,
                (Cue::Denial, 1) => weights.denial,
                (Cue::Scam, 1) => weights.scam,
                (Cue::Retrospective, 1..=3) => weights.retrospective,
                (Cue::Speculation, 1) => weights.speculation,
                (Cue::OtherMeaning, 1..=2) => weights.other_meaning,
                (Cue::Job, 1) => weights.job,
                _ => 0.0,
            };
            if weight == 0.0 {
                continue;
            }
            z += weight;
            evidence.push(Evidence {
                feature: format!("{}:{phrase}", cue.label()),
                snippet: snippet(&full, start, end),
                weight,
            });
        }
        if strong_in_title {
            z += weights.strong_in_title;
            evidence.push(Evidence {
                feature: "title:strong".into(),
                snippet: swarm_shared::domain::normalise_whitespace(input.title),
                weight: weights.strong_in_title,
            });
        }

        // Watchlist companies, unless used in an excluded (homonym) sense.
        let mut project: Option<String> = None;
        let mut token: Option<String> = None;
        let mut project_pos = usize::MAX;
        if let Some(matcher) = &self.companies.matcher {
            let mut best: Option<(usize, usize, usize)> = None; // (company, start, end)
            for found in matcher.find_iter(&full) {
                if !at_word_boundary(&full, found.start(), found.end()) {
                    continue;
                }
                let owner = self.companies.owners[found.pattern().as_usize()];
                // Prefer the mention closest to the first strong phrase.
                let distance =
                    |start: usize| first_strong_at.map_or(start, |at| at.abs_diff(start));
                let closer =
                    best.is_none_or(|(_, start, _)| distance(found.start()) < distance(start));
                if closer {
                    best = Some((owner, found.start(), found.end()));
                }
            }
            if let Some((owner, start, end)) = best {
                let homonym = self.companies.exclusions[owner]
                    .iter()
                    .find(|exclusion| contains_word(&lower_full, exclusion));
                match homonym {
                    Some(exclusion) => {
                        z += weights.homonym;
                        evidence.push(Evidence {
                            feature: format!("homonym:{exclusion}"),
                            snippet: snippet(&full, start, end),
                            weight: weights.homonym,
                        });
                    }
                    None => {
                        z += weights.company;
                        project = Some(self.companies.names[owner].clone());
                        token = self.companies.tickers[owner].clone();
                        project_pos = start;
                        evidence.push(Evidence {
                            feature: format!("company:{}", self.companies.names[owner]),
                            snippet: snippet(&full, start, end),
                            weight: weights.company,
                        });
                    }
                }
            }
        }

        // Tickers: `$ABC`, `Name (ABC)`, or a watchlist ticker as a whole word.
        let mut ticker_found: Option<(String, usize, usize)> = None;
        if let Some(found) = self.dollar_ticker.captures(&full)
            && let Some(symbol) = found.get(1)
        {
            ticker_found = Some((symbol.as_str().to_owned(), symbol.start(), symbol.end()));
        }
        if let Some(found) = self.paren_ticker.captures(&full)
            && let (Some(name), Some(symbol)) = (found.get(1), found.get(2))
        {
            let name_text = name.as_str();
            if project.is_none() && is_plausible_project(name_text) {
                project = Some(name_text.to_owned());
                project_pos = name.start();
            }
            if ticker_found.is_none() {
                ticker_found = Some((symbol.as_str().to_owned(), symbol.start(), symbol.end()));
            }
        }
        if ticker_found.is_none() {
            for found in self.word_ticker.captures_iter(&full) {
                let Some(symbol) = found.get(1) else { continue };
                if !NOT_TICKERS.contains(&symbol.as_str()) {
                    ticker_found = Some((symbol.as_str().to_owned(), symbol.start(), symbol.end()));
                    break;
                }
            }
        }
        if ticker_found.is_none()
            && let Some(matcher) = &self.companies.ticker_matcher
        {
            for found in matcher.find_iter(&full) {
                if !at_word_boundary(&full, found.start(), found.end()) {
                    continue;
                }
                let owner = self.companies.ticker_owners[found.pattern().as_usize()];
                // A bare ticker counts only for the company already named (XAI vs xAI).
                if project.as_deref() == Some(self.companies.names[owner].as_str()) {
                    let symbol = full[found.start()..found.end()].to_owned();
                    ticker_found = Some((symbol, found.start(), found.end()));
                    break;
                }
            }
        }
        if let Some((symbol, start, end)) = ticker_found {
            z += weights.ticker;
            evidence.push(Evidence {
                feature: format!("ticker:{symbol}"),
                snippet: snippet(&full, start, end),
                weight: weights.ticker,
            });
            token = Some(symbol);
        }

        // Project name near a TGE phrase, for projects outside the watchlist.
        if project.is_none() {
            for found in self.project_before.captures_iter(&full) {
                let Some(name) = found.get(1) else { continue };
                if is_plausible_project(name.as_str()) {
                    project = Some(name.as_str().to_owned());
                    project_pos = name.start();
                    z += weights.project;
                    evidence.push(Evidence {
                        feature: "project".into(),
                        snippet: snippet(&full, name.start(), name.end()),
                        weight: weights.project,
                    });
                    break;
                }
            }
        }

        // A stated date: the one closest to the project or first strong phrase.
        let anchor = first_strong_at.unwrap_or(project_pos.min(full.len()));
        let mut event_date: Option<(String, usize, usize)> = None;
        for pattern in &self.dates {
            for found in pattern.find_iter(&full) {
                let closer = event_date.as_ref().is_none_or(|(_, start, _)| {
                    found.start().abs_diff(anchor) < start.abs_diff(anchor)
                });
                if closer {
                    event_date = Some((found.as_str().to_owned(), found.start(), found.end()));
                }
            }
        }
        if let Some((date, start, end)) = &event_date {
            z += weights.date;
            evidence.push(Evidence {
                feature: format!("date:{date}"),
                snippet: snippet(&full, *start, *end),
                weight: weights.date,
            });
        }

        let tier_index = usize::from(input.tier.clamp(1, 4) - 1);
        let prior = weights.tier[tier_index];
        z += prior;

        let score = 1.0 / (1.0 + (-z).exp());
        // Without a strong phrase there is no announcement, whatever else matched.
        let has_strong = counts.get(&Cue::Strong).copied().unwrap_or(0) > 0;
        let is_tge = has_strong && score >= self.threshold;
        evidence.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        Detection {
            score,
            is_tge,
            project,
            token,
            event_date: event_date.map(|(date, _, _)| date),
            evidence,
        }
    }
}

fn contains_word(haystack_lower: &str, needle_lower: &str) -> bool {
    let mut from = 0;
    while let Some(offset) = haystack_lower[from..].find(needle_lower) {
        let start = from + offset;
        let end = start + needle_lower.len();
        if at_word_boundary(haystack_lower, start, end) {
            return true;
        }
        from = end;
    }
    false
}

fn is_plausible_project(name: &str) -> bool {
    let first = name.split_whitespace().next().unwrap_or("");
    !NOT_PROJECT_NAMES.contains(&first.to_lowercase().as_str()) && name.len() >= 2
}
