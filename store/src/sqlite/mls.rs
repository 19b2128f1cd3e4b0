//! [`MlsStore`](crate::MlsStore) on SQLite: key packages, sealed states, the MLS log.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use handoff_protocol::v1::PracticePublicKey;
use handoff_protocol::ws::{ReferralId, StreamId};
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use super::{SqliteStore, backend, changed, db, is_unique_violation, uuid_of};
use crate::{MlsEntryRecord, MlsError, MlsStore, StoredEvent, UnreadableReferral};

#[async_trait]
impl MlsStore for SqliteStore {
    async fn publish_key_packages(&self, user: UserId, kps: Vec<(Vec<u8>, Vec<u8>)>, now: UnixMillis) -> Result<u32, MlsError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let u = user.as_bytes().as_slice();
            for (hash, kp) in &kps {
                tx.execute(
                    "INSERT INTO mls_key_packages (hash, user_id, key_package, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash, u, kp, now],
                )
                .map_err(|e| if is_unique_violation(&e) { MlsError::KeyPackageReused } else { backend(e) })?;
            }
            let n: i64 = tx
                .query_row("SELECT count(*) FROM mls_key_packages WHERE user_id = ?1 AND key_package IS NOT NULL", [u], |r| r.get(0))
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(n as u32)
        })
        .await
    }

    async fn claim_key_package(&self, user: UserId, by: UserId, now: UnixMillis) -> Result<Option<Vec<u8>>, MlsError> {
        self.run(move |c| {
            // Picked and emptied in one immediate transaction, so no key package is handed out twice.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row(
                    "SELECT hash, key_package FROM mls_key_packages WHERE user_id = ?1 AND key_package IS NOT NULL \
                     ORDER BY created_at, hash LIMIT 1",
                    [user.as_bytes().as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((hash, kp)) = row else { return Ok(None) };
            let n = tx
                .execute(
                    "UPDATE mls_key_packages SET key_package = NULL, claimed_by = ?2, claimed_at = ?3 WHERE hash = ?1 AND key_package IS NOT NULL",
                    params![hash, by.as_bytes().as_slice(), now],
                )
                .map_err(db)?;
            changed(n, MlsError::KeyPackageClaimed)?;
            tx.commit().map_err(db)?;
            Ok(Some(kp))
        })
        .await
    }

    async fn key_package_count(&self, user: UserId) -> Result<u32, MlsError> {
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

    async fn mls_state(&self, user: UserId) -> Result<Option<(u64, Vec<u8>)>, MlsError> {
        self.run(move |c| {
            c.query_row("SELECT version, sealed FROM mls_states WHERE user_id = ?1", [user.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_mls_state(&self, user: UserId, expected: u64, sealed: Vec<u8>, now: UnixMillis) -> Result<u64, MlsError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let u = user.as_bytes().as_slice();
            let current: u64 = tx
                .query_row("SELECT version FROM mls_states WHERE user_id = ?1", [u], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(db)?
                .unwrap_or(0) as u64;
            if current != expected {
                return Err(MlsError::StaleState);
            }
            let next = current + 1;
            tx.execute(
                "INSERT INTO mls_states (user_id, version, sealed, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, sealed = excluded.sealed, updated_at = excluded.updated_at",
                params![u, next as i64, sealed, now],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(next)
        })
        .await
    }

    async fn mls_append(&self, e: MlsEntryRecord, public_state: Vec<u8>, event: String) -> Result<StoredEvent, MlsError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let p = e.practice_id.as_bytes().as_slice();
            let current: i64 =
                tx.query_row("SELECT coalesce(max(epoch), 0) FROM mls_log WHERE practice_id = ?1", [p], |r| r.get(0)).map_err(db)?;
            if e.epoch != current as u64 + 1 {
                return Err(MlsError::StaleEpoch);
            }
            let ids = |v: &[UserId]| serde_json::to_string(v).map_err(db);
            let generation: i64 =
                tx.query_row("SELECT coalesce(max(generation), 0) FROM mls_log WHERE practice_id = ?1", [p], |r| r.get(0)).map_err(db)?;
            let reinit = e.epoch > 1 && i64::from(e.generation) > generation;
            if reinit {
                // A new MLS group for the practice: the epochs it skips are revoked,
                // and its membership starts again from its creator.
                tx.execute("UPDATE mls_log SET revoked = 1 WHERE practice_id = ?1 AND epoch > ?2", params![p, e.links_to as i64])
                    .map_err(db)?;
                tx.execute("DELETE FROM mls_roster WHERE practice_id = ?1", [p]).map_err(db)?;
                tx.execute("DELETE FROM mls_welcomes WHERE practice_id = ?1", [p]).map_err(db)?;
            }
            tx.execute(
                "INSERT INTO mls_log (practice_id, epoch, committer, commit_msg, welcome, added, removed, public_key, history, created_at, \
                 generation, links_to) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    p,
                    e.epoch as i64,
                    e.committer.as_bytes().as_slice(),
                    e.commit,
                    e.welcome,
                    ids(&e.added)?,
                    ids(&e.removed)?,
                    serde_json::to_string(&e.public_key).map_err(db)?,
                    e.history,
                    e.created_at,
                    e.generation,
                    e.links_to as i64
                ],
            )
            .map_err(|x| if is_unique_violation(&x) { MlsError::StaleEpoch } else { backend(x) })?;
            if e.epoch == 1 || reinit {
                tx.execute(
                    "INSERT OR IGNORE INTO mls_roster (practice_id, user_id) VALUES (?1, ?2)",
                    [p, e.committer.as_bytes().as_slice()],
                )
                .map_err(db)?;
            }
            for u in &e.added {
                let u = u.as_bytes().as_slice();
                tx.execute("INSERT OR IGNORE INTO mls_roster (practice_id, user_id) VALUES (?1, ?2)", [p, u]).map_err(db)?;
                if e.welcome.is_some() {
                    tx.execute(
                        "INSERT INTO mls_welcomes (practice_id, user_id, epoch) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (practice_id, user_id) DO UPDATE SET epoch = excluded.epoch",
                        params![p, u, e.epoch as i64],
                    )
                    .map_err(db)?;
                }
            }
            for u in &e.removed {
                let u = u.as_bytes().as_slice();
                tx.execute("DELETE FROM mls_roster WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(db)?;
                tx.execute("DELETE FROM mls_welcomes WHERE practice_id = ?1 AND user_id = ?2", [p, u]).map_err(db)?;
            }
            let n = tx
                .execute(
                    "UPDATE practices SET key_epoch = ?2, public_key = ?3 WHERE id = ?1",
                    params![p, e.epoch as i64, serde_json::to_string(&e.public_key).map_err(db)?],
                )
                .map_err(db)?;
            changed(n, MlsError::NoSuchPractice)?;
            tx.execute(
                "INSERT INTO mls_public_state (practice_id, epoch, snapshot) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (practice_id) DO UPDATE SET epoch = excluded.epoch, snapshot = excluded.snapshot",
                params![p, e.epoch as i64, public_state],
            )
            .map_err(db)?;
            let stream = StreamId::Practice(e.practice_id);
            let key = stream.to_string();
            let seq: i64 =
                tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events WHERE stream = ?1", [&key], |r| r.get(0)).map_err(db)?;
            tx.execute(
                "INSERT INTO events (stream, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key, seq, event, e.created_at],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(StoredEvent { stream, seq: seq as u64, body: event })
        })
        .await
    }

    async fn mls_epoch(&self, practice: PracticeId) -> Result<u64, MlsError> {
        self.run(move |c| {
            c.query_row("SELECT coalesce(max(epoch), 0) FROM mls_log WHERE practice_id = ?1", [practice.as_bytes().as_slice()], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn mls_log(&self, practice: PracticeId, after: u64, limit: u32) -> Result<Vec<MlsEntryRecord>, MlsError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT practice_id, epoch, committer, commit_msg, welcome, added, removed, public_key, history, created_at, \
                     generation, coalesce(links_to, epoch - 1), revoked \
                     FROM mls_log WHERE practice_id = ?1 AND epoch > ?2 ORDER BY epoch LIMIT ?3",
                )
                .map_err(db)?;
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
                        generation: r.get(10)?,
                        links_to: r.get::<_, i64>(11)? as u64,
                        revoked: r.get::<_, i64>(12)? != 0,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn mls_welcome(&self, practice: PracticeId, user: UserId) -> Result<Option<(u64, Vec<u8>)>, MlsError> {
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

    async fn mls_roster(&self, practice: PracticeId) -> Result<Vec<UserId>, MlsError> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT user_id FROM mls_roster WHERE practice_id = ?1 ORDER BY user_id").map_err(db)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], |r| Ok(UserId(uuid_of(r.get(0)?)?))).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn forget_welcome(&self, practice: PracticeId, user: UserId, epoch: u64) -> Result<bool, MlsError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let p = practice.as_bytes().as_slice();
            let made: Option<i64> = tx
                .query_row(
                    "DELETE FROM mls_welcomes WHERE practice_id = ?1 AND user_id = ?2 AND epoch <= ?3 RETURNING epoch",
                    params![p, user.as_bytes().as_slice(), i64::try_from(epoch).unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            if let Some(made) = made {
                // Nobody else awaits this welcome: its bytes go.
                tx.execute(
                    "UPDATE mls_log SET welcome = NULL WHERE practice_id = ?1 AND epoch = ?2 \
                     AND NOT EXISTS (SELECT 1 FROM mls_welcomes WHERE practice_id = ?1 AND epoch = ?2)",
                    params![p, made],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)?;
            Ok(made.is_some())
        })
        .await
    }

    async fn mls_public_state(&self, practice: PracticeId) -> Result<Option<(u64, Vec<u8>)>, MlsError> {
        self.run(move |c| {
            c.query_row("SELECT epoch, snapshot FROM mls_public_state WHERE practice_id = ?1", [practice.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn mls_report(&self, practice: PracticeId, epoch: u64, user: UserId, now: UnixMillis) -> Result<(), MlsError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let p = practice.as_bytes().as_slice();
            let n: i64 = tx
                .query_row("SELECT count(*) FROM mls_log WHERE practice_id = ?1 AND epoch = ?2", params![p, epoch as i64], |r| r.get(0))
                .map_err(db)?;
            changed(n as usize, MlsError::NoSuchEntry)?;
            tx.execute(
                "INSERT OR IGNORE INTO mls_reports (practice_id, epoch, user_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![p, epoch as i64, user.as_bytes().as_slice(), now],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok::<(), MlsError>(())
        })
        .await
    }

    async fn mls_reported(&self, practice: PracticeId) -> Result<Option<u64>, MlsError> {
        self.run(move |c| {
            // Reports of the current generation only: an earlier one was recovered from.
            c.query_row(
                "SELECT min(r.epoch) FROM mls_reports r WHERE r.practice_id = ?1 AND r.epoch > \
                 (SELECT coalesce(min(epoch), 0) FROM mls_log WHERE practice_id = ?1 \
                  AND generation = (SELECT coalesce(max(generation), 0) FROM mls_log WHERE practice_id = ?1))",
                [practice.as_bytes().as_slice()],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|e| e.map(|e| e as u64))
            .map_err(backend)
        })
        .await
    }

    async fn mls_unreadable(&self, from: PracticeId, limit: u32) -> Result<Vec<UnreadableReferral>, MlsError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT r.id, r.to_practice, l.epoch FROM referrals r \
                     JOIN mls_log l ON l.practice_id = r.to_practice AND l.epoch = json_extract(r.body, '$.to_key.epoch') \
                     WHERE r.from_practice = ?1 AND l.revoked = 1 ORDER BY r.created_at LIMIT ?2",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![from.as_bytes().as_slice(), limit as i64], |r| {
                    Ok(UnreadableReferral {
                        referral: ReferralId(uuid_of(r.get(0)?)?),
                        to_practice: PracticeId(uuid_of(r.get(1)?)?),
                        epoch: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }
}
