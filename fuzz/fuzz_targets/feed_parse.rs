//! Any bytes as an RSS/Atom feed, an HTML page with selectors, and a local file, within tight
//! limits: an error or items, never a panic, and never more items than allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_agents::html::HtmlLimits;
use swarm_agents::scraping::parse::{Limits, parse};
use swarm_shared::domain::{Selectors, SourceKind};

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
    for (kind, selectors) in [
        (SourceKind::Rss, None),
        (SourceKind::Html, Some(&selectors)),
        (SourceKind::File, None),
    ] {
        if let Ok(items) = parse(kind, bytes, selectors, &limits, None) {
            assert!(items.len() <= limits.max_items);
        }
    }
});
