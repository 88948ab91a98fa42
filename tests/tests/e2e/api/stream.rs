//! The live stream, `GET /api/v1/events/stream`: new events as Server-Sent Events, filtered
//! like `GET /events`, heartbeats, and resuming with `Last-Event-ID`.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::Value;
use swarm_tests::TestSwarm;

use super::*;

/// One Server-Sent Event, or a comment line.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comment: Option<String>,
}

/// Reads a `text/event-stream` body event by event.
pub(super) struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub(super) async fn open(
        swarm: &TestSwarm,
        query: &str,
        last_event_id: Option<&str>,
    ) -> SseReader {
        let mut request = swarm
            .http
            .get(swarm.url(&format!("/api/v1/events/stream{query}")));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event or comment block, within 20 s.
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        sse.comment = Some(comment.trim().to_owned());
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "id" => sse.id = Some(value.to_owned()),
                            "event" => sse.event = Some(value.to_owned()),
                            "data" => sse.data.push_str(value),
                            _ => {}
                        }
                    }
                }
                return sse;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.body.next())
                .await
                .expect("the stream sends within 20 s")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event, skipping heartbeats.
    pub(super) async fn next_event(&mut self) -> (String, Value) {
        loop {
            let sse = self.next().await;
            if sse.comment.is_some() && sse.event.is_none() {
                continue;
            }
            assert_eq!(sse.event.as_deref(), Some("event.created"), "{sse:?}");
            return (
                sse.id.expect("an id"),
                serde_json::from_str(&sse.data).unwrap(),
            );
        }
    }
}

async fn store_event(swarm: &TestSwarm, index: usize, project: &str, token: &str) -> i64 {
    let title = format!("{project} sets its TGE");
    create_event(swarm, &announcement(index, &title, project, token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_stream_live_filtered_and_resumable() {
    let swarm = TestSwarm::start(|config| {
        config.delivery.poll_interval = Duration::from_millis(50);
        config.server.stream_heartbeat = Duration::from_millis(300);
    })
    .await;

    // Bad filters and a bad Last-Event-ID are refused before the stream starts.
    for (query, header) in [("?min_score=2", None), ("", Some("yesterday"))] {
        let mut request = swarm
            .http
            .get(swarm.url(&format!("/api/v1/events/stream{query}")));
        if let Some(header) = header {
            request = request.header("Last-Event-ID", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query} {header:?}");
    }

    let mut everything = SseReader::open(&swarm, "", None).await;
    let mut orb_only = SseReader::open(&swarm, "?token=%24orb", None).await;
    // Heartbeats keep an idle stream open.
    let idle = everything.next().await;
    assert_eq!(idle.comment.as_deref(), Some("heartbeat"), "{idle:?}");

    let lumen = store_event(&swarm, 1, "Lumen", "LUM").await;
    let orbiter = store_event(&swarm, 2, "Orbiter", "ORB").await;
    let (first_id, first) = everything.next_event().await;
    let (second_id, second) = everything.next_event().await;
    assert_eq!(first["id"], lumen);
    assert_eq!(first["project"], "Lumen");
    assert_eq!(second["id"], orbiter);
    assert!(
        second_id.parse::<i64>().unwrap() > first_id.parse::<i64>().unwrap(),
        "ids grow: {first_id} then {second_id}"
    );
    let (_, filtered) = orb_only.next_event().await;
    assert_eq!(
        filtered["id"], orbiter,
        "the token filter let {filtered} through"
    );
    assert_eq!(filtered["sources"][0]["url"], "https://api-test.example/2");
    drop(everything);

    // Missed while disconnected: replayed in order on reconnecting, then live again.
    let third = store_event(&swarm, 3, "Meridian", "MER").await;
    let fourth = store_event(&swarm, 4, "Nimbus", "NIM").await;
    let mut resumed = SseReader::open(&swarm, "", Some(&second_id)).await;
    let (_, replayed_third) = resumed.next_event().await;
    let (_, replayed_fourth) = resumed.next_event().await;
    assert_eq!(replayed_third["id"], third);
    assert_eq!(replayed_fourth["id"], fourth);
    let fifth = store_event(&swarm, 5, "Quasar", "QSR").await;
    let (_, live) = resumed.next_event().await;
    assert_eq!(
        live["id"], fifth,
        "after the replay, new events arrive live, once"
    );
    swarm.stop().await;
}
