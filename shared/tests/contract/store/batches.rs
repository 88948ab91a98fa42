//! Batches and concurrency: one transaction per batch in order, concurrent writers of one
//! project, overlapping batches.

use std::sync::Arc;
use swarm_shared::domain::{
    ClassifiedDocument, DEFAULT_SOURCES_PER_EVENT, EventQuery, MAX_SOURCES_PER_EVENT, RecordOutcome,
};
use swarm_shared::ports::{Store, ToRecord};

use super::*;

/// 64 writers at once (data-quality agents in several processes) recording 32 documents of
/// one project, each twice: one event, one source per distinct document.
pub(super) async fn concurrent_writers_merge_into_one_event(store: Arc<dyn Store>) {
    // Three rounds: the race this guards against does not show on every run.
    for project in ["Zkx", "Qrv", "Mlt"] {
        concurrent_round(&store, project).await;
    }
}

pub(super) async fn concurrent_round(store: &Arc<dyn Store>, project: &'static str) {
    let mut tasks = Vec::new();
    let start = Arc::new(tokio::sync::Barrier::new(64));
    for index in 0..64 {
        let store = store.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let item = classified(
                &format!("https://site-{}.example/{project}", index % 32),
                &format!("{project} announces its TGE"),
                Some(project),
                Some("TKN"),
                0.9,
                true,
            );
            store
                .record_classified(&item, &key(project), None, WINDOW)
                .await
        }));
    }
    let mut created = 0;
    let mut duplicates = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            RecordOutcome::EventCreated(_) => created += 1,
            RecordOutcome::Duplicate => duplicates += 1,
            RecordOutcome::EventMerged(_) | RecordOutcome::Stored => {}
        }
    }
    assert_eq!(created, 1, "exactly one writer creates the event");
    assert_eq!(duplicates, 32, "each document is stored once");
    let page = store
        .list_events(&EventQuery {
            company: Some(project.into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].source_count, 32);
    assert_eq!(
        page.events[0].sources.len(),
        DEFAULT_SOURCES_PER_EVENT as usize,
        "a page lists the first few sources of an event"
    );
    let all = store
        .list_events(&EventQuery {
            company: Some(project.into()),
            sources_per_event: Some(MAX_SOURCES_PER_EVENT),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let event = store.get_event(page.events[0].id).await.unwrap();
    assert_eq!(event.source_count, 32);
    assert_eq!(
        all.events[0].sources, event.sources,
        "asked for all of them"
    );
    assert_eq!(
        page.events[0].sources[..],
        event.sources[..DEFAULT_SOURCES_PER_EVENT as usize],
        "the first ones merged in, in order"
    );
    let bare = store
        .list_events(&EventQuery {
            company: Some(project.into()),
            sources_per_event: Some(0),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(bare.events[0].sources.is_empty());
    assert_eq!(bare.events[0].source_count, 32);
}

pub(super) async fn a_batch_is_recorded_in_order_in_one_transaction(store: Arc<dyn Store>) {
    let first = classified(
        "https://a.example/b1",
        "Fhenix announces TGE",
        Some("Fhenix"),
        Some("FHE"),
        0.9,
        true,
    );
    let mut copy = classified(
        "https://a.example/b1-again",
        "Fhenix announces TGE",
        Some("Fhenix"),
        Some("FHE"),
        0.9,
        true,
    );
    copy.document.source_name = first.document.source_name.clone();
    let other_source = {
        let mut item = classified(
            "https://b.example/b2",
            "Fhenix TGE date set",
            Some("Fhenix"),
            None,
            0.95,
            true,
        );
        item.document.source_name = "other".into();
        item
    };
    let noise = classified(
        "https://a.example/b3",
        "Market wrap",
        None,
        None,
        0.1,
        false,
    );
    let caldera = classified(
        "https://c.example/b4",
        "Caldera sets TGE",
        Some("Caldera"),
        None,
        0.8,
        true,
    );
    let fhenix = key("Fhenix");
    let simhash: u64 = 0x0f0f_1234_5678_9abc;
    let batch = [
        ToRecord {
            item: &first,
            merge_key: &fhenix,
            simhash: Some(simhash),
        },
        // A near copy from the same source within the same batch: the batch sees its own writes.
        ToRecord {
            item: &copy,
            merge_key: &fhenix,
            simhash: Some(simhash ^ 0b101),
        },
        ToRecord {
            item: &other_source,
            merge_key: &fhenix,
            simhash: Some(!simhash),
        },
        ToRecord {
            item: &noise,
            merge_key: "title:market wrap",
            simhash: None,
        },
        ToRecord {
            item: &caldera,
            merge_key: &key("Caldera"),
            simhash: None,
        },
        // The same document twice in one batch.
        ToRecord {
            item: &noise,
            merge_key: "title:market wrap",
            simhash: None,
        },
    ];
    let outcomes = store.record_classified_batch(&batch, WINDOW).await.unwrap();
    let RecordOutcome::EventCreated(fhenix_event) = outcomes[0] else {
        panic!("expected a new event first, got {outcomes:?}")
    };
    assert_eq!(outcomes[1], RecordOutcome::Duplicate);
    assert_eq!(outcomes[2], RecordOutcome::EventMerged(fhenix_event));
    assert_eq!(outcomes[3], RecordOutcome::Stored);
    assert!(
        matches!(outcomes[4], RecordOutcome::EventCreated(id) if id != fhenix_event),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[5], RecordOutcome::Duplicate);
    assert_eq!(outcomes.len(), batch.len());
    assert_eq!(store.count_documents().await.unwrap(), 4);
    assert_eq!(
        store.get_event(fhenix_event).await.unwrap().sources.len(),
        2
    );
    // An empty batch records nothing and is not an error.
    assert!(
        store
            .record_classified_batch(&[], WINDOW)
            .await
            .unwrap()
            .is_empty()
    );
    // Recording the batch again changes nothing.
    let again = store.record_classified_batch(&batch, WINDOW).await.unwrap();
    assert!(
        again
            .iter()
            .all(|outcome| *outcome == RecordOutcome::Duplicate),
        "{again:?}"
    );
    assert_eq!(store.count_documents().await.unwrap(), 4);
}

/// Eight writers record overlapping batches of the same 16 documents, each in its own order
/// (redelivered work, several data-quality agents): each document is stored exactly once,
/// and no writer fails or deadlocks.
pub(super) async fn overlapping_batches_store_each_document_once(store: Arc<dyn Store>) {
    let items: Vec<ClassifiedDocument> = (0..16)
        .map(|index| {
            classified(
                &format!("https://overlap.example/{index}"),
                &format!("Weekly notes {index}"),
                None,
                None,
                0.1,
                false,
            )
        })
        .collect();
    let items = Arc::new(items);
    let start = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for writer in 0..8usize {
        let store = store.clone();
        let items = items.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            // Writer n takes 12 of the 16, starting at 2n, half of them backwards.
            let mut order: Vec<usize> = (0..12).map(|k| (2 * writer + k) % 16).collect();
            if writer % 2 == 1 {
                order.reverse();
            }
            let keys: Vec<String> = order
                .iter()
                .map(|&i| format!("title:overlap-{i}"))
                .collect();
            let batch: Vec<ToRecord<'_>> = order
                .iter()
                .zip(&keys)
                .map(|(&i, key)| ToRecord {
                    item: &items[i],
                    merge_key: key,
                    simhash: None,
                })
                .collect();
            start.wait().await;
            store.record_classified_batch(&batch, WINDOW).await
        }));
    }
    let mut stored = 0;
    for task in tasks {
        let outcomes = task.await.unwrap().expect("no writer fails");
        stored += outcomes
            .iter()
            .filter(|outcome| **outcome == RecordOutcome::Stored)
            .count();
    }
    assert_eq!(stored, 16, "each document stored by exactly one writer");
    assert_eq!(store.count_documents().await.unwrap(), 16);
}
