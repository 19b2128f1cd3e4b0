//! The mail outbox: email is queued durably, then sent by the mailer.

use async_trait::async_trait;

use handoff_protocol::UnixMillis;

use crate::{BackendError, MailRecord, NewMail};

/// Why a [`MailStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// [`mail_sent`](MailStore::mail_sent) or [`mail_failed`](MailStore::mail_failed) named
    /// mail that is not queued: it does not exist or was sent already.
    #[error("not found: mail")]
    NotQueued,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// How much mail waits in the outbox (for the metrics listener).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// Mail queued and not yet sent, whether due now or waiting for a retry.
    pub unsent: u64,
    /// When the oldest unsent mail was queued; `None` when there is none.
    pub oldest_queued_at: Option<UnixMillis>,
}

/// The outbox of email waiting to be sent.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Queues an email; it is durable before this returns.
    async fn enqueue_mail(&self, m: NewMail) -> Result<i64, MailError>;
    /// Unsent mail due at `now`, oldest first.
    async fn due_mail(&self, now: UnixMillis, limit: u32) -> Result<Vec<MailRecord>, MailError>;
    /// Marks mail sent and clears its body. [`MailError::NotQueued`] if it is not queued.
    async fn mail_sent(&self, id: i64, now: UnixMillis) -> Result<(), MailError>;
    /// Records a failed attempt and when to retry. [`MailError::NotQueued`] if it is not queued.
    async fn mail_failed(&self, id: i64, next_attempt_at: UnixMillis, error: &str) -> Result<(), MailError>;
    /// Deletes the record (recipient, subject, times) of mail sent before
    /// `before`; unsent mail stays queued. Returns how many.
    async fn purge_sent_mail(&self, before: UnixMillis) -> Result<u64, MailError>;
    /// How much mail is unsent, and when the oldest of it was queued.
    async fn outbox(&self) -> Result<Outbox, MailError>;
}
