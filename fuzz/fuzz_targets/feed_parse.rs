//! Any bytes as an RSS/Atom feed, an HTML page with selectors, a local file, a JSON API with a
//! mapping, a Telegram channel page, every exchange's announcement page and market lists, and
//! an X page of posts, within tight limits: an error or items, never a panic, and never more
//! items than allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_agents::html::HtmlLimits;
use swarm_agents::scraping::exchange::{announcements, markets};
use swarm_agents::scraping::parse::json::parse_value;
use swarm_agents::scraping::parse::{Limits, parse};
use swarm_agents::scraping::x::parse_posts;
use swarm_shared::domain::{Exchange, JsonMapping, Selectors, SourceKind};

fuzz_target!(|bytes: &[u8]| {
    let limits = Limits {
        max_items: 20,
        html: HtmlLimits {
            max_depth: 64,
            max_nodes: 5_000,
        },
        max_xml_depth: 32,
        timeout: Some(std::time::Duration::from_secs(5)),
    };
    let selectors = Selectors {
        item: "article, li, item".into(),
        title: Some("h2, a".into()),
        link: Some("a[href]".into()),
        date: Some("time".into()),
        text: Some("p".into()),
    };
    let mapping = JsonMapping {
        items: "/data/list".into(),
        title: "/title".into(),
        text: Some("/text".into()),
        link: Some("/url".into()),
        date: Some("/at".into()),
    };
    for (kind, selectors, json) in [
        (SourceKind::Rss, None, None),
        (SourceKind::Html, Some(&selectors), None),
        (SourceKind::File, None, None),
        (SourceKind::Json, None, Some(&mapping)),
        (SourceKind::Telegram, None, None),
    ] {
        if let Ok(items) = parse(kind, bytes, selectors, json, &limits, None) {
            assert!(items.len() <= limits.max_items);
        }
    }
    if let Ok(root) = parse_value(bytes) {
        for exchange in Exchange::ALL {
            if let Some(api) = announcements::api(exchange)
                && let Ok(items) = announcements::parse_page(&api, &root, limits.max_items)
            {
                assert!(items.len() <= limits.max_items);
            }
            for list in markets::lists(exchange) {
                let _ = list.parse(&root);
                let _ = list.next_cursor(&root);
            }
        }
        let _ = parse_posts(&root, None);
    }
});
