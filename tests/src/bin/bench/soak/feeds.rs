//! The soak's feeds: RSS documents made from (source, index) and the time alone, and the
//! made-up projects their announcements are renamed to.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{ANNOUNCEMENTS, FEED_ITEMS, PROJECTS_PER_MINUTE};
use crate::{BOILERPLATE, mix};

/// The feeds' clock and the texts their items are made of.
pub struct Feeds {
    started: Instant,
    started_at: DateTime<Utc>,
    /// Items a second per source.
    per_source: f64,
    positives: Vec<Announcement>,
    negatives: Vec<(String, String)>,
    base: String,
}

impl Feeds {
    /// Feeds whose clock starts now, publishing `per_source` items a second each.
    pub fn new(
        per_source: f64,
        positives: Vec<Announcement>,
        negatives: Vec<(String, String)>,
        base: String,
    ) -> Feeds {
        Feeds {
            started: Instant::now(),
            started_at: Utc::now(),
            per_source,
            positives,
            negatives,
            base,
        }
    }

    /// Source `source`'s phase in items, so the sources do not all publish at once.
    fn phase(source: u64) -> f64 {
        (mix(source) % 1000) as f64 / 1000.0
    }

    /// Seconds from the start at which item `index` of `source` is published.
    fn published_at(&self, source: u64, index: u64) -> f64 {
        (index as f64 + 1.0 - Self::phase(source)) / self.per_source
    }

    /// Title and text of item `index` of `source`: the same every time it is asked for.
    fn item(&self, source: u64, index: u64) -> (String, String) {
        let mut rng = StdRng::seed_from_u64(mix((source << 32) ^ index));
        if rng.random_bool(ANNOUNCEMENTS) {
            let announcement = &self.positives[rng.random_range(0..self.positives.len())];
            // One of the minute's `PROJECTS_PER_MINUTE` made-up projects: its copies across
            // the sources merge into one event, as a story's copies do, and new events keep
            // coming all hour rather than a few events gaining sources without end.
            let minute = (self.published_at(source, index) / 60.0) as u64;
            let project = project_name(
                minute * PROJECTS_PER_MINUTE + rng.random_range(0..PROJECTS_PER_MINUTE),
            );
            return rename(announcement, &project);
        }
        let first = &self.negatives[rng.random_range(0..self.negatives.len())];
        let mut text = first.1.clone();
        for _ in 1..rng.random_range(1..=3) {
            text.push_str("\n\n");
            text.push_str(&self.negatives[rng.random_range(0..self.negatives.len())].1);
        }
        if rng.random_bool(0.5) {
            text.push_str("\n\n");
            text.push_str(BOILERPLATE);
        }
        (first.0.clone(), text)
    }

    /// The RSS document of `source` now.
    fn rss(&self, source: u64) -> String {
        let published =
            self.started.elapsed().as_secs_f64() * self.per_source + Self::phase(source);
        let mut body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel><title>Soak wire {source}</title><link>{}/</link><description>Bench feed</description>\n",
            self.base
        );
        let newest = published.floor() as i64 - 1;
        let oldest = (newest - FEED_ITEMS as i64 + 1).max(0);
        for index in (oldest..=newest).rev() {
            let index = index as u64;
            let (title, text) = self.item(source, index);
            let at = self.published_at(source, index);
            let date = self.started_at + chrono::Duration::milliseconds((at * 1000.0) as i64);
            body.push_str(&format!(
                "<item><title>{}</title><link>{base}/story/{source}/{index}</link><guid>{base}/story/{source}/{index}</guid><pubDate>{}</pubDate><description>{}</description></item>\n",
                escape(&title),
                date.to_rfc2822(),
                escape(&text),
                base = self.base,
            ));
        }
        body.push_str("</channel></rss>\n");
        body
    }
}

/// A made-up project name for `k`: four syllables, capitalised.
fn project_name(k: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ra", "ven", "tor", "zu", "qui", "nel", "sa", "dor", "phi", "ux", "bel",
        "tri", "mo",
    ];
    let mut bits = mix(k);
    let mut name = String::new();
    for _ in 0..4 {
        name.push_str(SYLLABLES[(bits & 15) as usize]);
        bits >>= 4;
    }
    let mut chars = name.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
    std::iter::once(first).chain(chars).collect()
}

/// Words a title may start with that are not the announcing project.
const NOT_PROJECTS: [&str; 16] = [
    "Binance", "Coinbase", "OKX", "Bybit", "Bitget", "MEXC", "Upbit", "KuCoin", "Gate", "TGE",
    "Token", "Trading", "Newly", "Open", "The", "New",
];

/// The project an announcement's title starts with (the own corpus' habit), when it is a
/// capitalised word of letters that the text names too; `None` otherwise.
pub fn leading_project(title: &str, text: &str) -> Option<String> {
    let first = title.split_whitespace().next()?.trim_end_matches("'s");
    let first = first.trim_end_matches(|c: char| !c.is_alphanumeric());
    let renameable = first.chars().count() >= 3
        && first.chars().all(char::is_alphabetic)
        && first.starts_with(|c: char| c.is_uppercase())
        && !NOT_PROJECTS.contains(&first)
        && replace_word(text, first, "").1 > 0;
    renameable.then(|| first.to_owned())
}

/// `text` with every whole-word `word` replaced by `by`, and how many were replaced.
fn replace_word(text: &str, word: &str, by: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut replaced = 0;
    let mut rest = 0;
    for (at, _) in text.match_indices(word) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if at < rest
            || before.is_some_and(char::is_alphanumeric)
            || after.is_some_and(char::is_alphanumeric)
        {
            continue;
        }
        out.push_str(&text[rest..at]);
        out.push_str(by);
        replaced += 1;
        rest = at + word.len();
    }
    out.push_str(&text[rest..]);
    (out, replaced)
}

/// An announcement whose leading project can be renamed: title, text and that project.
pub struct Announcement {
    pub title: String,
    pub text: String,
    pub project: String,
}

/// The announcement renamed to `project` in title and text.
fn rename(announcement: &Announcement, project: &str) -> (String, String) {
    (
        replace_word(&announcement.title, &announcement.project, project).0,
        replace_word(&announcement.text, &announcement.project, project).0,
    )
}

/// XML text escaping (the five predefined entities).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

pub async fn feed(
    State(feeds): State<Arc<Feeds>>,
    UrlPath(source): UrlPath<u64>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        feeds.rss(source),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_are_replaced() {
        let (text, count) = replace_word("Fhenix, Fhenixa and (Fhenix)", "Fhenix", "Kalo");
        assert_eq!(text, "Kalo, Fhenixa and (Kalo)");
        assert_eq!(count, 2);
        assert_eq!(replace_word("none here", "Fhenix", "Kalo").1, 0);
    }

    #[test]
    fn only_a_named_project_leads() {
        let text = "Monad Foundation said the MON token goes live.";
        assert_eq!(
            leading_project("Monad's TGE set", text).as_deref(),
            Some("Monad")
        );
        assert_eq!(leading_project("Binance lists MON", text), None);
        assert_eq!(leading_project("Pump.fun token", text), None);
        assert_eq!(leading_project("Berachain goes live", text), None);
    }

    #[test]
    fn items_are_listed_once_published_and_stay_the_same() {
        let positives = vec![Announcement {
            title: "Monad sets TGE".into(),
            text: "Monad will generate MON.".into(),
            project: "Monad".into(),
        }];
        let negatives = vec![("Wrap".into(), "Prices moved.".into())];
        let feeds = Feeds::new(1000.0, positives, negatives, "http://127.0.0.1:1".into());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let first = feeds.rss(3);
        assert_eq!(first.matches("<item>").count(), FEED_ITEMS);
        assert!(!first.contains("Monad"), "every announcement is renamed");
        assert_eq!(feeds.item(3, 7), feeds.item(3, 7));
    }
}
