//! Store contract: sources, watchlist, idempotent recording of classified documents with event
//! merging, event queries with cursor pagination, API keys, snapshots, one-time markers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use swarm_shared::Error;
use swarm_shared::domain::{
    ClassifiedDocument, CompanyInput, Detection, Document, Evidence, FetchReport, FetchStatus,
    Priority, Selectors, SourceInput, SourceKind, document_id,
};
use swarm_shared::ports::Store;
use swarm_shared::ports::postgres::PgStore;
use swarm_shared::ports::sqlite::SqliteStore;

mod alerts;
mod batches;
mod events;
mod markets;
mod retention;
mod search;
mod state;
mod workflow;

use alerts::*;
use batches::*;
use events::*;
use markets::*;
use retention::*;
use search::*;
use state::*;
use workflow::*;

const WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

fn source(name: &str) -> SourceInput {
    SourceInput {
        provenance: None,
        name: name.into(),
        kind: SourceKind::Rss,
        url: format!("https://{name}.example/feed"),
        interval: Duration::from_secs(60),
        selectors: None,
        exchange: None,
        feed: None,
        json: None,
        channel: None,
        query: None,
        account: None,
        tier: 1,
        enabled: true,
    }
}

fn company(name: &str, aliases: &[&str]) -> CompanyInput {
    CompanyInput {
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        tickers: vec!["ABC".into()],
        priority: Priority::High,
        status: "pre_token".into(),
        exclusions: vec![],
    }
}

fn classified(
    url: &str,
    title: &str,
    project: Option<&str>,
    token: Option<&str>,
    score: f64,
    is_tge: bool,
) -> ClassifiedDocument {
    let text = format!("{title} body");
    ClassifiedDocument {
        document: Document {
            source_kind: None,
            facts: Default::default(),
            id: document_id(url, title, &text),
            source_id: 1,
            source_name: "feed".into(),
            source_tier: 1,
            url: url.into(),
            title: title.into(),
            text,
            published_at: Some(Utc::now()),
            fetched_at: Utc::now(),
        },
        detection: Detection {
            join_only: false,
            score,
            is_tge,
            project: project.map(str::to_owned),
            token: token.map(str::to_owned),
            event_date: None,
            evidence: vec![Evidence {
                feature: "phrase:strong:tge".into(),
                snippet: title.into(),
                weight: 2.6,
            }],
        },
    }
}

fn key(project: &str) -> String {
    swarm_shared::dedup::key::project_key_of(project)
}

async fn sources(store: Arc<dyn Store>) {
    let created = store.create_source(&source("alpha")).await.unwrap();
    assert_eq!(created.name, "alpha");
    assert!(created.last_status.is_none());
    assert!(matches!(
        store.create_source(&source("alpha")).await,
        Err(Error::Conflict(_))
    ));
    let mut html = source("page");
    html.kind = SourceKind::Html;
    assert!(
        matches!(store.create_source(&html).await, Err(Error::Invalid(message)) if message.contains("selectors"))
    );
    html.selectors = Some(Selectors {
        item: "article".into(),
        ..Selectors::default()
    });
    let page = store.create_source(&html).await.unwrap();
    assert_eq!(page.selectors.as_ref().unwrap().item, "article");

    let report = FetchReport {
        at: Utc::now(),
        status: FetchStatus::Error,
        error: Some("cannot connect to alpha.example".into()),
        items: 0,
        etag: None,
        last_modified: None,
        content_hash: None,
        next_interval: Some(Duration::from_secs(240)),
    };
    store.record_fetch(created.id, &report).await.unwrap();
    store.record_fetch(created.id, &report).await.unwrap();
    let failed = store.get_source(created.id).await.unwrap();
    assert_eq!(failed.last_status, Some(FetchStatus::Error));
    assert_eq!(failed.consecutive_failures, 2);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("cannot connect to alpha.example")
    );
    let ok = FetchReport {
        status: FetchStatus::Ok,
        error: None,
        items: 7,
        etag: Some("\"v1\"".into()),
        last_modified: Some("Mon, 02 Mar 2026 10:00:00 GMT".into()),
        content_hash: Some("h1".into()),
        next_interval: None,
        ..report
    };
    store.record_fetch(created.id, &ok).await.unwrap();
    let healthy = store.get_source(created.id).await.unwrap();
    assert_eq!(healthy.consecutive_failures, 0);
    assert_eq!(healthy.last_item_count, 7);
    assert_eq!(healthy.etag.as_deref(), Some("\"v1\""));
    assert_eq!(healthy.content_hash.as_deref(), Some("h1"));
    assert_eq!(
        healthy.effective_interval,
        Some(Duration::from_secs(240)),
        "no new interval keeps the last"
    );

    let mut changed = source("alpha-renamed");
    changed.interval = Duration::from_secs(120);
    let updated = store.update_source(created.id, &changed).await.unwrap();
    assert_eq!(updated.interval, Duration::from_secs(120));
    assert_eq!(updated.last_item_count, 7, "health survives an update");
    assert!(
        updated.etag.is_none(),
        "validators reset when the url changes"
    );
    assert!(updated.content_hash.is_none());
    assert!(
        updated.effective_interval.is_none(),
        "a new definition restarts the cadence"
    );
    assert!(matches!(
        store.update_source(999, &changed).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.list_sources().await.unwrap().len(), 2);
    store.delete_source(created.id).await.unwrap();
    assert!(matches!(
        store.get_source(created.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_source(created.id).await,
        Err(Error::NotFound { .. })
    ));
}

async fn companies(store: Arc<dyn Store>) {
    let created = store
        .create_company(&company("Fhenix", &["Fhenix Protocol"]))
        .await
        .unwrap();
    assert_eq!(created.aliases, ["Fhenix Protocol"]);
    assert!(matches!(
        store.create_company(&company("fhenix", &[])).await,
        Err(Error::Conflict(_))
    ));
    let mut bad = company("Bad", &[]);
    bad.tickers = vec!["$$$".into()];
    assert!(
        matches!(store.create_company(&bad).await, Err(Error::Invalid(message)) if message.contains("tickers[0]"))
    );
    let updated = store
        .update_company(created.id, &company("Fhenix", &["Fhenix Labs"]))
        .await
        .unwrap();
    assert_eq!(updated.aliases, ["Fhenix Labs"]);
    assert_eq!(store.list_companies().await.unwrap().len(), 1);
    store.delete_company(created.id).await.unwrap();
    assert!(store.list_companies().await.unwrap().is_empty());
}

async fn suite(make: impl AsyncFn() -> Arc<dyn Store>) {
    supervisor_actions_newest_first_with_filters(make().await).await;
    near_duplicates_merge_across_sources_and_drop_within_one(make().await).await;
    near_copies_in_a_large_batch_find_their_originals(make().await).await;
    near_copies_of_documents_older_than_the_window_are_new(make().await).await;
    a_batch_is_recorded_in_order_in_one_transaction(make().await).await;
    feedback_is_kept_in_order(make().await).await;
    concurrent_writers_merge_into_one_event(make().await).await;
    overlapping_batches_store_each_document_once(make().await).await;
    desired_state_generations(make().await).await;
    memory_entries(make().await).await;
    sources(make().await).await;
    companies(make().await).await;
    recording_is_idempotent_and_merges(make().await).await;
    event_queries_and_pagination(make().await).await;
    event_filters_read_indexes(make().await).await;
    common_and_rare_searches_page_alike(make().await).await;
    a_word_most_events_hold_is_common_in_a_small_store(make().await).await;
    an_event_is_searched_by_its_first_twenty_sources(make().await).await;
    keys_snapshots_markers(make().await).await;
    alerts_are_owed_once_and_leased(make().await).await;
    sources_going_down_and_back_are_owed_once(make().await).await;
    analysts_move_events_through_the_workflow(make().await).await;
    primary_sources_keep_their_settings(make().await).await;
    market_lists_tell_new_symbols_from_known_ones(make().await).await;
    listed_tokens_are_first_reads_and_old_sightings(make().await).await;
    retention_deletes_old_rows_in_batches_and_keeps_events(make().await).await;
}

#[tokio::test]
async fn sqlite_in_memory_store_contract() {
    suite(async || -> Arc<dyn Store> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        store
    })
    .await;
}

#[tokio::test]
async fn sqlite_file_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicU32::new(0);
    let base = dir.path().to_owned();
    suite(async || -> Arc<dyn Store> {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&base.join(format!("nested/dir/{n}.sqlite")))
                .await
                .unwrap(),
        );
        store
    })
    .await;
}

#[tokio::test]
async fn postgres_store_contract() {
    let admin = crate::database_url();
    suite(async || -> Arc<dyn Store> {
        let url = crate::fresh_postgres_database(&admin).await;
        let store: Arc<dyn Store> = Arc::new(PgStore::connect(&url).await.unwrap());
        store
    })
    .await;
}

/// A SQLite file at `path` migrated up to the migration named `description` (not run), with
/// `rows` written: a store as an older release left it.
pub async fn older_sqlite(
    path: &std::path::Path,
    description: &str,
    rows: &[&'static str],
) -> sqlx::SqlitePool {
    use swarm_shared::ports::migrations;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    migrations_before(migrations::sqlite().await.unwrap(), description)
        .run(&pool)
        .await
        .unwrap();
    for statement in rows {
        sqlx::query(*statement).execute(&pool).await.unwrap();
    }
    pool
}

/// [`older_sqlite`] on a fresh Postgres database: its URL and pool.
pub async fn older_postgres(description: &str, rows: &[&'static str]) -> (String, sqlx::PgPool) {
    use swarm_shared::ports::migrations;
    let url = crate::fresh_postgres_database(&crate::database_url()).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    migrations_before(migrations::postgres().await.unwrap(), description)
        .run(&pool)
        .await
        .unwrap();
    for statement in rows {
        sqlx::query(*statement).execute(&pool).await.unwrap();
    }
    (url, pool)
}

/// `migrator` with only the migrations before the one whose description holds `description`
/// (the store's open then runs that one and those after it, on what the test wrote).
pub fn migrations_before(
    mut migrator: sqlx::migrate::Migrator,
    description: &str,
) -> sqlx::migrate::Migrator {
    let at = migrator
        .migrations
        .iter()
        .position(|migration| migration.description.contains(description))
        .unwrap_or_else(|| panic!("no migration named `{description}`"));
    let before: Vec<_> = migrator.migrations[..at].to_vec();
    migrator.migrations = std::borrow::Cow::Owned(before);
    migrator
}
