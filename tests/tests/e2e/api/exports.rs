//! Events out of the swarm: the iCalendar feed and the CSV and JSON Lines exports.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;
use swarm_tests::TestSwarm;

use super::*;

/// Records a classified document naming `project`, `token` and `date`.
async fn seed(swarm: &TestSwarm, index: usize, project: &str, token: &str, date: Option<&str>) {
    let mut item = classified(index);
    item.document.title = format!("{project}, the project, sets its TGE");
    item.detection.project = Some(project.to_owned());
    item.detection.token = Some(token.to_owned());
    item.detection.event_date = date.map(str::to_owned);
    swarm
        .swarm
        .context()
        .store
        .record_classified(
            &item,
            &project.to_lowercase(),
            None,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
}

async fn get_text(swarm: &TestSwarm, path: &str) -> (u16, String, String) {
    let response = swarm.http.get(swarm.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_and_exports_carry_the_filtered_events() {
    let swarm = TestSwarm::start(|_| {}).await;
    let soon = (Utc::now() + chrono::Duration::days(10)).date_naive();
    let long_ago = (Utc::now() - chrono::Duration::days(400)).date_naive();
    seed(
        &swarm,
        1,
        "Orbiter, Inc",
        "ORB",
        Some(&soon.format("%B %-d, %Y").to_string()),
    )
    .await;
    seed(
        &swarm,
        2,
        "Lumen",
        "LUM",
        Some(&long_ago.format("%Y-%m-%d").to_string()),
    )
    .await;
    seed(&swarm, 3, "Vague", "VAG", Some("Q3 2031")).await;
    seed(&swarm, 4, "Undated", "UND", None).await;

    // The calendar: only the event dated to the day and not long past, as an all-day entry.
    let (status, content_type, body) = get_text(&swarm, "/api/v1/calendar.ics").await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/calendar"), "{content_type}");
    assert!(body.starts_with("BEGIN:VCALENDAR\r\n"), "{body}");
    assert!(body.contains("VERSION:2.0\r\n"), "{body}");
    assert!(
        body.contains("PRODID:-//tge-swarm//token events//EN\r\n"),
        "{body}"
    );
    assert_eq!(body.matches("PRODID").count(), 1, "{body}");
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 1, "{body}");
    assert!(
        body.contains(&format!("DTSTART;VALUE=DATE:{}", soon.format("%Y%m%d"))),
        "{body}"
    );
    // Text is escaped as RFC 5545 asks (the comma of the project's name).
    assert!(
        body.contains("SUMMARY:Orbiter\\, Inc (ORB): token event"),
        "{body}"
    );
    assert!(body.contains("UID:tge-swarm-event-"), "{body}");
    assert!(body.contains("URL:https://api-test.example/1"), "{body}");
    for absent in ["LUM", "VAG", "UND"] {
        assert!(!body.contains(absent), "{absent} in {body}");
    }
    // Filters apply; a long look back brings the old event in.
    let (_, _, body) = get_text(&swarm, "/api/v1/calendar.ics?token=LUM&past_days=365").await;
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 0, "{body}");
    let (_, _, body) = get_text(&swarm, "/api/v1/calendar.ics?company=nothing").await;
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 0, "{body}");
    let (status, _, body) = get_text(&swarm, "/api/v1/calendar.ics?past_days=400").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("past_days"), "{body}");

    // CSV: a header and one row per event, newest first, quoting what needs it.
    let (status, content_type, body) = get_text(&swarm, "/api/v1/events/export").await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..4], ["id", "project", "token", "score"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{body}");
    assert!(body.contains("\"Orbiter, Inc\""), "{body}");
    let orbiter = rows.iter().find(|row| &row[2] == "ORB").unwrap();
    assert_eq!(&orbiter[5], soon.to_string(), "event_day");
    assert_eq!(&orbiter[9], "https://api-test.example/1");
    let vague = rows.iter().find(|row| &row[2] == "VAG").unwrap();
    assert_eq!(&vague[4], "Q3 2031");
    assert_eq!(&vague[5], "", "a quarter is not a day");
    assert_eq!(&header[10..], ["kind", "date_precision", "status"]);
    assert_eq!(&vague[11], "quarter");
    assert_eq!(&vague[12], "new");

    // JSON Lines with filters and a limit.
    let (status, content_type, body) = get_text(
        &swarm,
        "/api/v1/events/export?format=jsonl&min_score=0.5&limit=2",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{body}");
    assert!(
        lines
            .iter()
            .all(|event| event["sources"].as_array().is_some())
    );
    let (_, _, body) = get_text(&swarm, "/api/v1/events/export?format=jsonl&token=$lum").await;
    assert_eq!(body.lines().count(), 1, "{body}");

    // Bad parameters name themselves.
    for (path, needle) in [
        ("/api/v1/events/export?limit=0", "limit"),
        ("/api/v1/events/export?min_score=2", "min_score"),
        ("/api/v1/events/export?since=yesterday", "since"),
        ("/api/v1/events/export?q=%21", "q:"),
        ("/api/v1/events/export?format=xml", "format"),
        ("/api/v1/events/export?colour=red", "colour"),
    ] {
        let (status, content_type, body) = send(&swarm, Method::GET, path, None, None).await;
        assert_problem(status, &content_type, &body, 400, needle);
    }
    swarm.stop().await;
}
