//! Alert delivery in the store: subscriptions, the outbox written with each new event, alerts
//! fanned out once per idempotency key, leases that keep two deliverers off one alert, and
//! the delivery log.

use std::sync::Arc;

use chrono::{Duration as Span, Utc};
use swarm_shared::Error;
use swarm_shared::domain::{
    AlertFilters, AlertKind, AlertStatus, AttemptOutcome, ChannelInput, EventQuery, NewAlert,
    RecordOutcome, SubscriptionInput, idempotency_key,
};
use swarm_shared::ports::Store;

use super::{WINDOW, classified, key};

fn subscription(name: &str) -> SubscriptionInput {
    SubscriptionInput {
        name: name.into(),
        channel: ChannelInput::Webhook {
            url: format!("https://{name}.example/hook"),
            secret: "a-secret-of-sixteen-or-more".into(),
        },
        filters: AlertFilters {
            min_score: Some(0.5),
            tokens: vec!["ABC".into()],
            ..AlertFilters::default()
        },
        quiet_minutes: 5,
        enabled: true,
    }
}

pub(super) async fn alerts_are_owed_once_and_leased(store: Arc<dyn Store>) {
    // Subscriptions: stored with their secrets, names unique, validated.
    let desk = store
        .create_subscription(&subscription("desk"))
        .await
        .unwrap();
    assert_eq!(desk.name, "desk");
    assert_eq!(desk.filters.tokens, ["ABC"]);
    assert_eq!(desk.quiet_minutes, 5);
    assert!(
        matches!(desk.channel, ChannelInput::Webhook { ref secret, .. } if secret == "a-secret-of-sixteen-or-more")
    );
    assert!(matches!(
        store.create_subscription(&subscription("desk")).await,
        Err(Error::Conflict(_))
    ));
    let mut bad = subscription("bad");
    bad.filters.min_score = Some(2.0);
    let err = store.create_subscription(&bad).await.unwrap_err();
    assert!(err.to_string().contains("filters.min_score"), "{err}");
    let other = store
        .create_subscription(&subscription("other"))
        .await
        .unwrap();
    assert_eq!(store.list_subscriptions().await.unwrap().len(), 2);

    // A new event writes one outbox row with it; a merge into it writes none.
    assert!(store.waiting_outbox(10).await.unwrap().is_empty());
    let first = classified(
        "https://a.example/1",
        "Acme sets its TGE",
        Some("Acme"),
        Some("ABC"),
        0.9,
        true,
    );
    let created = store
        .record_classified(&first, &key("Acme"), None, WINDOW)
        .await
        .unwrap();
    let RecordOutcome::EventCreated(event_id) = created else {
        panic!("a new event, not {created:?}");
    };
    let again = classified(
        "https://b.example/2",
        "Acme TGE date",
        Some("Acme"),
        Some("ABC"),
        0.8,
        true,
    );
    store
        .record_classified(&again, &key("Acme"), None, WINDOW)
        .await
        .unwrap();
    let waiting = store.waiting_outbox(10).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].event_id, Some(event_id));
    assert_eq!(waiting[0].revision, 1);
    assert_eq!(waiting[0].kind, AlertKind::Created);

    // Fanning out creates each alert once, even when a row is fanned out twice.
    let now = Utc::now();
    let alerts: Vec<NewAlert> = [desk.id, other.id]
        .into_iter()
        .map(|subscription_id| NewAlert {
            subscription_id,
            event_id: Some(event_id),
            source_id: None,
            revision: 1,
            kind: AlertKind::Created,
            detail: None,
            event_stored_at: waiting[0].created_at,
        })
        .collect();
    assert_eq!(
        store.fan_out(&[waiting[0].id], &alerts, now).await.unwrap(),
        2
    );
    assert!(store.waiting_outbox(10).await.unwrap().is_empty());
    assert_eq!(
        store.fan_out(&[waiting[0].id], &alerts, now).await.unwrap(),
        0
    );

    // The outbox stays the ordered log of new events the live stream reads.
    assert_eq!(store.latest_outbox_row().await.unwrap(), waiting[0].id);
    let log = store.outbox_after(0, 10).await.unwrap();
    assert_eq!(log, waiting);
    assert!(
        store
            .outbox_after(waiting[0].id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let only = |ids: Vec<i64>| EventQuery {
        ids,
        page_size: 50,
        ..EventQuery::default()
    };
    let page = store.list_events(&only(vec![event_id])).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].id, event_id);
    assert!(
        store
            .list_events(&only(vec![event_id + 999]))
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert!(
        store
            .last_alert_at(desk.id, event_id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .last_alert_at(desk.id, event_id + 1000)
            .await
            .unwrap()
            .is_none()
    );

    // A lease keeps an alert from a second deliverer until it ends; each lease is an attempt.
    let lease = now + Span::seconds(30);
    let claimed = store.claim_deliveries(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert!(
        claimed
            .iter()
            .all(|alert| alert.attempts == 1 && alert.status == AlertStatus::Pending)
    );
    assert_eq!(
        claimed[0].idempotency_key,
        idempotency_key(claimed[0].subscription_id, event_id, 1)
    );
    assert!(
        store
            .claim_deliveries(now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after_lease = lease + Span::seconds(1);
    let reclaimed = store
        .claim_deliveries(after_lease, after_lease + Span::seconds(30), 1)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].attempts, 2);

    // Outcomes: a retry waits until its time, a delivery and a death are final.
    let (desk_alert, other_alert) = if claimed[0].subscription_id == desk.id {
        (&claimed[0], &claimed[1])
    } else {
        (&claimed[1], &claimed[0])
    };
    let retry_at = after_lease + Span::seconds(60);
    store
        .finish_delivery(
            desk_alert.id,
            &AttemptOutcome::Retry {
                status_code: Some(503),
                error: "HTTP 503".into(),
                next_attempt_at: retry_at,
            },
            after_lease,
        )
        .await
        .unwrap();
    store
        .finish_delivery(
            other_alert.id,
            &AttemptOutcome::Dead {
                status_code: Some(404),
                error: "HTTP 404".into(),
            },
            after_lease,
        )
        .await
        .unwrap();
    let later = after_lease + Span::seconds(40);
    assert!(
        store
            .claim_deliveries(later, later + Span::seconds(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store
        .claim_deliveries(retry_at, retry_at + Span::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, desk_alert.id);
    assert_eq!(due[0].last_status_code, Some(503));
    store
        .finish_delivery(
            due[0].id,
            &AttemptOutcome::Delivered { status_code: 204 },
            retry_at,
        )
        .await
        .unwrap();
    let log = store.list_deliveries(desk.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, AlertStatus::Delivered);
    assert_eq!(log[0].last_status_code, Some(204));
    assert!(log[0].delivered_at.is_some());
    let dead = store.list_deliveries(other.id, 10).await.unwrap();
    assert_eq!(dead[0].status, AlertStatus::Dead);
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 404"));
    let far = retry_at + Span::days(1);
    assert!(
        store
            .claim_deliveries(far, far, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting a subscription takes its log with it.
    store.delete_subscription(other.id).await.unwrap();
    assert!(matches!(
        store.get_subscription(other.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        store
            .list_deliveries(other.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_subscription(other.id).await,
        Err(Error::NotFound { .. })
    ));

    // A date set on an event that had none is a material change: a new revision, and an
    // outbox row of kind `updated`; another day named later is one too (`date_moved`), and
    // the same day named again is not.
    let mut dated = classified(
        "https://c.example/3",
        "Acme TGE on May 4",
        Some("Acme"),
        Some("ABC"),
        0.85,
        true,
    );
    dated.detection.event_date = Some("May 4, 2031".into());
    store
        .record_classified(&dated, &key("Acme"), None, WINDOW)
        .await
        .unwrap();
    let update = store.waiting_outbox(10).await.unwrap();
    assert_eq!(update.len(), 1, "{update:?}");
    assert_eq!(update[0].event_id, Some(event_id));
    assert_eq!(update[0].revision, 2);
    assert_eq!(update[0].kind, AlertKind::Updated);
    let mut redated = classified(
        "https://d.example/4",
        "Acme TGE moved to June",
        Some("Acme"),
        Some("ABC"),
        0.85,
        true,
    );
    redated.detection.event_date = Some("June 1, 2031".into());
    store
        .record_classified(&redated, &key("Acme"), None, WINDOW)
        .await
        .unwrap();
    let moved = store.waiting_outbox(10).await.unwrap();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert_eq!(moved[0], update[0]);
    assert_eq!(
        (moved[1].kind, moved[1].revision),
        (AlertKind::DateMoved, 3)
    );
    // The same day, written otherwise, from another source: merged, not a move.
    let mut again = classified(
        "https://e.example/5",
        "Acme token generation event: 2031-06-01",
        Some("Acme"),
        Some("ABC"),
        0.85,
        true,
    );
    again.document.source_name = "blog".into();
    again.document.text =
        "Acme confirms its token generation event for 2031-06-01 on its blog.".into();
    again.document.id = swarm_shared::domain::document_id(
        &again.document.url,
        &again.document.title,
        &again.document.text,
    );
    again.detection.event_date = Some("2031-06-01".into());
    let outcome = store
        .record_classified(&again, &key("Acme"), None, WINDOW)
        .await
        .unwrap();
    assert_eq!(outcome, RecordOutcome::EventMerged(event_id));
    assert_eq!(store.waiting_outbox(10).await.unwrap(), moved);
    assert_eq!(
        store
            .get_event(event_id)
            .await
            .unwrap()
            .event_date
            .as_deref(),
        Some("June 1, 2031")
    );
}

pub(super) async fn sources_going_down_and_back_are_owed_once(store: Arc<dyn Store>) {
    use swarm_shared::domain::HealthChange;
    let feed = store.create_source(&super::source("feed")).await.unwrap();
    let desk = store
        .create_subscription(&SubscriptionInput {
            filters: AlertFilters::default(),
            ..subscription("desk")
        })
        .await
        .unwrap();
    let now = Utc::now();
    let down = HealthChange::Down("failed 5 times in a row: HTTP 503".into());
    assert!(
        store
            .record_source_health(feed.id, &down, now)
            .await
            .unwrap()
    );
    // Already down: not again, and no second row.
    assert!(
        !store
            .record_source_health(feed.id, &down, now)
            .await
            .unwrap()
    );
    let source = store.get_source(feed.id).await.unwrap();
    assert_eq!(
        source.down_since.map(|at| at.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(
        source.down_reason.as_deref(),
        Some("failed 5 times in a row: HTTP 503")
    );
    let waiting = store.waiting_outbox(100).await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let row = &waiting[0];
    assert_eq!((row.event_id, row.source_id), (None, Some(feed.id)));
    assert_eq!((row.kind, row.revision), (AlertKind::SourceDown, 1));
    assert_eq!(
        row.detail.as_deref(),
        Some("failed 5 times in a row: HTTP 503")
    );

    let alert = NewAlert {
        subscription_id: desk.id,
        event_id: None,
        source_id: Some(feed.id),
        revision: row.revision,
        kind: row.kind,
        detail: row.detail.clone(),
        event_stored_at: row.created_at,
    };
    assert_eq!(
        alert.key(),
        format!("tge-swarm-{}-source-{}-1-down", desk.id, feed.id)
    );
    assert_eq!(
        store
            .fan_out(&[row.id], std::slice::from_ref(&alert), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.fan_out(&[row.id], &[alert], now).await.unwrap(), 0);
    let log = store.list_deliveries(desk.id, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].event_id, log[0].source_id), (None, Some(feed.id)));
    assert_eq!(log[0].kind, AlertKind::SourceDown);
    assert_eq!(
        log[0].detail.as_deref(),
        Some("failed 5 times in a row: HTTP 503")
    );

    // Recovery: once, under the same incident number; then a new incident is number 2.
    assert!(
        store
            .record_source_health(feed.id, &HealthChange::Recovered, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_source_health(feed.id, &HealthChange::Recovered, now)
            .await
            .unwrap()
    );
    assert_eq!(store.get_source(feed.id).await.unwrap().down_since, None);
    assert!(
        store
            .record_source_health(feed.id, &down, now)
            .await
            .unwrap()
    );
    let rows = store.outbox_after(row.id, 10).await.unwrap();
    let kinds: Vec<(AlertKind, i64)> = rows.iter().map(|row| (row.kind, row.revision)).collect();
    assert_eq!(
        kinds,
        [(AlertKind::SourceRecovered, 1), (AlertKind::SourceDown, 2)]
    );
    // A source deleted takes its rows with it.
    store.delete_source(feed.id).await.unwrap();
    assert!(store.outbox_after(0, 10).await.unwrap().is_empty());
}
