//! The SQLite store's own behaviour: its band index, its WAL checkpoints, its writer's cache.

use super::*;
use crate::domain::MemoryEntry;
use crate::ports::Store;

fn announcement(url: &str, source: &str) -> crate::domain::ClassifiedDocument {
    let title = format!("Curvance sets its TGE ({url})");
    let text = format!("{title} body");
    crate::domain::ClassifiedDocument {
        document: crate::domain::Document {
            source_kind: None,
            facts: Default::default(),
            id: crate::domain::document_id(url, &title, &text),
            source_id: 1,
            source_name: source.into(),
            source_tier: 1,
            url: url.into(),
            title,
            text,
            published_at: None,
            fetched_at: chrono::Utc::now(),
        },
        detection: crate::domain::Detection {
            join_only: false,
            score: 0.9,
            is_tge: true,
            project: None,
            token: None,
            event_date: None,
            evidence: vec![],
        },
    }
}

/// Records the announcement at `url` from `source` under merge key `key`, with `simhash`,
/// in a one-hour window.
async fn record(
    store: &SqliteStore,
    url: &str,
    source: &str,
    key: &str,
    simhash: u64,
) -> crate::domain::RecordOutcome {
    let window = Duration::from_secs(3600);
    store
        .record_classified(&announcement(url, source), key, Some(simhash), window)
        .await
        .unwrap()
}

/// Two stores on one file stand for two processes sharing it: each one's band index
/// catches up with what the other recorded, inside its own recording transaction.
#[tokio::test]
async fn the_band_index_sees_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let one = SqliteStore::open(&path).await.unwrap();
    let two = SqliteStore::open(&path).await.unwrap();
    let original: u64 = 0x0123_4567_89ab_cdef;
    // Each store records first, so that both indexes are built before the other writes.
    let crate::domain::RecordOutcome::EventCreated(event) =
        record(&one, "https://a.example/1", "a", "title:a", original).await
    else {
        panic!("the first announcement creates an event")
    };
    let other = record(&two, "https://b.example/1", "b", "title:b", !original).await;
    assert!(matches!(other, crate::domain::RecordOutcome::EventCreated(id) if id != event));
    // A near copy through the second store finds the original the first one wrote.
    assert_eq!(
        record(
            &two,
            "https://c.example/1",
            "c",
            "title:c",
            original ^ 0b101
        )
        .await,
        crate::domain::RecordOutcome::EventMerged(event)
    );
    // And the first store sees what the second wrote since: a copy from source `c` again
    // is a same-source duplicate of the copy.
    assert_eq!(
        record(
            &one,
            "https://c.example/2",
            "c",
            "title:c2",
            original ^ 0b100
        )
        .await,
        crate::domain::RecordOutcome::Duplicate
    );
    assert_eq!(one.band_index().last_rowid(), 3);
    one.close().await;
    two.close().await;
}

/// After rows disappear (here: a table emptied by another connection), the index is
/// rebuilt rather than trusted.
#[tokio::test]
async fn the_band_index_is_rebuilt_when_the_table_shrinks() {
    let store = SqliteStore::in_memory().await.unwrap();
    let original: u64 = 0x0f0f_0f0f_1234_5678;
    record(&store, "https://a.example/1", "a", "title:a", original).await;
    record(&store, "https://a.example/2", "a", "title:a", !original).await;
    // The second recording read the first one's fingerprint into the index.
    assert_eq!(store.band_index().len(), 5);
    assert_eq!(store.band_index().last_rowid(), 1);
    sqlx::query("DELETE FROM document_fingerprints")
        .execute(&store.writer)
        .await
        .unwrap();
    // A near copy finds nothing to join now.
    let copy = record(&store, "https://b.example/1", "b", "title:b", original ^ 1).await;
    assert!(
        matches!(copy, crate::domain::RecordOutcome::EventCreated(_)),
        "{copy:?}"
    );
    assert!(store.band_index().is_empty(), "the stale entries are gone");
    // The copy took the emptied table's first rowid again; the next recording reads it.
    let again = record(&store, "https://b.example/2", "b", "title:b2", original ^ 3).await;
    assert_eq!(again, crate::domain::RecordOutcome::Duplicate);
    assert_eq!(store.band_index().len(), 5);
    store.close().await;
}

/// The writer never checkpoints (`wal_autocheckpoint = 0`): what reaches the database
/// file, well under the 1,000 pages an automatic checkpoint would wait for, got there
/// through the background task.
#[tokio::test]
async fn the_background_task_checkpoints_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    // The schema first, so that only the write below is left in the WAL.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&store.pool)
        .await
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let now = chrono::Utc::now();
    let entries: Vec<MemoryEntry> = (0..400)
        .map(|index| MemoryEntry {
            namespace: "checkpoint".into(),
            key: format!("key-{index}"),
            value: serde_json::json!({ "padding": "x".repeat(400) }),
            version: 1,
            written_by: "test".into(),
            updated_at: now,
            expires_at: None,
        })
        .collect();
    store.write_memory(&entries, &[]).await.unwrap();
    let wal = dir.path().join("store.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 100_000,
        "the write went to the WAL"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = std::fs::metadata(&path).unwrap().len();
        if after > before + 100_000 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database file did not grow within 10 s ({before} -> {after} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
}

/// Under a writer that never pauses, passive checkpoints alone never let SQLite start the
/// WAL over; past the reset length the WAL is truncated, and nothing written is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wal_is_reset_under_a_busy_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let wal = dir.path().join("store.sqlite-wal");
    sqlx::query("CREATE TABLE wal_load (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(&store.writer)
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let (writer, stop) = (store.writer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rows: i64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.unwrap();
                for _ in 0..16 {
                    // Keys spread over the table, so each transaction dirties many pages.
                    let id = (rows * 7_919) % 1_000_003;
                    sqlx::query("INSERT OR REPLACE INTO wal_load (id, body) VALUES (?, ?)")
                        .bind(id)
                        .bind(vec![rows as u8; 2_000])
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    rows += 1;
                }
                tx.commit().await.unwrap();
            }
            rows
        })
    };
    let reset_frames = 512;
    let mut resets = 0;
    while resets < 5 {
        let round = checkpoint_once(&store.pool, &store.writer, reset_frames)
            .await
            .unwrap();
        if round.reset {
            resets += 1;
        }
        assert!(
            round.wal_frames < 50_000,
            "the WAL reached {} frames with {resets} resets",
            round.wal_frames
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rows = writing.await.unwrap();
    // With the writer stopped, a reset leaves nothing in the WAL file.
    let last = checkpoint_once(&store.pool, &store.writer, 0)
        .await
        .unwrap();
    assert!(last.reset, "the last reset was not blocked");
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "the WAL truncated"
    );
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wal_load")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(stored, rows.min(1_000_003), "every row written is there");
    store.close().await;
}

/// The writer connection has its larger page cache; readers keep SQLite's default.
#[tokio::test]
async fn the_writer_has_its_own_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.sqlite"))
        .await
        .unwrap();
    let writer: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&store.writer)
        .await
        .unwrap();
    let reader: i64 = sqlx::query_scalar("PRAGMA cache_size")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(writer.to_string(), WRITER_CACHE_SIZE);
    assert_eq!(reader, -2000, "SQLite's default");
    store.close().await;
}

/// Retention reads only documents no event lists: recording marks the documents it links to
/// an event, and the retention statement walks the index of the unmarked ones, so its cost
/// does not grow with the documents events keep for ever.
#[tokio::test]
async fn retention_walks_only_the_documents_no_event_lists() {
    let store = SqliteStore::in_memory().await.unwrap();
    record(
        &store,
        "https://a.example/1",
        "a",
        "title:a",
        0x0f0f_0f0f_1234_5678,
    )
    .await;
    let mut wrap = announcement("https://b.example/2", "b");
    wrap.detection.is_tge = false;
    wrap.detection.score = 0.05;
    store
        .record_classified(
            &wrap,
            "title:b",
            Some(0x7777_0000_1111_2222),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    let marks: Vec<(String, bool)> =
        sqlx::query_as("SELECT url, in_event FROM documents ORDER BY url")
            .fetch_all(&store.writer)
            .await
            .unwrap();
    assert_eq!(
        marks,
        [
            ("https://a.example/1".to_owned(), true),
            ("https://b.example/2".to_owned(), false)
        ]
    );
    let explained: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        crate::ports::sql::retention::PRUNE_DOCUMENTS
    )))
    .bind(0_i64)
    .bind(10_i64)
    .fetch_all(&store.writer)
    .await
    .unwrap();
    let details: Vec<&str> = explained.iter().map(|row| row.3.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|step| step.contains("documents_unlisted_by_stored_at")),
        "{details:#?}"
    );
    store.close().await;
}
