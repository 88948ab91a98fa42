//! Event dates as announcements write them, read to the day where they say the day: what the
//! already-trading check, the calendar and exports use.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A date written to the day with its year, in the forms the extractor finds (`2025-03-14`,
/// `March 14, 2025`, `Mar 14 2025`, `14 March 2025`, `2025/03/14`); none otherwise.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    if let Some(at) = start_time(text) {
        return Some(at.date_naive());
    }
    let text = text.trim().trim_end_matches(['.', ',']);
    const FORMATS: [&str; 7] = [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%B %d, %Y",
        "%B %d %Y",
        "%b %d, %Y",
        "%b %d %Y",
        "%d %B %Y",
    ];
    // The year must be written in full: `March 2025` is not the 20th of March of year 25.
    FORMATS
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
        .filter(|day| day.year() >= 1990)
}

/// The start time an event date states to the minute in UTC (`2026-12-10 10:00 UTC`, as
/// the extractor writes a time an exchange notice gives); none for a date alone.
pub fn start_time(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M UTC")
        .ok()
        .map(|at| at.and_utc())
}

/// How far before the announcement a year-less date may lie and still be this year's (a
/// report of a launch that happened last week); earlier, it is next year's.
const PAST_GRACE_DAYS: i64 = 60;

/// The day an event's date names: [`parse_day`], or a day without a year (`March 5`,
/// `5 March`, `Mar 5`) read as the first such day from [`PAST_GRACE_DAYS`] before `seen`
/// (when the announcement was first seen) on. None for a month, a quarter or a vaguer date.
pub fn event_day(text: &str, seen: DateTime<Utc>) -> Option<NaiveDate> {
    if let Some(day) = parse_day(text) {
        return Some(day);
    }
    let text = text.trim().trim_end_matches(['.', ',']);
    let seen_day = seen.date_naive();
    let year = seen_day.year();
    ["%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"]
        .iter()
        .find_map(|format| {
            // A full year only: "March" + " 2026" must not read as the 20th of year 26.
            let read = |year: i32| {
                NaiveDate::parse_from_str(&format!("{text} {year}"), format)
                    .ok()
                    .filter(|day| day.year() >= 1990)
            };
            let this_year = read(year)?;
            if (seen_day - this_year).num_days() > PAST_GRACE_DAYS {
                read(year + 1)
            } else {
                Some(this_year)
            }
        })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn days_parse_in_the_extractors_forms_only() {
        let day = NaiveDate::from_ymd_opt(2025, 3, 14);
        for text in [
            "2025-03-14",
            "2025/03/14",
            "March 14, 2025",
            "March 14 2025",
            "Mar 14, 2025",
            "14 March 2025",
            " March 14, 2025. ",
        ] {
            assert_eq!(parse_day(text), day, "{text}");
        }
        assert_eq!(
            parse_day("2025-03-14 09:30 UTC"),
            day,
            "a start time names its day"
        );
        assert_eq!(
            start_time("2025-03-14 09:30 UTC")
                .map(|at| at.to_rfc3339())
                .as_deref(),
            Some("2025-03-14T09:30:00+00:00")
        );
        assert_eq!(start_time("2025-03-14"), None);
        for text in ["March 2025", "Q1 2025", "14/03/2025", "", "2025-02-30"] {
            assert_eq!(parse_day(text), None, "{text}");
        }
    }

    #[test]
    fn a_day_without_a_year_is_the_next_one_from_shortly_before_the_announcement() {
        let seen = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(event_day("December 3", seen), day(2026, 12, 3));
        assert_eq!(event_day("3 Dec", seen), day(2026, 12, 3));
        assert_eq!(
            event_day("Nov 2", seen),
            day(2026, 11, 2),
            "a report of last week"
        );
        assert_eq!(event_day("January 15", seen), day(2027, 1, 15));
        assert_eq!(event_day("March 5, 2025", seen), day(2025, 3, 5));
        assert_eq!(event_day("February 29", seen), None, "2026 has none");
        for vague in ["Q1 2027", "March", "next week", "2027", ""] {
            assert_eq!(event_day(vague, seen), None, "{vague}");
        }
    }
}
