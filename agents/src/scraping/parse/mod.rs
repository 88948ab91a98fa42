//! Parsing fetched bytes into items: RSS/Atom through feed-rs, HTML pages through CSS
//! selectors (scraper), JSON Lines documents for local files. Errors say what was malformed.
//!
//! Parsing is bounded ([`Limits`]): XML nesting depth, HTML depth and node count (see
//! [`crate::html`]), and items, which stop the parse once `max_items` are read rather than
//! being cut afterwards. A parse can be abandoned at a deadline or when its agent stops.

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::{DateTime, Utc};
use quick_xml::events::Event;
use scraper::{ElementRef, Selector};
use serde::Deserialize;
use swarm_shared::config::ScrapingConfig;
use swarm_shared::domain::{JsonMapping, Selectors, SourceKind};
use url::Url;

use crate::html::{self, Abandon, HtmlError, HtmlLimits};

pub mod json;

/// One parsed item, before sanitising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawItem {
    /// Title (may contain markup).
    pub title: String,
    /// Link as found (may be relative).
    pub link: Option<String>,
    /// Body (may contain markup).
    pub text: String,
    /// Publication time.
    pub published: Option<DateTime<Utc>>,
    /// The source's own category for the item (an exchange's announcement type).
    pub category: Option<String>,
}

/// Bounds on parsing one fetched body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items taken; parsing stops there.
    pub max_items: usize,
    /// HTML depth and node count.
    pub html: HtmlLimits,
    /// Deepest XML element nesting.
    pub max_xml_depth: u32,
    /// Longest a page may take to parse.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// The configured limits.
    pub fn from_config(config: &ScrapingConfig) -> Limits {
        Limits {
            max_items: config.max_items,
            html: HtmlLimits::from_config(config),
            max_xml_depth: config.max_xml_depth,
            timeout: Some(config.parse_timeout),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&ScrapingConfig::default())
    }
}

/// Why parsing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a valid RSS/Atom document.
    #[error("malformed feed: {0}")]
    Feed(String),
    /// A selector does not parse.
    #[error("invalid CSS selector `{selector}` in {field}: {reason}")]
    Selector {
        /// Field of the source's selectors.
        field: &'static str,
        /// The selector.
        selector: String,
        /// Why.
        reason: String,
    },
    /// HTML parsed but the item selector matched nothing.
    #[error("selector `{0}` matched no items")]
    NoItems(String),
    /// A JSON Lines record is invalid.
    #[error("line {line}: {reason}")]
    JsonLine {
        /// 1-based line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The body is not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The API answered 200 with an error of its own (its code and message).
    #[error("the API reported an error: {0}")]
    Api(String),
    /// The JSON is not shaped as the source's mapping (or the exchange's documented
    /// response) says: its shape changed, or the mapping is wrong.
    #[error("unexpected response shape: {0}")]
    Schema(String),
    /// A file whose format cannot be recognised.
    #[error("unrecognised file format: {0}")]
    Unrecognised(String),
    /// The body is beyond a parsing limit; nothing of it was used.
    #[error("{what}: not read (limit set by scraping.{setting})")]
    Limit {
        /// What was exceeded.
        what: String,
        /// The setting that bounds it.
        setting: &'static str,
    },
    /// The agent stopped while parsing; the task is fetched again later.
    #[error("parse abandoned: the agent is stopping")]
    Stopped,
}

impl From<HtmlError> for ParseError {
    fn from(err: HtmlError) -> Self {
        let setting = match err {
            HtmlError::TooDeep { .. } => "max_html_depth",
            HtmlError::TooManyNodes { .. } => "max_html_nodes",
            HtmlError::TimedOut { .. } => "parse_timeout",
            HtmlError::Stopped => return ParseError::Stopped,
        };
        ParseError::Limit {
            what: err.to_string(),
            setting,
        }
    }
}

/// Parses a source's bytes according to its kind, within `limits`; `stop` abandons it.
pub fn parse(
    kind: SourceKind,
    bytes: &[u8],
    selectors: Option<&Selectors>,
    json: Option<&JsonMapping>,
    limits: &Limits,
    stop: Option<&AtomicBool>,
) -> Result<Vec<RawItem>, ParseError> {
    let abandon = Abandon {
        timeout: limits.timeout,
        stop,
    };
    let mut items = match kind {
        SourceKind::Rss | SourceKind::Atom => parse_feed(bytes, limits)?,
        SourceKind::Html => {
            let selectors = selectors.ok_or_else(|| ParseError::Selector {
                field: "selectors.item",
                selector: String::new(),
                reason: "html sources need selectors".into(),
            })?;
            parse_html(bytes, selectors, limits, abandon)?
        }
        SourceKind::File => parse_file(bytes, selectors, limits, abandon)?,
        SourceKind::Json => {
            let mapping =
                json.ok_or_else(|| ParseError::Schema("json sources need a json mapping".into()))?;
            json::parse_json(bytes, mapping, limits.max_items)?
        }
        SourceKind::Telegram => parse_telegram(bytes, limits, abandon)?,
        // Exchange and X connectors make their own requests and read each response.
        SourceKind::Exchange | SourceKind::X => {
            return Err(ParseError::Unrecognised(
                "exchange and x sources are read by their connector".into(),
            ));
        }
    };
    items.truncate(limits.max_items);
    Ok(items)
}

/// Reads an XML feed's structure once, without building anything: refuses nesting deeper
/// than `max_depth`, and when the feed has more than `max_items` items returns it cut after
/// the last item taken, its open elements closed, so that feed-rs never reads (or allocates
/// for) the rest. Malformed XML is returned as it is, for feed-rs to report.
fn bound_xml(bytes: &[u8], max_items: usize, max_depth: u32) -> Result<Cow<'_, [u8]>, ParseError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    // Names of the open elements, as written (prefix included), to close them after a cut.
    let mut open: Vec<String> = Vec::new();
    let mut items = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                if open.len() >= max_depth as usize {
                    return Err(ParseError::Limit {
                        what: format!(
                            "XML nested deeper than {max_depth} levels (at byte {})",
                            reader.buffer_position()
                        ),
                        setting: "max_xml_depth",
                    });
                }
                open.push(start.name().into_inner().to_owned());
            }
            Ok(Event::End(_)) => {
                let Some(name) = open.pop() else {
                    return Ok(Cow::Borrowed(bytes));
                };
                let local = name.rsplit(':').next().unwrap_or(&name);
                // rss > channel > item, rdf:RDF > item, feed > entry.
                if open.len() <= 2 && matches!(local, "item" | "entry") {
                    items += 1;
                    if items >= max_items {
                        let end = usize::try_from(reader.buffer_position())
                            .unwrap_or(bytes.len())
                            .min(bytes.len());
                        let mut cut = bytes[..end].to_vec();
                        for name in open.iter().rev() {
                            cut.extend_from_slice(b"</");
                            cut.extend_from_slice(name.as_bytes());
                            cut.push(b'>');
                        }
                        return Ok(Cow::Owned(cut));
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return Ok(Cow::Borrowed(bytes)),
            Ok(_) => {}
        }
    }
}

/// RSS 2.0, Atom (and RSS 1.0 / JSON Feed, which feed-rs also reads). XML feeds are bounded
/// by [`bound_xml`] first; JSON Feed by serde_json's own nesting limit.
pub fn parse_feed(bytes: &[u8], limits: &Limits) -> Result<Vec<RawItem>, ParseError> {
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let json = start.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let bytes = if json {
        Cow::Borrowed(bytes)
    } else {
        bound_xml(bytes, limits.max_items.max(1), limits.max_xml_depth)?
    };
    let feed =
        feed_rs::parser::parse(bytes.as_ref()).map_err(|err| ParseError::Feed(err.to_string()))?;
    let mut items = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let title = entry.title.map(|text| text.content).unwrap_or_default();
        let content = entry.content.and_then(|content| content.body);
        let summary = entry.summary.map(|text| text.content);
        let text = match (content, summary) {
            (Some(content), _) if !content.trim().is_empty() => content,
            (_, Some(summary)) => summary,
            _ => String::new(),
        };
        let link = entry
            .links
            .iter()
            .find(|link| link.rel.as_deref().is_none_or(|rel| rel == "alternate"))
            .or(entry.links.first())
            .map(|link| link.href.clone())
            .or_else(|| entry.id.starts_with("http").then(|| entry.id.clone()));
        items.push(RawItem {
            title,
            link,
            text,
            published: entry.published.or(entry.updated),
            category: None,
        });
    }
    Ok(items)
}

fn selector(field: &'static str, text: &str) -> Result<Selector, ParseError> {
    Selector::parse(text).map_err(|err| ParseError::Selector {
        field,
        selector: text.to_owned(),
        reason: err.to_string(),
    })
}

fn optional_selector(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<Selector>, ParseError> {
    text.map(|text| selector(field, text)).transpose()
}

fn element_text(element: ElementRef<'_>) -> String {
    element.text().collect::<Vec<_>>().join(" ")
}

/// Checks that every selector compiles; the error names the field.
pub fn validate_selectors(selectors: &Selectors) -> Result<(), ParseError> {
    selector("selectors.item", &selectors.item)?;
    optional_selector("selectors.title", selectors.title.as_deref())?;
    optional_selector("selectors.link", selectors.link.as_deref())?;
    optional_selector("selectors.date", selectors.date.as_deref())?;
    optional_selector("selectors.text", selectors.text.as_deref())?;
    Ok(())
}

/// An HTML page read with CSS selectors, bounded by `limits.html` and `abandon`.
pub fn parse_html(
    bytes: &[u8],
    selectors: &Selectors,
    limits: &Limits,
    abandon: Abandon<'_>,
) -> Result<Vec<RawItem>, ParseError> {
    let item_selector = selector("selectors.item", &selectors.item)?;
    let title_selector = optional_selector("selectors.title", selectors.title.as_deref())?;
    let link_selector = optional_selector("selectors.link", selectors.link.as_deref())?;
    let date_selector = optional_selector("selectors.date", selectors.date.as_deref())?;
    let text_selector = optional_selector("selectors.text", selectors.text.as_deref())?;
    let default_title = selector("selectors.title", "h1, h2, h3, h4, a")?;
    let default_link = selector("selectors.link", "a[href]")?;
    let default_date = selector("selectors.date", "time")?;

    let html = String::from_utf8_lossy(bytes);
    let document = html::parse_document(&html, limits.html, abandon)?;
    let mut items = Vec::new();
    for item in document.select(&item_selector).take(limits.max_items) {
        let title = item
            .select(title_selector.as_ref().unwrap_or(&default_title))
            .next()
            .map(element_text)
            .unwrap_or_default();
        let link = item
            .select(link_selector.as_ref().unwrap_or(&default_link))
            .next()
            .and_then(|element| element.value().attr("href"))
            .or_else(|| item.value().attr("href"))
            .map(str::to_owned);
        let published = item
            .select(date_selector.as_ref().unwrap_or(&default_date))
            .next()
            .and_then(|element| {
                let raw = element
                    .value()
                    .attr("datetime")
                    .map(str::to_owned)
                    .unwrap_or_else(|| element_text(element));
                parse_date(raw.trim())
            });
        let text = match &text_selector {
            Some(text_selector) => item
                .select(text_selector)
                .map(element_text)
                .collect::<Vec<_>>()
                .join(" "),
            None => element_text(item),
        };
        items.push(RawItem {
            title,
            link,
            text,
            published,
            category: None,
        });
    }
    if items.is_empty() {
        return Err(ParseError::NoItems(selectors.item.clone()));
    }
    Ok(items)
}

/// Where a message is on a Telegram channel's public preview page (`t.me/s/<channel>`): each
/// message's element names its post (`data-post="channel/123"`), its text, and a link to the
/// post holding a `<time datetime>`.
const TELEGRAM: (&str, &str, &str, &str) = (
    ".tgme_widget_message[data-post]",
    ".tgme_widget_message_text",
    "a.tgme_widget_message_date",
    "time[datetime]",
);

/// Longest title taken from a post's first line, in characters.
const POST_TITLE_CHARS: usize = 140;

/// A Telegram channel's preview page: one item per post with text, its [`post_title`] as the
/// title. Posts without text (a photo alone)
/// are skipped.
pub fn parse_telegram(
    bytes: &[u8],
    limits: &Limits,
    abandon: Abandon<'_>,
) -> Result<Vec<RawItem>, ParseError> {
    let (item, text, link, date) = TELEGRAM;
    let selectors = Selectors {
        item: item.into(),
        title: None,
        link: Some(link.into()),
        date: Some(date.into()),
        text: Some(text.into()),
    };
    let mut items = match parse_html(bytes, &selectors, limits, abandon) {
        Err(ParseError::NoItems(_)) => {
            return Err(ParseError::Schema(
                "no channel posts on the page (a private or unknown channel?)".into(),
            ));
        }
        other => other?,
    };
    items.retain(|item| !item.text.trim().is_empty());
    for item in &mut items {
        item.title = post_title(&item.text);
    }
    Ok(items)
}

/// A post's title, for sources whose posts have none (Telegram, X): its first sentence (up to
/// a `.`, `!` or `?` followed by a space), whitespace collapsed, cut at a word to at most
/// [`POST_TITLE_CHARS`] characters.
pub fn post_title(text: &str) -> String {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(at, c)| matches!(c, '.' | '!' | '?') && text[at + c.len_utf8()..].starts_with(' '))
        .map_or(text.len(), |(at, c)| at + c.len_utf8());
    let first = text[..end].split_whitespace().collect::<Vec<_>>().join(" ");
    if first.chars().count() <= POST_TITLE_CHARS {
        return first;
    }
    let cut: String = first.chars().take(POST_TITLE_CHARS).collect();
    let at_word = cut.rfind(' ').map_or(cut.as_str(), |space| &cut[..space]);
    format!("{at_word}…")
}

/// A date in RFC 3339, RFC 2822 or `YYYY-MM-DD` form.
pub fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_rfc2822(text) {
        return Some(at.with_timezone(&Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLineItem {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    title: Option<String>,
    text: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    published_at: Option<DateTime<Utc>>,
}

/// A local file: a feed, an HTML page (when selectors are given) or JSON Lines records
/// `{"text", "title"?, "url"?, "published_at"?, "id"?}`.
pub fn parse_file(
    bytes: &[u8],
    selectors: Option<&Selectors>,
    limits: &Limits,
    abandon: Abandon<'_>,
) -> Result<Vec<RawItem>, ParseError> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    let trimmed = head.trim_start_matches('\u{feff}').trim_start();
    if let Some(selectors) = selectors {
        return parse_html(bytes, selectors, limits, abandon);
    }
    if trimmed.starts_with('<') {
        return parse_feed(bytes, limits);
    }
    if trimmed.starts_with('{') {
        return parse_json_lines(bytes, limits.max_items);
    }
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    Err(ParseError::Unrecognised(
        "expected an RSS/Atom feed, JSON Lines, or HTML with selectors".into(),
    ))
}

/// JSON Lines records (blank lines skipped), the first `max_items` of them.
pub fn parse_json_lines(bytes: &[u8], max_items: usize) -> Result<Vec<RawItem>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|err| ParseError::JsonLine {
        line: 1,
        reason: format!("not UTF-8: {err}"),
    })?;
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if items.len() >= max_items {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let record: JsonLineItem =
            serde_json::from_str(line).map_err(|err| ParseError::JsonLine {
                line: index + 1,
                reason: err.to_string(),
            })?;
        let _ = record.id;
        items.push(RawItem {
            title: record.title.unwrap_or_default(),
            link: record.url,
            text: record.text,
            published: record.published_at,
            category: None,
        });
    }
    Ok(items)
}

/// Resolves an item's link against the source URL; a file item without a link gets a stable
/// synthetic one (`file:///path#item-N`) so its id is stable too.
pub fn resolve_link(item: &RawItem, source_url: &Url, index: usize) -> String {
    match &item.link {
        Some(link) => source_url
            .join(link.trim())
            .map(|url| url.to_string())
            .unwrap_or_else(|_| link.clone()),
        None => {
            let mut url = source_url.clone();
            url.set_fragment(Some(&format!("item-{index}")));
            url.to_string()
        }
    }
}

#[cfg(test)]
mod tests;
