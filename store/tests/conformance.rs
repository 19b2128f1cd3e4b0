//! The conformance suite on the embedded SQLite backend, plus SQLite-only
//! properties: durability across reopen and all-or-nothing migrations.

use handoff_store::sqlite::{MIGRATIONS, Migration, SqliteStore};
use handoff_store::{OpenError, UserStore, conformance};

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).unwrap(), dir)
}

handoff_store::conformance_tests!(fresh);

/// The newest schema version (migration numbers are per feature, so they may skip).
fn newest() -> u32 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let u = conformance::user(1, "a@example.org");
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.create_user(u.clone()).await.unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.user_by_email("a@example.org").await.unwrap(), Some(u));
    assert_eq!(s.schema_version().await.unwrap(), newest());
}

#[tokio::test]
async fn failed_migration_leaves_nothing_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let broken =
        [MIGRATIONS[0], Migration { version: 2, sql: "CREATE TABLE half (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);" }];
    let err = SqliteStore::open_with_migrations(dir.path(), &broken).unwrap_err();
    assert!(err.to_string().contains("migration 2"), "{err}");
    // Version 1 applied and committed; version 2 left no trace.
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().await.unwrap(), newest());
    let conn = rusqlite::Connection::open(dir.path().join("handoff.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'half'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut future = MIGRATIONS.to_vec();
    let next = newest() + 1;
    future.push(Migration { version: next, sql: "CREATE TABLE later (x INTEGER) STRICT;" });
    SqliteStore::open_with_migrations(dir.path(), &future).unwrap();
    match SqliteStore::open(dir.path()) {
        Err(OpenError::SchemaTooNew { found, supported }) if found == next && supported == next - 1 => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}
