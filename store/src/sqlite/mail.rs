//! [`MailStore`](crate::MailStore) on SQLite: the mail outbox.

use async_trait::async_trait;
use rusqlite::params;

use handoff_protocol::UnixMillis;

use super::{SqliteStore, backend, changed, db};
use crate::{MailError, MailRecord, MailStore, NewMail, Outbox};

#[async_trait]
impl MailStore for SqliteStore {
    async fn enqueue_mail(&self, m: NewMail) -> Result<i64, MailError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO mail_outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![m.recipient, m.subject, m.body, m.now],
            )
            .map_err(db)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn due_mail(&self, now: UnixMillis, limit: u32) -> Result<Vec<MailRecord>, MailError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT id, recipient, subject, body, attempts FROM mail_outbox \
                     WHERE sent_at IS NULL AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![now, limit], |r| {
                    Ok(MailRecord { id: r.get(0)?, recipient: r.get(1)?, subject: r.get(2)?, body: r.get(3)?, attempts: r.get(4)? })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn mail_sent(&self, id: i64, now: UnixMillis) -> Result<(), MailError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE mail_outbox SET sent_at = ?2, body = '', attempts = attempts + 1 WHERE id = ?1 AND sent_at IS NULL",
                    params![id, now],
                )
                .map_err(db)?;
            changed(n, MailError::NotQueued)
        })
        .await
    }

    async fn purge_sent_mail(&self, before: UnixMillis) -> Result<u64, MailError> {
        self.run(move |c| {
            c.execute("DELETE FROM mail_outbox WHERE sent_at IS NOT NULL AND sent_at < ?1", [before]).map(|n| n as u64).map_err(backend)
        })
        .await
    }

    async fn mail_failed(&self, id: i64, next_attempt_at: UnixMillis, error: &str) -> Result<(), MailError> {
        let error = error.chars().take(500).collect::<String>();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1 AND sent_at IS NULL",
                    params![id, next_attempt_at, error],
                )
                .map_err(db)?;
            changed(n, MailError::NotQueued)
        })
        .await
    }

    async fn outbox(&self) -> Result<Outbox, MailError> {
        self.run(move |c| {
            c.query_row("SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE sent_at IS NULL", [], |r| {
                Ok(Outbox { unsent: r.get::<_, i64>(0)?.try_into().unwrap_or(0), oldest_queued_at: r.get(1)? })
            })
            .map_err(backend)
        })
        .await
    }
}
