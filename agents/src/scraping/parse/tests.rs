use super::*;

fn limits(max_items: usize) -> Limits {
    Limits {
        max_items,
        ..Limits::default()
    }
}

const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Fhenix announces TGE</title><link>https://news.example/fhenix</link>
<description>&lt;p&gt;The FHE token launches March 5&lt;/p&gt;</description>
<pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate></item>
<item><title>Other</title><link>/relative</link><description>x</description></item>
</channel></rss>"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>a</title><id>urn:a</id><updated>2026-03-01T00:00:00Z</updated>
<entry><title>Atom entry</title><id>urn:1</id><link href="https://blog.example/post"/>
<updated>2026-03-01T00:00:00Z</updated><summary>Summary text</summary></entry></feed>"#;

#[test]
fn feeds() {
    let items = parse(
        SourceKind::Rss,
        RSS.as_bytes(),
        None,
        None,
        &limits(100),
        None,
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].title, "Fhenix announces TGE");
    assert_eq!(
        items[0].link.as_deref(),
        Some("https://news.example/fhenix")
    );
    assert!(items[0].text.contains("<p>The FHE token"));
    assert!(items[0].published.is_some());
    let atom = parse(
        SourceKind::Atom,
        ATOM.as_bytes(),
        None,
        None,
        &limits(100),
        None,
    )
    .unwrap();
    assert_eq!(atom[0].link.as_deref(), Some("https://blog.example/post"));
    assert_eq!(atom[0].text, "Summary text");
    assert_eq!(
        parse(
            SourceKind::Rss,
            RSS.as_bytes(),
            None,
            None,
            &limits(1),
            None
        )
        .unwrap()
        .len(),
        1
    );
}

#[test]
fn malformed_inputs_are_clear_errors() {
    let cases: Vec<(SourceKind, &[u8], Option<Selectors>, &str)> = vec![
        (
            SourceKind::Rss,
            b"<rss><channel><item>",
            None,
            "malformed feed",
        ),
        (SourceKind::Rss, b"not xml at all", None, "malformed feed"),
        (
            SourceKind::Html,
            b"<html><body><p>x</p></body></html>",
            Some(Selectors {
                item: "article".into(),
                ..Selectors::default()
            }),
            "matched no items",
        ),
        (
            SourceKind::Html,
            b"<html></html>",
            Some(Selectors {
                item: "[[[".into(),
                ..Selectors::default()
            }),
            "invalid CSS selector",
        ),
        (SourceKind::File, b"{\"text\": 1}\n", None, "line 1"),
        (SourceKind::File, b"plain words", None, "unrecognised"),
    ];
    for (kind, bytes, selectors, needle) in cases {
        let err = parse(kind, bytes, selectors.as_ref(), None, &limits(100), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn html_with_selectors() {
    let page = r#"<html><body>
<article class="post"><h2><a href="/p/1">Caldera sets TGE</a></h2><time datetime="2026-03-01T00:00:00Z">x</time><p class="body">Caldera token on March 3</p></article>
<article class="post"><h2><a href="https://other.example/2">Second</a></h2><p class="body">B</p></article>
</body></html>"#;
    let selectors = Selectors {
        item: "article.post".into(),
        title: Some("h2".into()),
        link: Some("h2 a".into()),
        date: Some("time".into()),
        text: Some("p.body".into()),
    };
    let items = parse(
        SourceKind::Html,
        page.as_bytes(),
        Some(&selectors),
        None,
        &limits(100),
        None,
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].title, "Caldera sets TGE");
    assert_eq!(items[0].link.as_deref(), Some("/p/1"));
    assert_eq!(items[0].text, "Caldera token on March 3");
    assert!(items[0].published.is_some());
    let base = Url::parse("https://site.example/news/").unwrap();
    assert_eq!(
        resolve_link(&items[0], &base, 0),
        "https://site.example/p/1"
    );
}

#[test]
fn files_are_sniffed() {
    assert_eq!(
        parse(
            SourceKind::File,
            RSS.as_bytes(),
            None,
            None,
            &limits(100),
            None
        )
        .unwrap()
        .len(),
        2
    );
    let lines = b"{\"title\": \"A\", \"text\": \"B\", \"url\": \"https://x.example/a\"}\n\n{\"text\": \"C\"}\n";
    let items = parse(SourceKind::File, lines, None, None, &limits(100), None).unwrap();
    assert_eq!(items.len(), 2);
    let base = Url::parse("file:///tmp/docs.jsonl").unwrap();
    assert_eq!(
        resolve_link(&items[1], &base, 1),
        "file:///tmp/docs.jsonl#item-1"
    );
}

fn rss_with(items: usize) -> String {
    let mut feed =
        String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title>");
    for index in 0..items {
        feed.push_str(&format!(
            "<item><title>Item {index}</title><link>https://n.example/{index}</link><description>d</description></item>"
        ));
    }
    feed.push_str("</channel></rss>");
    feed
}

#[test]
fn feeds_stop_at_max_items_while_parsing() {
    // Garbage after the third item: only a parse that stops there succeeds.
    let feed = rss_with(5).replace("<item><title>Item 3", "<item><<<broken");
    assert!(
        parse(
            SourceKind::Rss,
            feed.as_bytes(),
            None,
            None,
            &limits(100),
            None
        )
        .is_err()
    );
    let items = parse(
        SourceKind::Rss,
        feed.as_bytes(),
        None,
        None,
        &limits(3),
        None,
    )
    .unwrap();
    assert_eq!(
        items
            .iter()
            .map(|item| item.title.as_str())
            .collect::<Vec<_>>(),
        ["Item 0", "Item 1", "Item 2"]
    );
    let atom = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>a</title>{}<entry><<<</feed>",
        "<entry><title>E</title><id>urn:e</id><updated>2026-03-01T00:00:00Z</updated></entry>"
            .repeat(2)
    );
    assert_eq!(
        parse(
            SourceKind::Atom,
            atom.as_bytes(),
            None,
            None,
            &limits(2),
            None
        )
        .unwrap()
        .len(),
        2
    );
    let rdf = "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\">\
        <channel rdf:about=\"x\"><title>t</title></channel>\
        <item rdf:about=\"https://r.example/1\"><title>R1</title><link>https://r.example/1</link></item>\
        <item><<<</rdf:RDF>";
    assert_eq!(
        parse(
            SourceKind::Rss,
            rdf.as_bytes(),
            None,
            None,
            &limits(1),
            None
        )
        .unwrap()[0]
            .title,
        "R1"
    );
    // 100,000 items and a limit of 10: ten read.
    let big = rss_with(100_000);
    assert_eq!(
        parse(
            SourceKind::Rss,
            big.as_bytes(),
            None,
            None,
            &limits(10),
            None
        )
        .unwrap()
        .len(),
        10
    );
}

#[test]
fn nesting_beyond_the_limits_is_a_clear_error() {
    let deep_xml = format!(
        "<rss><channel><item><title>x</title><description>{}{}</description></item></channel></rss>",
        "<x>".repeat(1_000_000),
        "</x>".repeat(1_000_000)
    );
    let selectors = Selectors {
        item: "div".into(),
        ..Selectors::default()
    };
    // The error a body gives, as the source shows it.
    let refused = |kind: SourceKind, body: &str| {
        let selectors = (kind == SourceKind::Html).then_some(&selectors);
        parse(kind, body.as_bytes(), selectors, None, &limits(100), None)
            .unwrap_err()
            .to_string()
    };
    let err = refused(SourceKind::Rss, &deep_xml);
    assert!(
        err.contains("XML nested deeper than 128 levels") && err.contains("scraping.max_xml_depth"),
        "{err}"
    );
    let deep_html = format!("<html><body>{}</body></html>", "<div>".repeat(1_000_000));
    let err = refused(SourceKind::Html, &deep_html);
    assert!(
        err.contains("HTML nested deeper than 512 levels")
            && err.contains("scraping.max_html_depth"),
        "{err}"
    );
    let wide_html = format!("<html><body>{}</body></html>", "<p>x</p>".repeat(300_000));
    let err = refused(SourceKind::Html, &wide_html);
    assert!(err.contains("scraping.max_html_nodes"), "{err}");
    let stop = AtomicBool::new(true);
    let page = "<html><body><div>x</div></body></html>".repeat(2_000);
    assert_eq!(
        parse(
            SourceKind::Html,
            page.as_bytes(),
            Some(&selectors),
            None,
            &limits(100),
            Some(&stop)
        ),
        Err(ParseError::Stopped)
    );
}

#[test]
fn html_items_and_json_lines_stop_at_max_items() {
    let page = format!(
        "<html><body>{}</body></html>",
        "<article><a href=\"/a\">A</a></article>".repeat(50)
    );
    let selectors = Selectors {
        item: "article".into(),
        ..Selectors::default()
    };
    assert_eq!(
        parse(
            SourceKind::Html,
            page.as_bytes(),
            Some(&selectors),
            None,
            &limits(7),
            None
        )
        .unwrap()
        .len(),
        7
    );
    // A broken line after the limit is never read.
    let lines = "{\"text\": \"a\"}\n{\"text\": \"b\"}\nnot json\n";
    assert_eq!(
        parse(
            SourceKind::File,
            lines.as_bytes(),
            None,
            None,
            &limits(2),
            None
        )
        .unwrap()
        .len(),
        2
    );
}

/// A channel preview page as Telegram lays it out (written for this test): two posts with
/// text, one photo without, each with its post link and time.
const TELEGRAM_PAGE: &str = r#"<!DOCTYPE html><html><body><section class="tgme_channel_history">
<div class="tgme_widget_message_wrap"><div class="tgme_widget_message text_not_supported_wrap" data-post="velora_news/41">
  <div class="tgme_widget_message_text js-message_text" dir="auto">Velora (VLR) token generation event is set for <b>December 12, 2026</b>! Claim opens at 14:00 UTC.<br/>Details on our blog.</div>
  <div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/velora_news/41"><time datetime="2026-12-04T09:30:00+00:00" class="time">09:30</time></a></div>
</div></div>
<div class="tgme_widget_message_wrap"><div class="tgme_widget_message" data-post="velora_news/42">
  <a class="tgme_widget_message_photo_wrap" href="https://t.me/velora_news/42"></a>
  <div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/velora_news/42"><time datetime="2026-12-04T10:00:00+00:00">10:00</time></a></div>
</div></div>
<div class="tgme_widget_message_wrap"><div class="tgme_widget_message" data-post="velora_news/43">
  <div class="tgme_widget_message_text" dir="auto">A very long community update without a full stop early on that goes on and on about the roadmap the team and the partners and the many things still to come in the next quarters of the year</div>
  <div class="tgme_widget_message_footer"><a class="tgme_widget_message_date" href="https://t.me/velora_news/43"><time datetime="2026-12-04T11:00:00+00:00">11:00</time></a></div>
</div></div>
</section></body></html>"#;

#[test]
fn telegram_channel_posts() {
    let items = parse(
        SourceKind::Telegram,
        TELEGRAM_PAGE.as_bytes(),
        None,
        None,
        &limits(100),
        None,
    )
    .unwrap();
    assert_eq!(
        items.len(),
        2,
        "the photo without text is skipped: {items:?}"
    );
    assert_eq!(
        items[0].title,
        "Velora (VLR) token generation event is set for December 12, 2026 !"
    );
    assert!(
        items[0].text.contains("Claim opens at 14:00 UTC."),
        "{}",
        items[0].text
    );
    assert_eq!(
        items[0].link.as_deref(),
        Some("https://t.me/velora_news/41")
    );
    assert_eq!(
        items[0].published.unwrap().to_rfc3339(),
        "2026-12-04T09:30:00+00:00"
    );
    assert!(
        items[1].title.ends_with('…') && items[1].title.chars().count() <= 141,
        "{}",
        items[1].title
    );
    let err = parse(
        SourceKind::Telegram,
        b"<html><body><p>This channel is private</p></body></html>",
        None,
        None,
        &limits(100),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no channel posts"), "{err}");
}
