//! [`LimitStore`](crate::LimitStore) on SQLite: rate-limit lock-outs.

use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

use handoff_protocol::UnixMillis;

use super::{SqliteStore, backend, db};
use crate::{LimitError, LimitStore, Lockout, MAX_LOCKOUT_KEY};

#[async_trait]
impl LimitStore for SqliteStore {
    async fn put_lockouts(&self, lockouts: Vec<Lockout>) -> Result<(), LimitError> {
        if let Some(bad) = lockouts.iter().find(|l| l.key.is_empty() || l.key.len() > MAX_LOCKOUT_KEY) {
            return Err(LimitError::BadKey(bad.key.len()));
        }
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            {
                let mut st = tx
                    .prepare(
                        "INSERT INTO rate_lockouts (key, count, until) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (key) DO UPDATE SET count = excluded.count, until = excluded.until",
                    )
                    .map_err(db)?;
                for l in &lockouts {
                    st.execute(params![l.key, l.count, l.until]).map_err(db)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn lockouts(&self, now: UnixMillis) -> Result<Vec<Lockout>, LimitError> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT key, count, until FROM rate_lockouts WHERE until > ?1 ORDER BY key").map_err(db)?;
            let rows = st.query_map(params![now], |r| Ok(Lockout { key: r.get(0)?, count: r.get(1)?, until: r.get(2)? })).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn delete_lockouts(&self, keys: Vec<Vec<u8>>) -> Result<(), LimitError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            {
                let mut st = tx.prepare("DELETE FROM rate_lockouts WHERE key = ?1").map_err(db)?;
                for k in &keys {
                    st.execute(params![k]).map_err(db)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn purge_lockouts(&self, now: UnixMillis) -> Result<u64, LimitError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM rate_lockouts WHERE until <= ?1", params![now]).map_err(db)?;
            Ok(n as u64)
        })
        .await
    }
}
