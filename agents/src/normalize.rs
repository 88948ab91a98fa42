//! Normalisation both scraping and data quality apply: HTML (or plain text) to plain text
//! within the configured markup limits, and the canonical form of a URL (which gives a
//! document its id and a source's items their identity).

use ego_tree::iter::Edge;
use scraper::Node;
use swarm_shared::domain::normalise_whitespace;
use url::Url;

use crate::html::{self, Abandon, HtmlLimits};

/// Query parameters that only track the reader; dropped from canonical URLs.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "yclid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "ref",
    "ref_src",
    "ref_url",
    "_hsenc",
    "_hsmi",
    "spm",
    "cmpid",
    "ocid",
    "s_cid",
    "guccounter",
    "source",
    "feature",
    "cid",
];

/// Converts HTML (or plain text) to plain text: scripts, styles and comments removed, entities
/// decoded, block elements separated, whitespace collapsed, control characters dropped.
/// Markup beyond `limits` (the configured HTML limits, see [`crate::html`]) is not parsed:
/// its tags are cut out as text and what remains is read again, which decodes its entities.
pub fn html_to_text(input: &str, limits: HtmlLimits) -> String {
    if !input.contains('<') && !input.contains('&') {
        return clean_plain(input);
    }
    let fragment = match html::parse_fragment(input, limits, Abandon::default()) {
        Ok(fragment) => fragment,
        Err(_) => {
            // Beyond the limits: the tags are cut out as text. What remains has no `<`, so it
            // cannot nest; read again without a node limit (text runs are linear) to decode
            // its entities.
            let stripped = strip_tags(input);
            let flat = HtmlLimits {
                max_nodes: usize::MAX,
                ..limits
            };
            match html::parse_fragment(&stripped, flat, Abandon::default()) {
                Ok(fragment) => fragment,
                Err(_) => return clean_plain(&stripped),
            }
        }
    };
    let mut out = String::with_capacity(input.len());
    // Open script-like elements around the current node: a counter, not a walk up the
    // ancestors for every text node, which would cost the square of the depth.
    let mut hidden = 0usize;
    for edge in fragment.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Text(text) if hidden == 0 => out.push_str(text),
                Node::Element(element) if is_hidden(element.name()) => hidden += 1,
                Node::Element(element) if is_block(element.name()) => out.push(' '),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(element) = node.value()
                    && is_hidden(element.name())
                {
                    hidden = hidden.saturating_sub(1);
                }
            }
        }
    }
    clean_plain(&out)
}

fn is_hidden(name: &str) -> bool {
    matches!(name, "script" | "style" | "noscript" | "template")
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "br"
            | "div"
            | "li"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "tr"
            | "section"
            | "article"
            | "blockquote"
    )
}

/// Markup cut out without parsing it: every `<...>` becomes a space. The result has no `<`,
/// so reading it as HTML is shallow whatever the input was.
fn strip_tags(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut in_tag = false;
    for c in input.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether `text` is already what [`html_to_text`] makes of it: no markup or entities, no
/// control characters, single spaces, trimmed. One pass, no allocation.
pub fn is_plain(text: &str) -> bool {
    let mut previous_space = true;
    for c in text.chars() {
        if c == '<' || c == '&' || (c.is_control()) || (c.is_whitespace() && c != ' ') {
            return false;
        }
        let space = c == ' ';
        if space && previous_space {
            return false;
        }
        previous_space = space;
    }
    !previous_space || text.is_empty()
}

fn clean_plain(text: &str) -> String {
    let without_controls: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    normalise_whitespace(&without_controls)
}

/// Canonical form of a URL: resolved against `base`, scheme and host lowercased, `www.`,
/// default ports, fragments and tracking parameters dropped, remaining parameters sorted,
/// trailing slash removed (except the root). Errors name the URL.
pub fn canonical_url(raw: &str, base: Option<&Url>) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("url is empty".into());
    }
    let parsed = match base {
        Some(base) => base.join(trimmed),
        None => Url::parse(trimmed),
    }
    .map_err(|err| format!("invalid url `{trimmed}`: {err}"))?;
    let mut url = parsed;
    match url.scheme() {
        "http" | "https" | "file" => {}
        other => return Err(format!("unsupported url scheme `{other}` in `{trimmed}`")),
    }
    url.set_fragment(None);
    // Every leading `www.`: one pass must give what a second gives (the fuzzer found
    // `www.www.` hosts, which a single strip left for the next canonicalisation).
    if let Some(host) = url.host_str().map(str::to_owned) {
        let mut stripped = host.as_str();
        while let Some(rest) = stripped.strip_prefix("www.") {
            stripped = rest;
        }
        if stripped.len() != host.len() && url.set_host(Some(stripped)).is_err() {
            return Err(format!("invalid host in `{trimmed}`"));
        }
    }
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| {
            let key = key.to_ascii_lowercase();
            !key.starts_with("utm_") && !TRACKING_PARAMS.contains(&key.as_str())
        })
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    params.sort();
    if params.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(params);
    }
    let path = url.path().to_owned();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_urls() {
        let cases = [
            (
                "https://WWW.Example.com/a/b/?utm_source=x&b=2&a=1#frag",
                Ok("https://example.com/a/b?a=1&b=2"),
            ),
            ("http://example.com:80/", Ok("http://example.com/")),
            ("http://www.www.example.com/a", Ok("http://example.com/a")),
            (
                "https://example.com/news?fbclid=abc",
                Ok("https://example.com/news"),
            ),
            ("https://example.com/path/", Ok("https://example.com/path")),
            ("file:///tmp/feed.xml", Ok("file:///tmp/feed.xml")),
            ("ftp://example.com/x", Err("unsupported url scheme")),
            ("not a url", Err("invalid url")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            match (canonical_url(input, None), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{input}: {got}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
        let base = Url::parse("https://news.example.com/list/index.html").unwrap();
        assert_eq!(
            canonical_url("../post/1?utm_medium=rss", Some(&base)).unwrap(),
            "https://news.example.com/post/1"
        );
        // Canonical forms are fixed points (fuzz/corpus/url_canonical keeps the inputs).
        for input in [
            "http:www.www.hh/b/\0\0\0\0?\u{1}/2&a=1&\t\t\t:\t_\t\t\t\tH!",
            "https://www.example.com/a//?b=%20&a=+x",
        ] {
            let once = canonical_url(input, None).unwrap();
            assert_eq!(canonical_url(&once, None).unwrap(), once, "{input}");
        }
    }

    #[test]
    fn plain_text_is_recognised() {
        let cases = [
            ("", true),
            ("Fhenix announces TGE", true),
            ("two  spaces", false),
            (" leading", false),
            ("trailing ", false),
            ("tab\there", false),
            ("a <b>tag</b>", false),
            ("Fish &amp; chips", false),
            ("nul\u{0}", false),
        ];
        for (text, plain) in cases {
            assert_eq!(is_plain(text), plain, "{text:?}");
            if plain {
                assert_eq!(
                    html_to_text(text, HtmlLimits::default()),
                    text,
                    "plain text is a fixed point"
                );
            }
        }
    }

    #[test]
    fn html_becomes_plain_text() {
        let cases = [
            (
                "<p>Hello <b>world</b></p><script>evil()</script>",
                "Hello world",
            ),
            ("Fish &amp; chips", "Fish & chips"),
            ("a\u{0}b\tc\n\nd", "a b c d"),
            ("<style>p{}</style><div>x</div><div>y</div>", "x y"),
            ("plain", "plain"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                html_to_text(input, HtmlLimits::default()),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn markup_beyond_the_limits_still_gives_its_text() {
        let levels = 1_000_000;
        let deep = format!(
            "{}Airdrop &amp; claim open{}",
            "<b>".repeat(levels),
            "</b>".repeat(levels)
        );
        assert_eq!(
            html_to_text(&deep, HtmlLimits::default()),
            "Airdrop & claim open"
        );
        let wide = format!("<p>x</p>{}", "<i>y</i>".repeat(300_000));
        let text = html_to_text(&wide, HtmlLimits::default());
        assert!(
            text.starts_with("x y y") && is_plain(&text),
            "{}",
            &text[..20]
        );
    }
}
