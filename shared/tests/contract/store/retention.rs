//! Retention: documents no event lists and fingerprints older than the cutoff go, a batch at
//! a time; events keep their documents; the newest fingerprint stays.

use swarm_shared::domain::RecordOutcome;

use super::*;

pub(super) async fn retention_deletes_old_rows_in_batches_and_keeps_events(store: Arc<dyn Store>) {
    let announcement = classified(
        "https://wire.example/fhenix-tge",
        "Fhenix sets TGE",
        Some("Fhenix"),
        Some("FHE"),
        0.9,
        true,
    );
    let created = store
        .record_classified(&announcement, &key("Fhenix"), Some(0x0f0f_0f0f), WINDOW)
        .await
        .unwrap();
    let RecordOutcome::EventCreated(event) = created else {
        panic!("expected a new event, got {created:?}");
    };
    // Distinct times: the newest fingerprint (by time) is never deleted.
    tokio::time::sleep(Duration::from_millis(3)).await;
    for (index, fingerprint) in [0x1111_2222_u64, 0x3333_4444, 0x5555_6666]
        .iter()
        .enumerate()
    {
        let other = classified(
            &format!("https://wire.example/market-{index}"),
            &format!("Market wrap {index}"),
            None,
            None,
            0.05,
            false,
        );
        store
            .record_classified(
                &other,
                &format!("title:wrap-{index}"),
                Some(*fingerprint),
                WINDOW,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(store.count_documents().await.unwrap(), 4);
    // Nothing is older than an hour ago.
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(store.prune_documents(hour_ago, 10).await.unwrap(), 0);
    assert_eq!(store.prune_fingerprints(hour_ago, 10).await.unwrap(), 0);
    // Everything is older than a second from now: a batch of two, then the last one the
    // event does not list, then none.
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.prune_documents(later, 2).await.unwrap(), 2);
    assert_eq!(store.prune_documents(later, 2).await.unwrap(), 1);
    assert_eq!(store.prune_documents(later, 2).await.unwrap(), 0);
    assert_eq!(store.count_documents().await.unwrap(), 1);
    let kept = store.get_event(event).await.unwrap();
    assert_eq!(kept.sources.len(), 1, "{kept:?}");
    assert_eq!(kept.sources[0].url, "https://wire.example/fhenix-tge");
    // Fingerprints: all but the newest, in batches.
    assert_eq!(store.prune_fingerprints(later, 2).await.unwrap(), 2);
    assert_eq!(store.prune_fingerprints(later, 2).await.unwrap(), 1);
    assert_eq!(store.prune_fingerprints(later, 2).await.unwrap(), 0);
}

/// Documents an event listed before recording marked them get the mark from the migration,
/// so retention's index of deletable documents leaves them out; the others stay in it.
#[tokio::test]
async fn documents_listed_before_the_mark_existed_get_it() {
    use swarm_shared::ports::migrations;

    const OLDER_ROWS: [&str; 4] = [
        "INSERT INTO documents (id, source_id, source_name, url, title, text, published_at, \
         fetched_at, stored_at) VALUES ('doc-listed', 1, 'wire', 'https://old.example/1', \
         'Oldhaven confirms its TGE', 'The Oldhaven claim portal opens on Monday.', NULL, 1, 1)",
        "INSERT INTO documents (id, source_id, source_name, url, title, text, published_at, \
         fetched_at, stored_at) VALUES ('doc-other', 1, 'wire', 'https://old.example/2', \
         'Market wrap', 'Prices moved little.', NULL, 1, 2)",
        "INSERT INTO tge_events (id, project, project_key, token, score, event_date, first_seen, \
         last_seen, evidence, source_count) VALUES (41, 'Oldhaven', 'oldhaven', 'OLDH', 0.9, \
         NULL, 1, 1, '[]', 1)",
        "INSERT INTO event_sources (event_id, document_id, added_at) VALUES (41, 'doc-listed', 1)",
    ];
    const MARKS: &str = "SELECT id, in_event FROM documents ORDER BY id";
    let expected = vec![
        ("doc-listed".to_owned(), true),
        ("doc-other".to_owned(), false),
    ];

    /// What retention deletes of the older rows: the document no event lists.
    async fn prunes_the_unlisted_one(store: &dyn Store) {
        assert_eq!(store.prune_documents(Utc::now(), 10).await.unwrap(), 1);
        assert_eq!(store.count_documents().await.unwrap(), 1);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.sqlite");
    let pool = super::older_sqlite(&path, "documents in events", &OLDER_ROWS).await;
    migrations::sqlite()
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let marks: Vec<(String, bool)> = sqlx::query_as(MARKS).fetch_all(&pool).await.unwrap();
    assert_eq!(marks, expected, "SQLite");
    pool.close().await;
    prunes_the_unlisted_one(&SqliteStore::open(&path).await.unwrap()).await;

    let (url, pool) = super::older_postgres("documents in events", &OLDER_ROWS).await;
    migrations::postgres()
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let marks: Vec<(String, bool)> = sqlx::query_as(MARKS).fetch_all(&pool).await.unwrap();
    assert_eq!(marks, expected, "Postgres");
    pool.close().await;
    prunes_the_unlisted_one(&PgStore::connect(&url).await.unwrap()).await;
}
