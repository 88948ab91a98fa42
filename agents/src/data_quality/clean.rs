//! Pure data-quality rules: validation and sanitising of a document (plain text within the
//! markup limits, canonical URL, length bounds). The normalisation itself lives in
//! [`crate::normalize`], which scraping applies first.

use swarm_shared::domain::Document;

use crate::html::HtmlLimits;
use crate::normalize::{canonical_url, html_to_text, is_plain};

/// Why a document was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Neither title nor text.
    Empty,
    /// The URL is not usable.
    BadUrl(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Empty => f.write_str("document has neither title nor text"),
            Rejection::BadUrl(reason) => write!(f, "document url rejected: {reason}"),
        }
    }
}

/// Validates and sanitises a document: plain text only (markup read within `html`), canonical
/// URL, text truncated at a char boundary to `max_text_bytes`.
pub fn validate(
    mut document: Document,
    max_text_bytes: usize,
    html: HtmlLimits,
) -> Result<Document, Rejection> {
    // Scraping already produces plain text; only text that is not plain is cleaned again.
    if !is_plain(&document.title) {
        document.title = html_to_text(&document.title, html);
    }
    if !is_plain(&document.text) {
        document.text = html_to_text(&document.text, html);
    }
    if document.title.is_empty() && document.text.is_empty() {
        return Err(Rejection::Empty);
    }
    document.url = canonical_url(&document.url, None).map_err(Rejection::BadUrl)?;
    if document.title.len() > 1_000 {
        truncate_at_char(&mut document.title, 1_000);
    }
    if document.text.len() > max_text_bytes {
        truncate_at_char(&mut document.text, max_text_bytes);
    }
    Ok(document)
}

fn truncate_at_char(text: &mut String, max: usize) {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(title: &str, text: &str, url: &str) -> Document {
        Document {
            source_kind: None,
            facts: Default::default(),
            id: "id".into(),
            source_id: 1,
            source_name: "s".into(),
            source_tier: 1,
            url: url.into(),
            title: title.into(),
            text: text.into(),
            published_at: None,
            fetched_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn validation() {
        assert_eq!(
            validate(
                document("", " ", "https://a.b/x"),
                1000,
                HtmlLimits::default()
            ),
            Err(Rejection::Empty)
        );
        assert!(matches!(
            validate(
                document("t", "x", "javascript:alert(1)"),
                1000,
                HtmlLimits::default()
            ),
            Err(Rejection::BadUrl(_))
        ));
        let long = "é".repeat(1000);
        let kept = validate(
            document("t", &long, "https://a.b/x?utm_source=y"),
            301,
            HtmlLimits::default(),
        )
        .unwrap();
        assert_eq!(kept.text.len(), 300);
        assert_eq!(kept.url, "https://a.b/x");
    }
}
