//! The analysts' workflow through the API: an event's kind and status in `GET /events` and
//! its filters, a confirmation with a note (recorded under the key's name, in the history, and
//! pushed to subscribers as an update), bulk changes, and the errors of bad requests.

use std::time::Duration;

use serde_json::{Value, json};
use swarm_tests::{TestSwarm, eventually};

use super::receivers::{SECRET, signature_verifies, start_receivers};
use super::*;

async fn patch(swarm: &TestSwarm, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = swarm.http.patch(swarm.url(path)).json(&body);
    if let Some(key) = key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids_of(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_confirm_dismiss_and_annotate_events() {
    let swarm = TestSwarm::start(|config| {
        config.delivery.poll_interval = Duration::from_millis(50);
    })
    .await;
    let (base, receivers) = start_receivers().await;
    let (status, created) = swarm
        .post(
            "/api/v1/subscriptions",
            json!({"name": "desk", "channel": {"type": "webhook", "url": format!("{base}/hook"), "secret": SECRET}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    let mut listing = announcement(1, "Binance will list Orbiter (ORB)", "Orbiter", "ORB");
    listing.detection.event_date = Some("March 2031".into());
    let orbiter = create_event(&swarm, &listing).await;
    let airdrop = announcement(2, "Nebula airdrop claim is live", "Nebula", "NEB");
    let nebula = create_event(&swarm, &airdrop).await;

    // Kind, date precision and status in the event; filters on each.
    let (status, event) = swarm.get(&format!("/api/v1/events/{orbiter}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["kind"], "first_listing");
    assert_eq!(event["date_precision"], "month");
    assert_eq!(event["status"], "new");
    assert_eq!(event["revision"], 1);
    let (_, page) = swarm.get("/api/v1/events?kind=airdrop").await;
    assert_eq!(ids_of(&page), [nebula]);
    let (_, page) = swarm
        .get("/api/v1/events?kind=first_listing,sale&date_precision=month")
        .await;
    assert_eq!(ids_of(&page), [orbiter]);
    for (path, field) in [
        (
            "/api/v1/events?status=open",
            "status: `open` is not one of new, confirmed, dismissed, archived",
        ),
        ("/api/v1/events?kind=ico", "kind: `ico`"),
        (
            "/api/v1/events/export?date_precision=week",
            "date_precision: `week`",
        ),
    ] {
        let (status, problem) = swarm.get(path).await;
        assert_eq!(status, 400, "{path} -> {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{path} -> {problem}"
        );
    }

    // A confirmation needs a write key; bad bodies are refused with the field named.
    let confirm = json!({"status": "confirmed", "note": "Seen on the exchange's own page"});
    let (status, _) = patch(
        &swarm,
        &format!("/api/v1/events/{orbiter}"),
        confirm.clone(),
        None,
    )
    .await;
    assert_eq!(status, 401);
    for (body, needle) in [
        (json!({}), "needs a `status`, a `note`, or both"),
        (json!({"status": "maybe"}), "status"),
        (json!({"note": ""}), "note"),
        (json!({"status": "confirmed", "by": "me"}), "by"),
    ] {
        let (status, problem) = patch(
            &swarm,
            &format!("/api/v1/events/{orbiter}"),
            body.clone(),
            Some(swarm_tests::ADMIN_KEY),
        )
        .await;
        assert!(
            status == 422 || status == 400,
            "{body} -> {status} {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{body} -> {problem}"
        );
    }
    let (status, _) = patch(
        &swarm,
        "/api/v1/events/999999",
        confirm.clone(),
        Some(swarm_tests::ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 404);

    // Listed once before the change: the page cache must not serve the old status after it.
    let (_, before) = swarm.get("/api/v1/events?status=confirmed").await;
    assert!(ids_of(&before).is_empty());
    let (status, event) = patch(
        &swarm,
        &format!("/api/v1/events/{orbiter}"),
        confirm,
        Some(swarm_tests::ADMIN_KEY),
    )
    .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["status"], "confirmed");
    assert_eq!(event["status_by"], "bootstrap-admin");
    assert_eq!(event["revision"], 2);
    let (_, after) = swarm.get("/api/v1/events?status=confirmed").await;
    assert_eq!(ids_of(&after), [orbiter]);
    let (status, history) = swarm
        .get(&format!("/api/v1/events/{orbiter}/history"))
        .await;
    assert_eq!(status, 200);
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{history}");
    assert_eq!(changes[0]["status_from"], "new");
    assert_eq!(changes[0]["status_to"], "confirmed");
    assert_eq!(changes[0]["actor"], "bootstrap-admin");
    assert_eq!(changes[0]["note"], "Seen on the exchange's own page");

    // Subscribers hear of the confirmation once, as an update of revision 2.
    eventually(Duration::from_secs(20), "the confirmation alert", || {
        let receivers = receivers.clone();
        async move { receivers.on("hook").len() >= 3 }
    })
    .await;
    let updates: Vec<Value> = receivers
        .on("hook")
        .iter()
        .map(|received| {
            assert!(signature_verifies(received));
            serde_json::from_slice(&received.body).unwrap()
        })
        .filter(|body: &Value| body["type"] == "tge.event.updated")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["change"], "confirmed");
    assert_eq!(updates[0]["revision"], 2);
    assert_eq!(updates[0]["event"]["id"], orbiter);
    assert_eq!(updates[0]["event"]["status"], "confirmed");

    // Bulk: both archived, a missing id listed; neither is a material change.
    let (status, result) = swarm
        .post(
            "/api/v1/events/bulk",
            json!({"ids": [orbiter, nebula, 999_999], "status": "archived", "note": "Done"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    let mut both = vec![orbiter, nebula];
    both.sort_unstable();
    assert_eq!(result["updated"], json!(both));
    assert_eq!(result["not_found"], json!([999_999]));
    let (status, problem) = swarm
        .post(
            "/api/v1/events/bulk",
            json!({"ids": [], "status": "archived"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (_, page) = swarm.get("/api/v1/events?status=archived").await;
    assert_eq!(ids_of(&page).len(), 2);
    let (_, history) = swarm.get(&format!("/api/v1/events/{nebula}/history")).await;
    assert_eq!(history["changes"][0]["status_to"], "archived");
    assert_eq!(history["changes"][0]["note"], "Done");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receivers.on("hook").len(), 3, "an archive alerts nobody");
    swarm.stop().await;
}
