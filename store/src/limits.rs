//! Rate-limit lock-outs: the sign-in limits written through, so that a
//! restart does not hand an attacker a fresh budget.
//!
//! Only a counter that reached its limit is stored (a lock-out), never every
//! attempt: the counting itself happens in the server's memory. Keys are
//! opaque bytes, a keyed hash the server derives from the limit's scope, the
//! account and the client address, so no email or address is stored here in
//! the clear.

use async_trait::async_trait;

use handoff_protocol::UnixMillis;

use crate::BackendError;

/// The longest [`Lockout::key`] a store accepts, in bytes.
pub const MAX_LOCKOUT_KEY: usize = 64;

/// A rate-limit counter that reached its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockout {
    /// The counter's opaque key (at most [`MAX_LOCKOUT_KEY`] bytes).
    pub key: Vec<u8>,
    /// The hits counted when it was written.
    pub count: u32,
    /// When its window ends and the lock-out lifts.
    pub until: UnixMillis,
}

/// Why a [`LimitStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// [`put_lockouts`](LimitStore::put_lockouts) was given an empty key or one longer
    /// than [`MAX_LOCKOUT_KEY`]; nothing was written.
    #[error("a lock-out key must be 1 to {MAX_LOCKOUT_KEY} bytes, not {0}")]
    BadKey(usize),
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Lock-outs of the rate limits. Each call is atomic, as for every store trait.
#[async_trait]
pub trait LimitStore: Send + Sync + 'static {
    /// Writes these lock-outs, replacing any stored under the same key, all or none.
    /// [`LimitError::BadKey`] if a key is empty or too long.
    async fn put_lockouts(&self, lockouts: Vec<Lockout>) -> Result<(), LimitError>;
    /// Every lock-out still in force at `now` (`until > now`).
    async fn lockouts(&self, now: UnixMillis) -> Result<Vec<Lockout>, LimitError>;
    /// Deletes the lock-outs under these keys (absent keys are no error).
    async fn delete_lockouts(&self, keys: Vec<Vec<u8>>) -> Result<(), LimitError>;
    /// Deletes lock-outs that lifted at or before `now`. Returns how many.
    async fn purge_lockouts(&self, now: UnixMillis) -> Result<u64, LimitError>;
}
