//! [`PracticeStore`](crate::PracticeStore) on SQLite: practices, members, grants, invites, notification preferences.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use handoff_protocol::v1::{Intake, PracticeKind, PracticePublicKey, Role};
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use super::{CachedRow, SqliteStore, USER_COLS, backend, changed, db, is_unique_violation, json_err, role_of, role_str, user_row, uuid_of};
use crate::{GrantRecord, InviteQuota, InviteRecord, MemberRecord, PracticeError, PracticeRecord, PracticeStore, Terms};

#[async_trait]
impl PracticeStore for SqliteStore {
    async fn create_practice(&self, p: PracticeRecord, g: GrantRecord) -> Result<(), PracticeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let retired: Option<i64> = tx
                .query_row("SELECT 1 FROM practice_tombstones WHERE id = ?1", [p.id.as_bytes().as_slice()], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if retired.is_some() {
                return Err(PracticeError::PracticeIdRetired);
            }
            tx.execute(
                "INSERT INTO practices (id, name, kind, specialty, region, intake, verified, paused, key_epoch, public_key, created_by, created_at, \
                 accepts_free) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    p.id.as_bytes().as_slice(),
                    p.name,
                    match p.kind {
                        PracticeKind::Referring => "referring",
                        PracticeKind::Specialist => "specialist",
                    },
                    p.specialty,
                    p.region,
                    serde_json::to_string(&p.intake).map_err(db)?,
                    p.verified,
                    p.paused,
                    p.key_epoch as i64,
                    serde_json::to_string(&p.public_key).map_err(db)?,
                    p.created_by.as_bytes().as_slice(),
                    p.created_at,
                    p.accepts_free
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { PracticeError::PracticeExists } else { backend(e) })?;
            tx.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at) VALUES (?1, ?2, 'admin', ?3)",
                params![p.id.as_bytes().as_slice(), p.created_by.as_bytes().as_slice(), p.created_at],
            )
            .map_err(db)?;
            insert_grant(&tx, &g)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn practice(&self, id: PracticeId) -> Result<Option<PracticeRecord>, PracticeError> {
        self.lookup(move |c| {
            c.row(&format!("SELECT {PRACTICE_COLS} FROM practices p WHERE p.id = ?1"), [id.as_bytes().as_slice()], practice_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn practices_of(&self, user: UserId) -> Result<Vec<(PracticeRecord, Role)>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS}, m.role FROM practices p JOIN members m ON m.practice_id = p.id \
                     WHERE m.user_id = ?1 ORDER BY p.created_at, p.id"
                ))
                .map_err(db)?;
            let rows = st
                .query_map([user.as_bytes().as_slice()], |r| {
                    let role: String = r.get(13)?;
                    Ok((practice_row(r)?, role_of(&role)))
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn all_practices(&self) -> Result<Vec<(PracticeRecord, u32)>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS}, (SELECT count(*) FROM members m WHERE m.practice_id = p.id) \
                     FROM practices p ORDER BY p.created_at, p.id"
                ))
                .map_err(db)?;
            let rows = st.query_map([], |r| Ok((practice_row(r)?, r.get::<_, u32>(13)?))).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn directory(&self, specialty: Option<&str>, region: Option<&str>) -> Result<Vec<PracticeRecord>, PracticeError> {
        let (s, r) = (specialty.map(str::to_owned), region.map(str::to_owned));
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {PRACTICE_COLS} FROM practices p WHERE p.kind = 'specialist' AND p.verified = 1 AND p.paused = 0 \
                     AND (?1 IS NULL OR p.specialty = ?1) AND (?2 IS NULL OR p.region = ?2) ORDER BY p.name, p.id"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![s, r], practice_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_practice(&self, id: PracticeId) -> Result<(), PracticeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let n = tx.execute("DELETE FROM practices WHERE id = ?1", [id.as_bytes().as_slice()]).map_err(db)?;
            changed(n, PracticeError::NoSuchPractice)?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            tx.execute(
                "INSERT OR IGNORE INTO practice_tombstones (id, deleted_at) VALUES (?1, ?2)",
                params![id.as_bytes().as_slice(), now],
            )
            .map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_verified(&self, id: PracticeId, verified: bool) -> Result<(), PracticeError> {
        self.run(move |c| {
            let n =
                c.execute("UPDATE practices SET verified = ?2 WHERE id = ?1", params![id.as_bytes().as_slice(), verified]).map_err(db)?;
            changed(n, PracticeError::NoSuchPractice)
        })
        .await
    }

    async fn set_paused(&self, id: PracticeId, paused: bool) -> Result<(), PracticeError> {
        self.run(move |c| {
            let n = c.execute("UPDATE practices SET paused = ?2 WHERE id = ?1", params![id.as_bytes().as_slice(), paused]).map_err(db)?;
            changed(n, PracticeError::NoSuchPractice)
        })
        .await
    }

    async fn role(&self, practice: PracticeId, user: UserId) -> Result<Option<Role>, PracticeError> {
        self.lookup(move |c| {
            c.row(
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

    async fn members(&self, practice: PracticeId) -> Result<Vec<MemberRecord>, PracticeError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {USER_COLS}, m.role, m.joined_at, m.notify_email, m.starts_at, m.ends_at, m.sponsor FROM members m \
                     JOIN users u ON u.id = m.user_id \
                     WHERE m.practice_id = ?1 ORDER BY m.joined_at, u.id"
                ))
                .map_err(db)?;
            let rows = st
                .query_map([practice.as_bytes().as_slice()], |r| {
                    let role: String = r.get(13)?;
                    let sponsor: Option<Vec<u8>> = r.get(18)?;
                    Ok(MemberRecord {
                        user: user_row(r)?,
                        role: role_of(&role),
                        joined_at: r.get(14)?,
                        notify_email: r.get(15)?,
                        terms: Terms { starts_at: r.get(16)?, ends_at: r.get(17)?, sponsor: sponsor.map(uuid_of).transpose()?.map(UserId) },
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn add_member(&self, practice: PracticeId, user: UserId, role: Role, now: UnixMillis) -> Result<(), PracticeError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
                params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), role_str(role), now],
            )
            .map_err(|e| if is_unique_violation(&e) { PracticeError::AlreadyMember } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn remove_member(&self, practice: PracticeId, user: UserId) -> Result<(), PracticeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let p = practice.as_bytes().as_slice();
            let u = user.as_bytes().as_slice();
            let role: Option<String> = tx
                .query_row("SELECT role FROM members WHERE practice_id = ?1 AND user_id = ?2", [p, u], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let Some(role) = role else { return Err(PracticeError::NotMember) };
            if role == "admin" {
                let admins: i64 = tx
                    .query_row("SELECT count(*) FROM members WHERE practice_id = ?1 AND role = 'admin'", [p], |r| r.get(0))
                    .map_err(db)?;
                if admins <= 1 {
                    return Err(PracticeError::LastAdmin);
                }
            }
            tx.execute("DELETE FROM members WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(db)?;
            tx.execute("DELETE FROM key_grants WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn put_grant(&self, g: GrantRecord) -> Result<(), PracticeError> {
        self.run(move |c| insert_grant(c, &g)).await
    }

    async fn grant(&self, practice: PracticeId, user: UserId, epoch: u64) -> Result<Option<GrantRecord>, PracticeError> {
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

    async fn create_invite(&self, i: InviteRecord) -> Result<(), PracticeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            insert_invite(&tx, &i)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn create_invite_within(&self, i: InviteRecord, quota: InviteQuota) -> Result<(), PracticeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let now = i.created_at;
            // (count, oldest) of the invites counted in a window.
            let window = |sql: &str, key: &[u8], since: UnixMillis| -> Result<(u32, Option<UnixMillis>), PracticeError> {
                tx.query_row(sql, params![key, since], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)
            };
            let user_since = now.saturating_sub(quota.user_window_ms);
            let (by_user, oldest_user) = window(
                "SELECT count(*), min(created_at) FROM invites_sent WHERE invited_by = ?1 AND created_at > ?2",
                i.invited_by.as_bytes().as_slice(),
                user_since,
            )?;
            if by_user >= quota.per_user {
                return Err(PracticeError::InviteQuotaExceeded { retry_at: oldest_user.unwrap_or(now) + quota.user_window_ms });
            }
            let practice_since = now.saturating_sub(quota.practice_window_ms);
            let (by_practice, oldest_practice) = window(
                "SELECT count(*), min(created_at) FROM invites_sent WHERE practice_id = ?1 AND created_at > ?2",
                i.practice_id.as_bytes().as_slice(),
                practice_since,
            )?;
            if by_practice >= quota.per_practice {
                return Err(PracticeError::InviteQuotaExceeded { retry_at: oldest_practice.unwrap_or(now) + quota.practice_window_ms });
            }
            insert_invite(&tx, &i)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn invite(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>, PracticeError> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            c.query_row(
                "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at, starts_at, ends_at FROM invites WHERE token_hash = ?1",
                [th],
                invite_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn invites_of(&self, practice: PracticeId) -> Result<Vec<InviteRecord>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at, starts_at, ends_at FROM invites \
                     WHERE practice_id = ?1 ORDER BY created_at",
                )
                .map_err(db)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], invite_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn accept_invite(&self, token_hash: &[u8], user: UserId, now: UnixMillis) -> Result<(), PracticeError> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let inv = tx
                .query_row(
                    "SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at, starts_at, ends_at FROM invites WHERE token_hash = ?1",
                    [&th],
                    invite_row,
                )
                .optional()
                .map_err(db)?
                .ok_or(PracticeError::InviteUsed)?;
            // A delegate acts on behalf of whoever invited them.
            let sponsor = (inv.role == Role::Delegate).then(|| inv.invited_by.as_bytes().to_vec());
            tx.execute(
                "INSERT INTO members (practice_id, user_id, role, joined_at, starts_at, ends_at, sponsor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    inv.practice_id.as_bytes().as_slice(),
                    user.as_bytes().as_slice(),
                    role_str(inv.role),
                    now,
                    inv.starts_at,
                    inv.ends_at,
                    sponsor
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { PracticeError::AlreadyMember } else { backend(e) })?;
            tx.execute("DELETE FROM invites WHERE token_hash = ?1", [&th]).map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn purge_invites(&self, now: UnixMillis) -> Result<u64, PracticeError> {
        self.run(move |c| c.execute("DELETE FROM invites WHERE expires_at < ?1", [now]).map(|n| n as u64).map_err(backend)).await
    }

    async fn set_notify_email(&self, practice: PracticeId, user: UserId, on: bool) -> Result<(), PracticeError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE members SET notify_email = ?3 WHERE practice_id = ?1 AND user_id = ?2",
                    params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), on],
                )
                .map_err(db)?;
            changed(n, PracticeError::NotMember)
        })
        .await
    }

    async fn email_recipients(&self, practice: PracticeId) -> Result<Vec<String>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT u.email FROM members m JOIN users u ON u.id = m.user_id \
                     WHERE m.practice_id = ?1 AND m.notify_email = 1 ORDER BY u.email",
                )
                .map_err(db)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(backend)
        })
        .await
    }

    async fn set_require_two_factor(&self, practice: PracticeId, required: bool) -> Result<(), PracticeError> {
        self.run(move |c| {
            let n = c
                .execute("UPDATE practices SET require_2fa = ?2 WHERE id = ?1", params![practice.as_bytes().as_slice(), required])
                .map_err(db)?;
            changed(n, PracticeError::NoSuchPractice)
        })
        .await
    }

    async fn two_factor_missing(&self, practice: PracticeId, user: UserId) -> Result<bool, PracticeError> {
        self.lookup(move |c| {
            c.row(
                "SELECT p.require_2fa = 1 AND NOT EXISTS \
                 (SELECT 1 FROM user_totp t WHERE t.user_id = ?2 AND t.enabled_at IS NOT NULL) \
                 FROM practices p WHERE p.id = ?1",
                params![practice.as_bytes().as_slice(), user.as_bytes().as_slice()],
                |r| r.get::<_, bool>(0),
            )
            .optional()
            .map(|v| v.unwrap_or(false))
            .map_err(backend)
        })
        .await
    }
}

const PRACTICE_COLS: &str = "p.id, p.name, p.kind, p.specialty, p.region, p.intake, p.verified, p.paused, p.key_epoch, p.public_key, p.created_by, p.created_at, \
     p.accepts_free";

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
        accepts_free: r.get(12)?,
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
        starts_at: r.get(7)?,
        ends_at: r.get(8)?,
    })
}

fn insert_grant(c: &Connection, g: &GrantRecord) -> Result<(), PracticeError> {
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
            PracticeError::GrantTargetMissing
        }
        _ => backend(e),
    })?;
    Ok(())
}

/// Inserts an invite and counts it as sent, in the caller's transaction.
fn insert_invite(tx: &rusqlite::Transaction<'_>, i: &InviteRecord) -> Result<(), PracticeError> {
    tx.execute(
        "INSERT INTO invites (token_hash, practice_id, email, role, invited_by, created_at, expires_at, starts_at, ends_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            i.token_hash,
            i.practice_id.as_bytes().as_slice(),
            i.email,
            role_str(i.role),
            i.invited_by.as_bytes().as_slice(),
            i.created_at,
            i.expires_at,
            i.starts_at,
            i.ends_at
        ],
    )
    .map_err(|e| if is_unique_violation(&e) { PracticeError::InviteExists } else { backend(e) })?;
    tx.execute(
        "INSERT INTO invites_sent (practice_id, invited_by, created_at) VALUES (?1, ?2, ?3)",
        params![i.practice_id.as_bytes().as_slice(), i.invited_by.as_bytes().as_slice(), i.created_at],
    )
    .map_err(db)?;
    Ok(())
}
