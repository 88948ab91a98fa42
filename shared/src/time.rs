//! Date arithmetic on values that come from outside (configuration, the API, servers' headers,
//! stored rows), pure and total: it saturates at the ends of chrono's range instead of
//! panicking. chrono's `DateTime + TimeDelta` panics on overflow (about 262,000 years from
//! now), and `TimeDelta::from_std` fails past about 292 million years, so no `+` on a
//! configured or received duration may be written directly.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// `duration` as a chrono delta, saturated at [`TimeDelta::MAX`].
pub fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// `at + duration`, or the latest representable time when that overflows.
pub fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at.checked_add_signed(delta(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - duration`, or the earliest representable time when that overflows.
pub fn before(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    at.checked_sub_signed(delta(duration))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `duration * factor`, saturated at [`Duration::MAX`].
pub fn times(duration: Duration, factor: u32) -> Duration {
    duration.checked_mul(factor).unwrap_or(Duration::MAX)
}

/// `duration` in whole milliseconds as a SQL integer, saturated at `i64::MAX`.
pub fn millis_i64(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    #[test]
    fn after_and_before_saturate_instead_of_panicking() {
        let now = Utc::now();
        let cases = [
            Duration::ZERO,
            Duration::from_secs(1),
            YEAR * 300_000,
            YEAR * 300_000_000,
            Duration::MAX,
        ];
        for duration in cases {
            let later = after(now, duration);
            let earlier = before(now, duration);
            assert!(later >= now, "{duration:?}");
            assert!(earlier <= now, "{duration:?}");
        }
        assert_eq!(after(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(before(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            after(now, Duration::from_secs(60)),
            now + TimeDelta::seconds(60)
        );
    }

    #[test]
    fn times_and_millis_saturate() {
        assert_eq!(times(Duration::from_secs(2), 3), Duration::from_secs(6));
        assert_eq!(times(Duration::MAX, 3), Duration::MAX);
        assert_eq!(millis_i64(Duration::from_millis(1500)), 1500);
        assert_eq!(millis_i64(Duration::MAX), i64::MAX);
    }
}
