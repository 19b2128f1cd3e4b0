//! [`ReferralStore`](crate::ReferralStore) on SQLite: referrals, event streams, idempotency, blobs.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, Status, StreamId};
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use super::{CachedRow, SqliteStore, backend, db, is_unique_violation, uuid_of};
use crate::{
    BlobRecord, Chain, Commit, IdemRecord, InboxRecord, InboxSlice, ReferralError, ReferralRecord, ReferralStore, StoredEvent, Submitted,
};

#[async_trait]
impl ReferralStore for SqliteStore {
    async fn commit(&self, cm: Commit) -> Result<Vec<StoredEvent>, ReferralError> {
        self.submit(cm, &Chain::new()).await
    }

    fn submit(&self, cm: Commit, chain: &Chain) -> Submitted {
        self.writer.submit(cm, chain)
    }

    async fn referral(&self, id: ReferralId) -> Result<Option<ReferralRecord>, ReferralError> {
        self.lookup(move |c| {
            c.row(&format!("SELECT {REFERRAL_COLS} FROM referrals WHERE id = ?1"), [id.as_bytes().as_slice()], referral_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn referrals_of(&self, practice: PracticeId, limit: u32) -> Result<Vec<ReferralRecord>, ReferralError> {
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {REFERRAL_COLS} FROM referrals WHERE from_practice = ?1 OR to_practice = ?1 \
                     ORDER BY created_at DESC, id LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![practice.as_bytes().as_slice(), limit], referral_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn routing_counts(
        &self,
        practices: &[PracticeId],
        category: &str,
        sub: Option<&str>,
        excluding: &[ReferralId],
    ) -> Result<Vec<(PracticeId, u64)>, ReferralError> {
        let (ps, cat, sub) = (practices.to_vec(), category.to_owned(), sub.map(str::to_owned));
        // The excluded ids as one blob of 16-byte ids, matched in SQL: one statement, one snapshot.
        let excluded: Vec<u8> = excluding.iter().flat_map(|r| *r.as_bytes()).collect();
        self.read(move |c| {
            let tx = c.transaction().map_err(db)?;
            let mut out = Vec::with_capacity(ps.len());
            {
                let mut st = tx
                    .prepare_cached(
                        "SELECT count(*) FROM referrals WHERE to_practice = ?1 AND routed_category = ?2 \
                         AND (?3 IS NULL OR routed_sub = ?3)",
                    )
                    .map_err(db)?;
                let mut ex = tx
                    .prepare_cached(
                        "WITH RECURSIVE ids(i) AS (SELECT 0 UNION ALL SELECT i + 16 FROM ids WHERE i + 16 < length(?4)) \
                         SELECT count(*) FROM referrals WHERE to_practice = ?1 AND routed_category = ?2 \
                         AND (?3 IS NULL OR routed_sub = ?3) AND id IN (SELECT substr(?4, i + 1, 16) FROM ids)",
                    )
                    .map_err(db)?;
                for p in ps {
                    let n: i64 = st.query_row(params![p.as_bytes().as_slice(), cat, sub], |r| r.get(0)).map_err(db)?;
                    let x: i64 = if excluded.is_empty() {
                        0
                    } else {
                        ex.query_row(params![p.as_bytes().as_slice(), cat, sub, excluded], |r| r.get(0)).map_err(db)?
                    };
                    out.push((p, n.saturating_sub(x) as u64));
                }
            }
            // A read transaction: both counts come from one snapshot.
            tx.commit().map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn events_after(&self, stream: StreamId, after: u64, limit: u32) -> Result<Vec<StoredEvent>, ReferralError> {
        self.read(move |c| {
            let mut st =
                c.prepare_cached("SELECT seq, body FROM events WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3").map_err(db)?;
            let rows = st
                .query_map(params![stream.to_string(), after as i64, limit], |r| {
                    Ok(StoredEvent { stream, seq: r.get::<_, i64>(0)? as u64, body: r.get(1)? })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn stream_head(&self, stream: StreamId) -> Result<u64, ReferralError> {
        self.run(move |c| {
            c.query_row("SELECT coalesce(max(seq), 0) FROM events WHERE stream = ?1", [stream.to_string()], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn purge_idempotency(&self, before: UnixMillis) -> Result<u64, ReferralError> {
        self.run(move |c| c.execute("DELETE FROM idempotency WHERE created_at < ?1", [before]).map(|n| n as u64).map_err(backend)).await
    }

    async fn idem(&self, user: UserId, key: IdemKey) -> Result<Option<IdemRecord>, ReferralError> {
        self.lookup(move |c| {
            c.row(
                "SELECT command, result FROM idempotency WHERE user_id = ?1 AND key = ?2",
                [user.as_bytes().as_slice(), key.as_bytes().as_slice()],
                |r| Ok(IdemRecord { user, key, command: r.get(0)?, result: r.get(1)? }),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_blob(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, now: UnixMillis) -> Result<(), ReferralError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            insert_blob(&tx, id, owner, bytes.len() as i64, true, now)?;
            tx.execute("INSERT INTO blob_chunks (blob, idx, bytes) VALUES (?1, 0, ?2)", params![id.as_bytes().as_slice(), bytes])
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn blob_meta(&self, id: BlobId) -> Result<Option<BlobRecord>, ReferralError> {
        self.lookup(move |c| {
            c.row("SELECT owner, referral, size FROM blobs WHERE id = ?1 AND complete = 1", [id.as_bytes().as_slice()], |r| {
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

    async fn blob_bytes(&self, id: BlobId) -> Result<Option<Vec<u8>>, ReferralError> {
        self.run(move |c| {
            let key = id.as_bytes().as_slice();
            let complete: Option<i64> =
                c.query_row("SELECT 1 FROM blobs WHERE id = ?1 AND complete = 1", [key], |r| r.get(0)).optional().map_err(db)?;
            if complete.is_none() {
                return Ok(None);
            }
            let mut q = c.prepare_cached("SELECT bytes FROM blob_chunks WHERE blob = ?1 ORDER BY idx").map_err(db)?;
            let mut out = Vec::new();
            for chunk in q.query_map([key], |r| r.get::<_, Vec<u8>>(0)).map_err(db)? {
                out.extend_from_slice(&chunk.map_err(db)?);
            }
            Ok(Some(out))
        })
        .await
    }

    async fn begin_blob(&self, id: BlobId, owner: UserId, now: UnixMillis) -> Result<(), ReferralError> {
        self.run(move |c| insert_blob(c, id, owner, 0, false, now)).await
    }

    async fn append_blob_chunk(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, quota: u64) -> Result<u64, ReferralError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let key = id.as_bytes().as_slice();
            let size: i64 = tx
                .query_row(
                    "SELECT size FROM blobs WHERE id = ?1 AND owner = ?2 AND complete = 0",
                    [key, owner.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?
                .ok_or(ReferralError::NoSuchUpload)?;
            let used: i64 = tx
                .query_row("SELECT coalesce(sum(size), 0) FROM blobs WHERE owner = ?1", [owner.as_bytes().as_slice()], |r| r.get(0))
                .map_err(db)?;
            let len = bytes.len() as u64;
            if (used as u64).saturating_add(len) > quota {
                return Err(ReferralError::QuotaExceeded);
            }
            let next: i64 = tx.query_row("SELECT count(*) FROM blob_chunks WHERE blob = ?1", [key], |r| r.get(0)).map_err(db)?;
            tx.execute("INSERT INTO blob_chunks (blob, idx, bytes) VALUES (?1, ?2, ?3)", params![key, next, bytes]).map_err(db)?;
            let size = size + len as i64;
            tx.execute("UPDATE blobs SET size = ?2 WHERE id = ?1", params![key, size]).map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(size as u64)
        })
        .await
    }

    async fn finish_blob(&self, id: BlobId, owner: UserId) -> Result<u64, ReferralError> {
        self.run(move |c| {
            let key = id.as_bytes().as_slice();
            let size: i64 = c
                .query_row(
                    "UPDATE blobs SET complete = 1 WHERE id = ?1 AND owner = ?2 AND complete = 0 RETURNING size",
                    [key, owner.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?
                .ok_or(ReferralError::NoSuchUpload)?;
            Ok(size as u64)
        })
        .await
    }

    async fn discard_upload(&self, id: BlobId, owner: UserId) -> Result<(), ReferralError> {
        self.run(move |c| {
            c.execute(
                "DELETE FROM blobs WHERE id = ?1 AND owner = ?2 AND complete = 0",
                [id.as_bytes().as_slice(), owner.as_bytes().as_slice()],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn blob_chunk(&self, id: BlobId, index: u32) -> Result<Option<Vec<u8>>, ReferralError> {
        self.run(move |c| {
            c.query_row(
                "SELECT k.bytes FROM blob_chunks k JOIN blobs b ON b.id = k.blob WHERE k.blob = ?1 AND k.idx = ?2 AND b.complete = 1",
                params![id.as_bytes().as_slice(), index],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn blob_usage(&self, owner: UserId) -> Result<u64, ReferralError> {
        self.run(move |c| {
            c.query_row("SELECT coalesce(sum(size), 0) FROM blobs WHERE owner = ?1", [owner.as_bytes().as_slice()], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn purge_unattached_blobs(&self, older_than: UnixMillis) -> Result<u64, ReferralError> {
        self.run(move |c| {
            // Chunks go with their blob (ON DELETE CASCADE).
            let n = c.execute("DELETE FROM blobs WHERE referral IS NULL AND created_at < ?1", [older_than]).map_err(db)?;
            Ok(n as u64)
        })
        .await
    }

    async fn inbox_page(
        &self,
        practice: PracticeId,
        me: UserId,
        before: Option<(UnixMillis, ReferralId)>,
        limit: u32,
    ) -> Result<InboxSlice, ReferralError> {
        self.read(move |c| {
            // One read transaction: the rows and both heads are one snapshot.
            let tx = c.transaction().map_err(db)?;
            let p = practice.as_bytes().to_vec();
            let (at, id) = match before {
                Some((at, id)) => (Some(at), Some(id.as_bytes().to_vec())),
                None => (None, None),
            };
            // Each side through its own index (practice, created_at), merged.
            let side = |col: &str| {
                format!(
                    "SELECT {REFERRAL_COLS} FROM referrals WHERE {col} = ?1 \
                     AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3)) \
                     ORDER BY created_at DESC, id DESC LIMIT ?4"
                )
            };
            let sql = format!(
                "SELECT * FROM ({}) UNION SELECT * FROM ({}) ORDER BY created_at DESC, id DESC LIMIT ?4",
                side("to_practice"),
                side("from_practice")
            );
            let rows = {
                let mut st = tx.prepare_cached(&sql).map_err(db)?;
                let rows = st.query_map(params![p, at, id, limit], referral_row).map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            let mut out = Vec::with_capacity(rows.len());
            {
                // An event's author: `by`, or a practice sender's `user` on `referral_sent`.
                let mut st = tx
                    .prepare_cached(
                        "SELECT coalesce(max(seq), 0), coalesce(sum(CASE WHEN json_valid(body) THEN \
                         coalesce(json_extract(body, '$.by'), json_extract(body, '$.referral.from.user')) IS NOT NULL \
                         AND coalesce(json_extract(body, '$.by'), json_extract(body, '$.referral.from.user')) <> ?2 \
                         ELSE 0 END), 0) FROM events WHERE stream = ?1",
                    )
                    .map_err(db)?;
                let me = me.to_string();
                for r in rows {
                    let (seq, foreign) = st
                        .query_row(params![StreamId::Referral(r.id).to_string(), me], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                        })
                        .map_err(db)?;
                    out.push(InboxRecord { referral: r, seq: seq as u64, foreign: foreign as u64 });
                }
            }
            let head: i64 = tx
                .query_row("SELECT coalesce(max(seq), 0) FROM events WHERE stream = ?1", [StreamId::Practice(practice).to_string()], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok::<_, ReferralError>(InboxSlice { rows: out, head: head as u64 })
        })
        .await
    }
}

/// Inserts a blob's metadata row ([`ReferralError::BlobExists`] if the id exists).
fn insert_blob(
    c: &rusqlite::Connection,
    id: BlobId,
    owner: UserId,
    size: i64,
    complete: bool,
    now: UnixMillis,
) -> Result<(), ReferralError> {
    c.execute(
        "INSERT INTO blobs (id, owner, referral, size, complete, created_at) VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
        params![id.as_bytes().as_slice(), owner.as_bytes().as_slice(), size, complete, now],
    )
    .map_err(|e| if is_unique_violation(&e) { ReferralError::BlobExists } else { backend(e) })?;
    Ok(())
}

const REFERRAL_COLS: &str =
    "id, number, from_practice, to_practice, routed_category, routed_sub, body, status, created_at, first_opened_at, free_email";

fn referral_row(r: &Row<'_>) -> rusqlite::Result<ReferralRecord> {
    Ok(ReferralRecord {
        id: ReferralId(uuid_of(r.get(0)?)?),
        number: r.get(1)?,
        from_practice: r.get::<_, Option<Vec<u8>>>(2)?.map(uuid_of).transpose()?.map(PracticeId),
        to_practice: PracticeId(uuid_of(r.get(3)?)?),
        routed_category: r.get(4)?,
        routed_sub: r.get(5)?,
        body: r.get(6)?,
        status: status_of(&r.get::<_, String>(7)?)?,
        created_at: r.get(8)?,
        first_opened_at: r.get(9)?,
        free_email: r.get(10)?,
    })
}

/// The stored text of a status: the same snake_case words as the protocol's JSON.
pub(super) fn status_text(s: Status) -> &'static str {
    match s {
        Status::Sent => "sent",
        Status::Accepted => "accepted",
        Status::Rejected => "rejected",
        Status::Cancelled => "cancelled",
    }
}

fn status_of(s: &str) -> rusqlite::Result<Status> {
    Ok(match s {
        "sent" => Status::Sent,
        "accepted" => Status::Accepted,
        "rejected" => Status::Rejected,
        "cancelled" => Status::Cancelled,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                7,
                rusqlite::types::Type::Text,
                format!("unknown referral status {other:?}").into(),
            ));
        }
    })
}
