//! The MLS delivery service API (`/api/v1`): key packages, each practice's
//! MLS log, welcomes and the per-user sealed MLS state.
//!
//! The server is an MLS *external observer*: it keeps each group's public
//! state (ratchet tree and group context, never a secret), verifies every
//! commit against it (signature, proposals, the adds and removes the entry
//! declares) and holds no key that opens anything. Epochs here are Handoff epochs:
//! epoch 0 is a practice's original granted key; MLS epoch `m` is Handoff
//! epoch `m + 1`. Log entry `e` is what produced epoch `e`: entry 1 is the
//! group's creation (no commit), entry `e >= 2` carries the commit made in
//! MLS epoch `e - 2`.

use serde::{Deserialize, Serialize};

use crate::v1::PracticePublicKey;
use crate::{B64, PracticeId, UnixMillis, UserId};

/// The MLS group id of a practice's group of `generation`: the practice id
/// for the first group (0), then the practice id followed by the generation
/// as 4 big-endian bytes for each group a re-initialisation starts.
pub fn mls_group_id(practice: PracticeId, generation: u32) -> Vec<u8> {
    let mut id = practice.as_bytes().to_vec();
    if generation > 0 {
        id.extend_from_slice(&generation.to_be_bytes());
    }
    id
}

/// `POST /api/v1/mls/key-packages`: publish fresh key packages (at most 100 per call).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishKeyPackages {
    /// TLS-encoded `MLSMessage`s of type KeyPackage, each for the caller's own identity.
    pub key_packages: Vec<B64>,
}

/// How many unclaimed key packages the caller has on the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPackageCount {
    /// Key packages published and not yet claimed.
    pub available: u32,
}

/// `POST /api/v1/practices/{id}/members/{user}/key-package`: claims one of a
/// fellow member's key packages. Each key package is handed out at most once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKeyPackage {
    /// The member whose key package it is.
    pub user_id: UserId,
    /// The key package.
    pub key_package: B64,
}

/// `GET/PUT /api/v1/mls/state`: the caller's MLS state, sealed under a key
/// only the caller's private keys give. `version` increases by one per write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsState {
    /// 0 when nothing was stored yet.
    pub version: u64,
    /// The sealed state (absent at version 0).
    pub sealed: Option<B64>,
}

/// `PUT /api/v1/mls/state`: compare-and-swap. A write whose
/// `expected_version` is not the stored version is refused with
/// `stale_state` (another tab wrote first; reload and retry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutMlsState {
    /// The version this state was derived from.
    pub expected_version: u64,
    /// The sealed state.
    pub sealed: B64,
}

/// `POST /api/v1/practices/{id}/mls/commits`: a member submits the change
/// that produces epoch `epoch`. The delivery service accepts exactly one per
/// epoch: `epoch` must be the practice's current epoch + 1, else `stale_epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubmitCommit {
    /// The new Handoff epoch.
    pub epoch: u64,
    /// The MLS commit, sent as a `PublicMessage` so the server can verify it
    /// (absent only for epoch 1, the group's creation).
    #[serde(default)]
    pub commit: Option<B64>,
    /// A `GroupInfo` message carrying the ratchet tree (its extension), from
    /// which the server starts observing the group. Required for epoch 1 (the
    /// new group's own); with a commit, accepted only when the server does not
    /// observe the group yet (a group created before it did: the group info of
    /// the epoch the commit was made in; refused with `group_info_required`
    /// until given, ignored otherwise).
    #[serde(default)]
    pub group_info: Option<B64>,
    /// The welcome for `added` (required when `added` is not empty).
    #[serde(default)]
    pub welcome: Option<B64>,
    /// A re-initialisation (admins only): the entry starts a new MLS group for
    /// the practice (the next generation; no commit, its `group_info` with the
    /// caller as its only member), and `history` seals the key of this earlier
    /// epoch, the last good one. Every epoch after it is revoked.
    #[serde(default)]
    pub reinit: Option<u64>,
    /// Users the commit adds (each must be a member of the practice).
    #[serde(default)]
    pub added: Vec<UserId>,
    /// Users the commit removes.
    #[serde(default)]
    pub removed: Vec<UserId>,
    /// The new epoch's HPKE public key, signed by the caller.
    pub public_key: PracticePublicKey,
    /// The key-history link: the previous epoch's key sealed under the new one.
    pub history: B64,
}

/// One accepted change in a practice's MLS log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsLogEntry {
    /// The epoch this entry produced.
    pub epoch: u64,
    /// Who committed.
    pub committer: UserId,
    /// The MLS commit (absent for epoch 1).
    pub commit: Option<B64>,
    /// Users added.
    pub added: Vec<UserId>,
    /// Users removed.
    pub removed: Vec<UserId>,
    /// The epoch's signed public key.
    pub public_key: PracticePublicKey,
    /// Key-history link to the previous epoch (to `links_to`).
    pub history: B64,
    /// When the server accepted the entry.
    pub at: UnixMillis,
    /// The MLS group generation (0 for the practice's first group; each
    /// re-initialisation starts the next, whose MLS group id is the practice
    /// id followed by the generation as 4 big-endian bytes).
    #[serde(default)]
    pub generation: u32,
    /// The epoch whose key `history` seals (`epoch - 1` but for a re-initialisation).
    #[serde(default)]
    pub links_to: u64,
    /// Revoked by a later re-initialisation: the group never agreed on this
    /// epoch's key, so nothing may be wrapped to it.
    #[serde(default)]
    pub revoked: bool,
}

/// `POST /api/v1/practices/{id}/mls/reports`: the caller's client cannot
/// process this epoch's entry (it does not decrypt, or its published key is
/// not the group's). An admin's client re-initialises the group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportEpoch {
    /// The epoch whose entry cannot be processed.
    pub epoch: u64,
}

/// A referral to send again: its receiver's key was revoked after it was wrapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadableReferral {
    /// The referral.
    pub referral: crate::ws::ReferralId,
    /// The receiving practice.
    pub to_practice: PracticeId,
    /// The revoked epoch it was wrapped to.
    pub epoch: u64,
}

/// `GET /api/v1/practices/{id}/mls/unreadable`: referrals the practice sent
/// that no honest member of the receiving practice can open (at most 500).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadableReferrals {
    /// Oldest first.
    pub referrals: Vec<UnreadableReferral>,
}

/// The query of `GET /api/v1/practices/{id}/mls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only entries after this epoch (0, the default, for the whole log).
    #[serde(default)]
    pub after: u64,
}

/// `GET /api/v1/practices/{id}/mls?after=E`: entries after epoch `E` (at most 500).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsLog {
    /// The practice's current epoch (0 before its group exists).
    pub epoch: u64,
    /// Entries, oldest first.
    pub entries: Vec<MlsLogEntry>,
}

/// `GET /api/v1/practices/{id}/mls/welcome`: the latest welcome addressed to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsWelcome {
    /// The epoch the welcome joins.
    pub epoch: u64,
    /// The welcome.
    pub welcome: B64,
}

/// A practice member the group still has to add.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsPendingMember {
    /// The practice member to add.
    pub user_id: UserId,
    /// Their account signing key (their MLS leaf must carry it).
    pub sign_pub: B64,
    /// Unclaimed key packages they have published.
    pub key_packages: u32,
}

/// `GET /api/v1/practices/{id}/mls/pending`: what the group's membership must
/// catch up with: practice members not yet in the group, and group members
/// no longer in the practice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlsPending {
    /// Current epoch.
    pub epoch: u64,
    /// Members to add.
    pub add: Vec<MlsPendingMember>,
    /// Group members who left the practice or were removed.
    pub remove: Vec<UserId>,
    /// The lowest epoch of the current group that a member reported they
    /// cannot process: an admin's client re-initialises the group from the
    /// epoch before it.
    #[serde(default)]
    pub reported: Option<u64>,
}
