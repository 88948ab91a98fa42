//! The stores' schema migrations, embedded in the binary and run by sqlx's [`Migrator`].
//!
//! Written out here instead of with `sqlx::migrate!`: that macro needs sqlx's `macros`
//! feature, which compiles sqlx, both of its drivers and SQLite's C library a second time for
//! the compiler's host, about 35 s of CPU in a cold release build on 2 cores (BENCHMARKS.md,
//! "Build time"). Each migration is resolved from its file name and text exactly as
//! `migrate!` resolves it (version, description, type, checksum), so databases migrated by
//! earlier releases validate unchanged; a test compares the two over both folders, and fails
//! when a file in a folder is missing from its list here.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use crate::error::Result;

/// The SQLite store's migrations: file name and text, in order.
const SQLITE: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_desired_state.sql",
        include_str!("../../migrations/sqlite/0002_desired_state.sql"),
    ),
    (
        "0003_feedback.sql",
        include_str!("../../migrations/sqlite/0003_feedback.sql"),
    ),
    (
        "0004_fingerprints.sql",
        include_str!("../../migrations/sqlite/0004_fingerprints.sql"),
    ),
    (
        "0005_supervisor_actions.sql",
        include_str!("../../migrations/sqlite/0005_supervisor_actions.sql"),
    ),
    (
        "0006_fingerprint_band_recency.sql",
        include_str!("../../migrations/sqlite/0006_fingerprint_band_recency.sql"),
    ),
    (
        "0007_event_source_count.sql",
        include_str!("../../migrations/sqlite/0007_event_source_count.sql"),
    ),
    (
        "0008_fingerprint_covering_bands.sql",
        include_str!("../../migrations/sqlite/0008_fingerprint_covering_bands.sql"),
    ),
    (
        "0009_fingerprint_bands_by_rowid.sql",
        include_str!("../../migrations/sqlite/0009_fingerprint_bands_by_rowid.sql"),
    ),
    (
        "0010_fingerprint_bands_in_memory.sql",
        include_str!("../../migrations/sqlite/0010_fingerprint_bands_in_memory.sql"),
    ),
    (
        "0011_api_key_lifecycle.sql",
        include_str!("../../migrations/sqlite/0011_api_key_lifecycle.sql"),
    ),
    (
        "0012_alert_delivery.sql",
        include_str!("../../migrations/sqlite/0012_alert_delivery.sql"),
    ),
    (
        "0013_event_revision.sql",
        include_str!("../../migrations/sqlite/0013_event_revision.sql"),
    ),
    (
        "0014_event_workflow.sql",
        include_str!("../../migrations/sqlite/0014_event_workflow.sql"),
    ),
    (
        "0015_source_health.sql",
        include_str!("../../migrations/sqlite/0015_source_health.sql"),
    ),
    (
        "0016_event_venues.sql",
        include_str!("../../migrations/sqlite/0016_event_venues.sql"),
    ),
    (
        "0017_primary_sources.sql",
        include_str!("../../migrations/sqlite/0017_primary_sources.sql"),
    ),
    (
        "0018_retention.sql",
        include_str!("../../migrations/sqlite/0018_retention.sql"),
    ),
    (
        "0019_event_search.sql",
        include_str!("../../migrations/sqlite/0019_event_search.sql"),
    ),
    (
        "0020_market_first_reads.sql",
        include_str!("../../migrations/sqlite/0020_market_first_reads.sql"),
    ),
    (
        "0021_event_search_bounded_count.sql",
        include_str!("../../migrations/sqlite/0021_event_search_bounded_count.sql"),
    ),
    (
        "0022_documents_in_events.sql",
        include_str!("../../migrations/sqlite/0022_documents_in_events.sql"),
    ),
];

/// The Postgres store's migrations: file name and text, in order.
const POSTGRES: &[(&str, &str)] = &[
    (
        "0001_init.sql",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        "0002_desired_state.sql",
        include_str!("../../migrations/postgres/0002_desired_state.sql"),
    ),
    (
        "0003_feedback.sql",
        include_str!("../../migrations/postgres/0003_feedback.sql"),
    ),
    (
        "0004_fingerprints.sql",
        include_str!("../../migrations/postgres/0004_fingerprints.sql"),
    ),
    (
        "0005_supervisor_actions.sql",
        include_str!("../../migrations/postgres/0005_supervisor_actions.sql"),
    ),
    (
        "0006_fingerprint_band_recency.sql",
        include_str!("../../migrations/postgres/0006_fingerprint_band_recency.sql"),
    ),
    (
        "0007_event_source_count.sql",
        include_str!("../../migrations/postgres/0007_event_source_count.sql"),
    ),
    (
        "0008_fingerprint_covering_bands.sql",
        include_str!("../../migrations/postgres/0008_fingerprint_covering_bands.sql"),
    ),
    (
        "0009_api_key_lifecycle.sql",
        include_str!("../../migrations/postgres/0009_api_key_lifecycle.sql"),
    ),
    (
        "0010_alert_delivery.sql",
        include_str!("../../migrations/postgres/0010_alert_delivery.sql"),
    ),
    (
        "0011_event_revision.sql",
        include_str!("../../migrations/postgres/0011_event_revision.sql"),
    ),
    (
        "0012_event_workflow.sql",
        include_str!("../../migrations/postgres/0012_event_workflow.sql"),
    ),
    (
        "0013_source_health.sql",
        include_str!("../../migrations/postgres/0013_source_health.sql"),
    ),
    (
        "0014_event_venues.sql",
        include_str!("../../migrations/postgres/0014_event_venues.sql"),
    ),
    (
        "0015_primary_sources.sql",
        include_str!("../../migrations/postgres/0015_primary_sources.sql"),
    ),
    (
        "0016_retention.sql",
        include_str!("../../migrations/postgres/0016_retention.sql"),
    ),
    (
        "0017_event_search.sql",
        include_str!("../../migrations/postgres/0017_event_search.sql"),
    ),
    (
        "0018_market_first_reads.sql",
        include_str!("../../migrations/postgres/0018_market_first_reads.sql"),
    ),
    (
        "0019_event_search_per_statement.sql",
        include_str!("../../migrations/postgres/0019_event_search_per_statement.sql"),
    ),
    (
        "0020_documents_in_events.sql",
        include_str!("../../migrations/postgres/0020_documents_in_events.sql"),
    ),
];

/// A folder's migrations as embedded above.
#[derive(Debug, Clone, Copy)]
struct Embedded(&'static [(&'static str, &'static str)]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, std::result::Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move { resolve(self.0) })
    }
}

/// `<VERSION>_<DESCRIPTION>.sql` files as sqlx resolves a migrations folder: the version is
/// the integer before the first `_`, the type comes from the suffix, the description is the
/// rest without it and with `_` read as a space, and a text starting with
/// `-- no-transaction` runs outside a transaction.
fn resolve(files: &[(&str, &'static str)]) -> std::result::Result<Vec<Migration>, BoxDynError> {
    let mut migrations = Vec::with_capacity(files.len());
    for &(file_name, sql) in files {
        let Some((version, rest)) = file_name.split_once('_') else {
            return Err(
                format!("migration file `{file_name}` is not <VERSION>_<DESCRIPTION>.sql").into(),
            );
        };
        if !rest.ends_with(".sql") {
            return Err(format!("migration file `{file_name}` does not end in .sql").into());
        }
        let version: i64 = version.parse().map_err(|_| {
            format!("migration file `{file_name}`: `{version}` is not an integer version")
        })?;
        let migration_type = MigrationType::from_filename(rest);
        let description = rest
            .trim_end_matches(migration_type.suffix())
            .replace('_', " ");
        migrations.push(Migration::new(
            version,
            Cow::Owned(description),
            migration_type,
            AssertSqlSafe(sql).into_sql_str(),
            sql.starts_with("-- no-transaction"),
        ));
    }
    migrations.sort_by_key(|migration| migration.version);
    Ok(migrations)
}

/// The SQLite store's migrator.
pub async fn sqlite() -> Result<Migrator> {
    Ok(Migrator::new(Embedded(SQLITE)).await?)
}

/// The Postgres store's migrator.
pub async fn postgres() -> Result<Migrator> {
    Ok(Migrator::new(Embedded(POSTGRES)).await?)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What sqlx (and `migrate!`) resolves from the folder itself.
    fn from_folder(kind: &str) -> Vec<Migration> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(kind);
        sqlx::migrate::resolve_blocking(&folder)
            .unwrap()
            .into_iter()
            .map(|(migration, _)| migration)
            .collect()
    }

    #[test]
    fn the_embedded_migrations_are_the_folders() {
        for (kind, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let embedded = resolve(files).unwrap();
            let folder = from_folder(kind);
            assert_eq!(
                embedded.len(),
                folder.len(),
                "{kind}: every file in migrations/{kind} is listed in ports/migrations.rs"
            );
            for (ours, theirs) in embedded.iter().zip(&folder) {
                assert_eq!(ours.version, theirs.version, "{kind}");
                assert_eq!(
                    ours.description, theirs.description,
                    "{kind} {}",
                    ours.version
                );
                assert_eq!(
                    ours.migration_type, theirs.migration_type,
                    "{kind} {}",
                    ours.version
                );
                assert_eq!(ours.checksum, theirs.checksum, "{kind} {}", ours.version);
                assert_eq!(ours.no_tx, theirs.no_tx, "{kind} {}", ours.version);
            }
        }
    }

    #[test]
    fn badly_named_files_are_errors() {
        let err = resolve(&[("init.sql", "SELECT 1")]).unwrap_err();
        assert!(err.to_string().contains("init.sql"), "{err}");
        let err = resolve(&[("x_init.sql", "SELECT 1")]).unwrap_err();
        assert!(err.to_string().contains("not an integer version"), "{err}");
    }
}
