//! Membership terms (issue 14): when a membership gives access, and on whose
//! behalf a delegate acts. Part of the practice concept, so its calls answer
//! [`PracticeError`].

use async_trait::async_trait;

use handoff_protocol::v1::Role;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::{PracticeError, Terms};

/// A membership whose end date is near or past, as the periodic checks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// The practice.
    pub practice: PracticeId,
    /// The member.
    pub user: UserId,
    /// Their end date.
    pub ends_at: UnixMillis,
}

/// Start and end dates of memberships, and delegates' sponsors.
#[async_trait]
pub trait TermsStore: Send + Sync + 'static {
    /// A member's role and terms, or `None` if they are not a member.
    async fn terms(&self, practice: PracticeId, user: UserId) -> Result<Option<(Role, Terms)>, PracticeError>;
    /// Sets a member's start and end dates (`None` clears one) and forgets
    /// that the admins were reminded of the old end.
    /// [`PracticeError::NotMember`] if they are not a member.
    async fn set_dates(
        &self,
        practice: PracticeId,
        user: UserId,
        starts_at: Option<UnixMillis>,
        ends_at: Option<UnixMillis>,
    ) -> Result<(), PracticeError>;
    /// Who `user` acts on behalf of in `practice`: their sponsor if they are
    /// a delegate there, else `None`. (The audit log's `on_behalf_of` asks this.)
    async fn sponsor_of(&self, practice: PracticeId, user: UserId) -> Result<Option<UserId>, PracticeError>;
    /// The delegates `sponsor` sponsors in `practice`.
    async fn delegates_of(&self, practice: PracticeId, sponsor: UserId) -> Result<Vec<UserId>, PracticeError>;
    /// Memberships whose end date is at or before `now`, oldest end first.
    async fn ended(&self, now: UnixMillis) -> Result<Vec<Ending>, PracticeError>;
    /// Memberships ending after `now` and at or before `until` whose admins
    /// have not been reminded yet.
    async fn reminders_due(&self, now: UnixMillis, until: UnixMillis) -> Result<Vec<Ending>, PracticeError>;
    /// Records that the admins were reminded of this membership's end; `false`
    /// if it was already recorded (or the end changed), so one pass reminds once.
    async fn mark_reminded(&self, practice: PracticeId, user: UserId, ends_at: UnixMillis) -> Result<bool, PracticeError>;
}
