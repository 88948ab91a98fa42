//! The swarm's own state: API keys, snapshots and one-time markers, shared memory, desired
//! state, feedback, supervisor actions.

use chrono::Utc;
use std::sync::Arc;
use swarm_shared::Error;
use swarm_shared::ports::Store;

pub(super) async fn keys_snapshots_markers(store: Arc<dyn Store>) {
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

pub(super) async fn memory_entries(store: Arc<dyn Store>) {
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

/// Desired state: every write bumps the generation; listing is by key.
pub(super) async fn desired_state_generations(store: Arc<dyn Store>) {
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

pub(super) async fn feedback_is_kept_in_order(store: Arc<dyn Store>) {
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

pub(super) async fn supervisor_actions_newest_first_with_filters(store: Arc<dyn Store>) {
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
