//! The embedded backend: SQLite (bundled) through rusqlite.
//!
//! Why SQLite: one file, no server to run, ACID transactions, WAL for readers
//! that never block the writer, and `synchronous=FULL` for durability on
//! commit. One process serves a province comfortably on one machine.
//!
//! Calls run on tokio's blocking pool behind one mutex-guarded connection:
//! SQLite serialises writers anyway, and one connection keeps every call atomic
//! without cross-connection locking surprises.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use handoff_protocol::v1::{
    Category, Intake, PracticeKind, PracticePublicKey, Region, Role, Specialty, Subcategory, Taxonomy, TaxonomyEdit,
};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, StreamId};
use handoff_protocol::{CategoryRequestId, PracticeId, UnixMillis, UserId};

use crate::*;

/// One numbered schema migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number; migrations apply in order and each exactly once.
    pub version: u32,
    /// SQL text.
    pub sql: &'static str,
}

/// The migrations this build knows, from `migrations/sqlite/`.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, sql: include_str!("../../migrations/sqlite/0002_referrals.sql") },
    Migration { version: 3, sql: include_str!("../../migrations/sqlite/0003_mls.sql") },
];

/// The embedded store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/handoff.db` and applies pending migrations.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        Self::open_with_migrations(dir, MIGRATIONS)
    }

    /// As [`open`](Self::open), with an explicit migration list (tests use this
    /// to prove that a failing migration leaves nothing half-applied).
    pub fn open_with_migrations(dir: &Path, migrations: &[Migration]) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let mut conn = Connection::open(dir.join("handoff.db")).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        // FULL: a commit is fsynced before it returns, so an acknowledged write survives a crash.
        conn.pragma_update(None, "synchronous", "FULL").map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        migrate(&mut conn, migrations)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Backend("store mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(backend)?
    }
}

fn migrate(conn: &mut Connection, migrations: &[Migration]) -> StoreResult<()> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    let newest = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if current > newest {
        return Err(StoreError::SchemaTooNew { found: current, supported: newest });
    }
    for m in migrations.iter().filter(|m| m.version > current) {
        // The migration and the version bump commit together or not at all.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(backend)?;
        tx.execute_batch(m.sql).map_err(|e| StoreError::Backend(format!("migration {}: {e}", m.version)))?;
        tx.pragma_update(None, "user_version", m.version).map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version = m.version, "applied store migration");
    }
    Ok(())
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
    }
}

fn role_of(s: &str) -> Role {
    if s == "admin" { Role::Admin } else { Role::Member }
}

const USER_COLS: &str = "u.id, u.email, u.display_name, u.salt, u.auth_verifier, u.kit_verifier, u.sign_pub, u.hpke_pub, \
     u.wrapped_by_password, u.wrapped_by_kit, u.is_staff, u.created_at";

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
    })
}

const PRACTICE_COLS: &str =
    "p.id, p.name, p.kind, p.specialty, p.region, p.intake, p.verified, p.paused, p.key_epoch, p.public_key, p.created_by, p.created_at";

fn practice_row(r: &Row<'_>) -> rusqlite::Result<PracticeRecord> {
    let kind: String = r.get(2)?;
    let intake: String = r.get(5)?;
    let pk: String = r.get(9)?;
    Ok(PracticeRecord {
        id: PracticeId(uuid_of(r.get(0)?)?),
        name: r.get(1)?,
        kind: if kind == "specialist" { PracticeKind::Specialist } else { PracticeKind::Referring },
        specialty: r.get(3)?,
        region: r.get(4)?,
        intake: serde_json::from_str::<Vec<Intake>>(&intake).map_err(json_err)?,
        verified: r.get(6)?,
        paused: r.get(7)?,
        key_epoch: r.get::<_, i64>(8)? as u64,
        public_key: serde_json::from_str::<PracticePublicKey>(&pk).map_err(json_err)?,
        created_by: UserId(uuid_of(r.get(10)?)?),
        created_at: r.get(11)?,
    })
}

fn grant_row(r: &Row<'_>) -> rusqlite::Result<GrantRecord> {
    Ok(GrantRecord {
        practice_id: PracticeId(uuid_of(r.get(0)?)?),
        user_id: UserId(uuid_of(r.get(1)?)?),
        epoch: r.get::<_, i64>(2)? as u64,
        sealed: r.get(3)?,
        granted_by: UserId(uuid_of(r.get(4)?)?),
        created_at: r.get(5)?,
    })
}

fn invite_row(r: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    let role: String = r.get(3)?;
    Ok(InviteRecord {
        token_hash: r.get(0)?,
        practice_id: PracticeId(uuid_of(r.get(1)?)?),
        email: r.get(2)?,
        role: role_of(&role),
        invited_by: UserId(uuid_of(r.get(4)?)?),
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

fn changed(n: usize, what: &'static str) -> StoreResult<()> {
    if n == 0 { Err(StoreError::NotFound(what)) } else { Ok(()) }
}

#[async_trait]
impl Store for SqliteStore {
    async fn schema_version(&self) -> StoreResult<u32> {
        self.run(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)).await
    }

    async fn server_secret(&self, name: &str, init: Vec<u8>) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        self.run(move |c| {
            c.execute("INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?1, ?2)", params![name, init]).map_err(backend)?;
            c.query_row("SELECT value FROM server_secrets WHERE name = ?1", [name], |r| r.get(0)).map_err(backend)
        })
        .await
    }

    async fn create_user(&self, u: UserRecord) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO users (id, email, display_name, salt, auth_verifier, kit_verifier, sign_pub, hpke_pub, \
                 wrapped_by_password, wrapped_by_kit, is_staff, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                params![
                    u.id.as_bytes().as_slice(),
                    u.email,
                    u.display_name,
                    u.salt,
                    u.auth_verifier,
                    u.kit_verifier,
                    u.sign_pub,
                    u.hpke_pub,
                    u.wrapped_by_password,
                    u.wrapped_by_kit,
                    u.is_staff,
                    u.created_at
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("email") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {USER_COLS} FROM users u WHERE u.email = ?1"), [email], user_row).optional().map_err(backend)
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?1"), [id.as_bytes().as_slice()], user_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn reset_password(&self, id: UserId, ch: PasswordChange) -> StoreResult<()> {
        self.run(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE users SET salt = ?2, auth_verifier = ?3, wrapped_by_password = ?4, updated_at = ?5 WHERE id = ?1",
                    params![id.as_bytes().as_slice(), ch.salt, ch.auth_verifier, ch.wrapped_by_password, ch.now],
                )
                .map_err(backend)?;
            changed(n, "user")?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id.as_bytes().as_slice()]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_staff(&self, email: &str, staff: bool) -> StoreResult<()> {
        let email = email.to_owned();
        self.run(move |c| {
            let n = c.execute("UPDATE users SET is_staff = ?2 WHERE email = ?1", params![email, staff]).map_err(backend)?;
            changed(n, "user")
        })
        .await
    }

    async fn create_session(&self, s: SessionRecord) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![s.token_hash, s.user_id.as_bytes().as_slice(), s.created_at, s.expires_at],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("session") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            c.query_row("SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = ?1", [th], |r| {
                Ok(SessionRecord {
                    token_hash: r.get(0)?,
                    user_id: UserId(uuid_of(r.get(1)?)?),
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()> {
        let th = token_hash.to_vec();
        self.run(move |c| c.execute("DELETE FROM sessions WHERE token_hash = ?1", [th]).map(|_| ()).map_err(backend)).await
    }

    async fn purge_sessions(&self, now: UnixMillis) -> StoreResult<u64> {
        self.run(move |c| c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now]).map(|n| n as u64).map_err(backend)).await
    }

    async fn create_practice(&self, p: PracticeRecord, g: GrantRecord) -> StoreResult<()> {
        self.run(move |c| {
            let tx = c.transaction().map_err(backend)?;
            tx.execute(
                "INSERT INTO practices (id, name, kind, specialty, region, intake, verified, paused, key_epoch, public_key, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    p.id.as_bytes().as_slice(),
                    p.name,
                    match p.kind {
                        PracticeKind::Referring => "referring",
                        PracticeKind::Specialist => "specialist",
                    },
                    p.specialty,
                    p.region,
                    serde_json::to_string(&p.intake).map_err(backend)?,
                    p.verified,
                    p.paused,
                    p.key_epoch as i64,
                    serde_json::to_string(&p.public_key).map_err(backend)?,
                    p.created_by.as_bytes().as_slice(),
                    p.created_at
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("practice") } else { backend(e) })?;
            tx.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at) VALUES (?1, ?2, 'admin', ?3)",
                params![p.id.as_bytes().as_slice(), p.created_by.as_bytes().as_slice(), p.created_at],
            )
            .map_err(backend)?;
            insert_grant(&tx, &g)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn practice(&self, id: PracticeId) -> StoreResult<Option<PracticeRecord>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {PRACTICE_COLS} FROM practices p WHERE p.id = ?1"), [id.as_bytes().as_slice()], practice_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn practices_of(&self, user: UserId) -> StoreResult<Vec<(PracticeRecord, Role)>> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS}, m.role FROM practices p JOIN members m ON m.practice_id = p.id \
                     WHERE m.user_id = ?1 ORDER BY p.created_at, p.id"
                ))
                .map_err(backend)?;
            let rows = st
                .query_map([user.as_bytes().as_slice()], |r| {
                    let role: String = r.get(12)?;
                    Ok((practice_row(r)?, role_of(&role)))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn all_practices(&self) -> StoreResult<Vec<(PracticeRecord, u32)>> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS}, (SELECT count(*) FROM members m WHERE m.practice_id = p.id) \
                     FROM practices p ORDER BY p.created_at, p.id"
                ))
                .map_err(backend)?;
            let rows = st.query_map([], |r| Ok((practice_row(r)?, r.get::<_, u32>(12)?))).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn directory(&self, specialty: Option<&str>, region: Option<&str>) -> StoreResult<Vec<PracticeRecord>> {
        let (s, r) = (specialty.map(str::to_owned), region.map(str::to_owned));
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS} FROM practices p WHERE p.kind = 'specialist' AND p.verified = 1 AND p.paused = 0 \
                     AND (?1 IS NULL OR p.specialty = ?1) AND (?2 IS NULL OR p.region = ?2) ORDER BY p.name, p.id"
                ))
                .map_err(backend)?;
            let rows = st.query_map(params![s, r], practice_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_practice(&self, id: PracticeId) -> StoreResult<()> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM practices WHERE id = ?1", [id.as_bytes().as_slice()]).map_err(backend)?;
            changed(n, "practice")
        })
        .await
    }

    async fn set_verified(&self, id: PracticeId, verified: bool) -> StoreResult<()> {
        self.run(move |c| {
            let n = c
                .execute("UPDATE practices SET verified = ?2 WHERE id = ?1", params![id.as_bytes().as_slice(), verified])
                .map_err(backend)?;
            changed(n, "practice")
        })
        .await
    }

    async fn set_paused(&self, id: PracticeId, paused: bool) -> StoreResult<()> {
        self.run(move |c| {
            let n =
                c.execute("UPDATE practices SET paused = ?2 WHERE id = ?1", params![id.as_bytes().as_slice(), paused]).map_err(backend)?;
            changed(n, "practice")
        })
        .await
    }

    async fn role(&self, practice: PracticeId, user: UserId) -> StoreResult<Option<Role>> {
        self.run(move |c| {
            c.query_row(
                "SELECT role FROM members WHERE practice_id = ?1 AND user_id = ?2",
                [practice.as_bytes().as_slice(), user.as_bytes().as_slice()],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|o| o.map(|s| role_of(&s)))
            .map_err(backend)
        })
        .await
    }

    async fn members(&self, practice: PracticeId) -> StoreResult<Vec<MemberRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {USER_COLS}, m.role, m.joined_at, m.notify_email FROM members m JOIN users u ON u.id = m.user_id \
                     WHERE m.practice_id = ?1 ORDER BY m.joined_at, u.id"
                ))
                .map_err(backend)?;
            let rows = st
                .query_map([practice.as_bytes().as_slice()], |r| {
                    let role: String = r.get(12)?;
                    Ok(MemberRecord { user: user_row(r)?, role: role_of(&role), joined_at: r.get(13)?, notify_email: r.get(14)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn add_member(&self, practice: PracticeId, user: UserId, role: Role, now: UnixMillis) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
                params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), role_str(role), now],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("member") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn remove_member(&self, practice: PracticeId, user: UserId) -> StoreResult<()> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let p = practice.as_bytes().as_slice();
            let u = user.as_bytes().as_slice();
            let role: Option<String> = tx
                .query_row("SELECT role FROM members WHERE practice_id = ?1 AND user_id = ?2", [p, u], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let Some(role) = role else { return Err(StoreError::NotFound("member")) };
            if role == "admin" {
                let admins: i64 = tx
                    .query_row("SELECT count(*) FROM members WHERE practice_id = ?1 AND role = 'admin'", [p], |r| r.get(0))
                    .map_err(backend)?;
                if admins <= 1 {
                    return Err(StoreError::Conflict("last_admin"));
                }
            }
            tx.execute("DELETE FROM members WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(backend)?;
            tx.execute("DELETE FROM key_grants WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn put_grant(&self, g: GrantRecord) -> StoreResult<()> {
        self.run(move |c| insert_grant(c, &g)).await
    }

    async fn grant(&self, practice: PracticeId, user: UserId, epoch: u64) -> StoreResult<Option<GrantRecord>> {
        self.run(move |c| {
            c.query_row(
                "SELECT practice_id, user_id, epoch, sealed, granted_by, created_at FROM key_grants \
                 WHERE practice_id = ?1 AND user_id = ?2 AND epoch = ?3",
                params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), epoch as i64],
                grant_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn create_invite(&self, i: InviteRecord) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO invites (token_hash, practice_id, email, role, invited_by, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    i.token_hash,
                    i.practice_id.as_bytes().as_slice(),
                    i.email,
                    role_str(i.role),
                    i.invited_by.as_bytes().as_slice(),
                    i.created_at,
                    i.expires_at
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("invite") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn invite(&self, token_hash: &[u8]) -> StoreResult<Option<InviteRecord>> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            c.query_row(
                "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at FROM invites WHERE token_hash = ?1",
                [th],
                invite_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn invites_of(&self, practice: PracticeId) -> StoreResult<Vec<InviteRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at FROM invites \
                     WHERE practice_id = ?1 ORDER BY created_at",
                )
                .map_err(backend)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], invite_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn accept_invite(&self, token_hash: &[u8], user: UserId, now: UnixMillis) -> StoreResult<()> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let inv = tx
                .query_row(
                    "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at FROM invites WHERE token_hash = ?1",
                    [&th],
                    invite_row,
                )
                .optional()
                .map_err(backend)?
                .ok_or(StoreError::NotFound("invite"))?;
            tx.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
                params![inv.practice_id.as_bytes().as_slice(), user.as_bytes().as_slice(), role_str(inv.role), now],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("member") } else { backend(e) })?;
            tx.execute("DELETE FROM invites WHERE token_hash = ?1", [&th]).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn seed_taxonomy(&self, t: &Taxonomy) -> StoreResult<bool> {
        let t = t.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let n: i64 = tx.query_row("SELECT count(*) FROM specialties", [], |r| r.get(0)).map_err(backend)?;
            if n > 0 {
                return Ok(false);
            }
            for (i, r) in t.regions.iter().enumerate() {
                tx.execute("INSERT INTO regions (slug, name, position) VALUES (?1, ?2, ?3)", params![r.slug, r.name, i as i64])
                    .map_err(backend)?;
            }
            for (i, s) in t.specialties.iter().enumerate() {
                tx.execute("INSERT INTO specialties (slug, name, position) VALUES (?1, ?2, ?3)", params![s.slug, s.name, i as i64])
                    .map_err(backend)?;
                for (j, cat) in s.categories.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO categories (specialty, slug, name, position) VALUES (?1, ?2, ?3, ?4)",
                        params![s.slug, cat.slug, cat.name, j as i64],
                    )
                    .map_err(backend)?;
                    for (k, sub) in cat.subcategories.iter().enumerate() {
                        tx.execute(
                            "INSERT INTO subcategories (specialty, category, slug, name, position) VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![s.slug, cat.slug, sub.slug, sub.name, k as i64],
                        )
                        .map_err(backend)?;
                    }
                }
            }
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn taxonomy(&self) -> StoreResult<Taxonomy> {
        self.run(|c| {
            let tx = c.transaction().map_err(backend)?;
            let regions = {
                let mut st = tx.prepare("SELECT slug, name FROM regions ORDER BY position, slug").map_err(backend)?;
                let rows = st.query_map([], |r| Ok(Region { slug: r.get(0)?, name: r.get(1)? })).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            let mut specialties: Vec<Specialty> = {
                let mut st = tx.prepare("SELECT slug, name FROM specialties ORDER BY position, slug").map_err(backend)?;
                let rows = st.query_map([], |r| Ok(Specialty { slug: r.get(0)?, name: r.get(1)?, categories: vec![] })).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            let cats: Vec<(String, Category)> = {
                let mut st = tx.prepare("SELECT specialty, slug, name FROM categories ORDER BY position, slug").map_err(backend)?;
                let rows = st
                    .query_map([], |r| Ok((r.get(0)?, Category { slug: r.get(1)?, name: r.get(2)?, subcategories: vec![] })))
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            let subs: Vec<(String, String, Subcategory)> = {
                let mut st =
                    tx.prepare("SELECT specialty, category, slug, name FROM subcategories ORDER BY position, slug").map_err(backend)?;
                let rows =
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, Subcategory { slug: r.get(2)?, name: r.get(3)? }))).map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            };
            for (spec, cat) in cats {
                if let Some(s) = specialties.iter_mut().find(|s| s.slug == spec) {
                    s.categories.push(cat);
                }
            }
            for (spec, cat, sub) in subs {
                if let Some(c) =
                    specialties.iter_mut().find(|s| s.slug == spec).and_then(|s| s.categories.iter_mut().find(|c| c.slug == cat))
                {
                    c.subcategories.push(sub);
                }
            }
            Ok(Taxonomy { regions, specialties })
        })
        .await
    }

    async fn edit_taxonomy(&self, e: &TaxonomyEdit) -> StoreResult<()> {
        let e = e.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            match (&e.category, &e.subcategory) {
                (None, None) => {
                    tx.execute(
                        "INSERT INTO specialties (slug, name, position) VALUES (?1, ?2, (SELECT coalesce(max(position), -1) + 1 FROM specialties)) \
                         ON CONFLICT (slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, e.name],
                    )
                    .map_err(backend)?;
                }
                (Some(cat), None) => {
                    let parent: i64 = tx
                        .query_row("SELECT count(*) FROM specialties WHERE slug = ?1", [&e.specialty], |r| r.get(0))
                        .map_err(backend)?;
                    if parent == 0 {
                        return Err(StoreError::NotFound("specialty"));
                    }
                    tx.execute(
                        "INSERT INTO categories (specialty, slug, name, position) VALUES (?1, ?2, ?3, \
                         (SELECT coalesce(max(position), -1) + 1 FROM categories WHERE specialty = ?1)) \
                         ON CONFLICT (specialty, slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, cat, e.name],
                    )
                    .map_err(backend)?;
                }
                (Some(cat), Some(sub)) => {
                    let parent: i64 = tx
                        .query_row("SELECT count(*) FROM categories WHERE specialty = ?1 AND slug = ?2", [&e.specialty, cat], |r| r.get(0))
                        .map_err(backend)?;
                    if parent == 0 {
                        return Err(StoreError::NotFound("category"));
                    }
                    tx.execute(
                        "INSERT INTO subcategories (specialty, category, slug, name, position) VALUES (?1, ?2, ?3, ?4, \
                         (SELECT coalesce(max(position), -1) + 1 FROM subcategories WHERE specialty = ?1 AND category = ?2)) \
                         ON CONFLICT (specialty, category, slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, cat, sub, e.name],
                    )
                    .map_err(backend)?;
                }
                (None, Some(_)) => return Err(StoreError::NotFound("category")),
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn create_category_request(&self, r: CategoryRequestRecord) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO category_requests (id, practice_id, specialty, name, note, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.id.as_bytes().as_slice(), r.practice_id.as_bytes().as_slice(), r.specialty, r.name, r.note, r.status, r.created_at],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("category_request") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn category_requests(&self) -> StoreResult<Vec<CategoryRequestRecord>> {
        self.run(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, practice_id, specialty, name, note, status, created_at FROM category_requests ORDER BY created_at DESC, id",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(CategoryRequestRecord {
                        id: CategoryRequestId(uuid_of(r.get(0)?)?),
                        practice_id: PracticeId(uuid_of(r.get(1)?)?),
                        specialty: r.get(2)?,
                        name: r.get(3)?,
                        note: r.get(4)?,
                        status: r.get(5)?,
                        created_at: r.get(6)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn resolve_category_request(&self, id: CategoryRequestId, status: &str, now: UnixMillis) -> StoreResult<()> {
        let status = status.to_owned();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE category_requests SET status = ?2, resolved_at = ?3 WHERE id = ?1",
                    params![id.as_bytes().as_slice(), status, now],
                )
                .map_err(backend)?;
            changed(n, "category_request")
        })
        .await
    }

    async fn enqueue_mail(&self, m: NewMail) -> StoreResult<i64> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO mail_outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![m.recipient, m.subject, m.body, m.now],
            )
            .map_err(backend)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn due_mail(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<MailRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT id, recipient, subject, body, attempts FROM mail_outbox \
                     WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![now, limit], |r| {
                    Ok(MailRecord { id: r.get(0)?, recipient: r.get(1)?, subject: r.get(2)?, body: r.get(3)?, attempts: r.get(4)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn mail_sent(&self, id: i64, now: UnixMillis) -> StoreResult<()> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE mail_outbox SET sent_at = ?2, body = '', attempts = attempts + 1 WHERE id = ?1 AND sent_at IS NULL",
                    params![id, now],
                )
                .map_err(backend)?;
            changed(n, "mail")
        })
        .await
    }

    async fn mail_failed(&self, id: i64, next_attempt_at: UnixMillis, error: &str) -> StoreResult<()> {
        let error = error.chars().take(500).collect::<String>();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1 AND sent_at IS NULL",
                    params![id, next_attempt_at, error],
                )
                .map_err(backend)?;
            changed(n, "mail")
        })
        .await
    }

    async fn set_notify_email(&self, practice: PracticeId, user: UserId, on: bool) -> StoreResult<()> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE members SET notify_email = ?3 WHERE practice_id = ?1 AND user_id = ?2",
                    params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), on],
                )
                .map_err(backend)?;
            changed(n, "member")
        })
        .await
    }

    async fn email_recipients(&self, practice: PracticeId) -> StoreResult<Vec<String>> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT u.email FROM members m JOIN users u ON u.id = m.user_id \
                     WHERE m.practice_id = ?1 AND m.notify_email = 1 ORDER BY u.email",
                )
                .map_err(backend)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(backend)
        })
        .await
    }

    async fn commit(&self, cm: Commit) -> StoreResult<Vec<StoredEvent>> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            if let Some(i) = &cm.idem {
                let seen: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM idempotency WHERE user_id = ?1 AND key = ?2",
                        [i.user.as_bytes().as_slice(), i.key.as_bytes().as_slice()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                if seen.is_some() {
                    return Err(StoreError::Conflict("idempotency"));
                }
                tx.execute(
                    "INSERT INTO idempotency (user_id, key, command, result, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![i.user.as_bytes().as_slice(), i.key.as_bytes().as_slice(), i.command, i.result, cm.now],
                )
                .map_err(backend)?;
            }
            if let Some(r) = &cm.insert {
                tx.execute(
                    "INSERT INTO referrals (id, number, from_practice, to_practice, routed_category, routed_sub, status, body, \
                     created_at, first_opened_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        r.id.as_bytes().as_slice(),
                        r.number,
                        r.from_practice.as_bytes().as_slice(),
                        r.to_practice.as_bytes().as_slice(),
                        r.routed_category,
                        r.routed_sub,
                        r.status,
                        r.body,
                        r.created_at,
                        r.first_opened_at
                    ],
                )
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("referral") } else { backend(e) })?;
            }
            if let Some(r) = &cm.update {
                let n = tx
                    .execute(
                        "UPDATE referrals SET status = ?2, body = ?3, first_opened_at = ?4 WHERE id = ?1",
                        params![r.id.as_bytes().as_slice(), r.status, r.body, r.first_opened_at],
                    )
                    .map_err(backend)?;
                changed(n, "referral")?;
            }
            for (blob, referral) in &cm.attach {
                let n = tx
                    .execute(
                        "UPDATE blobs SET referral = ?2 WHERE id = ?1 AND (referral IS NULL OR referral = ?2)",
                        [blob.as_bytes().as_slice(), referral.as_bytes().as_slice()],
                    )
                    .map_err(backend)?;
                changed(n, "blob")?;
            }
            let mut out = Vec::with_capacity(cm.events.len());
            for (stream, body) in &cm.events {
                let key = stream.to_string();
                let seq: i64 = tx
                    .query_row("SELECT coalesce(max(seq), 0) + 1 FROM events WHERE stream = ?1", [&key], |r| r.get(0))
                    .map_err(backend)?;
                tx.execute("INSERT INTO events (stream, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)", params![key, seq, body, cm.now])
                    .map_err(backend)?;
                out.push(StoredEvent { stream: *stream, seq: seq as u64, body: body.clone() });
            }
            for m in &cm.mail {
                tx.execute(
                    "INSERT INTO mail_outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![m.recipient, m.subject, m.body, m.now],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
    }

    async fn referral(&self, id: ReferralId) -> StoreResult<Option<ReferralRecord>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {REFERRAL_COLS} FROM referrals WHERE id = ?1"), [id.as_bytes().as_slice()], referral_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn referrals_of(&self, practice: PracticeId, limit: u32) -> StoreResult<Vec<ReferralRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {REFERRAL_COLS} FROM referrals WHERE from_practice = ?1 OR to_practice = ?1 \
                     ORDER BY created_at DESC, id LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = st.query_map(params![practice.as_bytes().as_slice(), limit], referral_row).map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn routing_counts(&self, practices: &[PracticeId], category: &str, sub: Option<&str>) -> StoreResult<Vec<(PracticeId, u64)>> {
        let (ps, cat, sub) = (practices.to_vec(), category.to_owned(), sub.map(str::to_owned));
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT count(*) FROM referrals WHERE to_practice = ?1 AND routed_category = ?2 \
                     AND (?3 IS NULL OR routed_sub = ?3)",
                )
                .map_err(backend)?;
            let mut out = Vec::with_capacity(ps.len());
            for p in ps {
                let n: i64 = st.query_row(params![p.as_bytes().as_slice(), cat, sub], |r| r.get(0)).map_err(backend)?;
                out.push((p, n as u64));
            }
            Ok(out)
        })
        .await
    }

    async fn events_after(&self, stream: StreamId, after: u64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        self.run(move |c| {
            let mut st =
                c.prepare_cached("SELECT seq, body FROM events WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3").map_err(backend)?;
            let rows = st
                .query_map(params![stream.to_string(), after as i64, limit], |r| {
                    Ok(StoredEvent { stream, seq: r.get::<_, i64>(0)? as u64, body: r.get(1)? })
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn stream_head(&self, stream: StreamId) -> StoreResult<u64> {
        self.run(move |c| {
            c.query_row("SELECT coalesce(max(seq), 0) FROM events WHERE stream = ?1", [stream.to_string()], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn idem(&self, user: UserId, key: IdemKey) -> StoreResult<Option<IdemRecord>> {
        self.run(move |c| {
            c.query_row(
                "SELECT command, result FROM idempotency WHERE user_id = ?1 AND key = ?2",
                [user.as_bytes().as_slice(), key.as_bytes().as_slice()],
                |r| Ok(IdemRecord { user, key, command: r.get(0)?, result: r.get(1)? }),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_blob(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, now: UnixMillis) -> StoreResult<()> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO blobs (id, owner, referral, bytes, created_at) VALUES (?1, ?2, NULL, ?3, ?4)",
                params![id.as_bytes().as_slice(), owner.as_bytes().as_slice(), bytes, now],
            )
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("blob") } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn blob_meta(&self, id: BlobId) -> StoreResult<Option<BlobRecord>> {
        self.run(move |c| {
            c.query_row("SELECT owner, referral, length(bytes) FROM blobs WHERE id = ?1", [id.as_bytes().as_slice()], |r| {
                let referral: Option<Vec<u8>> = r.get(1)?;
                Ok(BlobRecord {
                    id,
                    owner: UserId(uuid_of(r.get(0)?)?),
                    referral: referral.map(uuid_of).transpose()?.map(ReferralId),
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn blob_bytes(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>> {
        self.run(move |c| {
            c.query_row("SELECT bytes FROM blobs WHERE id = ?1", [id.as_bytes().as_slice()], |r| r.get(0)).optional().map_err(backend)
        })
        .await
    }

    async fn publish_key_packages(&self, user: UserId, kps: Vec<(Vec<u8>, Vec<u8>)>, now: UnixMillis) -> StoreResult<u32> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let u = user.as_bytes().as_slice();
            for (hash, kp) in &kps {
                tx.execute(
                    "INSERT INTO mls_key_packages (hash, user_id, key_package, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash, u, kp, now],
                )
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("key_package") } else { backend(e) })?;
            }
            let n: i64 = tx
                .query_row("SELECT count(*) FROM mls_key_packages WHERE user_id = ?1 AND key_package IS NOT NULL", [u], |r| r.get(0))
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(n as u32)
        })
        .await
    }

    async fn claim_key_package(&self, user: UserId, by: UserId, now: UnixMillis) -> StoreResult<Option<Vec<u8>>> {
        self.run(move |c| {
            // Picked and emptied in one immediate transaction, so no key package is handed out twice.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT hash, key_package FROM mls_key_packages WHERE user_id = ?1 AND key_package IS NOT NULL \
                     ORDER BY created_at, hash LIMIT 1",
                    [user.as_bytes().as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(backend)?;
            let Some((hash, kp)) = row else { return Ok(None) };
            let n = tx
                .execute(
                    "UPDATE mls_key_packages SET key_package = NULL, claimed_by = ?2, claimed_at = ?3 WHERE hash = ?1 AND key_package IS NOT NULL",
                    params![hash, by.as_bytes().as_slice(), now],
                )
                .map_err(backend)?;
            changed(n, "key_package")?;
            tx.commit().map_err(backend)?;
            Ok(Some(kp))
        })
        .await
    }

    async fn key_package_count(&self, user: UserId) -> StoreResult<u32> {
        self.run(move |c| {
            c.query_row(
                "SELECT count(*) FROM mls_key_packages WHERE user_id = ?1 AND key_package IS NOT NULL",
                [user.as_bytes().as_slice()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u32)
            .map_err(backend)
        })
        .await
    }

    async fn mls_state(&self, user: UserId) -> StoreResult<Option<(u64, Vec<u8>)>> {
        self.run(move |c| {
            c.query_row("SELECT version, sealed FROM mls_states WHERE user_id = ?1", [user.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_mls_state(&self, user: UserId, expected: u64, sealed: Vec<u8>, now: UnixMillis) -> StoreResult<u64> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let u = user.as_bytes().as_slice();
            let current: u64 = tx
                .query_row("SELECT version FROM mls_states WHERE user_id = ?1", [u], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(backend)?
                .unwrap_or(0) as u64;
            if current != expected {
                return Err(StoreError::Conflict("stale_state"));
            }
            let next = current + 1;
            tx.execute(
                "INSERT INTO mls_states (user_id, version, sealed, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, sealed = excluded.sealed, updated_at = excluded.updated_at",
                params![u, next as i64, sealed, now],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(next)
        })
        .await
    }

    async fn mls_append(&self, e: MlsEntryRecord, event: String) -> StoreResult<StoredEvent> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let p = e.practice_id.as_bytes().as_slice();
            let current: i64 =
                tx.query_row("SELECT coalesce(max(epoch), 0) FROM mls_log WHERE practice_id = ?1", [p], |r| r.get(0)).map_err(backend)?;
            if e.epoch != current as u64 + 1 {
                return Err(StoreError::Conflict("stale_epoch"));
            }
            let ids = |v: &[UserId]| serde_json::to_string(v).map_err(backend);
            tx.execute(
                "INSERT INTO mls_log (practice_id, epoch, committer, commit_msg, welcome, added, removed, public_key, history, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    p,
                    e.epoch as i64,
                    e.committer.as_bytes().as_slice(),
                    e.commit,
                    e.welcome,
                    ids(&e.added)?,
                    ids(&e.removed)?,
                    serde_json::to_string(&e.public_key).map_err(backend)?,
                    e.history,
                    e.created_at
                ],
            )
            .map_err(|x| if is_unique_violation(&x) { StoreError::Conflict("stale_epoch") } else { backend(x) })?;
            if e.epoch == 1 {
                tx.execute(
                    "INSERT OR IGNORE INTO mls_roster (practice_id, user_id) VALUES (?1, ?2)",
                    [p, e.committer.as_bytes().as_slice()],
                )
                .map_err(backend)?;
            }
            for u in &e.added {
                let u = u.as_bytes().as_slice();
                tx.execute("INSERT OR IGNORE INTO mls_roster (practice_id, user_id) VALUES (?1, ?2)", [p, u]).map_err(backend)?;
                if e.welcome.is_some() {
                    tx.execute(
                        "INSERT INTO mls_welcomes (practice_id, user_id, epoch) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (practice_id, user_id) DO UPDATE SET epoch = excluded.epoch",
                        params![p, u, e.epoch as i64],
                    )
                    .map_err(backend)?;
                }
            }
            for u in &e.removed {
                let u = u.as_bytes().as_slice();
                tx.execute("DELETE FROM mls_roster WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(backend)?;
                tx.execute("DELETE FROM mls_welcomes WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(backend)?;
            }
            let n = tx
                .execute(
                    "UPDATE practices SET key_epoch = ?2, public_key = ?3 WHERE id = ?1",
                    params![p, e.epoch as i64, serde_json::to_string(&e.public_key).map_err(backend)?],
                )
                .map_err(backend)?;
            changed(n, "practice")?;
            let stream = StreamId::Practice(e.practice_id);
            let key = stream.to_string();
            let seq: i64 =
                tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events WHERE stream = ?1", [&key], |r| r.get(0)).map_err(backend)?;
            tx.execute(
                "INSERT INTO events (stream, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key, seq, event, e.created_at],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(StoredEvent { stream, seq: seq as u64, body: event })
        })
        .await
    }

    async fn mls_epoch(&self, practice: PracticeId) -> StoreResult<u64> {
        self.run(move |c| {
            c.query_row("SELECT coalesce(max(epoch), 0) FROM mls_log WHERE practice_id = ?1", [practice.as_bytes().as_slice()], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn mls_log(&self, practice: PracticeId, after: u64, limit: u32) -> StoreResult<Vec<MlsEntryRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT practice_id, epoch, committer, commit_msg, welcome, added, removed, public_key, history, created_at \
                     FROM mls_log WHERE practice_id = ?1 AND epoch > ?2 ORDER BY epoch LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![practice.as_bytes().as_slice(), after as i64, limit as i64], |r| {
                    let json = |i: usize| -> rusqlite::Result<Vec<UserId>> {
                        serde_json::from_str(&r.get::<_, String>(i)?)
                            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
                    };
                    Ok(MlsEntryRecord {
                        practice_id: PracticeId(uuid_of(r.get(0)?)?),
                        epoch: r.get::<_, i64>(1)? as u64,
                        committer: UserId(uuid_of(r.get(2)?)?),
                        commit: r.get(3)?,
                        welcome: r.get(4)?,
                        added: json(5)?,
                        removed: json(6)?,
                        public_key: serde_json::from_str::<PracticePublicKey>(&r.get::<_, String>(7)?)
                            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e)))?,
                        history: r.get(8)?,
                        created_at: r.get(9)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn mls_welcome(&self, practice: PracticeId, user: UserId) -> StoreResult<Option<(u64, Vec<u8>)>> {
        self.run(move |c| {
            c.query_row(
                "SELECT w.epoch, l.welcome FROM mls_welcomes w JOIN mls_log l ON l.practice_id = w.practice_id AND l.epoch = w.epoch \
                 WHERE w.practice_id = ?1 AND w.user_id = ?2 AND l.welcome IS NOT NULL",
                [practice.as_bytes().as_slice(), user.as_bytes().as_slice()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn mls_roster(&self, practice: PracticeId) -> StoreResult<Vec<UserId>> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT user_id FROM mls_roster WHERE practice_id = ?1 ORDER BY user_id").map_err(backend)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], |r| Ok(UserId(uuid_of(r.get(0)?)?))).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }
}

const REFERRAL_COLS: &str =
    "id, number, from_practice, to_practice, routed_category, routed_sub, body, status, created_at, first_opened_at";

fn referral_row(r: &Row<'_>) -> rusqlite::Result<ReferralRecord> {
    Ok(ReferralRecord {
        id: ReferralId(uuid_of(r.get(0)?)?),
        number: r.get(1)?,
        from_practice: PracticeId(uuid_of(r.get(2)?)?),
        to_practice: PracticeId(uuid_of(r.get(3)?)?),
        routed_category: r.get(4)?,
        routed_sub: r.get(5)?,
        body: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        first_opened_at: r.get(9)?,
    })
}

fn insert_grant(c: &Connection, g: &GrantRecord) -> StoreResult<()> {
    c.execute(
        "INSERT INTO key_grants (practice_id, user_id, epoch, sealed, granted_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (practice_id, user_id, epoch) DO UPDATE SET sealed = excluded.sealed, granted_by = excluded.granted_by, \
         created_at = excluded.created_at",
        params![
            g.practice_id.as_bytes().as_slice(),
            g.user_id.as_bytes().as_slice(),
            g.epoch as i64,
            g.sealed,
            g.granted_by.as_bytes().as_slice(),
            g.created_at
        ],
    )
    .map_err(|e| match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound("practice or user")
        }
        _ => backend(e),
    })?;
    Ok(())
}
