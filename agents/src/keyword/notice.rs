//! Exchange notices: what an exchange's own announcement states in its structure. Its title
//! names each token listed as `Name (TICKER)` (a notice may name several: each gets its own
//! event) and the kind of event (a listing, a launchpool, a pre-market); its body gives the
//! opening time in UTC. A notice of the exchange's own listing feed that names a token and a
//! kind is an announcement whatever the text model makes of its boilerplate; tokens the
//! operator lists as already trading are left to the model.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use regex::Regex;
use swarm_shared::domain::{
    ClassifiedDocument, Detection, Document, EventKind, Evidence, document_id, parse_day,
};

use super::features::{MONTHS, NOT_TICKERS};

/// Score of a notice that names its tokens and its kind.
pub const NOTICE_SCORE: f64 = 0.95;

/// Most tokens one notice is split into.
pub const MAX_TOKENS_PER_NOTICE: usize = 20;

#[allow(clippy::expect_used)] // Literal patterns, covered by the tests below.
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a literal pattern compiles")
}

static PAIR: LazyLock<Regex> = LazyLock::new(|| regex(r"\(\$?([A-Z0-9]{2,12})\)"));

/// `2026-12-10 10:00 (UTC)`, `2026-12-10T10:00:00 UTC`.
static ISO_TIME: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})(?::\d{2})?\s*\(?\s*UTC\b")
});
/// `Dec 10, 2026, 10:00 AM UTC`, `December 10, 2026 at 10AM (UTC)`.
static DAY_THEN_TIME: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b({MONTHS}\.? \d{{1,2}},? \d{{4}}),?\s+(?:at\s+)?(\d{{1,2}})(?::(\d{{2}}))?\s*([ap]\.?m\.?)?\s*\(?\s*UTC\b"
    ))
});
/// `10:00 AM UTC on Dec 10, 2026`, `10:00 on December 10, 2026 (UTC)`.
static TIME_THEN_DAY: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"(?i)\b(\d{{1,2}})(?::(\d{{2}}))?\s*([ap]\.?m\.?)?\s*(\(?\s*UTC\s*\)?)?\s+on\s+({MONTHS}\.? \d{{1,2}},? \d{{4}})\s*(\(?\s*UTC\b)?"
    ))
});

/// What a `(XYZ)` in a notice's title is that is no token, besides the extractor's own list
/// ([`NOT_TICKERS`]): time zones and quote currencies.
const ZONES_AND_QUOTES: [&str; 11] = [
    "GMT", "KST", "SGT", "HKT", "CET", "EST", "PST", "EUR", "USDT", "USDC", "FDUSD",
];

/// Words that end a token's name when read backwards from its `(TICKER)`: verbs and nouns
/// of the notice's own sentence, and the exchanges.
const NOT_NAME: [&str; 40] = [
    "will",
    "list",
    "lists",
    "listing",
    "listed",
    "add",
    "adds",
    "added",
    "launch",
    "launches",
    "introducing",
    "introduces",
    "new",
    "on",
    "of",
    "for",
    "and",
    "with",
    "the",
    "binance",
    "bybit",
    "okx",
    "bitget",
    "kucoin",
    "gate",
    "mexc",
    "upbit",
    "launchpool",
    "hodler",
    "airdrops",
    "airdrop",
    "megadrop",
    "pre-market",
    "premarket",
    "spot",
    "perpetual",
    "futures",
    "trading",
    "announcement",
    "support",
];

/// The tokens a notice's title lists as `Name (TICKER)`, each once, in order: the name is
/// the run of capitalised words (or words with digits or dots, `io.net`) just before the
/// ticker, up to four, stopped by the notice's own words.
pub fn listed_in(title: &str) -> Vec<(String, String)> {
    let mut listed: Vec<(String, String)> = Vec::new();
    for found in PAIR.captures_iter(title) {
        let (Some(whole), Some(ticker)) = (found.get(0), found.get(1)) else {
            continue;
        };
        if NOT_TICKERS.contains(&ticker.as_str()) || ZONES_AND_QUOTES.contains(&ticker.as_str()) {
            continue;
        }
        let before = &title[..whole.start()];
        let mut words: Vec<&str> = Vec::new();
        for word in before
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | '&' | '|' | '!'))
            .rev()
        {
            if word.is_empty() {
                if words.is_empty() {
                    continue;
                }
                break;
            }
            let plain = word.to_lowercase();
            let name_like = word
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
                || word.contains(['.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
            if NOT_NAME.contains(&plain.as_str()) || !name_like || words.len() == 4 {
                break;
            }
            words.push(word);
        }
        if words.is_empty() {
            continue;
        }
        words.reverse();
        let ticker = ticker.as_str().to_owned();
        if !listed.iter().any(|(_, seen)| *seen == ticker) {
            listed.push((words.join(" "), ticker));
        }
        if listed.len() == MAX_TOKENS_PER_NOTICE {
            break;
        }
    }
    listed
}

/// A notice's day (`Dec. 10, 2026`, `December 10 2026`), read as the extractor's dates are.
fn day(text: &str) -> Option<NaiveDate> {
    parse_day(&text.replace('.', ""))
}

fn time(hour: &str, minute: Option<&str>, meridiem: Option<&str>) -> Option<NaiveTime> {
    let mut hour: u32 = hour.parse().ok()?;
    let minute: u32 = minute.map_or(Some(0), |minute| minute.parse().ok())?;
    match meridiem
        .map(|m| m.to_lowercase().replace('.', ""))
        .as_deref()
    {
        Some("pm") if hour < 12 => hour += 12,
        Some("am") if hour == 12 => hour = 0,
        _ => {}
    }
    NaiveTime::from_hms_opt(hour, minute, 0)
}

/// The first opening time a notice's body states in UTC, to the minute.
pub fn start_time(text: &str) -> Option<DateTime<Utc>> {
    let mut found: Vec<(usize, NaiveDateTime)> = Vec::new();
    if let Some(c) = ISO_TIME.captures(text) {
        let day = NaiveDate::parse_from_str(c.get(1)?.as_str(), "%Y-%m-%d").ok();
        let at = day.zip(time(c.get(2)?.as_str(), c.get(3).map(|m| m.as_str()), None));
        if let Some((day, at)) = at {
            found.push((c.get(0)?.start(), day.and_time(at)));
        }
    }
    if let Some(c) = DAY_THEN_TIME.captures(text) {
        let at = day(c.get(1)?.as_str()).zip(time(
            c.get(2)?.as_str(),
            c.get(3).map(|m| m.as_str()),
            c.get(4).map(|m| m.as_str()),
        ));
        if let Some((day, at)) = at {
            found.push((c.get(0)?.start(), day.and_time(at)));
        }
    }
    for c in TIME_THEN_DAY.captures_iter(text) {
        // `UTC` before or after the day; a time without it is some other zone's.
        if c.get(4).is_none() && c.get(6).is_none() {
            continue;
        }
        let at = day(c.get(5)?.as_str()).zip(time(
            c.get(1)?.as_str(),
            c.get(2).map(|m| m.as_str()),
            c.get(3).map(|m| m.as_str()),
        ));
        if let Some((day, at)) = at {
            found.push((c.get(0)?.start(), day.and_time(at)));
            break;
        }
    }
    found
        .into_iter()
        .min_by_key(|(at, _)| *at)
        .map(|(_, at)| at.and_utc())
}

/// An exchange notice's detection, or one per token it lists. `already_trading` says why a
/// ticker is known to trade (the operator's list, an older event), if it is.
pub fn classify_notice(
    document: Document,
    mut detection: Detection,
    already_trading: impl Fn(&str) -> Option<String>,
) -> Vec<ClassifiedDocument> {
    let starts_at = start_time(&document.text);
    let kind = EventKind::named_in(&document.title);
    let listed: Vec<(String, String)> = listed_in(&document.title)
        .into_iter()
        .filter(|(_, ticker)| already_trading(ticker).is_none())
        .collect();
    let Some(kind) = kind.filter(|_| !listed.is_empty()) else {
        if detection.is_tge
            && let Some(at) = starts_at
        {
            detection.event_date = Some(format_start(at));
        }
        return vec![ClassifiedDocument {
            document,
            detection,
        }];
    };
    let several = listed.len() > 1;
    listed
        .into_iter()
        .map(|(name, ticker)| {
            let mut document = document.clone();
            if several {
                // One document per token: its own URL fragment, so its own id.
                document.url = format!(
                    "{}#{ticker}",
                    document.url.split('#').next().unwrap_or_default()
                );
                document.id = document_id(&document.url, &document.title, &document.text);
            }
            let mut evidence = vec![Evidence {
                feature: format!("notice:{}", kind.as_str()),
                snippet: format!(
                    "{name} ({ticker}) in the exchange's notice: {}",
                    document.title
                ),
                weight: 0.0,
            }];
            evidence.extend(detection.evidence.iter().cloned());
            let detection = Detection {
                score: detection.score.max(NOTICE_SCORE),
                is_tge: true,
                project: Some(name),
                token: Some(ticker),
                event_date: starts_at
                    .map(format_start)
                    .or_else(|| detection.event_date.clone()),
                evidence,
                join_only: false,
            };
            ClassifiedDocument {
                document,
                detection,
            }
        })
        .collect()
}

/// A start time as an event date: the day and the minute in UTC (`2026-12-10 10:00 UTC`).
pub fn format_start(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_the_title_with_their_names() {
        assert_eq!(
            listed_in(
                "Binance Will List Alpha (AAA), Beta Network (BBB) and Gamma (CCC) with Seed Tag Applied"
            ),
            vec![
                ("Alpha".to_owned(), "AAA".to_owned()),
                ("Beta Network".to_owned(), "BBB".to_owned()),
                ("Gamma".to_owned(), "CCC".to_owned()),
            ]
        );
        assert_eq!(
            listed_in(
                "Introducing io.net (IO) on Binance Launchpool! Farm IO by Staking BNB and FDUSD"
            ),
            vec![("io.net".to_owned(), "IO".to_owned())]
        );
        assert_eq!(
            listed_in(
                "Bybit Will List World Liberty Financial (WLFI) and WLFI/USDT Perpetual (WLFI)"
            ),
            vec![("World Liberty Financial".to_owned(), "WLFI".to_owned())]
        );
        assert!(listed_in("System maintenance on Dec 10 (UTC)").is_empty());
        assert!(listed_in("Notice on the removal of (OLD) pairs").is_empty());
    }

    #[test]
    fn the_opening_time_is_read_in_utc() {
        let at = |text: &str| start_time(text).map(|at| at.to_rfc3339());
        let want = Some("2026-12-10T10:00:00+00:00".to_owned());
        assert_eq!(
            at("Trading for these pairs will open at 2026-12-10 10:00 (UTC)."),
            want
        );
        assert_eq!(at("Listing time: Dec 10, 2026, 10:00 AM UTC"), want);
        assert_eq!(
            at("Spot trading opens at 10AM UTC on December 10, 2026."),
            want
        );
        assert_eq!(at("Trading: 10:00 on Dec. 10, 2026 (UTC)"), want);
        assert_eq!(
            at("Deposits open 2026-12-09 08:00 (UTC); trading at 2026-12-10 10:00 (UTC)."),
            Some("2026-12-09T08:00:00+00:00".to_owned()),
            "the first time stated"
        );
        assert_eq!(
            at("Trading opens at 10:00 on December 10, 2026 (KST)"),
            None
        );
        assert_eq!(at("Trading starts 2026-12-10 at 6 PM."), None);
        assert_eq!(
            at("at 12 PM UTC on December 10, 2026").as_deref(),
            Some("2026-12-10T12:00:00+00:00")
        );
    }
}
