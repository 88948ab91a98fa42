//! `events`: `GET /api/v1/events` without the page cache, filter by filter, as the store grows
//! to `--events-docs` documents (default 1,000,000), on the SQLite file store and on Postgres.
//!
//! Each store is filled through the store's own batch write (`record_classified_batch`, the
//! path data quality takes) with a mix of 85 % other news and 15 % announcements naming one
//! of a growing set of projects (two reports of three share a project, so events hold 1.5
//! sources on average and make 10 % of the documents: 100,000 events at a million). Events are
//! then spread over 90 days of `first_seen` and one in ten is confirmed (SQL on the bench's
//! own connection: the store stamps events with the time they are written). Postgres is
//! `ANALYZE`d after each fill, as its autovacuum would; SQLite gets nothing the product does
//! not do itself.
//!
//! At 1 %, 10 % and 100 % of the documents, each filter is requested `REQUESTS` times in a row
//! over one keep-alive connection from the API router with `server.events_cache_ttl = 0s`
//! (what every request costs the store), page size 50, and its p50 and p99 are reported with
//! the plan the database chose (`Store::explain_events`). Baseline: a trivial axum endpoint
//! served in the same process, hit the same way in the same run. Also at each size: the
//! store's bytes on disk, and the bytes of the document tables per document and of the event
//! tables per event (each table with its indexes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use serde_json::{Value, json};
use swarm_shared::context::AgentContext;
use swarm_shared::domain::{ClassifiedDocument, Detection, EventQuery};
use swarm_shared::faults::FaultHooks;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::{Store, ToRecord};

use crate::{Options, mix, quantile_ms, round, wire_document};

/// Requests per filter and size.
const REQUESTS: usize = 200;
/// Documents per write batch while filling.
const FILL_BATCH: usize = 500;
/// Syllables of the made-up project names (20⁵ names before any repeats).
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "xe", "qua", "bel", "dor", "fen", "gal", "hir",
    "jun", "kor", "lum", "mar", "nex",
];
/// Words the texts are made of: a made-up vocabulary, drawn with a skew so some words are
/// common and most are rare, as in news.
const VOCABULARY: usize = 20_000;
/// What the announcements say, in turn.
const TEMPLATES: [&str; 6] = [
    "{name} announces its token generation event: ${token} goes live on {date}.",
    "Binance will list {name} (${token}) for spot trading on {date}.",
    "{name} opens the ${token} airdrop claim for early users on {date}.",
    "Bybit Launchpool: stake to farm {name} (${token}) from {date}.",
    "{name} sets ${token} public sale on {date}; pre-market trading opens first.",
    "{name} confirms ${token} TGE and first listing on OKX on {date}.",
];
/// The dates they give, in turn: to the day, the month, the quarter, or none.
const DATES: [Option<&str>; 4] = [
    Some("2027-03-14"),
    Some("March 2027"),
    Some("Q2 2027"),
    None,
];

/// A made-up name for project `p`, unique for each `p` under 20⁵.
fn name(p: usize) -> String {
    let mut rest = p;
    let mut name = String::new();
    for _ in 0..5 {
        name.push_str(SYLLABLES[rest % SYLLABLES.len()]);
        rest /= SYLLABLES.len();
        if rest == 0 && name.len() >= 6 {
            break;
        }
    }
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Project `p`'s ticker: the consonants of its name, at most five (several projects share
/// some, as real tickers do).
fn ticker(p: usize) -> String {
    let consonants: String = name(p)
        .to_uppercase()
        .chars()
        .filter(|c| !"AEIOU".contains(*c))
        .take(5)
        .collect();
    if consonants.len() >= 2 {
        consonants
    } else {
        format!("{consonants}X")
    }
}

/// `count` words of filler for document `seed`: common words often, rare words seldom.
fn filler(seed: u64, count: usize) -> String {
    let mut text = String::with_capacity(count * 8);
    for n in 0..count {
        let r = (mix(seed ^ (n as u64).wrapping_mul(0x1000_0001)) % 1_000_000) as f64 / 1e6;
        let word = ((r * r * r) * VOCABULARY as f64) as usize;
        if !text.is_empty() {
            text.push(' ');
        }
        // `th` ends no project name, so searching for a project finds only its reports.
        text.push_str(&name(word).to_lowercase());
        text.push_str("th");
    }
    text
}

/// Document `i` of the fill, its merge key, and whether it is an announcement.
fn document(i: usize) -> (ClassifiedDocument, String) {
    let slot = i % 20;
    let announcement = slot < 3;
    let seed = mix(i as u64);
    let (title, text, detection, key) = if announcement {
        let ordinal = (i / 20) * 3 + slot;
        let p = ordinal * 2 / 3;
        let (project, token) = (name(p), ticker(p));
        let date = DATES[p % DATES.len()];
        let title = TEMPLATES[p % TEMPLATES.len()]
            .replace("{name}", &project)
            .replace("{token}", &token)
            .replace("{date}", date.unwrap_or("a date to be announced"));
        let text = format!("{title} {}", filler(seed, 80));
        let detection = Detection {
            join_only: false,
            score: 0.5 + (seed % 500) as f64 / 1000.0,
            is_tge: true,
            project: Some(project.clone()),
            token: (ordinal % 3 != 1).then_some(token),
            event_date: date.map(str::to_owned),
            evidence: vec![],
        };
        (
            title,
            text,
            detection,
            swarm_shared::dedup::key::project_key_of(&project),
        )
    } else {
        let title = format!("Market wrap {i}: {}", filler(seed, 6));
        let text = format!("{title}. {}", filler(seed ^ 1, 90));
        let detection = Detection {
            join_only: false,
            score: (seed % 300) as f64 / 1000.0,
            is_tge: false,
            project: None,
            token: None,
            event_date: None,
            evidence: vec![],
        };
        (title, text, detection, format!("title:bench:{i}"))
    };
    let item = wire_document(format!("https://wire.example/{i}"), title, text, detection);
    (item, key)
}

/// Records documents `from..to`.
async fn fill(store: &dyn Store, from: usize, to: usize) {
    for start in (from..to).step_by(FILL_BATCH) {
        let made: Vec<(ClassifiedDocument, String)> = (start..(start + FILL_BATCH).min(to))
            .map(document)
            .collect();
        let batch: Vec<ToRecord<'_>> = made
            .iter()
            .map(|(item, key)| ToRecord {
                item,
                merge_key: key,
                simhash: None,
            })
            .collect();
        store
            .record_classified_batch(&batch, Duration::from_secs(365 * 24 * 3600))
            .await
            .expect("the bench store records");
    }
}

/// The bench's own connection to the store's database.
enum Raw {
    Sqlite(sqlx::SqlitePool, std::path::PathBuf),
    Postgres(sqlx::PgPool),
}

/// Spreads events `after..` over 90 days back and confirms one in ten, like an analyst's
/// store; on Postgres then `ANALYZE` (its autovacuum's job).
const SPREAD: &str = "UPDATE tge_events SET \
     first_seen = first_seen - ((id * 7919) % 7776000000), \
     last_seen = last_seen - ((id * 7919) % 7776000000), \
     status = CASE WHEN id % 10 = 0 THEN 'confirmed' ELSE status END \
     WHERE id > $1";

impl Raw {
    async fn settle(&self, after: i64) {
        match self {
            Raw::Sqlite(pool, _) => {
                sqlx::query(SPREAD).bind(after).execute(pool).await.unwrap();
            }
            Raw::Postgres(pool) => {
                sqlx::query(SPREAD).bind(after).execute(pool).await.unwrap();
                sqlx::query("ANALYZE").execute(pool).await.unwrap();
            }
        }
    }

    async fn max_event_id(&self) -> i64 {
        let sql = "SELECT COALESCE(MAX(id), 0) FROM tge_events";
        match self {
            Raw::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// The store's size on disk (the SQLite file with its WAL, Postgres's database), and the
    /// bytes of each table with its indexes (SQLite's `dbstat`, Postgres's
    /// `pg_total_relation_size`).
    async fn bytes(&self) -> (u64, Vec<(String, i64)>) {
        match self {
            Raw::Sqlite(pool, path) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(pool)
                    .await
                    .unwrap();
                let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
                let wal = path.with_extension("sqlite-wal");
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s \
                     JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                (size(path) + size(&wal), tables)
            }
            Raw::Postgres(pool) => {
                let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await
                    .unwrap();
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                (bytes.max(0) as u64, tables)
            }
        }
    }
}

/// Bytes of the tables of documents (with detections and fingerprints) and of events (with
/// their sources, search index and alert outbox), with their indexes.
fn split_bytes(tables: &[(String, i64)]) -> (i64, i64) {
    let mut documents = 0;
    let mut events = 0;
    for (table, bytes) in tables {
        if ["documents", "detections", "document_fingerprints"].contains(&table.as_str()) {
            documents += bytes;
        } else if ["tge_events", "event_sources", "outbox"].contains(&table.as_str())
            || table.starts_with("event_search")
        {
            events += bytes;
        }
    }
    (documents, events)
}

/// `REQUESTS` requests of `path` in a row over one connection, after five to warm up;
/// latencies sorted, and the first answer.
async fn requests(client: &reqwest::Client, url: &str) -> (Vec<Duration>, Value) {
    let mut first = Value::Null;
    for _ in 0..5 {
        let response = client.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        first = response.json().await.unwrap();
    }
    let mut latencies = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let sent = Instant::now();
        let response = client.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.bytes().await.unwrap();
        latencies.push(sent.elapsed());
    }
    latencies.sort_unstable();
    (latencies, first)
}

/// The filters measured: name, query string, and the same as a store query (for its plan).
fn filters(events: i64, first_page: &Value) -> Vec<(&'static str, String, EventQuery)> {
    // A project and a ticker of the middle of the store, and the cursor after the first page.
    let p = (events as usize / 2).max(1);
    let (project, token) = (name(p), ticker(p));
    let cursor = first_page["next_page_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let week_ago = (Utc::now() - chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let base = EventQuery {
        page_size: 50,
        ..EventQuery::default()
    };
    let with = |edit: &dyn Fn(&mut EventQuery)| {
        let mut query = base.clone();
        edit(&mut query);
        query
    };
    let mut filters = vec![("first page", "page_size=50".into(), base.clone())];
    if !cursor.is_empty() {
        filters.push((
            "next page",
            format!("page_size=50&page_token={cursor}"),
            with(&|q| q.page_token = Some(cursor.clone())),
        ));
    }
    filters.extend([
        (
            "company",
            format!("page_size=50&company={project}"),
            with(&|q| q.company = Some(project.clone())),
        ),
        (
            "token",
            format!("page_size=50&token=%24{token}"),
            with(&|q| q.token = Some(token.clone())),
        ),
        (
            "min_score 0.9",
            "page_size=50&min_score=0.9".into(),
            with(&|q| q.min_score = Some(0.9)),
        ),
        (
            "min_score 0.999",
            "page_size=50&min_score=0.999".into(),
            with(&|q| q.min_score = Some(0.999)),
        ),
        (
            "since a week ago",
            format!("page_size=50&since={week_ago}"),
            with(&|q| {
                q.since = Some(Utc::now() - chrono::Duration::days(7));
            }),
        ),
        (
            "q: a project",
            format!("page_size=50&q={project}"),
            with(&|q| q.q = Some(project.clone())),
        ),
        (
            "q: a common word",
            "page_size=50&q=airdrop".into(),
            with(&|q| q.q = Some("airdrop".into())),
        ),
        (
            "q: two words",
            "page_size=50&q=launchpool%20stake".into(),
            with(&|q| q.q = Some("launchpool stake".into())),
        ),
        (
            "status=confirmed",
            "page_size=50&status=confirmed".into(),
            with(&|q| q.statuses = vec![swarm_shared::domain::EventStatus::Confirmed]),
        ),
        (
            "kind=launchpool",
            "page_size=50&kind=launchpool".into(),
            with(&|q| q.kinds = vec![swarm_shared::domain::EventKind::Launchpool]),
        ),
        (
            "date_precision=quarter",
            "page_size=50&date_precision=quarter".into(),
            with(&|q| q.date_precisions = vec![swarm_shared::domain::DatePrecision::Quarter]),
        ),
        (
            "company and min_score",
            format!("page_size=50&company={project}&min_score=0.6"),
            with(&|q| {
                q.company = Some(project.clone());
                q.min_score = Some(0.6);
            }),
        ),
    ]);
    filters
}

/// One store at growing sizes.
async fn measure(store: Arc<dyn Store>, raw: Raw, name: &str, options: &Options) -> Value {
    // The bench's config (no rate limits: it measures the server), with the page cache off.
    let mut config = crate::bench_config(&std::env::temp_dir());
    config.server.events_cache_ttl = Duration::ZERO;
    let ctx = AgentContext {
        bus: Arc::new(EmbeddedBus::new(1024)),
        queue: Arc::new(EmbeddedQueue::new(Duration::from_secs(60))),
        store: store.clone(),
        registry: Arc::new(EmbeddedRegistry::new()),
        config: Arc::new(config),
        faults: FaultHooks::default(),
    };
    let router = swarm_queen::api::router(swarm_queen::api::AppState::new(ctx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api/v1/events", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let plain = Router::new().route(
        "/plain",
        get(|| async { axum::Json(json!({"status": "ok", "events": []})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_url = format!("http://{}/plain", listener.local_addr().unwrap());
    let plain_server = tokio::spawn(async move { axum::serve(listener, plain).await });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();

    let total = options.events_docs;
    let mut sizes = Vec::new();
    let mut filled = 0;
    let mut settled = 0;
    for docs in [total / 100, total / 10, total] {
        let started = Instant::now();
        fill(store.as_ref(), filled, docs).await;
        let fill_seconds = started.elapsed().as_secs_f64();
        filled = docs;
        raw.settle(settled).await;
        let events = raw.max_event_id().await;
        settled = events;
        let (bytes, tables) = raw.bytes().await;
        let (document_bytes, event_bytes) = split_bytes(&tables);
        eprintln!(
            "bench: events on {name}: {docs} documents, {events} events, filled in {fill_seconds:.1} s"
        );

        let (baseline, _) = requests(&client, &plain_url).await;
        let (_, first_page) = requests(&client, &format!("{api}?page_size=50")).await;
        let mut rows = Vec::new();
        let mut worst_p99 = 0.0f64;
        for (filter, query_string, query) in filters(events, &first_page) {
            let (latencies, answer) = requests(&client, &format!("{api}?{query_string}")).await;
            let p99 = quantile_ms(&latencies, 0.99);
            worst_p99 = worst_p99.max(p99);
            let plan = store.explain_events(&query).await.unwrap();
            rows.push(json!({
                "filter": filter,
                "path": format!("/api/v1/events?{query_string}"),
                "events_on_page": answer["events"].as_array().map_or(0, Vec::len),
                "p50_ms": round(quantile_ms(&latencies, 0.5)),
                "p99_ms": round(p99),
                "plan": plan,
            }));
        }
        sizes.push(json!({
            "documents": docs,
            "events": events,
            "fill_seconds": round(fill_seconds),
            "store_bytes": bytes,
            "store_bytes_per_document": round(bytes as f64 / docs as f64),
            "document_tables_bytes": document_bytes,
            "bytes_per_document": round(document_bytes as f64 / docs as f64),
            "event_tables_bytes": event_bytes,
            "bytes_per_event": round(event_bytes as f64 / events.max(1) as f64),
            "tables": tables.iter().map(|(table, bytes)| json!({"table": table, "bytes": bytes})).collect::<Vec<_>>(),
            "baseline": {"p50_ms": round(quantile_ms(&baseline, 0.5)), "p99_ms": round(quantile_ms(&baseline, 0.99))},
            "worst_p99_ms": round(worst_p99),
            "filters": rows,
        }));
    }
    server.abort();
    plain_server.abort();
    json!({"store": name, "sizes": sizes})
}

pub fn figure(options: &Options) -> Value {
    let runtime = crate::runtime();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let sqlite: Arc<dyn Store> = Arc::new(
            swarm_shared::ports::sqlite::SqliteStore::open(&path)
                .await
                .unwrap(),
        );
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let on_sqlite = measure(sqlite, Raw::Sqlite(pool, path), "sqlite", options).await;
        let database = swarm_tests::fresh_postgres_database("bench").await;
        let postgres: Arc<dyn Store> = Arc::new(
            swarm_shared::ports::postgres::PgStore::connect(&database)
                .await
                .unwrap(),
        );
        let pool = sqlx::PgPool::connect(&database).await.unwrap();
        let on_postgres = measure(postgres, Raw::Postgres(pool), "postgres", options).await;
        let top = |figure: &Value, key: &str| {
            figure["sizes"]
                .as_array()
                .and_then(|sizes| sizes.last())
                .map_or(f64::NAN, |size| size[key].as_f64().unwrap_or(f64::NAN))
        };
        let worst = top(&on_sqlite, "worst_p99_ms").max(top(&on_postgres, "worst_p99_ms"));
        let baseline = on_sqlite["sizes"]
            .as_array()
            .and_then(|sizes| sizes.last())
            .map_or(f64::NAN, |size| size["baseline"]["p99_ms"].as_f64().unwrap_or(f64::NAN));
        json!({
            "name": "events",
            "value": round(worst),
            "unit": format!("ms, worst p99 of any filter at {} documents, either store", options.events_docs),
            "stores": [on_sqlite, on_postgres],
            "baseline": {
                "name": "trivial axum endpoint, same process, same client, same run (SQLite's run, largest size)",
                "value": round(baseline),
                "unit": "p99 ms",
            },
            "target": "uncached GET /events p99 < 20 ms for every filter at 1M documents / 100k events, on both stores",
            "met": worst < 20.0 && options.events_docs >= 1_000_000,
        })
    })
}
