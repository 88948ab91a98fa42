//! Store contract: sources, watchlist, idempotent recording of classified documents with event
//! merging, event queries with cursor pagination, API keys, snapshots, one-time markers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use swarm_shared::Error;
use swarm_shared::domain::{
    ClassifiedDocument, CompanyInput, DEFAULT_SOURCES_PER_EVENT, Detection, Document, EventQuery,
    Evidence, FetchReport, FetchStatus, MAX_SOURCES_PER_EVENT, Priority, RecordOutcome, Selectors,
    SourceInput, SourceKind, document_id,
};
use swarm_shared::ports::postgres::PgStore;
use swarm_shared::ports::sqlite::SqliteStore;
use swarm_shared::ports::{Store, ToRecord};

const WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

fn source(name: &str) -> SourceInput {
    SourceInput {
        name: name.into(),
        kind: SourceKind::Rss,
        url: format!("https://{name}.example/feed"),
        interval: Duration::from_secs(60),
        selectors: None,
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

async fn recording_is_idempotent_and_merges(store: Arc<dyn Store>) {
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

async fn event_queries_and_pagination(store: Arc<dyn Store>) {
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
    let by_text = store
        .list_events(&EventQuery {
            q: Some("Project1 ".into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_text.events.len(), 1, "q matches source titles");
    let wildcard = store
        .list_events(&EventQuery {
            q: Some("%".into()),
            page_size: 50,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(
        wildcard.events.is_empty(),
        "LIKE wildcards in q are literal"
    );
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

async fn keys_snapshots_markers(store: Arc<dyn Store>) {
    assert_eq!(store.count_api_keys().await.unwrap(), 0);
    store
        .insert_api_key("admin", "hash-1", &["admin".into()])
        .await
        .unwrap();
    store
        .insert_api_key("admin", "hash-1", &["admin".into()])
        .await
        .unwrap();
    assert_eq!(
        store.count_api_keys().await.unwrap(),
        1,
        "same hash stored once"
    );
    let found = store.find_api_key("hash-1").await.unwrap().unwrap();
    assert_eq!(found.scopes, ["admin"]);
    assert!(store.find_api_key("nope").await.unwrap().is_none());
    // A new bootstrap key replaces the one of its name, and only that one.
    store
        .insert_api_key("bootstrap-admin", "hash-old", &["admin".into()])
        .await
        .unwrap();
    store
        .replace_api_key("bootstrap-admin", "hash-new", &["admin".into()])
        .await
        .unwrap();
    let old = store.find_api_key("hash-old").await.unwrap().unwrap();
    assert!(
        old.revoked_at.is_some(),
        "the replaced bootstrap key is revoked"
    );
    let new = store.find_api_key("hash-new").await.unwrap().unwrap();
    assert!(new.unusable(Utc::now()).is_none());
    assert!(store.find_api_key("hash-1").await.unwrap().is_some());
    store
        .replace_api_key("bootstrap-admin", "hash-new", &["admin".into()])
        .await
        .unwrap();
    assert_eq!(
        store.count_api_keys().await.unwrap(),
        2,
        "the same key again is a no-op"
    );
    store
        .replace_api_key("bootstrap-admin", "hash-1b", &["admin".into()])
        .await
        .unwrap();
    store
        .replace_api_key("bootstrap-admin", "hash-new", &["admin".into()])
        .await
        .unwrap();

    // The key lifecycle: create with an expiry, list, use, rotate, revoke.
    let now = Utc::now();
    let expires = now + chrono::TimeDelta::days(30);
    let bot = store
        .create_api_key(
            "bot",
            "hash-bot",
            &["read".into(), "write".into()],
            Some(expires),
        )
        .await
        .unwrap();
    assert_eq!(bot.scopes, ["read", "write"]);
    assert_eq!(
        bot.expires_at.map(|at| at.timestamp_millis()),
        Some(expires.timestamp_millis())
    );
    assert!(bot.last_used_at.is_none() && bot.revoked_at.is_none());
    assert!(
        store
            .create_api_key("dup", "hash-bot", &["read".into()], None)
            .await
            .is_err(),
        "a secret is stored once"
    );
    store.touch_api_key(bot.id, now).await.unwrap();
    // Within the minute: not written again.
    store
        .touch_api_key(bot.id, now + chrono::TimeDelta::seconds(30))
        .await
        .unwrap();
    let used = store.find_api_key("hash-bot").await.unwrap().unwrap();
    assert_eq!(
        used.last_used_at.map(|at| at.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    let rotated = store
        .rotate_api_key(bot.id, "hash-bot-2", now)
        .await
        .unwrap();
    assert_ne!(rotated.id, bot.id);
    assert_eq!(
        (rotated.name.as_str(), &rotated.scopes),
        ("bot", &bot.scopes)
    );
    assert_eq!(rotated.expires_at, used.expires_at);
    assert!(
        store
            .find_api_key("hash-bot")
            .await
            .unwrap()
            .unwrap()
            .unusable(now)
            .is_some_and(|reason| reason.contains("revoked")),
    );
    assert!(matches!(
        store.rotate_api_key(bot.id, "hash-bot-3", now).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.rotate_api_key(999_999, "hash-x", now).await,
        Err(Error::NotFound { .. })
    ));
    let revoked = store.revoke_api_key(rotated.id, now).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let again = store
        .revoke_api_key(rotated.id, now + chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "revoked at its first time"
    );
    assert!(matches!(
        store.revoke_api_key(999_999, now).await,
        Err(Error::NotFound { .. })
    ));
    let listed = store.list_api_keys().await.unwrap();
    assert!(listed.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert!(
        listed
            .iter()
            .any(|key| key.id == bot.id && key.revoked_at.is_some())
    );
    let expired = store
        .create_api_key("short", "hash-short", &["read".into()], Some(now))
        .await
        .unwrap();
    assert!(
        expired
            .unusable(now + chrono::TimeDelta::seconds(1))
            .is_some_and(|reason| reason.contains("expired"))
    );

    assert!(store.latest_snapshot().await.unwrap().is_none());
    store
        .save_snapshot(Utc::now(), &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    store
        .save_snapshot(Utc::now(), &serde_json::json!({"n": 2}))
        .await
        .unwrap();
    assert_eq!(store.latest_snapshot().await.unwrap().unwrap().body["n"], 2);

    assert!(store.claim_once("seeded").await.unwrap());
    assert!(!store.claim_once("seeded").await.unwrap());
    store.ping().await.unwrap();
}

async fn memory_entries(store: Arc<dyn Store>) {
    let now = Utc::now();
    let entry =
        |key: &str, version: u64, expires_in: Option<i64>| swarm_shared::domain::MemoryEntry {
            namespace: "breakers".into(),
            key: key.into(),
            value: serde_json::json!({"state": "open", "version": version}),
            version,
            written_by: "api-reliability-0".into(),
            updated_at: now,
            expires_at: expires_in.map(|seconds| now + chrono::Duration::seconds(seconds)),
        };
    let none: &[(String, String)] = &[];
    store
        .write_memory(&[entry("a.example", 1, Some(3600))], none)
        .await
        .unwrap();
    store
        .write_memory(
            &[
                entry("a.example", 2, Some(3600)),
                entry("b.example", 1, None),
                entry("gone.example", 1, Some(-1)),
            ],
            none,
        )
        .await
        .unwrap();
    let loaded = store.load_memory(now).await.unwrap();
    assert_eq!(loaded.len(), 2, "expired entries are not loaded");
    assert_eq!(loaded[0].key, "a.example");
    assert_eq!(loaded[0].version, 2, "a write replaces the entry");
    assert_eq!(loaded[0].value["version"], 2);
    assert!(loaded[1].expires_at.is_none());

    // A key twice in one write is refused whole.
    let twice = store
        .write_memory(
            &[entry("c.example", 1, None)],
            &[("breakers".to_owned(), "c.example".to_owned())],
        )
        .await
        .unwrap_err();
    assert!(
        twice.to_string().contains("breakers:c.example"),
        "the error names the key: {twice}"
    );
    assert_eq!(store.load_memory(now).await.unwrap().len(), 2);

    // Puts and deletes together; deleting an absent key is fine.
    store
        .write_memory(
            &[entry("c.example", 1, None)],
            &[
                ("breakers".to_owned(), "a.example".to_owned()),
                ("breakers".to_owned(), "never.example".to_owned()),
            ],
        )
        .await
        .unwrap();
    let keys: Vec<String> = store
        .load_memory(now)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(keys, ["b.example", "c.example"]);

    // More rows than one statement carries.
    let many: Vec<_> = (0..1_200)
        .map(|index| entry(&format!("bulk-{index:04}"), 1, None))
        .collect();
    store.write_memory(&many, none).await.unwrap();
    let gone: Vec<(String, String)> = (0..1_100)
        .map(|index| ("breakers".to_owned(), format!("bulk-{index:04}")))
        .collect();
    store.write_memory(&[], &gone).await.unwrap();
    assert_eq!(store.load_memory(now).await.unwrap().len(), 2 + 100);
}

/// 64 writers at once (data-quality agents in several processes) recording 32 documents of
/// one project, each twice: one event, one source per distinct document.
async fn concurrent_writers_merge_into_one_event(store: Arc<dyn Store>) {
    // Three rounds: the race this guards against does not show on every run.
    for project in ["Zkx", "Qrv", "Mlt"] {
        concurrent_round(&store, project).await;
    }
}

async fn concurrent_round(store: &Arc<dyn Store>, project: &'static str) {
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

/// Desired state: every write bumps the generation; listing is by key.
async fn desired_state_generations(store: Arc<dyn Store>) {
    assert!(store.list_desired().await.unwrap().is_empty());
    let first = store
        .put_desired("replicas/keyword", &serde_json::json!({"replicas": 2}))
        .await
        .unwrap();
    assert_eq!(first.generation, 1);
    let second = store
        .put_desired("replicas/keyword", &serde_json::json!({"replicas": 3}))
        .await
        .unwrap();
    assert_eq!(second.generation, 2);
    store
        .put_desired("drain/n1", &serde_json::json!({"drained": true}))
        .await
        .unwrap();
    let all = store.list_desired().await.unwrap();
    let keys: Vec<&str> = all.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(keys, vec!["drain/n1", "replicas/keyword"]);
    assert_eq!(all[1].value, serde_json::json!({"replicas": 3}));
    assert_eq!(all[1].generation, 2);
}

async fn feedback_is_kept_in_order(store: Arc<dyn Store>) {
    use swarm_shared::domain::FeedbackLabel;
    assert!(store.list_feedback().await.unwrap().is_empty());
    let sample = serde_json::json!({"keys": ["host:example.com"], "logit": 1.5, "is_tge": false});
    let first = store
        .add_feedback(7, FeedbackLabel::FalsePositive, Some("newsletter"), &sample)
        .await
        .unwrap();
    let second = store
        .add_feedback(9, FeedbackLabel::TruePositive, None, &serde_json::json!({}))
        .await
        .unwrap();
    assert!(second.id > first.id);
    let all = store.list_feedback().await.unwrap();
    assert_eq!(all, vec![first.clone(), second]);
    assert_eq!(first.event_id, 7);
    assert_eq!(first.label, FeedbackLabel::FalsePositive);
    assert_eq!(first.note.as_deref(), Some("newsletter"));
    assert_eq!(first.sample, sample);
}

/// An announcement titled `title` at `url`, from `source`, naming `project`.
fn announcement_from(
    source: &str,
    url: &str,
    title: &str,
    project: Option<&str>,
) -> ClassifiedDocument {
    let mut item = classified(url, title, project, None, 0.9, true);
    item.document.source_name = source.into();
    item
}

async fn near_duplicates_merge_across_sources_and_drop_within_one(store: Arc<dyn Store>) {
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
async fn near_copies_of_documents_older_than_the_window_are_new(store: Arc<dyn Store>) {
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
async fn near_copies_in_a_large_batch_find_their_originals(store: Arc<dyn Store>) {
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

async fn supervisor_actions_newest_first_with_filters(store: Arc<dyn Store>) {
    use swarm_shared::domain::{
        ActionOutcome, AgentKind, SupervisorActionInput, SupervisorActionQuery,
    };
    use swarm_shared::supervision::Action;
    let record = |component: &str, kind, action, outcome| SupervisorActionInput {
        component: component.into(),
        kind,
        node: "n1".into(),
        observation: "panic".into(),
        action,
        outcome,
        reason: format!("{component} {}", action.as_str()),
    };
    let inputs = [
        record(
            "keyword-0",
            AgentKind::Keyword,
            Action::Restart,
            ActionOutcome::Succeeded,
        ),
        record(
            "keyword-0",
            AgentKind::Keyword,
            Action::AlertOnly,
            ActionOutcome::Succeeded,
        ),
        record(
            "scraping",
            AgentKind::Scraping,
            Action::ScaleUp,
            ActionOutcome::Failed,
        ),
    ];
    let mut ids = Vec::new();
    for input in &inputs {
        ids.push(store.record_supervisor_action(input).await.unwrap());
    }
    let all = store
        .list_supervisor_actions(&SupervisorActionQuery {
            limit: 10,
            ..SupervisorActionQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<i64> = all.iter().map(|a| a.id).collect();
    assert_eq!(
        got,
        ids.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );
    assert_eq!(all[0].action, Action::ScaleUp);
    assert_eq!(all[0].outcome, ActionOutcome::Failed);
    assert_eq!(all[0].kind, AgentKind::Scraping);
    assert_eq!(all[2].reason, "keyword-0 restart");
    assert_eq!(all[2].node, "n1");
    let keyword = store
        .list_supervisor_actions(&SupervisorActionQuery {
            kind: Some(AgentKind::Keyword),
            action: Some(Action::Restart),
            limit: 10,
            ..SupervisorActionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(keyword.len(), 1);
    assert_eq!(keyword[0].component, "keyword-0");
    let limited = store
        .list_supervisor_actions(&SupervisorActionQuery {
            component: Some("keyword-0".into()),
            limit: 1,
            ..SupervisorActionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].action, Action::AlertOnly);
}

async fn a_batch_is_recorded_in_order_in_one_transaction(store: Arc<dyn Store>) {
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
async fn overlapping_batches_store_each_document_once(store: Arc<dyn Store>) {
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
    keys_snapshots_markers(make().await).await;
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
