//! Backups and restores of the embedded store, and the lock a serving process
//! holds on its data directory.
//!
//! A backup is `VACUUM INTO` on a connection of its own: SQLite runs it inside
//! one read transaction, so the copy is a consistent snapshot of every commit
//! made before it began, and in WAL mode that reader never blocks the server's
//! writer (nor is it blocked by it). The copy is written under a temporary
//! name, fsynced (SQLite does not fsync a `VACUUM INTO` output) and renamed, so
//! a crash mid-backup never leaves a file that looks finished. The copy is a
//! self-contained database in rollback-journal mode: no `-wal` file belongs to
//! it, so its checksum is the checksum of everything it holds.
//!
//! A restore checks the file first (SQLite's `integrity_check`, the tables of a
//! Handoff store, a schema version this build knows), refuses to replace a
//! store unless forced, and refuses while a server holds the directory's lock.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest as _, Sha256};

use super::MIGRATIONS;

/// The store's file name inside a data directory.
pub const DB_FILE: &str = "handoff.db";

/// The lock file a serving process holds exclusively inside its data directory.
pub const LOCK_FILE: &str = "handoff.lock";

/// Tables every Handoff store has had since its first migrations; a file without
/// them is not a Handoff store, whatever its schema version says.
const STORE_TABLES: &[&str] = &["users", "practices", "referrals", "events"];

/// What a backup or a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The file written (the backup, or the restored store).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version (SQLite's `user_version`, the last migration applied).
    pub schema_version: u32,
    /// The SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The data directory holds no Handoff store.
    #[error("no Handoff store at {0}")]
    NoStore(PathBuf),
    /// The destination exists already; a backup never overwrites a file.
    #[error("{0} exists already; a backup never overwrites a file")]
    DestinationExists(PathBuf),
    /// SQLite takes file names as UTF-8 text.
    #[error("the path {0} is not valid UTF-8")]
    NotUtf8(PathBuf),
    /// Reading the store or writing the copy failed.
    #[error("backup failed: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite failed.
    #[error("backup failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Why a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A server (or another restore) holds the data directory's lock.
    #[error("a Handoff server is running on {0}: stop it before restoring")]
    ServerRunning(PathBuf),
    /// The file is not a SQLite database, or not a Handoff store.
    #[error("{path} is not a Handoff store backup: {why}")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// SQLite's integrity check found damage.
    #[error("{path} is damaged (integrity_check: {report})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The first lines of SQLite's report.
        report: String,
    },
    /// The backup was made by a newer build, whose schema this build cannot read.
    #[error(
        "{path} has schema version {found}, newer than this build's {supported}: restore it with the Handoff release that made it (or a newer one)"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// The data directory holds a store already, and `force` was not given.
    #[error("{0} holds a store already: pass --force to replace it (the old one is kept beside it)")]
    StoreExists(PathBuf),
    /// The copy did not match the backup (a disk or file-system fault).
    #[error("the restored copy's checksum {copied} differs from the backup's {source_sum}")]
    ChecksumMismatch {
        /// The backup's SHA-256.
        source_sum: String,
        /// The copy's SHA-256.
        copied: String,
    },
    /// Reading the backup or writing the data directory failed.
    #[error("restore failed: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite failed.
    #[error("restore failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory's lock could not be taken for another reason.
    #[error("restore failed: {0}")]
    Lock(#[from] LockError),
}

/// Why the data directory's lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it: a server is running on the directory (or a restore is).
    #[error("another Handoff process is using {0} (it holds {LOCK_FILE})")]
    Held(PathBuf),
    /// The lock file could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on a data directory, held until dropped.
///
/// `handoff serve` holds one for its whole life and `restore` for its own, so a
/// restore never replaces the file under a running server and a server never
/// starts on a half-restored directory. It is an advisory `flock` on
/// [`LOCK_FILE`]: the kernel drops it when the process dies, however it dies.
/// Other admin commands and backups do not take it (they are safe beside a
/// running server).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `dir` (creating the directory and the lock file if
    /// needed), or fails at once with [`LockError::Held`] if another process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// Backs up the store in `data_dir` to `dest`, while a server may keep serving from it.
///
/// `dest` names the file to write; if it is an existing directory, the backup
/// goes inside it as `handoff-YYYYMMDDTHHMMSSZ.db` (UTC). An existing file is
/// never overwritten. Returns the file's path, size, schema version and SHA-256.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<BackupInfo, BackupError> {
    let db_path = data_dir.join(DB_FILE);
    if !db_path.is_file() {
        return Err(BackupError::NoStore(data_dir.to_path_buf()));
    }
    let dest =
        if dest.is_dir() { dest.join(format!("handoff-{}.db", utc_stamp(std::time::SystemTime::now()))) } else { dest.to_path_buf() };
    if dest.exists() {
        return Err(BackupError::DestinationExists(dest));
    }
    let partial = sibling(&dest, ".partial");
    // A partial file left by a crashed earlier backup is never a backup: start afresh.
    remove_if_present(&partial)?;
    let result = write_snapshot(&db_path, &partial).and_then(|()| {
        std::fs::rename(&partial, &dest)?;
        sync_parent(&dest)?;
        Ok(())
    });
    if let Err(e) = result {
        // Best effort: the error being reported matters more than a failed clean-up.
        let _ = remove_if_present(&partial);
        return Err(e);
    }
    let schema_version = schema_version_of(&dest)?;
    let (bytes, sha256) = checksum(&dest)?;
    Ok(BackupInfo { path: dest, bytes, schema_version, sha256 })
}

/// `VACUUM INTO` from a connection of its own (never the server's), then fsync.
fn write_snapshot(db_path: &Path, out: &Path) -> Result<(), BackupError> {
    let target = out.to_str().ok_or_else(|| BackupError::NotUtf8(out.to_path_buf()))?;
    // Read-write without create: a missing store is an error, not a new empty one;
    // the connection only reads, but a WAL reader needs the shared-memory index.
    let conn = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    drop(conn);
    File::open(out)?.sync_all()?;
    Ok(())
}

/// Checks that `path` is an intact Handoff store this build can run, and returns
/// its size, schema version and checksum.
///
/// An older schema is fine: the server migrates it at its next start, as it
/// does any store. A newer one is refused with [`RestoreError::SchemaTooNew`].
pub fn inspect(path: &Path) -> Result<BackupInfo, RestoreError> {
    let not_a_store = |why: &str| RestoreError::NotAStore { path: path.to_path_buf(), why: why.to_string() };
    if !path.is_file() {
        return Err(not_a_store("no such file"));
    }
    let mut header = [0u8; 16];
    let n = File::open(path)?.read(&mut header)?;
    if n < header.len() || &header != b"SQLite format 3\0" {
        return Err(not_a_store("not a SQLite database"));
    }
    let found = check_store(path).map_err(|e| match e {
        // Damage SQLite meets before (or instead of) the integrity check is damage all the same.
        CheckFailure::Sqlite(rusqlite::Error::SqliteFailure(f, msg)) if f.code == rusqlite::ErrorCode::DatabaseCorrupt => {
            RestoreError::Corrupt { path: path.to_path_buf(), report: msg.unwrap_or_else(|| f.to_string()) }
        }
        CheckFailure::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::NotADatabase => {
            not_a_store("not a SQLite database")
        }
        CheckFailure::Sqlite(e) => RestoreError::Sqlite(e),
        CheckFailure::Refused(e) => e,
    })?;
    let supported = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
    if found == 0 {
        return Err(not_a_store("it has schema version 0"));
    }
    if found > supported {
        return Err(RestoreError::SchemaTooNew { path: path.to_path_buf(), found, supported });
    }
    let (bytes, sha256) = checksum(path)?;
    Ok(BackupInfo { path: path.to_path_buf(), bytes, schema_version: found, sha256 })
}

/// Restores the backup `src` as the store of `data_dir`.
///
/// Refuses while a server holds the directory's lock, refuses a file that
/// [`inspect`] rejects, and refuses to replace an existing store unless `force`;
/// with `force`, the old store (with its `-wal` file) is moved aside to
/// `handoff.db.replaced-<unix seconds>` rather than deleted. The copy is
/// written under a temporary name, checked against the backup's checksum,
/// fsynced and renamed into place. Returns what was restored.
pub fn restore(src: &Path, data_dir: &Path, force: bool) -> Result<BackupInfo, RestoreError> {
    let _lock = DataDirLock::acquire(data_dir).map_err(|e| match e {
        LockError::Held(dir) => RestoreError::ServerRunning(dir),
        other => RestoreError::Lock(other),
    })?;
    let info = inspect(src)?;
    let db_path = data_dir.join(DB_FILE);
    let wal = sibling(&db_path, "-wal");
    let shm = sibling(&db_path, "-shm");
    if db_path.exists() {
        if !force {
            return Err(RestoreError::StoreExists(data_dir.to_path_buf()));
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let aside = sibling(&db_path, &format!(".replaced-{secs}"));
        // The WAL keeps its pairing by name (`<db>-wal`), so the old store stays openable.
        if wal.exists() {
            std::fs::rename(&wal, sibling(&aside, "-wal"))?;
        }
        std::fs::rename(&db_path, &aside)?;
    }
    // A stale `-wal` or `-shm` must never meet the restored file: SQLite would replay it.
    remove_if_present(&wal)?;
    remove_if_present(&shm)?;
    let partial = sibling(&db_path, ".restoring");
    remove_if_present(&partial)?;
    std::fs::copy(src, &partial)?;
    File::open(&partial)?.sync_all()?;
    let (bytes, copied) = checksum(&partial)?;
    if copied != info.sha256 {
        let _ = remove_if_present(&partial);
        return Err(RestoreError::ChecksumMismatch { source_sum: info.sha256, copied });
    }
    std::fs::rename(&partial, &db_path)?;
    sync_parent(&db_path)?;
    Ok(BackupInfo { path: db_path, bytes, schema_version: info.schema_version, sha256: copied })
}

/// Why [`check_store`] failed: a refusal, or SQLite's error (classified by the caller).
enum CheckFailure {
    Refused(RestoreError),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for CheckFailure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

/// Runs the integrity check and looks for a Handoff store's tables; returns the schema version.
fn check_store(path: &Path) -> Result<u32, CheckFailure> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let report: Vec<String> =
        conn.prepare("PRAGMA integrity_check(20)")?.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
    if report != ["ok"] {
        return Err(CheckFailure::Refused(RestoreError::Corrupt { path: path.to_path_buf(), report: report.join("; ") }));
    }
    for table in STORE_TABLES {
        let found: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)", [table], |r| r.get(0))?;
        if !found {
            let why = format!("it has no `{table}` table");
            return Err(CheckFailure::Refused(RestoreError::NotAStore { path: path.to_path_buf(), why }));
        }
    }
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn schema_version_of(path: &Path) -> Result<u32, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// The size and lower-case hex SHA-256 of a file.
pub fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        bytes += n as u64;
    }
    let hex = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((bytes, hex))
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Fsyncs the directory holding `path`, so a rename into it survives a crash.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

/// `YYYYMMDDTHHMMSSZ` for a time, in UTC.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_in_a_directory_carry_the_utc_date_and_time() {
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(1_796_000_000)), "20261130T005320Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z", "a leap day");
    }

    #[test]
    fn a_second_lock_on_a_data_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).expect("the first lock");
        assert!(matches!(DataDirLock::acquire(dir.path()), Err(LockError::Held(d)) if d == dir.path()));
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once dropped");
    }
}
