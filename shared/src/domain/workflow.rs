//! The analysts' workflow over events: a status each (`new` until someone sets it), notes,
//! an audit of every change with who made it, and what an event is: its kind (TGE, first
//! listing, pre-market, launchpool, airdrop or claim, sale) and the precision of its date.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// Longest note, characters.
pub const MAX_NOTE_CHARS: usize = 2_000;
/// Most events one bulk update changes.
pub const MAX_BULK_EVENTS: usize = 500;

/// Where an analyst has put an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Nobody has looked at it yet.
    #[default]
    New,
    /// An analyst confirmed it (subscribers get an update alert).
    Confirmed,
    /// Not a TGE announcement, or not one worth following.
    Dismissed,
    /// Done with: kept, out of the way.
    Archived,
}

impl EventStatus {
    /// Every status, in workflow order.
    pub const ALL: [EventStatus; 4] = [
        EventStatus::New,
        EventStatus::Confirmed,
        EventStatus::Dismissed,
        EventStatus::Archived,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::New => "new",
            EventStatus::Confirmed => "confirmed",
            EventStatus::Dismissed => "dismissed",
            EventStatus::Archived => "archived",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<EventStatus> {
        EventStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// What kind of token event an announcement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A token generation event or token launch (also when nothing more specific is said).
    #[default]
    Tge,
    /// A first listing on an exchange (spot or perpetual trading opens).
    FirstListing,
    /// Pre-market trading before the token exists (pre-market, points or IOU markets).
    PreMarket,
    /// An exchange's distribution programme: Launchpool, HODLer Airdrops, Megadrop.
    Launchpool,
    /// An airdrop or a claim opening, an eligibility checker.
    Airdrop,
    /// A token sale: public sale, presale, ICO, IDO, IEO, launchpad sale.
    Sale,
}

/// Cues of each kind other than [`EventKind::Tge`], lower case, in the order a title is
/// read: the most specific kind first. A cue of letters only must stand as a word.
const KIND_CUES: [(EventKind, &[&str]); 5] = [
    (
        EventKind::Launchpool,
        &["launchpool", "hodler airdrop", "megadrop"],
    ),
    (
        EventKind::PreMarket,
        &["pre-market", "premarket", "pre market"],
    ),
    (
        EventKind::Sale,
        &[
            "token sale",
            "public sale",
            "presale",
            "pre-sale",
            "community sale",
            "ico",
            "ido",
            "ieo",
            "launchpad",
        ],
    ),
    (
        EventKind::Airdrop,
        &[
            "airdrop",
            "claim",
            "claiming",
            "eligibility",
            "eligible",
            "checker",
        ],
    ),
    (
        EventKind::FirstListing,
        &[
            "will list",
            "lists",
            "listing",
            "listed",
            "spot trading",
            "perpetual",
            "trading opens",
            "trading will open",
            "trading starts",
            "deposits open",
        ],
    ),
];

/// Cues that name the generation event itself.
const TGE_CUES: [&str; 4] = [
    "tge",
    "token generation",
    "token launch",
    "launches its token",
];

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 6] = [
        EventKind::Tge,
        EventKind::FirstListing,
        EventKind::PreMarket,
        EventKind::Launchpool,
        EventKind::Airdrop,
        EventKind::Sale,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Tge => "tge",
            EventKind::FirstListing => "first_listing",
            EventKind::PreMarket => "pre_market",
            EventKind::Launchpool => "launchpool",
            EventKind::Airdrop => "airdrop",
            EventKind::Sale => "sale",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The kind a title names outright, if it names one (see [`EventKind::infer`]).
    pub fn named_in(title: &str) -> Option<EventKind> {
        let title = title.to_lowercase();
        for (kind, cues) in &KIND_CUES[..3] {
            if cues.iter().any(|cue| contains_cue(&title, cue)) {
                return Some(*kind);
            }
        }
        if TGE_CUES.iter().any(|cue| contains_cue(&title, cue)) {
            return Some(EventKind::Tge);
        }
        KIND_CUES[3..]
            .iter()
            .find(|(_, cues)| cues.iter().any(|cue| contains_cue(&title, cue)))
            .map(|(kind, _)| *kind)
    }

    /// The kind an announcement reads as. The title decides when it names one: launchpool,
    /// pre-market and sale first (they are specific), then the generation event itself, then
    /// airdrop and listing. Otherwise the body's kind with the most cues, if it has at least
    /// two of them (one passing mention is no evidence). Otherwise a TGE.
    pub fn infer(title: &str, text: &str) -> EventKind {
        if let Some(kind) = EventKind::named_in(title) {
            return kind;
        }
        let body: String = text.chars().take(20_000).collect::<String>().to_lowercase();
        let mut best = (EventKind::Tge, 1);
        for (kind, cues) in &KIND_CUES {
            let hits: usize = cues.iter().map(|cue| count_cue(&body, cue)).sum();
            if hits > best.1 {
                best = (*kind, hits);
            }
        }
        best.0
    }
}

/// Whether `text` holds `cue`, as a whole word when the cue is letters only.
fn contains_cue(text: &str, cue: &str) -> bool {
    count_cue(text, cue) > 0
}

/// How often `text` holds `cue`: as a whole word (or its plural in `s`) when the cue is
/// letters and spaces only.
fn count_cue(text: &str, cue: &str) -> usize {
    let wordy = cue.bytes().all(|b| b.is_ascii_alphabetic() || b == b' ');
    text.match_indices(cue)
        .filter(|(at, _)| {
            if !wordy {
                return true;
            }
            let before = text[..*at].chars().next_back();
            let mut after = text[at + cue.len()..].chars();
            let next = match after.next() {
                Some('s') => after.next(),
                other => other,
            };
            !before.is_some_and(char::is_alphanumeric) && !next.is_some_and(char::is_alphanumeric)
        })
        .count()
}

/// Exchanges a title can name as where a token lists or trades, with the lower-case forms
/// that name each (a form of letters only must stand as a word).
const VENUES: [(&str, &[&str]); 18] = [
    ("Binance", &["binance"]),
    ("Coinbase", &["coinbase"]),
    ("OKX", &["okx"]),
    ("Bybit", &["bybit"]),
    ("Bitget", &["bitget"]),
    ("KuCoin", &["kucoin"]),
    ("Gate", &["gate.io", "gate exchange"]),
    ("MEXC", &["mexc"]),
    ("Upbit", &["upbit"]),
    ("Bithumb", &["bithumb"]),
    ("Kraken", &["kraken"]),
    ("HTX", &["htx", "huobi"]),
    ("Crypto.com", &["crypto.com"]),
    ("BingX", &["bingx"]),
    ("Bitfinex", &["bitfinex"]),
    ("Hyperliquid", &["hyperliquid"]),
    ("Binance Alpha", &["binance alpha"]),
    ("Robinhood", &["robinhood"]),
];

/// The venues (exchanges) a report's title names, in [`VENUES`]' order, each once. Titles
/// only: a body names exchanges in passing (a fund, a past listing, a price source).
pub fn venues_in(title: &str) -> Vec<String> {
    let title = title.to_lowercase();
    VENUES
        .iter()
        .filter(|(_, forms)| forms.iter().any(|form| contains_cue(&title, form)))
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

/// How precisely an event's date is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    /// A day (`March 14, 2026`, `2026-03-14`, `March 14`).
    Day,
    /// A month (`March 2026`, `late March`).
    Month,
    /// A quarter (`Q1 2026`, `first quarter`).
    Quarter,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl DatePrecision {
    /// Every precision, finest first.
    pub const ALL: [DatePrecision; 3] = [
        DatePrecision::Day,
        DatePrecision::Month,
        DatePrecision::Quarter,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatePrecision::Day => "day",
            DatePrecision::Month => "month",
            DatePrecision::Quarter => "quarter",
        }
    }

    /// Parses a name.
    pub fn parse(text: &str) -> Option<DatePrecision> {
        DatePrecision::ALL
            .into_iter()
            .find(|precision| precision.as_str() == text)
    }

    /// The precision of a date as an announcement wrote it: a day when it reads to the day
    /// (with or without its year), a month when it names a month, a quarter when it names one;
    /// none for vaguer dates (`soon`, `2026`, `this summer`).
    pub fn of(date: &str) -> Option<DatePrecision> {
        // A year-less day reads to the day whatever the year it falls in (any recent one).
        let seen = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        if super::event_day(date, seen).is_some() {
            return Some(DatePrecision::Day);
        }
        let lower = date.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .collect();
        let names_month = words.iter().any(|word| {
            MONTHS
                .iter()
                .any(|month| *word == *month || (word.len() == 3 && month.starts_with(*word)))
        });
        if names_month {
            return Some(DatePrecision::Month);
        }
        let names_quarter = words
            .iter()
            .any(|word| matches!(*word, "q1" | "q2" | "q3" | "q4" | "quarter"));
        names_quarter.then_some(DatePrecision::Quarter)
    }
}

/// A change an analyst asks for on one event: a status, a note, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventUpdate {
    /// The new status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
    /// A note (1 to 2,000 characters), kept in the event's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 2000)]
    pub note: Option<String>,
}

impl EventUpdate {
    /// Checks that it changes something and that its note fits; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.status.is_none() && self.note.is_none() {
            return Err(Error::Invalid(
                "an update needs a `status`, a `note`, or both".into(),
            ));
        }
        if let Some(note) = &self.note {
            let chars = note.trim().chars().count();
            if chars == 0 || chars > MAX_NOTE_CHARS {
                return Err(Error::Invalid(format!(
                    "note: {chars} characters; 1 to {MAX_NOTE_CHARS} are needed"
                )));
            }
            if note.contains('\0') {
                return Err(Error::Invalid(
                    "note: holds a NUL character, which no store keeps".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One entry of an event's history: a status change, a note, or both, by whom and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventChangeRecord {
    /// Id (the history's order).
    pub id: i64,
    /// The event.
    pub event_id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The name of the API key that made it.
    pub actor: String,
    /// The status before, when the status changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_from: Option<EventStatus>,
    /// The status after, when the status changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_to: Option<EventStatus>,
    /// The note given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_from_titles_first() {
        let cases = [
            (
                "Binance will list Orbiter (ORB) with a Seed Tag",
                "",
                EventKind::FirstListing,
            ),
            (
                "Introducing Orbiter (ORB) on Binance Launchpool",
                "listing soon",
                EventKind::Launchpool,
            ),
            (
                "Binance HODLer Airdrops: Orbiter (ORB)",
                "",
                EventKind::Launchpool,
            ),
            (
                "Orbiter pre-market trading opens on Bybit",
                "",
                EventKind::PreMarket,
            ),
            (
                "Orbiter public sale starts on March 3",
                "airdrop",
                EventKind::Sale,
            ),
            ("Orbiter airdrop claim is live", "", EventKind::Airdrop),
            (
                "Orbiter TGE and airdrop claim on March 3",
                "",
                EventKind::Tge,
            ),
            (
                "Orbiter announces its token",
                "The claim portal opens; claim your airdrop now.",
                EventKind::Airdrop,
            ),
            (
                "Orbiter announces its token",
                "A single listing mention.",
                EventKind::Tge,
            ),
            // Words, not parts of words: "scico" holds no ICO, "claimed" no claim.
            ("Scico project news", "", EventKind::Tge),
            ("Orbiter unclaimed rewards", "", EventKind::Tge),
        ];
        for (title, text, kind) in cases {
            assert_eq!(EventKind::infer(title, text), kind, "{title}");
        }
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn venues_are_the_exchanges_a_title_names() {
        assert_eq!(
            venues_in("Binance will list Orbiter (ORB); Bybit and OKX follow"),
            ["Binance", "OKX", "Bybit"]
        );
        assert_eq!(
            venues_in("Orbiter on Binance Alpha"),
            ["Binance", "Binance Alpha"]
        );
        assert_eq!(
            venues_in("Orbiter lists on Gate.io and HTX"),
            ["Gate", "HTX"]
        );
        // Words only: "okxlabs" and "unbinanced" name nothing; a body is not read.
        assert!(venues_in("The okxlabs report, unbinanced").is_empty());
        assert!(venues_in("Orbiter sets its TGE").is_empty());
    }

    #[test]
    fn date_precision_is_read_from_the_date() {
        let cases = [
            ("March 14, 2026", Some(DatePrecision::Day)),
            ("2026-03-14", Some(DatePrecision::Day)),
            ("March 14", Some(DatePrecision::Day)),
            ("14 March 2026", Some(DatePrecision::Day)),
            ("March 2026", Some(DatePrecision::Month)),
            ("late Dec 2026", Some(DatePrecision::Month)),
            ("Q1 2027", Some(DatePrecision::Quarter)),
            ("the first quarter of 2027", Some(DatePrecision::Quarter)),
            ("soon", None),
            ("2026", None),
        ];
        for (date, precision) in cases {
            assert_eq!(DatePrecision::of(date), precision, "{date}");
        }
    }

    #[test]
    fn updates_must_change_something() {
        assert!(EventUpdate::default().validate().is_err());
        let long = EventUpdate {
            note: Some("x".repeat(MAX_NOTE_CHARS + 1)),
            ..EventUpdate::default()
        };
        assert!(long.validate().unwrap_err().to_string().contains("note"));
        let blank = EventUpdate {
            note: Some("  ".into()),
            ..EventUpdate::default()
        };
        assert!(blank.validate().is_err());
        EventUpdate {
            status: Some(EventStatus::Confirmed),
            note: None,
        }
        .validate()
        .unwrap();
        for status in EventStatus::ALL {
            assert_eq!(EventStatus::parse(status.as_str()), Some(status));
        }
    }
}
