//! Contract suites for the ports. Each suite is a set of functions over a trait object, run
//! here against the embedded adapters; networked adapters run the same functions.

// Tests: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bus;
mod consul;
mod partitioned;
mod queue;
mod registry;
mod store;

use std::future::Future;
use std::time::Duration;

/// Polls `condition` until it holds or `timeout` passes (no bare sleeps in tests).
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test Redis (`TGE_SWARM_TEST_REDIS_URL`, provided by `scripts/test.sh`). A test that
/// needs it fails when it is missing: it never skips.
pub fn redis_url() -> String {
    std::env::var("TGE_SWARM_TEST_REDIS_URL").expect(
        "TGE_SWARM_TEST_REDIS_URL is not set: run scripts/test.sh, which provides a Redis server",
    )
}

/// The test Redis URL with database `db` selected.
pub fn redis_url_db(db: u8) -> String {
    let mut url = url::Url::parse(&redis_url()).expect("TGE_SWARM_TEST_REDIS_URL is a URL");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// The test Postgres (`TGE_SWARM_TEST_DATABASE_URL`, provided by `scripts/test.sh`).
pub fn database_url() -> String {
    std::env::var("TGE_SWARM_TEST_DATABASE_URL").expect(
        "TGE_SWARM_TEST_DATABASE_URL is not set: run scripts/test.sh, which provides a Postgres server",
    )
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_postgres_database(admin_url: &str) -> String {
    use sqlx::Connection;
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tge_contract_{}_{}", std::process::id(), n);
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}
