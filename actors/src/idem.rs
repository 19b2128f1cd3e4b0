//! Idempotency: a retried command never acts twice.

use handoff_protocol::ErrorCode;
use handoff_protocol::UserId;
use handoff_protocol::ws::{AckBody, Command, IdemKey};
use handoff_store::Store;
use sha2::{Digest, Sha256};

use crate::{ApiError, ApiResult};

/// SHA-256 of a command's canonical JSON: an idempotency key replayed with a
/// different command is refused.
pub fn command_hash(cmd: &Command) -> Vec<u8> {
    Sha256::digest(serde_json::to_vec(cmd).unwrap_or_default()).to_vec()
}

/// The stored answer if `(user, key)` was used before for this command;
/// `idempotency_conflict` if it was used for another.
pub async fn replayed(store: &dyn Store, user: UserId, key: IdemKey, hash: &[u8]) -> ApiResult<Option<AckBody>> {
    match store.idem(user, key).await? {
        None => Ok(None),
        Some(rec) if rec.command == hash => {
            let body = serde_json::from_str(&rec.result).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            Ok(Some(body))
        }
        Some(_) => Err(ApiError::new(ErrorCode::IdempotencyConflict, "this idempotency key was already used for a different command")),
    }
}
