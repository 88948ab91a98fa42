//! The feeds the swarm reads: the generated corpus of announcements and noise, as RSS,
//! served by local HTTP servers that count their requests.

use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// One generated item of a feed.
pub(crate) struct Item {
    title: String,
    text: String,
    link: String,
}

/// 520 items in 26 feeds; returns the feeds and the project of every announcement.
pub(crate) fn corpus(rng: &mut impl Rng) -> (Vec<Vec<Item>>, Vec<String>) {
    const SYLLABLES: [&str; 20] = [
        "zel", "kor", "van", "tri", "mox", "qua", "lum", "rix", "dor", "pel", "syn", "tav", "nex",
        "bro", "fil", "gar", "hep", "jun", "kal", "mir",
    ];
    let mut projects = std::collections::BTreeSet::new();
    while projects.len() < POSITIVES {
        let mut name = String::new();
        for _ in 0..3 {
            name.push_str(SYLLABLES[rng.random_range(0..SYLLABLES.len())]);
        }
        let mut chars = name.chars();
        let first = chars.next().unwrap().to_ascii_uppercase();
        projects.insert(format!("{first}{}", chars.as_str()));
    }
    let projects: Vec<String> = projects.into_iter().collect();
    let mut items = Vec::new();
    for (index, project) in projects.iter().enumerate() {
        let ticker = format!(
            "{}{}",
            project[..3].to_uppercase(),
            project[project.len() - 1..].to_uppercase()
        );
        let (title, text) = match index % 3 {
            0 => (
                format!("{project} announces token generation event for ${ticker}"),
                format!(
                    "{project} today announced that its token generation event for ${ticker} will take place on December 12, 2026. The {ticker} token will be claimable by early users and will list on major exchanges the same day."
                ),
            ),
            1 => (
                format!("{project} sets TGE date for its {ticker} token"),
                format!(
                    "The {project} team confirmed the TGE of the {ticker} token is scheduled for next week. Trading of ${ticker} starts at launch, and the airdrop claim portal opens at the token generation event."
                ),
            ),
            _ => (
                format!("{project} to launch ${ticker} token with airdrop on January 8"),
                format!(
                    "{project} will launch its native token ${ticker} on January 8, 2027. The token generation event includes an airdrop for testnet participants; claims open at TGE."
                ),
            ),
        };
        items.push(Item {
            title,
            text,
            link: format!("https://news.example/{}-tge", project.to_lowercase()),
        });
    }
    let negatives = [
        (
            "What is a token generation event?",
            "A token generation event (TGE) is when a project creates its tokens. This explainer covers how TGEs work in general, with no specific launch.",
        ),
        (
            "Bitcoin price slips as markets await rate decision",
            "Bitcoin fell 2% on Tuesday as traders waited for the central bank decision. Ether and other large caps traded flat.",
        ),
        (
            "Exchange reports quarterly usage growth",
            "The exchange said its user base grew 20% in the third quarter, driven by new integrations. It did not mention any token.",
        ),
        (
            "Apple AirDrop gets new privacy features",
            "Apple announced AirDrop changes in iOS, letting users share files with contacts for a limited time.",
        ),
    ];
    for index in 0..(FEEDS * ITEMS_PER_FEED - POSITIVES) {
        let (title, text) = negatives[index % negatives.len()];
        items.push(Item {
            title: format!("{title} ({index})"),
            text: format!("{text} Story {index}."),
            link: format!("https://news.example/story-{index}"),
        });
    }
    // Announcements land in random feeds and positions.
    for index in (1..items.len()).rev() {
        let other = rng.random_range(0..=index);
        items.swap(index, other);
    }
    let mut feeds: Vec<Vec<Item>> = (0..FEEDS).map(|_| Vec::new()).collect();
    for (index, item) in items.into_iter().enumerate() {
        feeds[index % FEEDS].push(item);
    }
    (feeds, projects)
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn rss(items: &[Item]) -> String {
    let mut body = String::from(
        r#"<?xml version="1.0"?><rss version="2.0"><channel><title>test feed</title><link>https://news.example/</link><description>t</description>"#,
    );
    for item in items {
        body.push_str(&format!(
            "<item><title>{}</title><link>{}</link><description>{}</description><pubDate>Sun, 22 Nov 2026 10:00:00 GMT</pubDate></item>",
            escape(&item.title),
            escape(&item.link),
            escape(&item.text)
        ));
    }
    body.push_str("</channel></rss>");
    body
}

/// Serves `/feed/<n>.xml` on a thread of its own, counting the requests in `hits` as they
/// arrive (before the answer is sent).
pub(crate) fn serve_counted_feeds(feeds: Vec<Vec<Item>>, hits: Arc<AtomicUsize>) -> SocketAddr {
    let bodies: Arc<Vec<String>> = Arc::new(feeds.iter().map(|items| rss(items)).collect());
    serve_on_thread(move || {
        axum::Router::new().route(
            "/feed/{name}",
            axum::routing::get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let bodies = bodies.clone();
                    hits.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let index: Option<usize> =
                            name.strip_suffix(".xml").and_then(|n| n.parse().ok());
                        match index.and_then(|index| bodies.get(index)) {
                            Some(body) => (
                                axum::http::StatusCode::OK,
                                [(axum::http::header::CONTENT_TYPE, "application/rss+xml")],
                                body.clone(),
                            ),
                            None => (
                                axum::http::StatusCode::NOT_FOUND,
                                [(axum::http::header::CONTENT_TYPE, "text/plain")],
                                "no such feed".to_owned(),
                            ),
                        }
                    }
                },
            ),
        )
    })
}

/// Serves the router `app` makes on 127.0.0.1, from a thread and runtime of its own (the
/// tests' own threads block on the processes they watch).
pub(crate) fn serve_on_thread(app: impl FnOnce() -> axum::Router + Send + 'static) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app()).await.unwrap();
        });
    });
    addr
}
