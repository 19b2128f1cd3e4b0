//! The store's half of the access rule: a user's standing on each side of a
//! referral, looked up once here for the hub, the referral actor and the
//! server's HTTP routes. The rule itself is `handoff_domain::access`.
//!
//! Also the record of when access last ended at each practice
//! ([`Revocations`]): a stream actor compares it with when it last checked
//! each subscriber, so a subscriber whose access may have ended is checked
//! again, by the same rule, before it is sent anything more.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use handoff_domain::access::{Access, Action, Parties, Sender};
use handoff_domain::rights::{Right, may};
use handoff_protocol::v1::Role;
use handoff_protocol::{PracticeId, UserId};
use handoff_store::{PracticeError, ReferralRecord, Store};

use crate::clock::Clock;

/// The two parties of a stored referral.
pub fn parties(rec: &ReferralRecord) -> Parties {
    let sender = match rec.from_practice {
        Some(p) => Sender::Practice(p),
        None => Sender::Free,
    };
    Parties { sender, receiver: rec.to_practice }
}

/// Where `user` stands on the referral, or `None` if on neither side.
pub async fn referral_access(
    store: &dyn Store,
    clock: &Clock,
    user: UserId,
    rec: &ReferralRecord,
) -> Result<Option<Access>, PracticeError> {
    party_access(store, clock, user, parties(rec)).await
}

/// Where a user stands in one practice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not a member (or no such practice), or a member outside their dates
    /// (before the start, from the end on), or a delegate whose sponsor is
    /// no longer a member in force.
    Outside,
    /// A member, held back because the practice requires two-factor sign-in
    /// and the user has it off: they reach nothing of the practice until they enroll.
    HeldBack,
    /// A member in good standing, with their role.
    Member(Role),
}

impl Standing {
    /// Whether this standing holds `right` ([`handoff_domain::rights::may`]).
    pub fn may(self, right: Right) -> bool {
        matches!(self, Standing::Member(role) if may(role, right))
    }
}

/// Where `user` stands in `practice` at `clock`'s now: the one place a
/// membership's dates, a delegate's sponsor and the practice's two-factor
/// requirement are applied. HTTP routes of a practice (the server's
/// `membership`), the practice's stream, both sides of a referral and the
/// sender of a new referral all ask this; what each role may then do is
/// [`handoff_domain::rights::may`]. Membership bookkeeping (who the key group
/// must hold) asks [`in_force`], so a held-back member is not removed from the group.
pub async fn standing(store: &dyn Store, clock: &Clock, practice: PracticeId, user: UserId) -> Result<Standing, PracticeError> {
    let Some((role, _)) = in_force(store, clock, practice, user).await? else { return Ok(Standing::Outside) };
    if store.two_factor_missing(practice, user).await? {
        return Ok(Standing::HeldBack);
    }
    Ok(Standing::Member(role))
}

/// `user`'s role and sponsor in `practice` if their membership is in force at
/// `clock`'s now: within its dates and, for a delegate, with their sponsor's
/// membership in force too. `None` otherwise.
pub async fn in_force(
    store: &dyn Store,
    clock: &Clock,
    practice: PracticeId,
    user: UserId,
) -> Result<Option<(Role, Option<UserId>)>, PracticeError> {
    let now = clock.now();
    let Some((role, terms)) = store.terms(practice, user).await? else { return Ok(None) };
    if !terms.in_force(now) {
        return Ok(None);
    }
    if let Some(sponsor) = terms.sponsor {
        // A sponsor is never a delegate (only members and admins invite), so one level suffices.
        match store.terms(practice, sponsor).await? {
            Some((_, t)) if t.in_force(now) => {}
            _ => return Ok(None),
        }
    }
    Ok(Some((role, terms.sponsor)))
}

/// Who `user` acts on behalf of in `practice` now: their sponsor if they are
/// a delegate in force there, else `None`. What the server stamps on a
/// delegate's referral events (`on_behalf_of`); never taken from a client.
pub async fn on_behalf_of(store: &dyn Store, clock: &Clock, practice: PracticeId, user: UserId) -> Result<Option<UserId>, PracticeError> {
    Ok(in_force(store, clock, practice, user).await?.and_then(|(_, sponsor)| sponsor))
}

/// `Ok(role)` if `user` stands in `practice` with `right`; else the refusal:
/// `not_found("practice")` for an outsider (worded as for an absent id),
/// `two_factor_required` for a held-back member, `forbidden` with the
/// right's reason for a member whose role lacks it.
pub async fn require(
    store: &dyn Store,
    clock: &Clock,
    practice: PracticeId,
    user: UserId,
    right: Right,
) -> Result<Role, handoff_error::ApiError> {
    match standing(store, clock, practice, user).await? {
        Standing::Member(role) if may(role, right) => Ok(role),
        Standing::Member(_) => Err(handoff_error::ApiError::forbidden(right.refusal())),
        Standing::HeldBack => Err(two_factor_required()),
        Standing::Outside => Err(handoff_error::ApiError::not_found("practice")),
    }
}

/// What a member held back by the practice's two-factor requirement is answered with.
pub fn two_factor_required() -> handoff_error::ApiError {
    handoff_error::ApiError::new(
        handoff_protocol::ErrorCode::TwoFactorRequired,
        "this practice requires two-factor sign-in: turn it on in settings (Two-factor sign-in), then try again",
    )
}

/// What a user who may not read a referral between these parties is
/// answered with: `two_factor_required` if a party practice holds them back
/// ([`Standing::HeldBack`]), so they know to enroll, else `not_found(what)`
/// (which says nothing about whether it exists).
pub async fn refusal(store: &dyn Store, clock: &Clock, user: UserId, p: Parties, what: &str) -> handoff_error::ApiError {
    for practice in practices_of(p) {
        if let Ok(Standing::HeldBack) = standing(store, clock, practice, user).await {
            return two_factor_required();
        }
    }
    handoff_error::ApiError::not_found(what)
}

/// Where `user` stands between a referral's two parties, or `None` if on neither side.
/// A member held back by a practice's two-factor requirement counts as outside it.
/// A side counts only if the user's role there holds [`Right::Read`].
pub async fn party_access(store: &dyn Store, clock: &Clock, user: UserId, p: Parties) -> Result<Option<Access>, PracticeError> {
    let receiver = standing(store, clock, p.receiver, user).await?.may(Right::Read);
    let sender = match p.sender {
        Sender::Practice(practice) => standing(store, clock, practice, user).await?.may(Right::Read),
        Sender::Free => false,
    };
    Ok(Access::of(p.sender, sender, receiver))
}

/// Whether `user` may see (read) a referral between these parties: the rule
/// both the subscribing side and the cutting side of a referral stream ask.
pub async fn may_read(store: &dyn Store, clock: &Clock, user: UserId, p: Parties) -> Result<bool, PracticeError> {
    Ok(party_access(store, clock, user, p).await?.is_some_and(|a| a.permits(Action::Read).is_ok()))
}

/// The practices whose membership decides access to a referral between these parties.
pub fn practices_of(p: Parties) -> Vec<PracticeId> {
    let mut v = vec![p.receiver];
    v.extend(p.sender.practice().filter(|s| *s != p.receiver));
    v
}

/// When access last ended at each practice, on one process-wide clock.
///
/// A subscriber is stamped with [`Revocations::now`], read *before* its access
/// is checked in the store. A later end of access at practice `p` is recorded
/// (after the store change that ends it) with a later tick, so a subscriber
/// whose stamp is older than [`Revocations::latest`] of its stream's practices
/// may have been checked before that change, and must be checked again before
/// it is sent anything.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    clock: AtomicU64,
    at: DashMap<PracticeId, u64>,
}

impl Revocations {
    /// The clock now: a check that starts after reading it sees every end of access recorded up to it.
    pub(crate) fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Records that access ended at `practice` (call after the store says so).
    pub(crate) fn record(&self, practice: PracticeId) {
        let tick = self.clock.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.at.entry(practice).and_modify(|t| *t = (*t).max(tick)).or_insert(tick);
    }

    /// The latest end of access at any of `practices` (0: never).
    pub(crate) fn latest(&self, practices: &[PracticeId]) -> u64 {
        practices.iter().filter_map(|p| self.at.get(p).map(|t| *t)).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn practice(n: u8) -> PracticeId {
        PracticeId::from_bytes([n; 16])
    }

    #[test]
    fn a_check_stamped_before_an_end_of_access_is_stale_and_one_after_is_not() {
        let r = Revocations::default();
        let (a, b) = (practice(1), practice(2));
        let before = r.now();
        assert_eq!(r.latest(&[a, b]), 0, "never revoked");
        r.record(a);
        assert!(r.latest(&[a, b]) > before, "the earlier check is stale");
        assert_eq!(r.latest(&[b]), 0, "another practice is untouched");
        let after = r.now();
        assert!(r.latest(&[a, b]) <= after, "a check stamped after the end of access is current");
        r.record(b);
        assert!(r.latest(&[a]) <= after && r.latest(&[a, b]) > after);
    }

    #[test]
    fn a_referral_depends_on_both_practices_once() {
        let (a, b) = (practice(1), practice(2));
        assert_eq!(practices_of(Parties { sender: Sender::Practice(a), receiver: b }), vec![b, a]);
        assert_eq!(practices_of(Parties { sender: Sender::Practice(a), receiver: a }), vec![a]);
    }
}
