//! Who may see and act on a referral.
//!
//! A referral has two parties: its [`Sender`] and the receiving practice. A
//! user's [`Access`] to it says on which side they stand; a user on neither
//! side does not learn that the referral exists (callers answer `not_found`,
//! worded as for an absent id). Reading, the thread and attachments are open
//! to both sides; the receiving side works the referral (opens, accepts,
//! rejects, re-files, changes urgency); the sending side cancels.
//!
//! The rule needs the user's standing on each side; looking that up (a
//! practice membership today) is the caller's I/O, done once in
//! `handoff_actors::access`.

use handoff_protocol::PracticeId;

/// Who sent a referral. A new kind of sender is a new variant, and every
/// `match` on this type (deliberately exhaustive: no `#[non_exhaustive]`, no
/// wildcard arms) then fails to compile until it says what that sender may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A practice, through any of its members.
    Practice(PracticeId),
    /// A free sender without an account. Nobody stands on its side once the
    /// referral is sent, so the referral has no thread and takes no later
    /// attachment: there is no one to read them.
    Free,
}

impl Sender {
    /// The sending practice, when the sender is one.
    pub fn practice(&self) -> Option<PracticeId> {
        match self {
            Sender::Practice(p) => Some(*p),
            Sender::Free => None,
        }
    }

    /// Whether someone on the sending side can read what is added after
    /// sending (thread messages, later attachments).
    pub fn has_members(&self) -> bool {
        match self {
            Sender::Practice(_) => true,
            Sender::Free => false,
        }
    }
}

/// The two parties to one referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parties {
    /// Who sent it.
    pub sender: Sender,
    /// The practice it was routed to.
    pub receiver: PracticeId,
}

/// Where a user stands on one referral. At least one side is true: a user on
/// neither side has no `Access` at all (see [`Access::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The user acts for the sender.
    pub sender: bool,
    /// The user is a member of the receiving practice.
    pub receiver: bool,
    /// The referral has a thread (its sender has members to read it): false
    /// for a free referral.
    pub thread: bool,
}

/// Something a user may ask to do with a referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See it: its content, history, thread and attachments.
    Read,
    /// Record that the receiving practice has opened it.
    MarkOpened,
    /// Accept it.
    Accept,
    /// Decline it with a reason.
    Reject,
    /// Withdraw it.
    Cancel,
    /// Re-file it under another category.
    ChangeCategory,
    /// Change how soon the patient should be seen.
    ChangeUrgency,
    /// Attach an encrypted file.
    AddAttachment,
    /// Post on its thread.
    PostMessage,
}

/// An action the user's side may not take; the text is what clients show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Forbidden(pub &'static str);

impl Access {
    /// A user's access from their standing on each side; `None` (no access,
    /// and no sign that the referral exists) when on neither.
    pub fn of(sender: Sender, on_sender_side: bool, on_receiver_side: bool) -> Option<Self> {
        (on_sender_side || on_receiver_side).then_some(Self {
            sender: on_sender_side,
            receiver: on_receiver_side,
            thread: sender.has_members(),
        })
    }

    /// `Ok` if the user's side may take `action`.
    pub fn permits(&self, action: Action) -> Result<(), Forbidden> {
        let (allowed, refusal) = match action {
            Action::Read => (true, ""),
            Action::AddAttachment => (self.thread, "a free referral takes no attachment after it is sent: its sender has no account"),
            Action::PostMessage => (self.thread, "a free referral has no thread: its sender has no account"),
            Action::MarkOpened => (self.receiver, "only the receiving practice marks a referral opened"),
            Action::Accept => (self.receiver, "only the receiving practice can accept"),
            Action::Reject => (self.receiver, "only the receiving practice can reject"),
            Action::ChangeCategory => (self.receiver, "only the receiving practice can change the category"),
            Action::ChangeUrgency => (self.receiver, "only the receiving practice can change the urgency"),
            Action::Cancel => (self.sender, "only the referring practice can cancel"),
        };
        if allowed { Ok(()) } else { Err(Forbidden(refusal)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIVER_ONLY: [Action; 5] = [Action::MarkOpened, Action::Accept, Action::Reject, Action::ChangeCategory, Action::ChangeUrgency];
    const BOTH: [Action; 3] = [Action::Read, Action::AddAttachment, Action::PostMessage];

    #[test]
    fn a_user_on_neither_side_has_no_access() {
        let p = Sender::Practice(PracticeId(uuid::Uuid::new_v4()));
        assert_eq!(Access::of(p, false, false), None);
        assert_eq!(Access::of(p, true, false), Some(Access { sender: true, receiver: false, thread: true }));
        assert_eq!(Access::of(p, false, true), Some(Access { sender: false, receiver: true, thread: true }));
        assert_eq!(Access::of(p, true, true), Some(Access { sender: true, receiver: true, thread: true }));
        assert_eq!(Access::of(Sender::Free, false, false), None);
    }

    #[test]
    fn the_receiving_side_works_the_referral() {
        let r = Access { sender: false, receiver: true, thread: true };
        for a in RECEIVER_ONLY.iter().chain(&BOTH) {
            assert_eq!(r.permits(*a), Ok(()), "{a:?}");
        }
        assert_eq!(r.permits(Action::Cancel), Err(Forbidden("only the referring practice can cancel")));
    }

    #[test]
    fn the_sending_side_reads_talks_and_cancels() {
        let s = Access { sender: true, receiver: false, thread: true };
        for a in BOTH.iter().chain(&[Action::Cancel]) {
            assert_eq!(s.permits(*a), Ok(()), "{a:?}");
        }
        for a in RECEIVER_ONLY {
            let e = s.permits(a).unwrap_err();
            assert!(e.0.starts_with("only the receiving practice"), "{a:?}: {e}");
        }
    }

    #[test]
    fn a_user_on_both_sides_may_do_everything() {
        let both = Access { sender: true, receiver: true, thread: true };
        for a in RECEIVER_ONLY.iter().chain(&BOTH).chain(&[Action::Cancel]) {
            assert_eq!(both.permits(*a), Ok(()), "{a:?}");
        }
    }

    #[test]
    fn a_free_referral_is_worked_by_its_receiver_but_has_no_thread_and_no_later_attachment() {
        let r = Access::of(Sender::Free, false, true).unwrap();
        assert!(!r.thread);
        for a in RECEIVER_ONLY.iter().chain(&[Action::Read]) {
            assert_eq!(r.permits(*a), Ok(()), "{a:?}");
        }
        assert!(r.permits(Action::PostMessage).unwrap_err().0.contains("no thread"));
        assert!(r.permits(Action::AddAttachment).unwrap_err().0.contains("no attachment"));
        assert!(r.permits(Action::Cancel).is_err());
        assert_eq!(Sender::Free.practice(), None);
    }

    #[test]
    fn a_practice_sender_names_its_practice() {
        let p = PracticeId(uuid::Uuid::new_v4());
        assert_eq!(Sender::Practice(p).practice(), Some(p));
    }
}
