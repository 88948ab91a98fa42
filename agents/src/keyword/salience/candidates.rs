//! The candidates of a text's opening and what describes each: the features the ranker
//! weighs. Ticker candidates are upper-case symbols; project candidates are runs of one to
//! three capitalised words. Nothing is thrown away here that a feature can describe (a
//! symbol of the trade, a word written in lower case elsewhere, an exchange's name): the
//! ranker learns how much each counts.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use super::words::{NOT_PROJECTS, NOT_TICKERS};

/// The ticker features, in the order of a candidate's values (and of the model file's names).
pub const TICKER_FEATURES: &[&str] = &[
    "count",
    "dollar",
    "parenthesised",
    "token_word_after",
    "quote_pair_after",
    "shouted_heading",
    "first_position",
    "in_headline",
    "near_event",
    "word_of_the_trade",
    "length",
    "has_digit",
    "in_opening_300",
];

/// The project features, in the order of a candidate's values.
pub const PROJECT_FEATURES: &[&str] = &[
    "count",
    "first_position",
    "in_first_sentence",
    "in_headline",
    "symbol_in_parentheses_after",
    "ticker_in_parentheses_after",
    "possessive",
    "name_suffix_after",
    "share_opening_sentences",
    "near_event",
    "count_in_opening_400",
    "written_lower_case_elsewhere",
    "capitals_only",
    "one_word",
    "two_words",
    "three_words",
    "ticker_abbreviates",
    "ticker_in_other_case",
    "names_an_exchange",
    "common_words_only",
    "domain_or_handle",
    "time_or_period",
    "description_based",
];

/// Exchanges: a name that holds one is likelier the venue than the project.
const EXCHANGES: &[&str] = &[
    "binance", "bybit", "okx", "kucoin", "coinbase", "kraken", "gate", "mexc", "bitget", "upbit",
    "bithumb", "huobi", "htx", "bitfinex", "bitmart", "coinlist", "coinone", "korbit", "lbank",
    "bingx", "poloniex",
];

/// Words after a name that say it is the project's: `Somnia token`, `Axelar Foundation`.
const NAME_SUFFIXES: &[&str] = &[
    "token",
    "tokens",
    "airdrop",
    "tge",
    "foundation",
    "labs",
    "protocol",
    "network",
    "finance",
    "chain",
    "coin",
    "ecosystem",
    "team",
    "mainnet",
];

/// Top-level domains of project sites, for the domain feature.
const DOMAINS: &str = "io|xyz|com|org|network|fi|finance|app|ai|gg|co|net|foundation|so|tech|world|money|exchange|trade|one";

/// One candidate and its feature values.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The symbol or name as written.
    pub name: String,
    /// Values in [`TICKER_FEATURES`] or [`PROJECT_FEATURES`] order.
    pub values: Vec<f64>,
}

/// The patterns candidates are read with.
#[derive(Debug)]
pub(super) struct Patterns {
    symbol: Regex,
    name: Regex,
    event: Regex,
    domain: Regex,
    handle: Regex,
}

fn ln1p(count: usize) -> f64 {
    (count as f64).ln_1p()
}

fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// Whether an event word (airdrop, listing, launch, claim, ...) lies within 60 bytes of
/// `start..end`.
fn near(events: &[(usize, usize)], start: usize, end: usize) -> bool {
    let from = start.saturating_sub(60);
    let to = end + 60;
    events
        .iter()
        .any(|&(event_start, event_end)| event_start >= from && event_end <= to)
}

/// Where the text begins: past the line break the scorer puts after an empty title.
fn lead(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

/// The end of the headline: the first line break after the text begins, or the end.
fn headline_end(text: &str) -> usize {
    let lead = lead(text);
    text[lead..].find('\n').map_or(text.len(), |end| lead + end)
}

/// The end of the opening sentence (at least 80 bytes in, unless the text is shorter).
fn first_sentence_end(text: &str) -> usize {
    let lead = lead(text);
    text[lead..]
        .find(['.', '\n', '!', '?', '。'])
        .map_or(text.len(), |end| lead + end)
        .max(lead + 80)
        .min(text.len())
}

impl Patterns {
    pub(super) fn new() -> Result<Patterns, regex::Error> {
        Ok(Patterns {
            symbol: Regex::new(r"(\$)?(?-u:\b)([A-Z][A-Z0-9]{1,9})(?-u:\b)")?,
            name: Regex::new(
                r"(?-u:\b)((?:[A-Z][A-Za-z0-9]*|[a-z]+[A-Z][A-Za-z0-9]*)(?:[.\-][A-Za-z0-9]+)?(?: (?:[A-Z][A-Za-z0-9]*|[0-9]+(?:\.[0-9]+)?)){0,2})(?-u:\b)",
            )?,
            event: Regex::new(
                r"(?i)airdrop|\btge\b|listing|\blist\b|launch|claim|token sale|presale|ido\b|generation|trading|deposit",
            )?,
            domain: Regex::new(&format!(r"(?-u:\b)([a-z0-9]+)\.(?:{DOMAINS})(?-u:\b)"))?,
            handle: Regex::new(r"@([a-z0-9_]+)")?,
        })
    }

    fn events(&self, text: &str) -> Vec<(usize, usize)> {
        self.event
            .find_iter(text)
            .map(|found| (found.start(), found.end()))
            .collect()
    }

    /// The ticker candidates of `text` (the opening), in order of first appearance.
    pub(super) fn tickers(&self, text: &str) -> Vec<Candidate> {
        #[derive(Default)]
        struct Seen {
            count: usize,
            dollar: usize,
            parenthesised: usize,
            token_word: usize,
            pair: usize,
            shouted: usize,
            first: usize,
            headline: bool,
            near: usize,
        }
        let bytes = text.as_bytes();
        let events = self.events(text);
        let headline = headline_end(text);
        let mut order: Vec<&str> = Vec::new();
        let mut seen: HashMap<&str, Seen> = HashMap::new();
        for found in self.symbol.captures_iter(text) {
            let Some(symbol) = found.get(2) else { continue };
            let word = symbol.as_str();
            if word.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let entry = seen.entry(word).or_insert_with(|| {
                order.push(word);
                Seen {
                    first: symbol.start(),
                    ..Seen::default()
                }
            });
            entry.count += 1;
            entry.dollar += usize::from(found.get(1).is_some());
            let before = symbol.start().checked_sub(1).map(|at| bytes[at]);
            let after = bytes.get(symbol.end()).copied();
            entry.parenthesised += usize::from(before == Some(b'(') && after == Some(b')'));
            let rest = &text[symbol.end()..];
            let lower_rest = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
            entry.token_word += usize::from(
                lower_rest.starts_with(" token")
                    || lower_rest.starts_with(" airdrop")
                    || lower_rest.starts_with(" coin"),
            );
            let unslashed = rest.strip_prefix('/').unwrap_or(rest);
            entry.pair +=
                usize::from(unslashed.starts_with("USDT") || unslashed.starts_with("USDC"));
            // A shouted heading is not a ticker: neighbours in capitals too.
            entry.shouted += usize::from(rest.split_whitespace().next().is_some_and(|next| {
                next.len() > 3 && next.chars().all(|c| c.is_ascii_uppercase())
            }));
            entry.headline |= symbol.start() < headline;
            entry.near += usize::from(near(&events, symbol.start(), symbol.end()));
        }
        let length = text.len() as f64 + 1.0;
        order
            .into_iter()
            .filter_map(|word| {
                let seen = seen.get(word)?;
                Some(Candidate {
                    name: word.to_owned(),
                    values: vec![
                        ln1p(seen.count),
                        ln1p(seen.dollar),
                        ln1p(seen.parenthesised),
                        ln1p(seen.token_word),
                        ln1p(seen.pair),
                        ln1p(seen.shouted),
                        seen.first as f64 / length,
                        flag(seen.headline),
                        ln1p(seen.near),
                        flag(NOT_TICKERS.contains(&word)),
                        word.len() as f64 / 10.0,
                        flag(word.chars().any(|c| c.is_ascii_digit())),
                        flag(seen.first < 300),
                    ],
                })
            })
            .collect()
    }

    /// The project candidates of `text` (the opening), given the chosen ticker, in order of
    /// first appearance.
    pub(super) fn projects(&self, text: &str, ticker: Option<&str>) -> Vec<Candidate> {
        #[derive(Default)]
        struct Seen {
            count: usize,
            first: usize,
            first_sentence: bool,
            headline: bool,
            parenthesised: usize,
            ticker_parenthesised: usize,
            possessive: usize,
            suffix: usize,
            opens: usize,
            near: usize,
            early: usize,
        }
        let first_sentence_end = first_sentence_end(text);
        let headline = headline_end(text);
        let events = self.events(text);
        let lower = text.to_lowercase();
        let domains: HashSet<&str> = self
            .domain
            .captures_iter(&lower)
            .filter_map(|found| found.get(1).map(|label| label.as_str()))
            .collect();
        let handles: Vec<&str> = self
            .handle
            .captures_iter(&lower)
            .filter_map(|found| found.get(1).map(|handle| handle.as_str()))
            .collect();
        let mut order: Vec<String> = Vec::new();
        let mut seen: HashMap<String, Seen> = HashMap::new();
        for found in self.name.find_iter(text) {
            let mut words: Vec<&str> = found.as_str().split(' ').collect();
            // Drop leading words that are not names ("Today Somnia" -> "Somnia"), and
            // trailing ones that name the event ("Connext Airdrop" -> "Connext").
            while words.first().is_some_and(|word| is_common(word)) {
                words.remove(0);
            }
            while words.len() > 1 && words.last().is_some_and(|word| is_common(word)) {
                words.pop();
            }
            if words.is_empty() || words[0].chars().all(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            let candidate = words.join(" ");
            // The ticker as written is the ticker, not the project's name: a project named
            // by its ticker is named so in other case (`Vidy`, VIDY) or is left unnamed.
            // Out of fold this cost 2 projects of 208; it keeps a report that names the
            // project only where sentences open (`Daltiq ... DTX token`) from being filed
            // under its ticker, and events merge by project name.
            if candidate.len() < 2 || ticker == Some(candidate.as_str()) {
                continue;
            }
            // Where the kept words begin (leading and trailing words may have been dropped).
            let start = found.start() + found.as_str().find(candidate.as_str()).unwrap_or(0);
            let end = start + candidate.len();
            let after = &text[end..];
            let parenthesised = after
                .strip_prefix(" (")
                .map(|rest| rest.strip_prefix('$').unwrap_or(rest))
                .and_then(|rest| {
                    let symbol_end = rest.find(')')?;
                    let symbol = &rest[..symbol_end];
                    let valid = (2..=10).contains(&symbol.len())
                        && symbol.starts_with(|c: char| c.is_ascii_uppercase())
                        && symbol
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                    valid.then_some(symbol)
                });
            let next_word = after
                .strip_prefix(' ')
                .and_then(|rest| rest.split(|c: char| !c.is_alphanumeric()).next())
                .map(str::to_lowercase);
            if !seen.contains_key(&candidate) {
                order.push(candidate.clone());
            }
            let entry = seen.entry(candidate).or_insert_with(|| Seen {
                first: start,
                ..Seen::default()
            });
            entry.count += 1;
            entry.first_sentence |= start < first_sentence_end;
            entry.headline |= start < headline;
            entry.early += usize::from(start < 400);
            entry.parenthesised += usize::from(parenthesised.is_some());
            entry.ticker_parenthesised +=
                usize::from(parenthesised.is_some() && parenthesised == ticker);
            entry.possessive += usize::from(after.starts_with("'s") || after.starts_with("’s"));
            entry.suffix +=
                usize::from(next_word.is_some_and(|word| NAME_SUFFIXES.contains(&word.as_str())));
            entry.opens += usize::from(super::opens_sentence(text, start));
            entry.near += usize::from(near(&events, start, end));
        }
        let length = text.len() as f64 + 1.0;
        order
            .into_iter()
            .filter_map(|candidate| {
                let seen = seen.get(&candidate)?;
                let words: Vec<&str> = candidate.split(' ').collect();
                let letters: String = candidate
                    .chars()
                    .filter(|c| c.is_alphanumeric())
                    .flat_map(char::to_lowercase)
                    .collect();
                let capitals = candidate
                    .chars()
                    .filter(|c| *c != ' ')
                    .all(|c| c.is_uppercase() || c.is_ascii_digit());
                let site = letters.len() >= 3
                    && (domains.contains(letters.as_str())
                        || handles.iter().any(|handle| handle.starts_with(&letters)));
                let values = vec![
                    ln1p(seen.count),
                    seen.first as f64 / length,
                    flag(seen.first_sentence),
                    flag(seen.headline),
                    ln1p(seen.parenthesised),
                    ln1p(seen.ticker_parenthesised),
                    ln1p(seen.possessive),
                    ln1p(seen.suffix),
                    seen.opens as f64 / seen.count.max(1) as f64,
                    ln1p(seen.near),
                    ln1p(seen.early),
                    flag(words.len() == 1 && super::appears_lowercase(text, &candidate)),
                    flag(capitals),
                    flag(words.len() == 1),
                    flag(words.len() == 2),
                    flag(words.len() == 3),
                    // A name the ticker abbreviates, not the ticker itself in any case
                    // (`DTX` trivially "abbreviates" `DTX`).
                    flag(ticker.is_some_and(|symbol| {
                        letters != symbol.to_lowercase() && super::abbreviates(symbol, &candidate)
                    })),
                    flag(ticker.is_some_and(|symbol| letters == symbol.to_lowercase())),
                    flag(
                        words
                            .iter()
                            .any(|word| EXCHANGES.contains(&word.to_lowercase().as_str())),
                    ),
                    flag(words.iter().all(|word| is_common(word))),
                    flag(site),
                    flag(words.iter().all(|word| super::is_time_word(word))),
                    flag(candidate.ends_with("-based")),
                ];
                Some(Candidate {
                    name: candidate,
                    values,
                })
            })
            .collect()
    }
}

/// A capitalised word that does not begin a project's name: an exchange, a calendar word, a
/// word that opens sentences (the word list).
fn is_common(word: &str) -> bool {
    NOT_PROJECTS.contains(&word.to_lowercase().as_str())
}
