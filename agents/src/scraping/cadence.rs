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
}

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
        ];
        for (index, (current, outcome, expected)) in cases.into_iter().enumerate() {
            assert_eq!(next_interval(m, current, outcome), expected, "case {index}");
        }
    }
}
