//! The embedded backend: SQLite (bundled) through rusqlite.
//!
//! Why SQLite: one file, no server to run, ACID transactions, WAL for readers
//! that never block the writer, and `synchronous=FULL` for durability on
//! commit. One process serves a province comfortably on one machine.
//!
//! Calls run on tokio's blocking pool behind one mutex-guarded connection;
//! referral commits go through a second, the group-commit writer (`group.rs`),
//! so that commits queued behind one fsync share it and readers never wait for
//! it. Every write transaction on either connection is `IMMEDIATE`: it takes
//! SQLite's write lock (waiting up to `busy_timeout`) before it reads, so the
//! two writers never deadlock on a lock upgrade.
//!
//! This module holds the connection, the migrations and the row helpers shared
//! by the concepts; each concept trait is implemented in its own file.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Row, TransactionBehavior};

use handoff_protocol::UserId;
use handoff_protocol::v1::Role;

use crate::{BackendError, OpenError, UserRecord};

mod audit;
mod backup;
mod free;
mod group;
mod limits;
mod mail;
mod mls;
mod practices;
mod referrals;
mod rooms;
mod taxonomy;
mod terms;
mod users;

pub use backup::{BackupError, BackupInfo, DB_FILE, DataDirLock, LOCK_FILE, LockError, RestoreError, backup, checksum, inspect, restore};

/// One numbered schema migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number; migrations apply in order and each exactly once.
    pub version: u32,
    /// The SQL it runs, as one batch.
    pub sql: &'static str,
}

/// The migrations this build knows, from `migrations/sqlite/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../../../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, sql: include_str!("../../../migrations/sqlite/0002_referrals.sql") },
    Migration { version: 3, sql: include_str!("../../../migrations/sqlite/0003_mls.sql") },
    Migration { version: 4, sql: include_str!("../../../migrations/sqlite/0004_accounts.sql") },
    Migration { version: 5, sql: include_str!("../../../migrations/sqlite/0005_rate_limits.sql") },
    Migration { version: 6, sql: include_str!("../../../migrations/sqlite/0006_blob_chunks.sql") },
    Migration { version: 7, sql: include_str!("../../../migrations/sqlite/0007_mls_observer.sql") },
    Migration { version: 8, sql: include_str!("../../../migrations/sqlite/0008_free_referrals.sql") },
    Migration { version: 9, sql: include_str!("../../../migrations/sqlite/0009_free_senders.sql") },
    Migration { version: 10, sql: include_str!("../../../migrations/sqlite/0010_totp.sql") },
    Migration { version: 11, sql: include_str!("../../../migrations/sqlite/0011_audit.sql") },
    Migration { version: 12, sql: include_str!("../../../migrations/sqlite/0012_session_activity.sql") },
    Migration { version: 13, sql: include_str!("../../../migrations/sqlite/0013_member_terms.sql") },
    Migration { version: 14, sql: include_str!("../../../migrations/sqlite/0014_rooms.sql") },
];

/// The embedded store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The connection referral commits and audit entries go through, batched ([`group`]).
    writer: Arc<group::Writer>,
    /// The taxonomy as last read, until this store next writes it (every
    /// taxonomy write goes through this store, which clears it). Every
    /// referral's routing is checked against it.
    taxonomy: Arc<Mutex<Option<handoff_protocol::v1::Taxonomy>>>,
    /// Read-only connections for the hot reads ([`SqliteStore::read`]):
    /// they never wait behind a write on the main connection, and run side
    /// by side (WAL).
    readers: Arc<Readers>,
}

/// How many read-only connections the store keeps.
const READERS: usize = 4;

/// The read-only connections: a free one, else the next one round-robin.
#[derive(Debug)]
struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Readers {
    /// A connection no one holds, if there is one.
    fn free(&self) -> Option<std::sync::MutexGuard<'_, Connection>> {
        self.conns.iter().find_map(|c| c.try_lock().ok())
    }

    /// A free connection if one is, else the next one round-robin (waiting for it).
    fn get(&self) -> Result<std::sync::MutexGuard<'_, Connection>, BackendError> {
        if let Some(guard) = self.free() {
            return Ok(guard);
        }
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.conns.len().max(1);
        self.conns.get(start).ok_or_else(|| db("no reader connection"))?.lock().map_err(|_| db("store mutex poisoned"))
    }
}

/// `query_row` through the connection's prepared-statement cache (the hot
/// reads run the same few statements over and over).
trait CachedRow {
    fn row<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>;
}

impl CachedRow for Connection {
    fn row<T, P: rusqlite::Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Wraps a driver (or encoding) error; for `?`, which converts it into the concept's error.
fn db(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> BackendError {
    BackendError::new(e)
}

/// Wraps a driver error straight into a concept's error (for tail expressions and `map_err` arms).
fn backend<E: From<BackendError>>(e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> E {
    E::from(BackendError::new(e))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/handoff.db` and applies pending migrations.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        Self::open_with_migrations(dir, MIGRATIONS)
    }

    /// As [`open`](Self::open), with an explicit migration list (tests use this
    /// to prove that a failing migration leaves nothing half-applied).
    pub fn open_with_migrations(dir: &Path, migrations: &[Migration]) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(db)?;
        let mut conn = connect(dir)?;
        migrate(&mut conn, migrations)?;
        let writer = connect(dir)?;
        let mut conns = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = connect(dir)?;
            // A read method that wrote would be a bug: make it an error.
            r.pragma_update(None, "query_only", "ON").map_err(db)?;
            conns.push(Mutex::new(r));
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            writer: Arc::new(group::Writer::new(writer)),
            taxonomy: Arc::default(),
            readers: Arc::new(Readers { conns, next: Default::default() }),
        })
    }

    /// Whether the referral commits queued behind one fsync share its
    /// transaction (the default, `true`), or each commit gets its own
    /// transaction and fsync (`false`: only to measure the difference).
    pub fn set_group_commit(&self, on: bool) {
        self.writer.set_grouped(on);
    }

    /// Runs `f` on the connection, on tokio's blocking pool.
    async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<BackendError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| db("store mutex poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(db)?
    }
}

impl SqliteStore {
    /// Runs the read-only `f` on one of the reader connections, on tokio's
    /// blocking pool: for reads of many rows (pages, lists, counts). Each
    /// reader sees every transaction committed before it starts (WAL), so a
    /// read after a write returned sees the write.
    async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<BackendError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = readers.get()?;
            f(&mut guard)
        })
        .await
        .map_err(db)?
    }

    /// Runs the read-only point lookup `f` (one row by its key, from an
    /// index) on a free reader connection right here, on the calling thread,
    /// or on the blocking pool when every reader is busy. A point lookup on
    /// a warm database takes microseconds, less than the two thread switches
    /// of a trip to the blocking pool, which dominated the hot paths' CPU
    /// (one referral or thread message makes several of these).
    async fn lookup<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<BackendError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        if let Some(mut guard) = self.readers.free() {
            return f(&mut guard);
        }
        self.read(f).await
    }
}

/// A connection to `dir`'s database with the store's settings.
fn connect(dir: &Path) -> Result<Connection, OpenError> {
    let conn = Connection::open(dir.join(DB_FILE)).map_err(db)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    // FULL: a commit is fsynced before it returns, so an acknowledged write survives a crash.
    conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    // Two connections write (this one and the group-commit writer): each waits for the other's lock.
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), OpenError> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db)?;
    let newest = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if current > newest {
        return Err(OpenError::SchemaTooNew { found: current, supported: newest });
    }
    for m in migrations.iter().filter(|m| m.version > current) {
        // The migration and the version bump commit together or not at all.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(db)?;
        tx.execute_batch(m.sql).map_err(|e| OpenError::Migration { version: m.version, source: db(e) })?;
        tx.pragma_update(None, "user_version", m.version).map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(version = m.version, "applied store migration");
    }
    Ok(())
}

/// `Err(err)` when a write touched no row.
fn changed<E>(n: usize, err: E) -> Result<(), E> {
    if n == 0 { Err(err) } else { Ok(()) }
}

fn uuid_of(b: Vec<u8>) -> rusqlite::Result<uuid::Uuid> {
    uuid::Uuid::from_slice(&b).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e)))
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Member => "member",
        Role::Delegate => "delegate",
    }
}

fn role_of(s: &str) -> Role {
    match s {
        "admin" => Role::Admin,
        "delegate" => Role::Delegate,
        _ => Role::Member,
    }
}

const USER_COLS: &str = "u.id, u.email, u.display_name, u.salt, u.auth_verifier, u.kit_verifier, u.sign_pub, u.hpke_pub, \
     u.wrapped_by_password, u.wrapped_by_kit, u.is_staff, u.created_at, u.email_confirmed_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: UserId(uuid_of(r.get(0)?)?),
        email: r.get(1)?,
        display_name: r.get(2)?,
        salt: r.get(3)?,
        auth_verifier: r.get(4)?,
        kit_verifier: r.get(5)?,
        sign_pub: r.get(6)?,
        hpke_pub: r.get(7)?,
        wrapped_by_password: r.get(8)?,
        wrapped_by_kit: r.get(9)?,
        is_staff: r.get(10)?,
        created_at: r.get(11)?,
        email_confirmed_at: r.get(12)?,
    })
}
