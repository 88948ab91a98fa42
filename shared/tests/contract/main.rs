//! Contract suites for the ports. Each suite is a set of functions over a trait object, run
//! here against the embedded adapters; networked adapters run the same functions.

// Tests: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bus;
mod queue;
mod registry;
mod store;

use std::future::Future;
use std::time::Duration;

/// Polls `condition` until it holds or `timeout` passes (no bare sleeps in tests).
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
