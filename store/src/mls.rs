//! The MLS delivery service: its records, the [`MlsStore`] trait and its errors.

use async_trait::async_trait;

use handoff_protocol::v1::PracticePublicKey;
use handoff_protocol::ws::ReferralId;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::{BackendError, StoredEvent};

/// Why an [`MlsStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlsError {
    /// [`publish_key_packages`](MlsStore::publish_key_packages) was given a key package
    /// that was stored before; key packages are single-use.
    #[error("already exists: key_package")]
    KeyPackageReused,
    /// The key package [`claim_key_package`](MlsStore::claim_key_package) picked was
    /// claimed by another call first.
    #[error("not found: key_package")]
    KeyPackageClaimed,
    /// [`put_mls_state`](MlsStore::put_mls_state) expected a version that is not the stored
    /// one: another tab or browser saved in between.
    #[error("already exists: stale_state")]
    StaleState,
    /// [`mls_append`](MlsStore::mls_append) was given an entry whose epoch is not the
    /// practice's current epoch + 1: another member's commit won.
    #[error("already exists: stale_epoch")]
    StaleEpoch,
    /// [`mls_append`](MlsStore::mls_append) named a practice that does not exist.
    #[error("not found: practice")]
    NoSuchPractice,
    /// [`mls_report`](MlsStore::mls_report) named an epoch the practice's log does not have.
    #[error("not found: mls_entry")]
    NoSuchEntry,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The MLS delivery service: key packages, sealed client state, and each
/// practice's ordered log of group changes.
#[async_trait]
pub trait MlsStore: Send + Sync + 'static {
    /// Stores key packages `(sha256, bytes)` for `user`, all or none.
    /// [`MlsError::KeyPackageReused`] if any was ever stored before (key packages are single-use).
    /// Returns how many unclaimed ones the user now has.
    async fn publish_key_packages(&self, user: UserId, kps: Vec<(Vec<u8>, Vec<u8>)>, now: UnixMillis) -> Result<u32, MlsError>;
    /// Hands out one of `user`'s unclaimed key packages (oldest first), at most once each.
    async fn claim_key_package(&self, user: UserId, by: UserId, now: UnixMillis) -> Result<Option<Vec<u8>>, MlsError>;
    /// Unclaimed key packages of `user`.
    async fn key_package_count(&self, user: UserId) -> Result<u32, MlsError>;
    /// A user's sealed MLS state and its version.
    async fn mls_state(&self, user: UserId) -> Result<Option<(u64, Vec<u8>)>, MlsError>;
    /// Compare-and-swap of the sealed state: [`MlsError::StaleState`] unless the
    /// stored version (0 if none) is `expected`. Returns the new version.
    async fn put_mls_state(&self, user: UserId, expected: u64, sealed: Vec<u8>, now: UnixMillis) -> Result<u64, MlsError>;
    /// Appends an entry if its epoch is the practice's current epoch + 1
    /// ([`MlsError::StaleEpoch`] otherwise), in one transaction with: the
    /// welcomes of the added users, the roster update, the practice's current
    /// key epoch and public key, the group's public state after the entry
    /// (`public_state`, which replaces the one [`mls_public_state`](MlsStore::mls_public_state)
    /// gives, at the entry's epoch), and `event` appended to the practice's stream.
    /// An entry of a later `generation` than the log's (a re-initialisation)
    /// also revokes every epoch after its `links_to`, leaves only its committer
    /// in the roster and drops every welcome.
    async fn mls_append(&self, e: MlsEntryRecord, public_state: Vec<u8>, event: String) -> Result<StoredEvent, MlsError>;
    /// The public state of the practice's MLS group as the server observes it
    /// (an MLS external observer's snapshot: no secret) and the Handoff epoch
    /// it is at; `None` for a group the server has not observed (none yet, or
    /// one created before the server observed groups).
    async fn mls_public_state(&self, practice: PracticeId) -> Result<Option<(u64, Vec<u8>)>, MlsError>;
    /// The practice's current MLS epoch (0 before its group exists).
    async fn mls_epoch(&self, practice: PracticeId) -> Result<u64, MlsError>;
    /// Entries with epoch > `after`, oldest first.
    async fn mls_log(&self, practice: PracticeId, after: u64, limit: u32) -> Result<Vec<MlsEntryRecord>, MlsError>;
    /// The latest welcome addressed to `user` in `practice`: (epoch, bytes).
    async fn mls_welcome(&self, practice: PracticeId, user: UserId) -> Result<Option<(u64, Vec<u8>)>, MlsError>;
    /// Users in the practice's MLS group as the accepted entries declared it.
    async fn mls_roster(&self, practice: PracticeId) -> Result<Vec<UserId>, MlsError>;
    /// Forgets the welcome addressed to `user` in `practice` if it was made at
    /// or before `epoch` (the user's group is past it, so they have joined),
    /// and drops the welcome's bytes from the log once nobody awaits them.
    /// Returns whether a welcome was forgotten.
    async fn forget_welcome(&self, practice: PracticeId, user: UserId, epoch: u64) -> Result<bool, MlsError>;
    /// Records that `user` could not process the practice's entry `epoch`
    /// (idempotent). [`MlsError::NoSuchEntry`] if the log has no such entry.
    async fn mls_report(&self, practice: PracticeId, epoch: u64, user: UserId, now: UnixMillis) -> Result<(), MlsError>;
    /// The lowest epoch of the current group generation that a member reported
    /// as unprocessable, if any (what an admin's re-initialisation recovers from).
    async fn mls_reported(&self, practice: PracticeId) -> Result<Option<u64>, MlsError>;
    /// Referrals sent by `from` whose receiving practice's key was wrapped to
    /// an epoch revoked since, oldest first (at most `limit`).
    async fn mls_unreadable(&self, from: PracticeId, limit: u32) -> Result<Vec<UnreadableReferral>, MlsError>;
}

/// One accepted entry of a practice's MLS log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsEntryRecord {
    /// The practice whose group this entry changed.
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
    /// When the entry was accepted.
    pub created_at: UnixMillis,
    /// The MLS group generation the entry belongs to (0 for the practice's
    /// first group; each re-initialisation starts the next one).
    pub generation: u32,
    /// The epoch whose key `history` seals: `epoch - 1`, except for a
    /// re-initialisation, whose link skips the epochs it revokes.
    pub links_to: u64,
    /// Whether a later re-initialisation revoked this epoch (its key is not
    /// the group's any more; what was wrapped to it must be sent again).
    /// Ignored by [`mls_append`](MlsStore::mls_append).
    pub revoked: bool,
}

/// A referral wrapped to a revoked epoch of its receiving practice, which its
/// sender must send again ([`MlsStore::mls_unreadable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableReferral {
    /// The referral.
    pub referral: ReferralId,
    /// The receiving practice.
    pub to_practice: PracticeId,
    /// The revoked epoch its key was wrapped to.
    pub epoch: u64,
}
