//! Any text as the markup of an item: plain text out, whatever the nesting, never a panic;
//! text that is already plain comes out as it went in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_agents::normalize::{html_to_text, is_plain};
use swarm_agents::html::HtmlLimits;

fuzz_target!(|text: &str| {
    let out = html_to_text(text, HtmlLimits::default());
    assert_eq!(out, out.trim());
    if is_plain(text) {
        assert_eq!(out, text);
    }
});
