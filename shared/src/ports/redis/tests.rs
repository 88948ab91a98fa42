//! Tests of the Redis adapters' pure parts (the adapters themselves run in the contract
//! suites against a real Redis).

use fred::prelude::*;

use super::queue::{compare_ids, parse_entries, parse_stream_id};
use super::*;

#[test]
fn stream_ids_order_numerically() {
    assert_eq!(compare_ids("9-0", "10-0"), std::cmp::Ordering::Less);
    assert_eq!(compare_ids("10-2", "10-11"), std::cmp::Ordering::Less);
    assert_eq!(parse_stream_id("nope"), None);
}

#[test]
fn urls_are_checked_up_front() {
    assert!(RedisSettings::new("redis://127.0.0.1:6379/0", 16).is_ok());
    // TLS (verified against the system's roots) is built in.
    assert!(RedisSettings::new("rediss://cache.example:6380/0", 16).is_ok());
    let err = RedisSettings::new("redis://:pw@[bad", 16)
        .unwrap_err()
        .to_string();
    assert!(err.contains("TGE_SWARM_REDIS_URL"), "{err}");
    assert!(!err.contains(":pw@"), "password leaked: {err}");
}

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact("redis://:secret@cache:6379/0"),
        "redis://:***@cache:6379/0"
    );
    assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
    assert_eq!(redact("redis://:pw@[bad/0"), "redis://***@[bad/0");
}

#[test]
fn entries_parse_from_flat_lists_and_tolerate_deleted_ones() {
    let value = Value::Array(vec![
        Value::Array(vec![
            Value::from("1-0"),
            Value::Array(vec![Value::from("p"), Value::Bytes(b"one".to_vec().into())]),
        ]),
        Value::Array(vec![Value::from("2-0"), Value::Null]),
    ]);
    let entries = parse_entries(value);
    assert_eq!(
        entries,
        vec![("1-0".into(), Some(b"one".to_vec())), ("2-0".into(), None)]
    );
}
