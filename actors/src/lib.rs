//! Handoff's live actors, on actix 0.13.
//!
//! - [`hub::Hub`]: the registry (DashMap) of live actors, activated on demand
//!   from the store and passivated when idle, all on one dedicated arbiter.
//! - `PracticeActor`: owns a practice's inbox stream and delivers its events,
//!   in order and without gaps, to subscribed connections.
//! - `ReferralActor`: owns one referral's state machine, history and thread;
//!   every change is committed to the store (with its events on the referral's
//!   stream and both practices' streams, its idempotency record and any mail)
//!   before it is acknowledged or pushed.
//! - `RoutingActor`: creates referrals one at a time, so "choose for me" counts
//!   stay balanced under concurrency.
//! - [`mailer::Mailer`]: drains the persisted mail outbox with retries.
//!
//! Mailboxes are bounded; connections have bounded outgoing queues and are
//! dropped, not buffered, when they stop reading. Actor code stays behind our
//! own message types so that a move off actix stays cheap. Actors never
//! decrypt: this crate does not depend on `handoff-crypto`.

pub mod conn;
pub mod fanout;
pub mod hub;
pub mod mailer;
pub mod mls;
mod practice;
mod referral;
mod routing;

use handoff_protocol::ErrorCode;
use handoff_protocol::ws::{AckBody, Command, IdemKey};
use handoff_protocol::{UnixMillis, UserId};
use handoff_store::Store;
use sha2::{Digest, Sha256};

pub use routing::referral_number;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A command's failure, with its wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CmdError {
    /// Wire code.
    pub code: ErrorCode,
    /// Human text.
    pub message: String,
}

impl CmdError {
    /// An error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    /// `not_found`, worded the same for absent and foreign objects.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}, or you do not have access to it"))
    }
}

/// A store failure a command did not handle is logged and answered as `internal`.
macro_rules! cmd_error_from_store {
    ($($e:ty),* $(,)?) => {$(
        impl From<$e> for CmdError {
            fn from(e: $e) -> Self {
                tracing::error!(error = %e, "store failure in a command");
                CmdError::new(ErrorCode::Internal, "the server failed; nothing was changed, please retry")
            }
        }
    )*};
}

cmd_error_from_store!(
    handoff_store::UserError,
    handoff_store::PracticeError,
    handoff_store::TaxonomyError,
    handoff_store::ReferralError,
    handoff_store::MlsError,
    handoff_store::MailError,
);

/// Result alias.
pub type CmdResult<T> = Result<T, CmdError>;

/// SHA-256 of a command's canonical JSON: an idempotency key replayed with a
/// different command is refused.
pub fn command_hash(cmd: &Command) -> Vec<u8> {
    Sha256::digest(serde_json::to_vec(cmd).unwrap_or_default()).to_vec()
}

/// The stored answer if `(user, key)` was used before for this command;
/// `idempotency_conflict` if it was used for another.
pub async fn replayed(store: &dyn Store, user: UserId, key: IdemKey, hash: &[u8]) -> CmdResult<Option<AckBody>> {
    match store.idem(user, key).await? {
        None => Ok(None),
        Some(rec) if rec.command == hash => {
            let body = serde_json::from_str(&rec.result).map_err(|e| CmdError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(Some(body))
        }
        Some(_) => Err(CmdError::new(ErrorCode::IdempotencyConflict, "this idempotency key was already used for a different command")),
    }
}
