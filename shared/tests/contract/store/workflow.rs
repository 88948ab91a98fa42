//! The analysts' workflow in the store: kinds and date precisions recorded with events,
//! status changes and notes with their history, a confirmation as a new revision with its
//! outbox row, bulk updates that skip missing ids, and filters on all of these.

use std::sync::Arc;

use chrono::Utc;
use swarm_shared::Error;
use swarm_shared::domain::{
    AlertKind, DatePrecision, EventKind, EventQuery, EventStatus, EventUpdate, RecordOutcome,
};
use swarm_shared::ports::{Store, ToRecord};

use super::{WINDOW, classified, key};

async fn record(
    store: &Arc<dyn Store>,
    url: &str,
    title: &str,
    project: &str,
    date: Option<&str>,
) -> i64 {
    let mut item = classified(url, title, Some(project), Some("ABC"), 0.9, true);
    item.detection.event_date = date.map(str::to_owned);
    match store
        .record_classified(&item, &key(project), None, WINDOW)
        .await
        .unwrap()
    {
        RecordOutcome::EventCreated(id) | RecordOutcome::EventMerged(id) => id,
        other => panic!("{other:?}"),
    }
}

fn query() -> EventQuery {
    EventQuery {
        page_size: 50,
        ..EventQuery::default()
    }
}

pub(super) async fn analysts_move_events_through_the_workflow(store: Arc<dyn Store>) {
    // Kinds and date precisions are recorded with the event.
    let listing = record(
        &store,
        "https://a.example/1",
        "Binance will list Alpha (ALP)",
        "Alpha",
        Some("March 2031"),
    )
    .await;
    let airdrop = record(
        &store,
        "https://b.example/1",
        "Beta airdrop claim is live",
        "Beta",
        None,
    )
    .await;
    let tge = record(
        &store,
        "https://c.example/1",
        "Gamma sets its TGE",
        "Gamma",
        None,
    )
    .await;
    let event = store.get_event(listing).await.unwrap();
    assert_eq!(event.kind, EventKind::FirstListing);
    assert_eq!(event.date_precision, Some(DatePrecision::Month));
    assert_eq!(event.status, EventStatus::New);
    assert_eq!(event.revision, 1);
    assert_eq!(event.status_by, None);
    assert_eq!(
        store.get_event(airdrop).await.unwrap().kind,
        EventKind::Airdrop
    );
    let gamma = store.get_event(tge).await.unwrap();
    assert_eq!((gamma.kind, gamma.date_precision), (EventKind::Tge, None));
    // A date set later brings its precision; the kind stays the first document's.
    record(
        &store,
        "https://c.example/2",
        "Gamma TGE on 2031-05-02, listing after",
        "Gamma",
        Some("2031-05-02"),
    )
    .await;
    let gamma = store.get_event(tge).await.unwrap();
    assert_eq!(gamma.date_precision, Some(DatePrecision::Day));
    assert_eq!(gamma.kind, EventKind::Tge);
    assert_eq!(gamma.revision, 2, "a date set is a material change");
    // Another day named later moves the date (revision 3, an outbox row); the same day
    // written otherwise, or a mere month, does not.
    record(
        &store,
        "https://c.example/3",
        "Gamma TGE moved to May 9, 2031",
        "Gamma",
        Some("May 9, 2031"),
    )
    .await;
    record(
        &store,
        "https://c.example/4",
        "Gamma TGE on 2031-05-09 confirmed",
        "Gamma",
        Some("2031-05-09"),
    )
    .await;
    record(
        &store,
        "https://c.example/5",
        "Gamma TGE sometime in May 2031",
        "Gamma",
        Some("May 2031"),
    )
    .await;
    let gamma = store.get_event(tge).await.unwrap();
    assert_eq!(gamma.event_date.as_deref(), Some("May 9, 2031"));
    assert_eq!(gamma.revision, 3, "one move");
    assert_eq!(
        gamma.event_day.map(|day| day.to_string()).as_deref(),
        Some("2031-05-09")
    );
    let moves: Vec<_> = store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.kind == AlertKind::DateMoved)
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!((moves[0].event_id, moves[0].revision), (Some(tge), 3));

    // A confirmation: status, who and when, a history entry with the note, a new revision
    // and an outbox row for subscribers.
    let at = Utc::now();
    let confirm = EventUpdate {
        status: Some(EventStatus::Confirmed),
        note: Some("Checked on the exchange's page".into()),
    };
    let found = store
        .update_events(&[listing], &confirm, "desk-key", at)
        .await
        .unwrap();
    assert_eq!(found, [listing]);
    let event = store.get_event(listing).await.unwrap();
    assert_eq!(event.status, EventStatus::Confirmed);
    assert_eq!(event.status_by.as_deref(), Some("desk-key"));
    assert_eq!(
        event.status_changed_at.map(|t| t.timestamp_millis()),
        Some(at.timestamp_millis())
    );
    assert_eq!(event.revision, 2);
    let outbox = store.outbox_after(0, 100).await.unwrap();
    let confirmations: Vec<_> = outbox
        .iter()
        .filter(|row| row.kind == AlertKind::Confirmed)
        .collect();
    assert_eq!(confirmations.len(), 1, "{outbox:?}");
    assert_eq!(
        (confirmations[0].event_id, confirmations[0].revision),
        (Some(listing), 2)
    );

    // The same status again records only the note; a note alone is history too.
    let again = store
        .update_events(&[listing], &confirm, "other-key", at)
        .await
        .unwrap();
    assert_eq!(again, [listing]);
    let note = EventUpdate {
        status: None,
        note: Some("Listing moved to 14:00 UTC".into()),
    };
    store
        .update_events(&[listing], &note, "desk-key", at)
        .await
        .unwrap();
    let event = store.get_event(listing).await.unwrap();
    assert_eq!(event.revision, 2, "no second confirmation");
    assert_eq!(event.status_by.as_deref(), Some("desk-key"));
    let history = store.event_history(listing).await.unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0].status_from, Some(EventStatus::New));
    assert_eq!(history[0].status_to, Some(EventStatus::Confirmed));
    assert_eq!(history[0].actor, "desk-key");
    assert_eq!(
        history[0].note.as_deref(),
        Some("Checked on the exchange's page")
    );
    assert_eq!(history[1].actor, "other-key");
    assert_eq!((history[1].status_from, history[1].status_to), (None, None));
    assert_eq!(
        history[2].note.as_deref(),
        Some("Listing moved to 14:00 UTC")
    );
    assert!(matches!(
        store.event_history(999_999).await,
        Err(Error::NotFound { .. })
    ));

    // Bulk: missing ids are skipped; a dismissal is not material (no revision, no outbox row).
    let dismiss = EventUpdate {
        status: Some(EventStatus::Dismissed),
        note: None,
    };
    let found = store
        .update_events(&[tge, 999_999, airdrop, tge], &dismiss, "desk-key", at)
        .await
        .unwrap();
    assert_eq!(found, {
        let mut both = vec![airdrop, tge];
        both.sort_unstable();
        both
    });
    assert_eq!(store.get_event(tge).await.unwrap().revision, gamma.revision);
    assert_eq!(
        store.outbox_after(0, 100).await.unwrap().len(),
        outbox.len(),
        "a dismissal writes no outbox row"
    );
    assert_eq!(store.event_history(tge).await.unwrap().len(), 1);

    // Filters on status, kind and date precision.
    let ids = |query: EventQuery| {
        let store = store.clone();
        async move {
            let mut ids: Vec<i64> = store
                .list_events(&query)
                .await
                .unwrap()
                .events
                .iter()
                .map(|event| event.id)
                .collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(
        ids(EventQuery {
            statuses: vec![EventStatus::Confirmed],
            ..query()
        })
        .await,
        [listing]
    );
    let mut dismissed = vec![airdrop, tge];
    dismissed.sort_unstable();
    assert_eq!(
        ids(EventQuery {
            statuses: vec![EventStatus::Dismissed, EventStatus::Archived],
            ..query()
        })
        .await,
        dismissed
    );
    assert_eq!(
        ids(EventQuery {
            kinds: vec![EventKind::Airdrop],
            ..query()
        })
        .await,
        [airdrop]
    );
    assert_eq!(
        ids(EventQuery {
            date_precisions: vec![DatePrecision::Day],
            statuses: vec![EventStatus::Dismissed],
            ..query()
        })
        .await,
        [tge]
    );
    assert!(
        ids(EventQuery {
            statuses: vec![EventStatus::New],
            ..query()
        })
        .await
        .is_empty()
    );

    // Venues: the exchanges the reports' titles name; a new one is a material change.
    assert_eq!(store.get_event(listing).await.unwrap().venues, ["Binance"]);
    record(
        &store,
        "https://d.example/1",
        "Bybit lists Alpha (ALP) for spot trading",
        "Alpha",
        None,
    )
    .await;
    record(
        &store,
        "https://e.example/1",
        "Binance opens Alpha (ALP) perpetuals",
        "Alpha",
        None,
    )
    .await;
    let event = store.get_event(listing).await.unwrap();
    assert_eq!(event.venues, ["Binance", "Bybit"]);
    assert_eq!(event.revision, 3, "one new venue, one update");
    let added: Vec<_> = store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.kind == AlertKind::VenueAdded)
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!((added[0].event_id, added[0].revision), (Some(listing), 3));

    // One batch naming the month, then the day: the day moves the date, as the two reports
    // one by one would.
    let mut month = classified(
        "https://f.example/1",
        "Alpha launch in March",
        Some("Alpha"),
        Some("ABC"),
        0.9,
        true,
    );
    month.detection.event_date = Some("March 2031".into());
    let mut day = classified(
        "https://g.example/1",
        "Alpha launch date: March 14, 2031",
        Some("Alpha"),
        Some("ABC"),
        0.9,
        true,
    );
    day.detection.event_date = Some("March 14, 2031".into());
    day.document.source_name = "other".into();
    let merge_key = key("Alpha");
    let batch = [
        ToRecord {
            item: &month,
            merge_key: &merge_key,
            simhash: None,
        },
        ToRecord {
            item: &day,
            merge_key: &merge_key,
            simhash: None,
        },
    ];
    store.record_classified_batch(&batch, WINDOW).await.unwrap();
    let event = store.get_event(listing).await.unwrap();
    assert_eq!(event.event_date.as_deref(), Some("March 14, 2031"));
    assert_eq!(event.date_precision, Some(DatePrecision::Day));
    assert_eq!(event.revision, 4);
}

/// Events stored before kinds and venues were get theirs when the store next opens.
#[tokio::test]
async fn kinds_of_older_events_are_filled_in_at_open() {
    use swarm_shared::ports::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let id = record(
        &store,
        "https://a.example/1",
        "Alpha public sale opens",
        "Alpha",
        Some("Q3 2031"),
    )
    .await;
    record(
        &store,
        "https://b.example/1",
        "Bybit hosts the Alpha sale",
        "Alpha",
        None,
    )
    .await;
    store.close().await;
    drop(store);
    // As the migration leaves an event stored before it.
    let url = format!("sqlite://{}", path.display());
    let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE tge_events SET kind = NULL, date_precision = NULL, venues = NULL")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    let event = store.get_event(id).await.unwrap();
    assert_eq!(event.kind, EventKind::Sale);
    assert_eq!(event.date_precision, Some(DatePrecision::Quarter));
    assert_eq!(event.venues, ["Bybit"]);
}
