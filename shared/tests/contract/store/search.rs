//! Event pages read indexes: the plan of every filter, and searches (`q`) that match few
//! events and thousands page alike.

use chrono::Utc;
use std::sync::Arc;
use swarm_shared::domain::{ClassifiedDocument, EventQuery};
use swarm_shared::ports::{Store, ToRecord};

use super::*;

/// Every filter of an event page reads an index: on SQLite no step scans `tge_events` whole
/// (`SCAN e` without an index); on Postgres the plan is returned (its planner scans a table
/// this small whole whatever its indexes: `scripts/bench.sh` shows the plans at scale).
pub(super) async fn event_filters_read_indexes(store: Arc<dyn Store>) {
    let item = classified(
        "https://news.example/plan",
        "Planned announces TGE",
        Some("Planned"),
        Some("PLN"),
        0.9,
        true,
    );
    store
        .record_classified(&item, &key("Planned"), None, WINDOW)
        .await
        .unwrap();
    let page = |edit: &dyn Fn(&mut EventQuery)| {
        let mut query = EventQuery {
            page_size: 50,
            ..EventQuery::default()
        };
        edit(&mut query);
        query
    };
    let queries = [
        ("first page", page(&|_| {})),
        ("company", page(&|q| q.company = Some("Planned".into()))),
        ("token", page(&|q| q.token = Some("$pln".into()))),
        ("min_score", page(&|q| q.min_score = Some(0.8))),
        ("since", page(&|q| q.since = Some(Utc::now()))),
        ("q", page(&|q| q.q = Some("planned tge".into()))),
        (
            "status",
            page(&|q| q.statuses = vec![swarm_shared::domain::EventStatus::Confirmed]),
        ),
        (
            "kind",
            page(&|q| q.kinds = vec![swarm_shared::domain::EventKind::FirstListing]),
        ),
        (
            "date_precision",
            page(&|q| q.date_precisions = vec![swarm_shared::domain::DatePrecision::Day]),
        ),
        (
            "next page",
            page(&|q| q.page_token = Some(encode_test_cursor())),
        ),
    ];
    for (name, query) in queries {
        let plan = store.explain_events(&query).await.unwrap();
        assert!(!plan.is_empty(), "{name}: no plan");
        let sqlite = plan.iter().any(|line| {
            line.trim_start().starts_with("SCAN") || line.trim_start().starts_with("SEARCH")
        });
        if sqlite {
            assert!(
                !plan.iter().any(|line| line.trim() == "SCAN e"),
                "{name}: a full scan of the events:\n{}",
                plan.join("\n")
            );
        }
        // The plan is of the statement that runs: the same query answers.
        store.list_events(&query).await.unwrap();
    }
}

/// A cursor as the store writes them, far in the future: the next page is the first.
fn encode_test_cursor() -> String {
    swarm_shared::ports::sql::encode_cursor(i64::MAX / 2, 1)
}

/// Records `events` announcements of projects `<name><index>`, each its own event titled
/// "<project> airdrop", every `every`th also saying `word`.
async fn record_airdrops(store: &dyn Store, name: &str, events: usize, every: usize, word: &str) {
    let made: Vec<(ClassifiedDocument, String)> = (0..events)
        .map(|index| {
            let project = format!("{name}{index}");
            let title = if index % every == 0 {
                format!("{project} airdrop is {word}")
            } else {
                format!("{project} airdrop")
            };
            let item = classified(
                &format!("https://{}.example/{index}", name.to_lowercase()),
                &title,
                Some(&project),
                None,
                0.9,
                true,
            );
            (item, key(&project))
        })
        .collect();
    for chunk in made.chunks(500) {
        let batch: Vec<ToRecord<'_>> = chunk
            .iter()
            .map(|(item, key)| ToRecord {
                item,
                merge_key: key,
                simhash: None,
            })
            .collect();
        store.record_classified_batch(&batch, WINDOW).await.unwrap();
    }
}

/// A search that matches thousands of events (SQLite then walks the events newest first and
/// asks its full-text index of each, rather than sorting every match) pages exactly as the
/// same events without a search, and one that matches few of them reads the index.
pub(super) async fn common_and_rare_searches_page_alike(store: Arc<dyn Store>) {
    let events = swarm_shared::ports::sql::COMMON_SEARCH as usize + 100;
    record_airdrops(store.as_ref(), "Walker", events, 10, "rare").await;
    let pages = |q: Option<&str>| {
        let store = store.clone();
        let q = q.map(str::to_owned);
        async move {
            let mut ids = Vec::new();
            let mut token = None;
            for _ in 0..3 {
                let query = EventQuery {
                    q: q.clone(),
                    page_size: 200,
                    page_token: token.clone(),
                    ..EventQuery::default()
                };
                let page = store.list_events(&query).await.unwrap();
                ids.extend(page.events.iter().map(|event| event.id));
                token = page.next_page_token;
                if token.is_none() {
                    break;
                }
            }
            ids
        }
    };
    let all = pages(None).await;
    assert_eq!(all.len(), 600);
    assert_eq!(pages(Some("AIRDROP")).await, all, "every event matches");
    assert_eq!(
        pages(Some("walker*")).await,
        all,
        "every event matches a prefix"
    );
    let rare = pages(Some("airdrop rare")).await;
    assert_eq!(rare.len(), events.div_ceil(10), "every tenth event says it");
    assert!(
        rare.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first"
    );
    let common_plan = store
        .explain_events(&EventQuery {
            q: Some("airdrop".into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap()
        .join("\n");
    if common_plan.contains("SCAN") {
        assert!(
            common_plan.contains("tge_events_by_first_seen")
                && !common_plan.contains("TEMP B-TREE"),
            "a common word walks the events newest first:\n{common_plan}"
        );
    }
}

/// In a small store a word most events hold is common too: SQLite walks the events newest
/// first rather than looking each match up and sorting them (which grew with the events: in
/// the soak, 3.1 ms at 623 events against 0.7 ms walking), and a rarer one still reads its
/// matches. Both answer as the same events without a search.
pub(super) async fn a_word_most_events_hold_is_common_in_a_small_store(store: Arc<dyn Store>) {
    let events = 120;
    record_airdrops(store.as_ref(), "Stroller", events, 12, "scarce").await;
    let query = |q: Option<&str>| EventQuery {
        q: q.map(str::to_owned),
        page_size: 50,
        ..EventQuery::default()
    };
    let ids = |page: swarm_shared::domain::EventPage| -> Vec<i64> {
        page.events.iter().map(|event| event.id).collect()
    };
    let newest = ids(store.list_events(&query(None)).await.unwrap());
    assert_eq!(newest.len(), 50);
    let common = ids(store.list_events(&query(Some("airdrop"))).await.unwrap());
    assert_eq!(common, newest, "every event matches");
    let scarce = ids(store
        .list_events(&query(Some("airdrop scarce")))
        .await
        .unwrap());
    assert_eq!(scarce.len(), 10, "every twelfth event says it");
    assert!(
        scarce.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first"
    );

    let plan = |q: &'static str| {
        let store = store.clone();
        async move {
            store
                .explain_events(&query(Some(q)))
                .await
                .unwrap()
                .join("\n")
        }
    };
    let common_plan = plan("airdrop").await;
    let scarce_plan = plan("airdrop scarce").await;
    // Another filter makes the walk's length unknown: only 2,000 matches make it common.
    let narrowed_plan = store
        .explain_events(&EventQuery {
            min_score: Some(0.5),
            ..query(Some("airdrop"))
        })
        .await
        .unwrap()
        .join("\n");
    // SQLite's plans (Postgres' planner chooses for itself).
    if common_plan.contains("SCAN") || common_plan.contains("SEARCH") {
        assert!(
            common_plan.contains("tge_events_by_first_seen")
                && !common_plan.contains("TEMP B-TREE"),
            "120 of 120 events: walked newest first:\n{common_plan}"
        );
        assert!(
            scarce_plan.contains("TEMP B-TREE"),
            "10 of 120 events: looked up and sorted:\n{scarce_plan}"
        );
        assert!(
            narrowed_plan.contains("TEMP B-TREE"),
            "120 of 120 events and a score: looked up and sorted:\n{narrowed_plan}"
        );
    }
}

/// Rows of an event stored before the search index existed, written with `$N` SQL both
/// engines read.
const BEFORE_THE_INDEX: [&str; 3] = [
    "INSERT INTO documents (id, source_id, source_name, url, title, text, published_at, \
     fetched_at, stored_at) VALUES ('doc-old', 1, 'wire', 'https://old.example/1', \
     'Oldhaven confirms its TGE', 'The Oldhaven claim portal opens on Monday.', NULL, 1, 1)",
    "INSERT INTO tge_events (id, project, project_key, token, score, event_date, first_seen, \
     last_seen, evidence, source_count) VALUES (41, 'Oldhaven', 'oldhaven', 'OLDH', 0.9, NULL, \
     1, 1, '[]', 1)",
    "INSERT INTO event_sources (event_id, document_id, added_at) VALUES (41, 'doc-old', 1)",
];

/// Whether `store` finds the event of [`BEFORE_THE_INDEX`] by its name, its token and a word
/// of its source's text.
async fn finds_the_older_event(store: &dyn Store) {
    for q in ["oldhaven", "$oldh", "portal monday"] {
        let page = store
            .list_events(&EventQuery {
                q: Some(q.into()),
                page_size: 10,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        let ids: Vec<i64> = page.events.iter().map(|event| event.id).collect();
        assert_eq!(
            ids,
            [41],
            "q={q}: the migration indexes events stored before it"
        );
    }
}

/// An event's search covers its first 20 sources, by when they were added and then their
/// document ids, also when one batch carries it past the twentieth, and the same ones on both
/// stores; later sources are not searched.
pub(super) async fn an_event_is_searched_by_its_first_twenty_sources(store: Arc<dyn Store>) {
    // Each report names a word of its own: `zq<event><n>x`.
    let report = |event: &str, n: usize| {
        classified(
            &format!("https://twenty.example/{event}/{n}"),
            &format!("{event} airdrop zq{event}{n}x"),
            Some(event),
            None,
            0.9,
            true,
        )
    };
    let record = |items: Vec<ClassifiedDocument>, project: &'static str| {
        let store = store.clone();
        async move {
            let merge_key = key(project);
            let batch: Vec<ToRecord<'_>> = items
                .iter()
                .map(|item| ToRecord {
                    item,
                    merge_key: &merge_key,
                    simhash: None,
                })
                .collect();
            store.record_classified_batch(&batch, WINDOW).await.unwrap();
        }
    };
    // Tally: 25 reports in one batch; Crossy: 18, then 5 in a batch crossing the twentieth.
    let tally: Vec<ClassifiedDocument> = (0..25).map(|n| report("tally", n)).collect();
    let crossy: Vec<ClassifiedDocument> = (0..23).map(|n| report("crossy", n)).collect();
    record(tally.clone(), "tally").await;
    record(crossy[..18].to_vec(), "crossy").await;
    // A later millisecond: the second batch's sources come after the first's.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    record(crossy[18..].to_vec(), "crossy").await;
    // The first 20 by when they were added, then by document id.
    let first_twenty = |batches: &[&[ClassifiedDocument]]| -> Vec<usize> {
        let mut order: Vec<(usize, &str, usize)> = Vec::new();
        let mut n = 0;
        for (batch, items) in batches.iter().enumerate() {
            for item in items.iter() {
                order.push((batch, item.document.id.as_str(), n));
                n += 1;
            }
        }
        order.sort();
        let mut chosen: Vec<usize> = order.iter().take(20).map(|(_, _, n)| *n).collect();
        chosen.sort_unstable();
        chosen
    };
    let found = |event: &'static str, n: usize| {
        let store = store.clone();
        async move {
            let query = EventQuery {
                q: Some(format!("zq{event}{n}x")),
                page_size: 10,
                ..EventQuery::default()
            };
            !store.list_events(&query).await.unwrap().events.is_empty()
        }
    };
    for (event, expected) in [
        ("tally", first_twenty(&[&tally])),
        ("crossy", first_twenty(&[&crossy[..18], &crossy[18..]])),
    ] {
        let mut searched = Vec::new();
        for n in 0..25 {
            if found(event, n).await {
                searched.push(n);
            }
        }
        assert_eq!(searched, expected, "{event}: the reports it is found by");
    }
    assert!(
        (0..18).all(|n| first_twenty(&[&crossy[..18], &crossy[18..]]).contains(&n)),
        "the first batch's 18 all count"
    );
}

/// The migration that adds the search index fills it from the events already stored: the
/// migrations before it run, an event is written as they leave it, then the store opens
/// (running the rest).
#[tokio::test]
async fn events_stored_before_the_search_index_are_found() {
    use swarm_shared::ports::postgres::PgStore;
    use swarm_shared::ports::sqlite::SqliteStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.sqlite");
    crate::store::older_sqlite(&path, "event search", &BEFORE_THE_INDEX)
        .await
        .close()
        .await;
    let store = SqliteStore::open(&path).await.unwrap();
    finds_the_older_event(&store).await;

    let (url, pool) = crate::store::older_postgres("event search", &BEFORE_THE_INDEX).await;
    pool.close().await;
    let store = PgStore::connect(&url).await.unwrap();
    finds_the_older_event(&store).await;
}
