//! Any text as the configuration file: a config that validates, or an error naming a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_shared::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::from_toml(text, "fuzz.toml") {
        let _ = config.validate();
    }
});
