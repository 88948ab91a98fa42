//! Any text as a link found in an item, resolved against a source URL: a canonical URL or an
//! error, and canonicalising a canonical URL changes nothing. The outbound guard judges it
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_agents::normalize::canonical_url;
use swarm_shared::outbound::OutboundPolicy;

fuzz_target!(|text: &str| {
    let base = url::Url::parse("https://news.example/feed/").ok();
    if let Ok(canonical) = canonical_url(text, base.as_ref()) {
        assert_eq!(canonical_url(&canonical, None).as_deref(), Ok(canonical.as_str()));
    }
    if let Ok(url) = url::Url::parse(text) {
        let _ = OutboundPolicy::default().check_url(&url);
    }
});
