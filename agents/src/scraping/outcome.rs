//! What one fetch means, pure: the report recorded on its source (status, error, items,
//! validators, the next interval from the cadence rules) and the call outcome reported to the
//! API reliability agent (whose breaker a failure counts against, and for how long a rate
//! limit asks to wait). The scraping stage only carries the decision out: it enqueues the
//! documents, records the report and publishes the call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use swarm_shared::domain::{Document, FetchReport, FetchStatus};
use swarm_shared::messages::CallOutcome;

use super::cadence;
use super::fetch::{FetchError, Validators};

/// What a fetch that went through yielded.
#[derive(Debug)]
pub(super) enum Parsed {
    /// 304, or the same body as last time (not parsed again).
    NotModified,
    /// A body, parsed into documents.
    Documents {
        documents: Vec<Document>,
        validators: Validators,
        content_hash: String,
    },
}

/// Why a fetch yielded nothing.
#[derive(Debug)]
pub(super) enum Failure {
    /// The host's breaker is open: no request was sent.
    CircuitOpen(String),
    /// The request failed.
    Fetch(FetchError),
    /// The host answered; the content could not be read.
    Parse(String),
}

/// The call as the API reliability agent sees it, and the wait a rate limit asked for.
pub(super) type Call = (CallOutcome, Option<Duration>);

/// The decision about one fetch.
#[derive(Debug, PartialEq)]
pub(super) struct Assessment {
    /// What to record on the source.
    pub report: FetchReport,
    /// What to report about the call; none when no request was sent.
    pub call: Option<Call>,
}

/// Decides what a fetch means for its source, whose base interval is `interval` and whose
/// current one is `effective` (none: the base).
pub(super) fn assess(
    interval: Duration,
    effective: Option<Duration>,
    result: &Result<Parsed, Failure>,
    now: DateTime<Utc>,
) -> Assessment {
    let current = effective.unwrap_or(interval);
    let adapt = |outcome: cadence::Yield| Some(cadence::next_interval(interval, current, outcome));
    let quiet = |status: FetchStatus, error: Option<String>, next_interval| FetchReport {
        at: now,
        status,
        error,
        items: 0,
        etag: None,
        last_modified: None,
        content_hash: None,
        next_interval,
    };
    match result {
        Ok(Parsed::Documents {
            documents,
            validators,
            content_hash,
        }) => Assessment {
            report: FetchReport {
                at: now,
                status: FetchStatus::Ok,
                error: None,
                items: u32::try_from(documents.len()).unwrap_or(u32::MAX),
                etag: validators.etag.clone(),
                last_modified: validators.last_modified.clone(),
                content_hash: Some(content_hash.clone()),
                next_interval: adapt(if documents.is_empty() {
                    cadence::Yield::Unchanged
                } else {
                    cadence::Yield::New
                }),
            },
            call: Some((CallOutcome::Success, None)),
        },
        Ok(Parsed::NotModified) => Assessment {
            report: quiet(
                FetchStatus::NotModified,
                None,
                adapt(cadence::Yield::Unchanged),
            ),
            call: Some((CallOutcome::Success, None)),
        },
        // An open breaker has its own timing: the source's cadence is left as it is, and no
        // call was made.
        Err(Failure::CircuitOpen(reason)) => Assessment {
            report: quiet(FetchStatus::CircuitOpen, Some(reason.clone()), None),
            call: None,
        },
        Err(Failure::Fetch(err)) => {
            let (next, call) = if err.is_rate_limited() {
                let wait = err.retry_after();
                let next = match wait {
                    Some(wait) => cadence::Yield::RateLimited(wait),
                    None => cadence::Yield::Failed,
                };
                (next, (CallOutcome::RateLimited, wait))
            } else if err.counts_against_host() {
                (cadence::Yield::Failed, (CallOutcome::Failure, None))
            } else {
                // Refused by the guard, too large, an invalid URL: the host is not to blame.
                (cadence::Yield::Failed, (CallOutcome::Success, None))
            };
            Assessment {
                report: quiet(FetchStatus::Error, Some(err.to_string()), adapt(next)),
                call: Some(call),
            }
        }
        // The host answered; only the content is bad.
        Err(Failure::Parse(reason)) => Assessment {
            report: quiet(
                FetchStatus::Error,
                Some(reason.clone()),
                adapt(cadence::Yield::Failed),
            ),
            call: Some((CallOutcome::Success, None)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn documents(count: usize) -> Result<Parsed, Failure> {
        let document = Document {
            source_kind: None,
            facts: Default::default(),
            id: "d".into(),
            source_id: 1,
            source_name: "s".into(),
            source_tier: 2,
            url: "https://example.com/a".into(),
            title: "t".into(),
            text: "x".into(),
            published_at: None,
            fetched_at: Utc::now(),
        };
        Ok(Parsed::Documents {
            documents: vec![document; count],
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            content_hash: "h".into(),
        })
    }

    fn status(status: u16, retry_after: Option<Duration>) -> Result<Parsed, Failure> {
        Err(Failure::Fetch(FetchError::Status {
            host: "example.com".into(),
            status,
            retry_after,
        }))
    }

    #[test]
    fn each_outcome_gives_its_report_call_and_cadence() {
        let connect = Err(Failure::Fetch(FetchError::Connect {
            host: "example.com".into(),
            reason: "refused".into(),
        }));
        let refused = Err(Failure::Fetch(FetchError::InvalidUrl {
            url: "ftp://x".into(),
            reason: "scheme".into(),
        }));
        // (case, result, status, items, call, next interval) for a source polled every
        // minute and now every two.
        type Case = (
            &'static str,
            Result<Parsed, Failure>,
            FetchStatus,
            u32,
            Option<Call>,
            Option<Duration>,
        );
        let cases: Vec<Case> = vec![
            (
                "new items: back to the base",
                documents(3),
                FetchStatus::Ok,
                3,
                Some((CallOutcome::Success, None)),
                Some(MINUTE),
            ),
            (
                "an empty body: slower",
                documents(0),
                FetchStatus::Ok,
                0,
                Some((CallOutcome::Success, None)),
                Some(MINUTE * 3),
            ),
            (
                "not modified: slower",
                Ok(Parsed::NotModified),
                FetchStatus::NotModified,
                0,
                Some((CallOutcome::Success, None)),
                Some(MINUTE * 3),
            ),
            (
                "breaker open: no call, cadence kept",
                Err(Failure::CircuitOpen("open".into())),
                FetchStatus::CircuitOpen,
                0,
                None,
                None,
            ),
            (
                "429 with Retry-After: wait as asked",
                status(429, Some(MINUTE * 5)),
                FetchStatus::Error,
                0,
                Some((CallOutcome::RateLimited, Some(MINUTE * 5))),
                // Exactly what the server asked, plus the one-second margin.
                Some(MINUTE * 5 + Duration::from_secs(1)),
            ),
            (
                "429 without Retry-After: backs off",
                status(429, None),
                FetchStatus::Error,
                0,
                Some((CallOutcome::RateLimited, None)),
                Some(MINUTE * 4),
            ),
            (
                "503: against the host",
                status(503, None),
                FetchStatus::Error,
                0,
                Some((CallOutcome::Failure, None)),
                Some(MINUTE * 4),
            ),
            (
                "404: the host is fine",
                status(404, None),
                FetchStatus::Error,
                0,
                Some((CallOutcome::Success, None)),
                Some(MINUTE * 4),
            ),
            (
                "connection failed: against the host",
                connect,
                FetchStatus::Error,
                0,
                Some((CallOutcome::Failure, None)),
                Some(MINUTE * 4),
            ),
            (
                "not fetchable: the host is not to blame",
                refused,
                FetchStatus::Error,
                0,
                Some((CallOutcome::Success, None)),
                Some(MINUTE * 4),
            ),
            (
                "bad content: the host answered",
                Err(Failure::Parse("bad xml".into())),
                FetchStatus::Error,
                0,
                Some((CallOutcome::Success, None)),
                Some(MINUTE * 4),
            ),
        ];
        let now = Utc::now();
        for (case, result, status, items, call, next) in cases {
            let assessment = assess(MINUTE, Some(MINUTE * 2), &result, now);
            assert_eq!(assessment.report.status, status, "{case}");
            assert_eq!(assessment.report.items, items, "{case}");
            assert_eq!(assessment.call, call, "{case}");
            assert_eq!(assessment.report.next_interval, next, "{case}");
            assert_eq!(assessment.report.at, now, "{case}");
            let failed = result.is_err();
            assert_eq!(assessment.report.error.is_some(), failed, "{case}");
            let stored = matches!(result, Ok(Parsed::Documents { .. }));
            assert_eq!(assessment.report.content_hash.is_some(), stored, "{case}");
            assert_eq!(assessment.report.etag.is_some(), stored, "{case}");
        }
    }
}
