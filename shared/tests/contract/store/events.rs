//! Recording classified documents: idempotence and merging, event queries and their
//! pages, near-duplicates across sources, windows and large batches.

use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use swarm_shared::Error;
use swarm_shared::domain::{ClassifiedDocument, EventQuery, RecordOutcome};
use swarm_shared::ports::{Store, ToRecord};

use super::*;

pub(super) async fn recording_is_idempotent_and_merges(store: Arc<dyn Store>) {
    let a = classified(
        "https://a.example/1",
        "Fhenix announces TGE",
        Some("Fhenix"),
        Some("FHE"),
        0.9,
        true,
    );
    let b = classified(
        "https://b.example/x",
        "Fhenix TGE on March 5",
        Some("Fhenix"),
        None,
        0.95,
        true,
    );
    let noise = classified("https://a.example/2", "Market wrap", None, None, 0.1, false);

    let created = store
        .record_classified(&a, &key("Fhenix"), None, WINDOW)
        .await
        .unwrap();
    let RecordOutcome::EventCreated(event_id) = created else {
        panic!("expected a new event, got {created:?}")
    };
    assert_eq!(
        store
            .record_classified(&a, &key("Fhenix"), None, WINDOW)
            .await
            .unwrap(),
        RecordOutcome::Duplicate
    );
    assert_eq!(
        store
            .record_classified(&b, &key("Fhenix"), None, WINDOW)
            .await
            .unwrap(),
        RecordOutcome::EventMerged(event_id)
    );
    assert_eq!(
        store
            .record_classified(&noise, "title:x", None, WINDOW)
            .await
            .unwrap(),
        RecordOutcome::Stored
    );
    assert_eq!(store.count_documents().await.unwrap(), 3);

    let event = store.get_event(event_id).await.unwrap();
    assert_eq!(event.sources.len(), 2);
    assert_eq!(
        event.source_count, 2,
        "a near or exact duplicate is not counted"
    );
    assert_eq!(
        event.token.as_deref(),
        Some("FHE"),
        "token kept from the first source"
    );
    assert!((event.score - 0.95).abs() < 1e-9, "best score wins");
    let urls: HashSet<_> = event.sources.iter().map(|s| s.url.as_str()).collect();
    assert!(urls.contains("https://a.example/1") && urls.contains("https://b.example/x"));

    // Outside the merge window a new event starts.
    let later = classified(
        "https://c.example/y",
        "Fhenix second TGE",
        Some("Fhenix"),
        None,
        0.8,
        true,
    );
    assert!(matches!(
        store.record_classified(&later, &key("Fhenix"), None, Duration::ZERO).await.unwrap(),
        RecordOutcome::EventCreated(id) if id != event_id
    ));
    assert!(matches!(
        store.get_event(9_999).await,
        Err(Error::NotFound { .. })
    ));
}

pub(super) async fn event_queries_and_pagination(store: Arc<dyn Store>) {
    store
        .create_company(&company("Caldera", &["Caldera Labs"]))
        .await
        .unwrap();
    let mut expected = HashSet::new();
    for index in 0..25 {
        let project = format!("Project{index}");
        let token = format!("TK{index}");
        let item = classified(
            &format!("https://news.example/{index}"),
            &format!("{project} announces TGE"),
            Some(&project),
            Some(&token),
            0.5 + index as f64 / 100.0,
            true,
        );
        if let RecordOutcome::EventCreated(id) = store
            .record_classified(&item, &key(&project), None, WINDOW)
            .await
            .unwrap()
        {
            expected.insert(id);
        }
    }
    let caldera = classified(
        "https://news.example/caldera",
        "Caldera Labs token launch",
        Some("Caldera"),
        Some("CAL"),
        0.97,
        true,
    );
    store
        .record_classified(&caldera, &key("Caldera"), None, WINDOW)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let query = EventQuery {
            page_size: 10,
            page_token: token.clone(),
            ..EventQuery::default()
        };
        let page = store.list_events(&query).await.unwrap();
        pages += 1;
        seen.extend(page.events.iter().map(|e| e.id));
        // A page loads its events' sources in one query: each event gets its own, in order.
        for event in &page.events {
            let alone = store.get_event(event.id).await.unwrap();
            assert_eq!(
                event.sources, alone.sources,
                "sources of event {}",
                event.id
            );
            assert_eq!(event.source_count, alone.sources.len() as u64);
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 26);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        26,
        "no event twice across pages"
    );
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");

    let by_alias = store
        .list_events(&EventQuery {
            company: Some("caldera labs".into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_alias.events.len(),
        1,
        "company filter resolves watchlist aliases"
    );
    let by_token = store
        .list_events(&EventQuery {
            token: Some("$tk3".into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_token.events.len(), 1);
    let by_score = store
        .list_events(&EventQuery {
            min_score: Some(0.7),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(by_score.events.iter().all(|e| e.score >= 0.7));
    assert_eq!(by_score.events.len(), 6);
    // `q`: words of the events' names and their sources' titles and texts, from the stores'
    // full-text indexes.
    let search = |q: &str| {
        let store = store.clone();
        let q = q.to_owned();
        async move {
            store
                .list_events(&EventQuery {
                    q: Some(q),
                    page_size: 50,
                    ..EventQuery::default()
                })
                .await
                .map(|page| page.events)
        }
    };
    let by_text = search("Project1 ").await.unwrap();
    assert_eq!(by_text.len(), 1, "q matches whole words");
    assert_eq!(by_text[0].project.as_deref(), Some("Project1"));
    assert_eq!(
        search("project1*").await.unwrap().len(),
        11,
        "a starred word is a prefix: Project1 and Project10 to 19"
    );
    assert_eq!(search("$tk3").await.unwrap().len(), 1, "q matches tokens");
    let both = search("caldera LAUNCH").await.unwrap();
    assert_eq!(both.len(), 1, "every word, any case");
    assert_eq!(both[0].token.as_deref(), Some("CAL"));
    assert!(
        search("caldera announces").await.unwrap().is_empty(),
        "every word must be found"
    );
    assert!(search("body").await.unwrap().len() >= 26, "q reads texts");
    assert!(matches!(search("%").await, Err(Error::Invalid(_))));
    // A token learnt from a later report is searchable.
    for (url, title, token) in [
        ("https://late.example/1", "Latecomer sets a date", None),
        (
            "https://late.example/2",
            "Latecomer opens its claim window on Friday at noon",
            Some("LTC"),
        ),
    ] {
        let item = classified(url, title, Some("Latecomer"), token, 0.9, true);
        store
            .record_classified(&item, &key("Latecomer"), None, WINDOW)
            .await
            .unwrap();
    }
    let late = search("ltc").await.unwrap();
    assert_eq!(late.len(), 1, "the token set by the merge is indexed");
    assert_eq!(late[0].source_count, 2);
    let future = store
        .list_events(&EventQuery {
            since: Some(Utc::now() + chrono::Duration::hours(1)),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(future.events.is_empty());
    let bad_token = store
        .list_events(&EventQuery {
            page_token: Some("zz".into()),
            page_size: 10,
            ..EventQuery::default()
        })
        .await;
    assert!(matches!(bad_token, Err(Error::Invalid(message)) if message.contains("page_token")));
}

/// An announcement titled `title` at `url`, from `source`, naming `project`.
pub(super) fn announcement_from(
    source: &str,
    url: &str,
    title: &str,
    project: Option<&str>,
) -> ClassifiedDocument {
    let mut item = classified(url, title, project, None, 0.9, true);
    item.document.source_name = source.into();
    item
}

pub(super) async fn near_duplicates_merge_across_sources_and_drop_within_one(
    store: Arc<dyn Store>,
) {
    let from = |source: &str, url: &str, project: Option<&str>| {
        announcement_from(source, url, "Fhenix sets TGE", project)
    };
    let original: u64 = 0x5a5a_1234_9876_f0f0;
    let near = original ^ 0b1011; // 3 bits apart
    let far = !original;
    let first = store
        .record_classified(
            &from("wire", "https://wire.example/1", Some("Fhenix")),
            &key("Fhenix"),
            Some(original),
            WINDOW,
        )
        .await
        .unwrap();
    let RecordOutcome::EventCreated(event_id) = first else {
        panic!("expected a new event, got {first:?}")
    };
    // Another source's near copy joins the event even though it names no project.
    assert_eq!(
        store
            .record_classified(
                &from("syndicator", "https://syn.example/a", None),
                "title:other",
                Some(near),
                WINDOW
            )
            .await
            .unwrap(),
        RecordOutcome::EventMerged(event_id)
    );
    // The same source republishing a near copy under a new URL is a duplicate.
    assert_eq!(
        store
            .record_classified(
                &from("wire", "https://wire.example/1-updated", Some("Fhenix")),
                &key("Fhenix"),
                Some(near ^ 1),
                WINDOW
            )
            .await
            .unwrap(),
        RecordOutcome::Duplicate
    );
    // A different text from a third source does not.
    let other = store
        .record_classified(
            &from("blog", "https://blog.example/z", None),
            "title:z",
            Some(far),
            WINDOW,
        )
        .await
        .unwrap();
    assert!(
        matches!(other, RecordOutcome::EventCreated(id) if id != event_id),
        "{other:?}"
    );
    let event = store.get_event(event_id).await.unwrap();
    assert_eq!(event.sources.len(), 2);
    assert_eq!(
        event.source_count, 2,
        "a near or exact duplicate is not counted"
    );
    // A template filled in for another project, from the same source, is its own event.
    let templated = store
        .record_classified(
            &from("wire", "https://wire.example/caldera", Some("Caldera")),
            &key("Caldera"),
            Some(original ^ 0b10),
            WINDOW,
        )
        .await
        .unwrap();
    assert!(
        matches!(templated, RecordOutcome::EventCreated(id) if id != event_id),
        "{templated:?}"
    );
}

/// A fingerprint stored before the merge window is no longer an original: a near copy of it
/// starts an event of its own (SQLite holds its band index in memory and drops old entries
/// only when it reads them in full; Postgres filters in its band lookup).
pub(super) async fn near_copies_of_documents_older_than_the_window_are_new(store: Arc<dyn Store>) {
    let from = |source: &str, url: &str| {
        announcement_from(source, url, "Curvance sets TGE", Some("Curvance"))
    };
    let original: u64 = 0x1234_5678_9abc_def0;
    let first = store
        .record_classified(
            &from("wire", "https://wire.example/old"),
            "title:one",
            Some(original),
            WINDOW,
        )
        .await
        .unwrap();
    let RecordOutcome::EventCreated(old_event) = first else {
        panic!("expected a new event, got {first:?}")
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A 10 ms window: the original is outside it.
    let copy = store
        .record_classified(
            &from("syndicator", "https://syn.example/new"),
            "title:two",
            Some(original ^ 0b11),
            Duration::from_millis(10),
        )
        .await
        .unwrap();
    assert!(
        matches!(copy, RecordOutcome::EventCreated(id) if id != old_event),
        "{copy:?}"
    );
    // Within a window that covers both, a third copy joins the older one's event: a narrow
    // window once does not hide a document from later lookups with a wider one.
    let again = store
        .record_classified(
            &from("blog", "https://blog.example/again"),
            "title:three",
            Some(original ^ 0b1),
            WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(again, RecordOutcome::EventMerged(old_event));
}

/// A batch of 50 announcements, then a batch of 50 near copies of them from another source:
/// each copy finds its own original, whichever band carries it.
pub(super) async fn near_copies_in_a_large_batch_find_their_originals(store: Arc<dyn Store>) {
    const COUNT: usize = 50;
    // Well-spread fingerprints (SplitMix64), so the originals share no band by accident.
    let fingerprint = |index: usize| -> u64 {
        let mut z = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let projects: Vec<String> = (0..COUNT).map(|index| format!("Project{index}")).collect();
    let keys: Vec<String> = projects.iter().map(|project| key(project)).collect();
    let originals: Vec<_> = (0..COUNT)
        .map(|index| {
            classified(
                &format!("https://wire.example/bulk-{index}"),
                &format!("{} sets TGE", projects[index]),
                Some(&projects[index]),
                None,
                0.9,
                true,
            )
        })
        .collect();
    let batch: Vec<ToRecord<'_>> = (0..COUNT)
        .map(|index| ToRecord {
            item: &originals[index],
            merge_key: &keys[index],
            simhash: Some(fingerprint(index)),
        })
        .collect();
    let created = store.record_classified_batch(&batch, WINDOW).await.unwrap();
    let events: Vec<i64> = created
        .iter()
        .map(|outcome| match outcome {
            RecordOutcome::EventCreated(id) => *id,
            other => panic!("expected a new event, got {other:?}"),
        })
        .collect();
    let copies: Vec<_> = (0..COUNT)
        .map(|index| {
            let mut item = classified(
                &format!("https://syn.example/bulk-{index}"),
                "syndicated",
                None,
                None,
                0.9,
                true,
            );
            item.document.source_name = "syndicator".into();
            item
        })
        .collect();
    let titles: Vec<String> = (0..COUNT)
        .map(|index| format!("title:bulk-{index}"))
        .collect();
    // Listed in reverse, so a copy's slot differs from its original's.
    let batch: Vec<ToRecord<'_>> = (0..COUNT)
        .rev()
        .map(|index| ToRecord {
            item: &copies[index],
            merge_key: &titles[index],
            simhash: Some(fingerprint(index) ^ 0b1001_0001), // 3 bits apart
        })
        .collect();
    let merged = store.record_classified_batch(&batch, WINDOW).await.unwrap();
    for (position, outcome) in merged.iter().enumerate() {
        let index = COUNT - 1 - position;
        assert_eq!(
            *outcome,
            RecordOutcome::EventMerged(events[index]),
            "the copy of original {index} joins its event"
        );
    }
}
