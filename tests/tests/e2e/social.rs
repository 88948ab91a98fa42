//! Social primary sources through the whole swarm: a Telegram channel's public preview page
//! and an X account's posts (X's API v2, with a bearer token), each served by a local server
//! in its documented shape; a project's TGE post becomes an event linking the post.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use swarm_tests::{FeedServer, TestSwarm, eventually};

fn telegram_page(posts: &[(u32, &str)]) -> String {
    let mut page =
        String::from("<!DOCTYPE html><html><body><section class=\"tgme_channel_history\">");
    for (id, text) in posts {
        page.push_str(&format!(
            "<div class=\"tgme_widget_message_wrap\"><div class=\"tgme_widget_message\" data-post=\"quorix_official/{id}\">\
             <div class=\"tgme_widget_message_text js-message_text\" dir=\"auto\">{text}</div>\
             <div class=\"tgme_widget_message_footer\"><a class=\"tgme_widget_message_date\" href=\"https://t.me/quorix_official/{id}\">\
             <time datetime=\"2026-12-05T08:00:00+00:00\" class=\"time\">08:00</time></a></div></div></div>"
        ));
    }
    page.push_str("</section></body></html>");
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_post_becomes_an_event_linking_the_post() {
    let telegram = FeedServer::start().await;
    let page = "s/quorix_official";
    telegram.publish(
        page,
        telegram_page(&[(7, "Weekly community call notes are up.")]),
        "text/html",
    );
    let swarm = TestSwarm::start(|_| {}).await;
    let id = swarm
        .add_source(
            json!({"name": "quorix-telegram", "kind": "telegram", "channel": "quorix_official",
                           "url": telegram.base(), "interval": "200ms"}),
        )
        .await;
    let source = swarm.source(id).await;
    assert_eq!(
        source["url"],
        format!("{}/s/quorix_official", telegram.base()),
        "{source}"
    );
    eventually(Duration::from_secs(20), "a first read", || {
        let telegram = telegram.clone();
        async move { telegram.hits(page) >= 1 }
    })
    .await;
    telegram.publish(
        page,
        telegram_page(&[
            (7, "Weekly community call notes are up."),
            (8, "Quorix (QRX) token generation event is confirmed for December 18, 2026. The QRX airdrop claim opens at TGE for early testers."),
        ]),
        "text/html",
    );
    eventually(Duration::from_secs(20), "the Quorix event", || {
        let swarm = &swarm;
        async move {
            swarm
                .events()
                .await
                .iter()
                .any(|event| event["token"] == "QRX")
        }
    })
    .await;
    let events = swarm.events().await;
    assert_eq!(
        events.len(),
        1,
        "the community call is no event: {events:?}"
    );
    assert_eq!(
        events[0]["sources"][0]["url"],
        "https://t.me/quorix_official/8"
    );
    assert_eq!(events[0]["published_at"], "2026-12-05T08:00:00Z");
    swarm.stop().await;
}

const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAe2e";

/// Whether a request carries the test's bearer token, as X's API checks it.
fn bearer_is_ours(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn x_api() -> String {
    async fn lookup(headers: HeaderMap) -> Response {
        if !bearer_is_ours(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        axum::Json(json!({"data": {"id": "99", "name": "Quorix", "username": "QuorixHQ"}}))
            .into_response()
    }
    async fn posts(headers: HeaderMap) -> Response {
        if !bearer_is_ours(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        axum::Json(json!({
            "data": [{"id": "1867000000000000001", "author_id": "99", "created_at": "2026-12-05T09:00:00.000Z",
                      "text": "Quorix (QRX) token generation event is confirmed for December 18, 2026. The $QRX airdrop claim opens at TGE."}],
            "meta": {"newest_id": "1867000000000000001", "oldest_id": "1867000000000000001", "result_count": 1}
        }))
        .into_response()
    }
    let router = Router::new()
        .route("/2/users/by/username/QuorixHQ", get(lookup))
        .route("/2/users/99/tweets", get(posts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_post_becomes_an_event_linking_the_post() {
    let base = x_api().await;
    let swarm = TestSwarm::start(|config| {
        config.scraping.x_bearer_token = Some(swarm_shared::config::Secret::new(TOKEN));
    })
    .await;
    swarm
        .add_source(json!({"name": "x-quorix", "kind": "x", "account": "QuorixHQ", "provenance": "official", "url": base, "interval": "200ms"}))
        .await;
    eventually(Duration::from_secs(20), "the Quorix event", || {
        let swarm = &swarm;
        async move {
            swarm
                .events()
                .await
                .iter()
                .any(|event| event["token"] == "QRX")
        }
    })
    .await;
    let events = swarm.events().await;
    assert_eq!(
        events[0]["sources"][0]["url"],
        "https://x.com/QuorixHQ/status/1867000000000000001"
    );
    assert_eq!(events[0]["published_at"], "2026-12-05T09:00:00Z");
    // The project's own account, as configured: its post is the proof.
    assert_eq!(events[0]["provenance"], "official");
    assert_eq!(
        events[0]["proof"],
        "https://x.com/QuorixHQ/status/1867000000000000001"
    );
    swarm.stop().await;
}
