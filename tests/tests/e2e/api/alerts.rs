//! Alerts pushed to subscribers: a signed webhook, Slack, Discord and Telegram, each in the
//! request shape its receiver documents, served here by local receivers, and e-mail through a
//! local SMTP relay over STARTTLS; retries after a 500 (or an SMTP 451) and no sooner than a
//! 429's Retry-After; filters; the delivery log; a test alert.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use swarm_tests::{TestSwarm, eventually};

use super::receivers::{SECRET, signature_verifies, start_receivers};
use super::*;

async fn subscribe(swarm: &TestSwarm, body: Value) -> i64 {
    let (status, created) = swarm.post("/api/v1/subscriptions", body.clone()).await;
    assert_eq!(status, 201, "{body} -> {created}");
    created["id"].as_i64().unwrap()
}

async fn log_of(swarm: &TestSwarm, id: i64) -> Vec<Value> {
    let response = swarm
        .http
        .get(swarm.url(&format!("/api/v1/subscriptions/{id}/deliveries")))
        .header("X-API-Key", swarm_tests::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    body["alerts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_events_are_pushed_once_to_every_channel_with_retries() {
    let smtp = swarm_tests::smtp::SmtpSink::start("alerts", "a-relay-password").await;
    let relay = smtp.config();
    let swarm = TestSwarm::start(move |config| {
        config.delivery.smtp = Some(relay);
        config.delivery.poll_interval = Duration::from_millis(50);
        config.delivery.retry_min_delay = Duration::from_millis(200);
        config.delivery.retry_max_delay = Duration::from_secs(2);
        config.delivery.timeout = Duration::from_secs(2);
    })
    .await;
    let (base, receivers) = start_receivers().await;

    // Bad subscriptions are refused with the field named; secrets are never shown.
    for (body, field) in [
        (
            json!({"name": "short", "channel": {"type": "webhook", "url": format!("{base}/hook"), "secret": "short"}}),
            "channel.secret",
        ),
        (
            json!({"name": "private", "channel": {"type": "slack", "url": "http://10.1.2.3/hook"}}),
            "10.1.2.3 is a private address",
        ),
        (
            json!({"name": "chat", "channel": {"type": "telegram", "bot_token": "123:abc", "chat_id": "not a chat"}}),
            "channel.chat_id",
        ),
        (
            json!({"name": "score", "channel": {"type": "discord", "url": format!("{base}/d")}, "filters": {"min_score": 3}}),
            "filters.min_score",
        ),
        (
            json!({"name": "mail", "channel": {"type": "email", "to": ["desk@example.test", "not an address"]}}),
            "channel.to[1]",
        ),
        (
            json!({"name": "mail", "channel": {"type": "email", "to": []}}),
            "channel.to",
        ),
    ] {
        let (status, problem) = swarm.post("/api/v1/subscriptions", body.clone()).await;
        assert_eq!(status, 422, "{body} -> {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem} should name {field}"
        );
    }
    let (status, problem) = swarm
        .post(
            "/api/v1/subscriptions",
            json!({"name": "x", "channel": {"type": "pager", "url": "https://a.example"}}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {problem}");
    let unauthorised = swarm
        .http
        .get(swarm.url("/api/v1/subscriptions"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status().as_u16(), 401);

    let hook = subscribe(
        &swarm,
        json!({"name": "desk", "channel": {"type": "webhook", "url": format!("{base}/hook"), "secret": SECRET}}),
    )
    .await;
    let slack = subscribe(
        &swarm,
        json!({"name": "slack", "channel": {"type": "slack", "url": format!("{base}/slack")}}),
    )
    .await;
    subscribe(
        &swarm,
        json!({"name": "discord", "channel": {"type": "discord", "url": format!("{base}/discord")}}),
    )
    .await;
    subscribe(
        &swarm,
        json!({"name": "telegram", "channel": {"type": "telegram", "bot_token": "123456:ABC-def_ghi", "chat_id": "-100200300", "api_base": base}}),
    )
    .await;
    let flaky = subscribe(
        &swarm,
        json!({"name": "flaky", "channel": {"type": "webhook", "url": format!("{base}/flaky"), "secret": SECRET}}),
    )
    .await;
    let limited = subscribe(
        &swarm,
        json!({"name": "limited", "channel": {"type": "webhook", "url": format!("{base}/limited"), "secret": SECRET}}),
    )
    .await;
    let gone = subscribe(
        &swarm,
        json!({"name": "gone", "channel": {"type": "webhook", "url": format!("{base}/gone"), "secret": SECRET}}),
    )
    .await;
    let mail = subscribe(
        &swarm,
        json!({"name": "mail", "channel": {"type": "email", "to": ["desk@example.test", "lead@example.test"]}}),
    )
    .await;
    let busy_mail = subscribe(
        &swarm,
        json!({"name": "busy-mail", "channel": {"type": "email", "to": ["busy-desk@example.test"]}}),
    )
    .await;
    let rejected_mail = subscribe(
        &swarm,
        json!({"name": "rejected-mail", "channel": {"type": "email", "to": ["reject@example.test"]}}),
    )
    .await;
    let filtered = subscribe(
        &swarm,
        json!({"name": "other-token", "channel": {"type": "webhook", "url": format!("{base}/filtered"), "secret": SECRET},
               "filters": {"tokens": ["$NOPE"]}}),
    )
    .await;

    let listed = {
        let response = swarm
            .http
            .get(swarm.url("/api/v1/subscriptions"))
            .header("X-API-Key", swarm_tests::ADMIN_KEY)
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    };
    assert!(listed.contains("\"desk\""), "{listed}");
    assert!(
        listed.contains(r#""to":["desk@example.test","lead@example.test"]"#),
        "e-mail recipients are shown: {listed}"
    );
    assert!(!listed.contains(SECRET), "a secret is shown: {listed}");
    assert!(
        !listed.contains("ABC-def_ghi"),
        "a bot token is shown: {listed}"
    );
    assert!(
        !listed.contains(&format!("{base}/slack")),
        "a Slack URL is shown: {listed}"
    );

    // An announcement is stored: every channel hears of it once.
    let item = announcement(1, "Orbiter sets its TGE for December 10", "Orbiter", "ORB");
    let stored_at = Instant::now();
    let event_id = create_event(&swarm, &item).await;
    for path in ["hook", "slack", "discord", "123456:ABC-def_ghi/sendMessage"] {
        let path = if path.ends_with("sendMessage") {
            format!("bot{path}")
        } else {
            path.to_owned()
        };
        eventually(
            Duration::from_secs(20),
            &format!("an alert at /{path}"),
            || {
                let receivers = receivers.clone();
                let path = path.clone();
                async move { !receivers.on(&path).is_empty() }
            },
        )
        .await;
    }
    eventually(Duration::from_secs(20), "the e-mail alert", || {
        let smtp = smtp.clone();
        async move {
            smtp.mail()
                .iter()
                .any(|m| m.to.contains(&"desk@example.test".to_owned()))
        }
    })
    .await;
    let webhook = &receivers.on("hook")[0];
    eprintln!(
        "webhook alert {:?} after the event was stored",
        webhook.at - stored_at
    );
    assert!(
        signature_verifies(webhook),
        "signature does not verify: {webhook:?}"
    );
    let body: Value = serde_json::from_slice(&webhook.body).unwrap();
    assert_eq!(body["type"], "tge.event.created");
    assert_eq!(body["event"]["id"], event_id);
    assert_eq!(body["event"]["project"], "Orbiter");
    assert_eq!(body["subscription"]["id"], hook);
    let key = format!("tge-swarm-{hook}-{event_id}-1");
    assert_eq!(body["idempotency_key"], key.as_str());
    assert_eq!(webhook.headers["idempotency-key"], key.as_str());
    assert_eq!(webhook.headers["x-tge-swarm-event"], "tge.event.created");
    assert!(
        webhook.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // A tampered body does not verify.
    let mut tampered = webhook.clone();
    tampered.body =
        Bytes::from(String::from_utf8_lossy(&webhook.body).replace("Orbiter", "Orbitex"));
    assert!(!signature_verifies(&tampered));

    // The e-mail went through STARTTLS (the sink refuses mail before it) with the relay's
    // login, to both recipients at once, named by the alert's idempotency key.
    let email = smtp
        .mail()
        .into_iter()
        .find(|m| m.to.contains(&"desk@example.test".to_owned()))
        .unwrap();
    eprintln!(
        "e-mail alert {:?} after the event was stored",
        email.at - stored_at
    );
    assert_eq!(email.to, ["desk@example.test", "lead@example.test"]);
    assert_eq!(email.from, "alerts@tge-swarm.test");
    assert_eq!(email.user.as_deref(), Some("alerts"));
    assert_eq!(
        email.header("Subject").as_deref(),
        Some("TGE alert: Orbiter ($ORB) - score 0.90"),
        "{}",
        email.data
    );
    assert_eq!(
        email.header("Message-ID").unwrap(),
        format!("<tge-swarm-{mail}-{event_id}-1@tge-swarm>")
    );
    assert!(
        email.data.contains("Orbiter sets its TGE"),
        "{}",
        email.data
    );

    let slack_body: Value = serde_json::from_slice(&receivers.on("slack")[0].body).unwrap();
    assert!(
        slack_body["text"]
            .as_str()
            .unwrap()
            .starts_with("TGE alert: Orbiter ($ORB)"),
        "{slack_body}"
    );
    let discord: Value = serde_json::from_slice(&receivers.on("discord")[0].body).unwrap();
    assert!(
        discord["content"].as_str().unwrap().contains("Orbiter"),
        "{discord}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
    let telegram: Value =
        serde_json::from_slice(&receivers.on("bot123456:ABC-def_ghi/sendMessage")[0].body).unwrap();
    assert_eq!(telegram["chat_id"], "-100200300");
    assert!(
        telegram["text"].as_str().unwrap().contains("$ORB"),
        "{telegram}"
    );

    // 500 then 200: delivered on the retry. 429 with Retry-After: 1: not retried sooner.
    eventually(
        Duration::from_secs(20),
        "the flaky receiver's retry",
        || {
            let receivers = receivers.clone();
            async move { receivers.on("flaky").len() >= 2 }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the rate-limited receiver's retry",
        || {
            let receivers = receivers.clone();
            async move { receivers.on("limited").len() >= 2 }
        },
    )
    .await;
    let limited_calls = receivers.on("limited");
    let waited = limited_calls[1].at - limited_calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?} despite Retry-After: 1"
    );
    let flaky_calls = receivers.on("flaky");
    assert_eq!(
        flaky_calls[0].headers["idempotency-key"], flaky_calls[1].headers["idempotency-key"],
        "a retry carries the same key"
    );
    eventually(Duration::from_secs(20), "the delivery logs", || {
        let swarm = &swarm;
        async move {
            let flaky_log = log_of(swarm, flaky).await;
            let limited_log = log_of(swarm, limited).await;
            let gone_log = log_of(swarm, gone).await;
            flaky_log
                .first()
                .is_some_and(|a| a["status"] == "delivered")
                && limited_log
                    .first()
                    .is_some_and(|a| a["status"] == "delivered")
                && gone_log.first().is_some_and(|a| a["status"] == "dead")
        }
    })
    .await;
    // SMTP: 451 for a recipient is retried, 550 is final.
    eventually(Duration::from_secs(20), "the e-mail delivery logs", || {
        let swarm = &swarm;
        async move {
            log_of(swarm, busy_mail)
                .await
                .first()
                .is_some_and(|a| a["status"] == "delivered")
                && log_of(swarm, rejected_mail)
                    .await
                    .first()
                    .is_some_and(|a| a["status"] == "dead")
        }
    })
    .await;
    let busy_log = log_of(&swarm, busy_mail).await;
    assert_eq!(busy_log[0]["attempts"], 2, "{busy_log:?}");
    assert_eq!(busy_log[0]["last_status_code"], 250);
    let rejected_log = log_of(&swarm, rejected_mail).await;
    assert_eq!(rejected_log[0]["attempts"], 1, "{rejected_log:?}");
    assert_eq!(rejected_log[0]["last_status_code"], 550);
    assert!(
        rejected_log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("SMTP 550"),
        "{rejected_log:?}"
    );
    let flaky_log = log_of(&swarm, flaky).await;
    assert_eq!(flaky_log.len(), 1);
    assert_eq!(flaky_log[0]["attempts"], 2);
    assert_eq!(flaky_log[0]["last_status_code"], 204);
    let gone_log = log_of(&swarm, gone).await;
    assert_eq!(
        gone_log[0]["attempts"], 1,
        "a 404 is not retried: {gone_log:?}"
    );
    assert!(
        gone_log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 404")
    );
    assert_eq!(receivers.on("gone").len(), 1);
    // The filter kept the other token's subscriber out.
    assert!(receivers.on("filtered").is_empty());
    assert!(log_of(&swarm, filtered).await.is_empty());

    // Each alert once: nothing more arrives, and a merge into the event alerts nobody.
    let more = announcement(
        2,
        "Orbiter TGE: claim portal opens December 10",
        "Orbiter",
        "ORB",
    );
    record(&swarm, &more).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for path in [
        "hook",
        "slack",
        "discord",
        "bot123456:ABC-def_ghi/sendMessage",
    ] {
        assert_eq!(receivers.on(path).len(), 1, "alerts at /{path}");
    }
    assert_eq!(receivers.on("flaky").len(), 2);
    assert_eq!(receivers.on("limited").len(), 2);
    let mails_to_desk = |smtp: &swarm_tests::smtp::SmtpSink| {
        smtp.mail()
            .into_iter()
            .filter(|m| m.to.contains(&"desk@example.test".to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(mails_to_desk(&smtp).len(), 1, "e-mails to the desk");
    let slack_log = log_of(&swarm, slack).await;
    assert_eq!(slack_log.len(), 1);
    assert_eq!(slack_log[0]["status"], "delivered");

    // A date set later is a material change: one update alert, under revision 2's key.
    let mut dated = announcement(3, "Orbiter TGE date: December 10", "Orbiter", "ORB");
    dated.detection.event_date = Some("December 10, 2031".into());
    record(&swarm, &dated).await;
    eventually(Duration::from_secs(20), "the update alert", || {
        let receivers = receivers.clone();
        async move { receivers.on("hook").len() >= 2 && receivers.on("slack").len() >= 2 }
    })
    .await;
    let update = &receivers.on("hook")[1];
    assert!(signature_verifies(update));
    let update_body: Value = serde_json::from_slice(&update.body).unwrap();
    assert_eq!(update_body["type"], "tge.event.updated");
    assert_eq!(update_body["revision"], 2);
    assert_eq!(update_body["event"]["event_date"], "December 10, 2031");
    assert_eq!(
        update.headers["idempotency-key"].to_str().unwrap(),
        format!("tge-swarm-{hook}-{event_id}-2")
    );
    eventually(Duration::from_secs(20), "the update e-mail", || {
        let smtp = smtp.clone();
        async move { mails_to_desk(&smtp).len() >= 2 }
    })
    .await;
    let update_mail = &mails_to_desk(&smtp)[1];
    assert!(
        update_mail
            .header("Subject")
            .unwrap()
            .starts_with("TGE update (date set): Orbiter"),
        "{}",
        update_mail.data
    );
    assert_eq!(
        update_mail.header("Message-ID").unwrap(),
        format!("<tge-swarm-{mail}-{event_id}-2@tge-swarm>")
    );
    let slack_update: Value = serde_json::from_slice(&receivers.on("slack")[1].body).unwrap();
    assert!(
        slack_update["text"]
            .as_str()
            .unwrap()
            .starts_with("TGE update (date set): Orbiter"),
        "{slack_update}"
    );

    // A test alert, sent now, not logged.
    let (status, result) = swarm
        .post(&format!("/api/v1/subscriptions/{hook}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["delivered"], true, "{result}");
    let test = receivers.on("hook").pop().unwrap();
    let test_body: Value = serde_json::from_slice(&test.body).unwrap();
    assert_eq!(test_body["type"], "tge.test");
    assert!(signature_verifies(&test));
    assert_eq!(log_of(&swarm, hook).await.len(), 2);
    let (status, result) = swarm
        .post(&format!("/api/v1/subscriptions/{gone}/test"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["delivered"], false);
    assert_eq!(result["status"], 404);
    let (status, result) = swarm
        .post(&format!("/api/v1/subscriptions/{mail}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(result["status"], 250, "{result}");
    let (status, result) = swarm
        .post(
            &format!("/api/v1/subscriptions/{rejected_mail}/test"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(result["delivered"], false, "{result}");
    assert_eq!(result["status"], 550, "{result}");

    // Deleting a subscription.
    let response = swarm
        .http
        .delete(swarm.url(&format!("/api/v1/subscriptions/{gone}")))
        .header("X-API-Key", swarm_tests::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let response = swarm
        .http
        .get(swarm.url(&format!("/api/v1/subscriptions/{gone}")))
        .header("X-API-Key", swarm_tests::ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    swarm.stop().await;
}
