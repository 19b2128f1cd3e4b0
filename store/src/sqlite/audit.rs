//! [`AuditStore`](crate::AuditStore) on SQLite: the audit chains.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use handoff_protocol::audit::AuditAction;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use super::{SqliteStore, backend, db};
use crate::{
    AuditAnchor, AuditChain, AuditError, AuditFilter, AuditRecord, AuditStore, GENESIS, MAX_AUDIT_FIELD, NewAuditEntry, entry_hash,
};

/// The chain key: the practice's id, or no bytes for the platform chain.
fn chain_key(p: Option<PracticeId>) -> Vec<u8> {
    p.map(|p| p.as_bytes().to_vec()).unwrap_or_default()
}

fn id16(b: Option<Vec<u8>>, what: &str) -> Result<Option<[u8; 16]>, String> {
    match b {
        None => Ok(None),
        Some(b) => <[u8; 16]>::try_from(b.as_slice()).map(Some).map_err(|_| format!("{what} is {} bytes, not 16", b.len())),
    }
}

fn chain_of(key: &[u8]) -> Result<Option<PracticeId>, String> {
    if key.is_empty() { Ok(None) } else { id16(Some(key.to_vec()), "the chain key").map(|b| b.map(PracticeId::from_bytes)) }
}

const COLS: &str = "chain, seq, at, actor, on_behalf_of, action, target, address, prev_hash, hash";

/// Decodes one row; a row that does not decode names its chain and seq.
fn record(r: &Row<'_>) -> rusqlite::Result<Result<AuditRecord, AuditError>> {
    let key: Vec<u8> = r.get(0)?;
    let seq: i64 = r.get(1)?;
    let seq = seq.max(0) as u64;
    let practice = chain_of(&key);
    let fields = (|| -> Result<AuditRecord, String> {
        let practice = chain_of(&key)?;
        let action: String = r.get(5).map_err(|e| e.to_string())?;
        let action = action.parse::<AuditAction>().map_err(|e| e.to_string())?;
        Ok(AuditRecord {
            seq,
            entry: NewAuditEntry {
                at: r.get(2).map_err(|e| e.to_string())?,
                actor: id16(r.get(3).map_err(|e| e.to_string())?, "the actor")?.map(UserId::from_bytes),
                on_behalf_of: id16(r.get(4).map_err(|e| e.to_string())?, "on_behalf_of")?.map(UserId::from_bytes),
                practice,
                action,
                target: r.get(6).map_err(|e| e.to_string())?,
                address: r.get(7).map_err(|e| e.to_string())?,
            },
            prev_hash: r.get(8).map_err(|e| e.to_string())?,
            hash: r.get(9).map_err(|e| e.to_string())?,
        })
    })();
    Ok(fields.map_err(|reason| AuditError::Unreadable { practice: practice.unwrap_or(None), seq, reason }))
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<Result<AuditRecord, AuditError>>>) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(backend::<AuditError>)??);
    }
    Ok(out)
}

/// Appends `entry` to its chain inside `tx`, an open transaction that holds
/// the write lock (the group-commit writer's batch), so no other writer can
/// append between reading the head and the insert.
pub(super) fn append(tx: &Connection, entry: NewAuditEntry) -> Result<AuditRecord, AuditError> {
    let key = chain_key(entry.practice);
    let (last, prev_hash) = head(tx, &key)?;
    let seq = last + 1;
    let hash = entry_hash(&prev_hash, seq, &entry);
    tx.prepare_cached(&format!("INSERT INTO audit ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))
        .map_err(db)?
        .execute(params![
            key,
            seq as i64,
            entry.at,
            entry.actor.map(|u| u.as_bytes().to_vec()),
            entry.on_behalf_of.map(|u| u.as_bytes().to_vec()),
            entry.action.as_str(),
            entry.target,
            entry.address,
            prev_hash,
            hash
        ])
        .map_err(db)?;
    Ok(AuditRecord { seq, entry, prev_hash, hash })
}

/// The chain's head inside `tx`: the newest entry's seq and hash, else the anchor's, else the genesis.
fn head(tx: &Connection, key: &[u8]) -> Result<(u64, Vec<u8>), AuditError> {
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit WHERE chain = ?1 ORDER BY seq DESC LIMIT 1")
        .map_err(db)?
        .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?;
    let last = match last {
        Some(l) => Some(l),
        None => tx
            .prepare_cached("SELECT seq, hash FROM audit_anchors WHERE chain = ?1")
            .map_err(db)?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db)?,
    };
    Ok(last.map(|(s, h)| (s.max(0) as u64, h)).unwrap_or((0, GENESIS.to_vec())))
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditRecord, AuditError> {
        for f in [&entry.target, &entry.address].into_iter().flatten() {
            if f.len() > MAX_AUDIT_FIELD {
                return Err(AuditError::FieldTooLong(f.len()));
            }
        }
        // Through the group-commit writer: the entry shares the fsync of the
        // referral commits (and other entries) queued with it, and nobody
        // waits on the main connection for the write lock meanwhile.
        self.writer.append_audit(entry).await
    }

    async fn audit_entries(&self, f: AuditFilter) -> Result<Vec<AuditRecord>, AuditError> {
        self.run(move |c| {
            let mut sql = format!("SELECT {COLS} FROM audit WHERE chain = ?");
            let mut args: Vec<Value> = vec![Value::Blob(chain_key(f.practice))];
            if let Some(m) = f.member {
                sql.push_str(" AND (actor = ? OR on_behalf_of = ?)");
                args.push(Value::Blob(m.as_bytes().to_vec()));
                args.push(Value::Blob(m.as_bytes().to_vec()));
            }
            if let Some(a) = f.action {
                sql.push_str(" AND action = ?");
                args.push(Value::Text(a.as_str().into()));
            }
            if let Some(t) = f.target {
                sql.push_str(" AND target = ?");
                args.push(Value::Text(t));
            }
            if let Some(t) = f.from {
                sql.push_str(" AND at >= ?");
                args.push(Value::Integer(t));
            }
            if let Some(t) = f.until {
                sql.push_str(" AND at < ?");
                args.push(Value::Integer(t));
            }
            if let Some(b) = f.before {
                sql.push_str(" AND seq < ?");
                args.push(Value::Integer(i64::try_from(b).unwrap_or(i64::MAX)));
            }
            sql.push_str(" ORDER BY seq DESC LIMIT ?");
            args.push(Value::Integer(i64::from(f.limit)));
            let mut st = c.prepare(&sql).map_err(db)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), record).map_err(db)?;
            collect(rows)
        })
        .await
    }

    async fn audit_chains(&self) -> Result<Vec<AuditChain>, AuditError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT k.chain, a.seq, a.hash FROM \
                     (SELECT DISTINCT chain FROM audit UNION SELECT chain FROM audit_anchors) k \
                     LEFT JOIN audit_anchors a ON a.chain = k.chain ORDER BY k.chain",
                )
                .map_err(db)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<Vec<u8>>>(2)?)))
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (key, seq, hash) = row.map_err(db)?;
                let practice = chain_of(&key).map_err(|reason| AuditError::Unreadable {
                    practice: None,
                    seq: seq.unwrap_or(0).max(0) as u64,
                    reason,
                })?;
                let anchor = match (seq, hash) {
                    (Some(s), Some(h)) => Some(AuditAnchor { seq: s.max(0) as u64, hash: h }),
                    _ => None,
                };
                out.push(AuditChain { practice, anchor });
            }
            Ok(out)
        })
        .await
    }

    async fn audit_walk(&self, practice: Option<PracticeId>, after: u64, limit: u32) -> Result<Vec<AuditRecord>, AuditError> {
        self.run(move |c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM audit WHERE chain = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")).map_err(db)?;
            let rows = st.query_map(params![chain_key(practice), i64::try_from(after).unwrap_or(i64::MAX), limit], record).map_err(db)?;
            collect(rows)
        })
        .await
    }

    async fn prune_audit(&self, cutoff: UnixMillis) -> Result<u64, AuditError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let cuts: Vec<(Vec<u8>, i64, Vec<u8>)> = {
                let mut st = tx
                    .prepare(
                        "SELECT a.chain, a.seq, a.hash FROM audit a \
                         JOIN (SELECT chain, MAX(seq) AS seq FROM audit WHERE at < ?1 GROUP BY chain) m \
                         ON a.chain = m.chain AND a.seq = m.seq",
                    )
                    .map_err(db)?;
                let rows = st.query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db)?;
                rows.collect::<Result<_, _>>().map_err(db)?
            };
            let mut deleted = 0u64;
            for (key, seq, hash) in cuts {
                deleted += tx.execute("DELETE FROM audit WHERE chain = ?1 AND seq <= ?2", params![key, seq]).map_err(db)? as u64;
                tx.execute(
                    "INSERT INTO audit_anchors (chain, seq, hash) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    params![key, seq, hash],
                )
                .map_err(db)?;
            }
            tx.commit().map_err(db)?;
            Ok(deleted)
        })
        .await
    }
}
