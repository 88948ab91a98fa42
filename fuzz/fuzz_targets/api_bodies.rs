//! Any bytes as the JSON body of the API's writes (a source, a company): parsed and
//! validated as the API does, an error or a valid input, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarm_shared::domain::{CompanyInput, SourceInput};
use swarm_shared::outbound::OutboundPolicy;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(source) = serde_json::from_slice::<SourceInput>(bytes) {
        if source.validate().is_ok()
            && let Ok(url) = url::Url::parse(&source.effective_url())
        {
            let _ = OutboundPolicy::default().check_url(&url);
        }
    }
    if let Ok(company) = serde_json::from_slice::<CompanyInput>(bytes) {
        let _ = company.validate();
    }
});
