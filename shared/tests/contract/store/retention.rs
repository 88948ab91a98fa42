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
