//! Records of the MLS delivery service.

use handoff_protocol::v1::PracticePublicKey;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

/// One accepted entry of a practice's MLS log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsEntryRecord {
    /// Practice.
    pub practice_id: PracticeId,
    /// The epoch this entry produced.
    pub epoch: u64,
    /// Who committed.
    pub committer: UserId,
    /// The MLS commit (None for epoch 1).
    pub commit: Option<Vec<u8>>,
    /// The welcome for `added`.
    pub welcome: Option<Vec<u8>>,
    /// Added users.
    pub added: Vec<UserId>,
    /// Removed users.
    pub removed: Vec<UserId>,
    /// The epoch's signed public key (becomes the practice's current key).
    pub public_key: PracticePublicKey,
    /// History link.
    pub history: Vec<u8>,
    /// When.
    pub created_at: UnixMillis,
}
