//! Practices and their membership: members, key grants, invites and
//! notification preferences.

use async_trait::async_trait;

use handoff_protocol::v1::Role;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::{BackendError, GrantRecord, InviteRecord, MemberRecord, PracticeRecord};

/// How many invites may be sent: per inviter (across every practice) and per
/// practice (whoever sends them), each in its own sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteQuota {
    /// Invites one user may send per `user_window_ms`.
    pub per_user: u32,
    /// The per-user window, milliseconds.
    pub user_window_ms: i64,
    /// Invites one practice may send per `practice_window_ms`.
    pub per_practice: u32,
    /// The per-practice window, milliseconds.
    pub practice_window_ms: i64,
}

/// Why a [`PracticeStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PracticeError {
    /// [`create_practice`](PracticeStore::create_practice) was given an id that exists.
    #[error("already exists: practice")]
    PracticeExists,
    /// The call named a practice that does not exist.
    #[error("not found: practice")]
    NoSuchPractice,
    /// [`add_member`](PracticeStore::add_member) or [`accept_invite`](PracticeStore::accept_invite)
    /// would add a user who is a member already.
    #[error("already exists: member")]
    AlreadyMember,
    /// The call named a user who is not a member of the practice.
    #[error("not found: member")]
    NotMember,
    /// [`remove_member`](PracticeStore::remove_member) would remove the practice's last admin.
    #[error("a practice needs an admin")]
    LastAdmin,
    /// A key grant names a practice or a user that does not exist.
    #[error("not found: practice or user")]
    GrantTargetMissing,
    /// [`create_invite`](PracticeStore::create_invite) was given a token hash that is stored already.
    #[error("already exists: invite")]
    InviteExists,
    /// [`accept_invite`](PracticeStore::accept_invite) found no invite: it was never
    /// created, or was used already.
    #[error("not found: invite")]
    InviteUsed,
    /// [`create_practice`](PracticeStore::create_practice) was given the id of a
    /// deleted practice: a deleted id is tombstoned and never accepted again,
    /// since the practice's referrals and events outlive it.
    #[error("retired: practice id")]
    PracticeIdRetired,
    /// [`create_invite_within`](PracticeStore::create_invite_within) refused: the
    /// inviter or the practice has sent its quota of invites in the window.
    #[error("too many invites; retry at {retry_at}")]
    InviteQuotaExceeded {
        /// When the oldest counted invite leaves the window.
        retry_at: UnixMillis,
    },
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Practices and who belongs to them.
#[async_trait]
pub trait PracticeStore: Send + Sync + 'static {
    /// Creates a practice with its creator as admin and the creator's key grant.
    /// [`PracticeError::PracticeExists`] if the id exists,
    /// [`PracticeError::PracticeIdRetired`] if it belonged to a deleted practice.
    async fn create_practice(&self, p: PracticeRecord, creator_grant: GrantRecord) -> Result<(), PracticeError>;
    /// A practice by id.
    async fn practice(&self, id: PracticeId) -> Result<Option<PracticeRecord>, PracticeError>;
    /// Practices the user belongs to, with the user's role, oldest first.
    async fn practices_of(&self, user: UserId) -> Result<Vec<(PracticeRecord, Role)>, PracticeError>;
    /// Every practice, for staff, with member counts.
    async fn all_practices(&self) -> Result<Vec<(PracticeRecord, u32)>, PracticeError>;
    /// Verified, unpaused specialist practices, optionally filtered.
    async fn directory(&self, specialty: Option<&str>, region: Option<&str>) -> Result<Vec<PracticeRecord>, PracticeError>;
    /// Deletes a practice and everything that hangs off it, and tombstones its id
    /// in the same transaction so it can never be created again.
    /// [`PracticeError::NoSuchPractice`] if absent.
    async fn delete_practice(&self, id: PracticeId) -> Result<(), PracticeError>;
    /// Sets the verified flag. [`PracticeError::NoSuchPractice`] if absent.
    async fn set_verified(&self, id: PracticeId, verified: bool) -> Result<(), PracticeError>;
    /// Sets the paused flag. [`PracticeError::NoSuchPractice`] if absent.
    async fn set_paused(&self, id: PracticeId, paused: bool) -> Result<(), PracticeError>;

    /// The user's role in the practice, if a member.
    async fn role(&self, practice: PracticeId, user: UserId) -> Result<Option<Role>, PracticeError>;
    /// Members with their user records, in joining order.
    async fn members(&self, practice: PracticeId) -> Result<Vec<MemberRecord>, PracticeError>;
    /// Adds a member; [`PracticeError::AlreadyMember`] if already one.
    async fn add_member(&self, practice: PracticeId, user: UserId, role: Role, now: UnixMillis) -> Result<(), PracticeError>;
    /// Removes a member and their key grants. Refuses ([`PracticeError::LastAdmin`])
    /// to remove the last admin. [`PracticeError::NotMember`] if not a member.
    async fn remove_member(&self, practice: PracticeId, user: UserId) -> Result<(), PracticeError>;
    /// Stores a key grant (replacing one for the same member and epoch).
    /// [`PracticeError::GrantTargetMissing`] if the practice or user does not exist.
    async fn put_grant(&self, g: GrantRecord) -> Result<(), PracticeError>;
    /// A member's grant for an epoch.
    async fn grant(&self, practice: PracticeId, user: UserId, epoch: u64) -> Result<Option<GrantRecord>, PracticeError>;
    /// Creates an invite, counting it as sent by its inviter and practice.
    /// [`PracticeError::InviteExists`] if its token hash is stored already.
    async fn create_invite(&self, i: InviteRecord) -> Result<(), PracticeError>;
    /// As [`create_invite`](PracticeStore::create_invite), within `quota`: the
    /// count and the insert are one transaction, so concurrent invites cannot
    /// exceed it. Counted are invites sent (accepted or not) in the windows
    /// before the invite's `created_at`. [`PracticeError::InviteQuotaExceeded`]
    /// if the inviter or the practice has used its quota.
    async fn create_invite_within(&self, i: InviteRecord, quota: InviteQuota) -> Result<(), PracticeError>;
    /// An invite by token hash.
    async fn invite(&self, token_hash: &[u8]) -> Result<Option<InviteRecord>, PracticeError>;
    /// Invites not yet accepted for a practice.
    async fn invites_of(&self, practice: PracticeId) -> Result<Vec<InviteRecord>, PracticeError>;
    /// Accepts an invite: adds the member and deletes the invite, atomically.
    /// [`PracticeError::InviteUsed`] if it was already used, [`PracticeError::AlreadyMember`]
    /// if the user is a member already.
    async fn accept_invite(&self, token_hash: &[u8], user: UserId, now: UnixMillis) -> Result<(), PracticeError>;

    /// Sets whether a member gets status emails for the practice.
    /// [`PracticeError::NotMember`] if not a member.
    async fn set_notify_email(&self, practice: PracticeId, user: UserId, on: bool) -> Result<(), PracticeError>;
    /// Emails of the practice's members who opted in to status emails.
    async fn email_recipients(&self, practice: PracticeId) -> Result<Vec<String>, PracticeError>;

    /// Deletes invites that expired before `now` (their links can never be
    /// used again). Returns how many.
    async fn purge_invites(&self, now: UnixMillis) -> Result<u64, PracticeError>;

    /// Sets whether the practice requires two-factor sign-in of its members.
    /// [`PracticeError::NoSuchPractice`] if there is no such practice.
    async fn set_require_two_factor(&self, practice: PracticeId, required: bool) -> Result<(), PracticeError>;
    /// Whether the practice requires two-factor sign-in and `user` has it off:
    /// the one question the 2FA requirement asks (`false` for no such practice).
    async fn two_factor_missing(&self, practice: PracticeId, user: UserId) -> Result<bool, PracticeError>;
}
