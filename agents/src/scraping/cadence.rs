//! Poll-interval adaptation, pure: a source that keeps bringing nothing new is polled less
//! often (up to 4x its interval), a failing one backs off (up to 8x), and new content brings
//! it back to its configured interval at once.

use std::time::Duration;

/// What a fetch brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yield {
    /// New content (a changed body with items).
    New,
    /// Nothing new: a 304, an identical body, or no items.
    Unchanged,
    /// The fetch failed.
    Failed,
    /// The server answered 429 and asked to wait this long (Retry-After).
    RateLimited(Duration),
}

/// Slack added to a server's Retry-After, so the next fetch finds the swarm-wide breaker
/// (open for the same Retry-After, from a moment earlier) half-open rather than still open.
pub const RETRY_AFTER_MARGIN: Duration = Duration::from_secs(1);
/// Longest Retry-After honoured beyond the failing back-off.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Longest interval for a source that brings nothing new, as a multiple of its base.
pub const MAX_IDLE_FACTOR: u32 = 4;
/// Longest interval for a failing source, as a multiple of its base.
pub const MAX_FAILING_FACTOR: u32 = 8;

/// The interval until the next fetch, given the base interval, the current one and the yield.
pub fn next_interval(base: Duration, current: Duration, outcome: Yield) -> Duration {
    let current = current.max(base);
    match outcome {
        Yield::New => base,
        Yield::Unchanged => current.mul_f64(1.5).min(base * MAX_IDLE_FACTOR),
        Yield::Failed => current.saturating_mul(2).min(base * MAX_FAILING_FACTOR),
        // Exactly when the server allows (not doubled on top), never sooner than the base.
        Yield::RateLimited(wait) => base
            .max(wait.min(MAX_RETRY_AFTER).saturating_add(RETRY_AFTER_MARGIN))
            .max(base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let m = Duration::from_secs(60);
        let cases = [
            (m, Yield::New, m),
            (m * 3, Yield::New, m),
            (m, Yield::Unchanged, m.mul_f64(1.5)),
            (m * 3, Yield::Unchanged, m * 4),
            (m * 4, Yield::Unchanged, m * 4),
            (m, Yield::Failed, m * 2),
            (m * 4, Yield::Failed, m * 8),
            (m * 8, Yield::Failed, m * 8),
            // a current interval below the base (the base was raised) starts from the base
            (Duration::from_secs(1), Yield::Unchanged, m.mul_f64(1.5)),
            // Retry-After is honoured to the second (plus the margin), whatever the cadence was
            (
                m,
                Yield::RateLimited(Duration::from_secs(120)),
                Duration::from_secs(121),
            ),
            (
                m * 8,
                Yield::RateLimited(Duration::from_secs(120)),
                Duration::from_secs(121),
            ),
            // but never sooner than the base interval, nor later than the cap
            (m, Yield::RateLimited(Duration::from_secs(5)), m),
            (
                m,
                Yield::RateLimited(Duration::from_secs(10 * 3600)),
                MAX_RETRY_AFTER + RETRY_AFTER_MARGIN,
            ),
        ];
        for (index, (current, outcome, expected)) in cases.into_iter().enumerate() {
            assert_eq!(next_interval(m, current, outcome), expected, "case {index}");
        }
    }
}
