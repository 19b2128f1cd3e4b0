//! What each role may do in a practice: the one table of rights.
//!
//! Every practice-scoped HTTP route and WebSocket command asks [`may`] (the
//! server through `practices::require`, the actors through
//! `handoff_actors::access`), after the user's standing in the practice
//! (membership, its dates, its sponsor, the two-factor requirement) has been
//! decided by `handoff_actors::access::standing`. A new right is a new
//! [`Right`] variant, and [`may`]'s exhaustive `match` then fails to compile
//! until the table says who holds it.

use handoff_protocol::v1::Role;

/// Something a practice's members may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Right {
    /// See the practice, its members, its inbox and its referrals (content,
    /// history, thread, attachments), and fetch its keys.
    Read,
    /// Work a received referral: open, accept, decline, re-file, change urgency;
    /// and cancel a sent one.
    ActOnReferrals,
    /// Post messages and attachments on a referral's thread.
    Post,
    /// Send referrals from the practice.
    SendReferrals,
    /// Take part in the practice's key group: grant the key, claim key
    /// packages, commit adds and removes, report an epoch.
    ManageKeys,
    /// Set one's own notification emails, leave the practice.
    ManageSelf,
    /// Invite someone to act on one's own behalf (a delegate, with dates).
    SponsorDelegates,
    /// Ask platform staff for a new referral category for the practice's specialty.
    RequestCategories,
    /// Invite people to the practice as members or admins.
    Invite,
    /// Remove other members, and set members' start and end dates.
    RemoveMembers,
    /// Change the practice's settings: free intake, the two-factor
    /// requirement, deleting the practice, and
    /// re-initialising its key group.
    ChangeSettings,
}

impl Right {
    /// Every right, in the table's order.
    pub const ALL: [Right; 11] = [
        Right::Read,
        Right::ActOnReferrals,
        Right::Post,
        Right::SendReferrals,
        Right::ManageKeys,
        Right::ManageSelf,
        Right::SponsorDelegates,
        Right::RequestCategories,
        Right::Invite,
        Right::RemoveMembers,
        Right::ChangeSettings,
    ];

    /// What a refusal of this right says.
    pub fn refusal(self) -> &'static str {
        match self {
            Right::Read | Right::ActOnReferrals | Right::Post | Right::SendReferrals | Right::ManageKeys | Right::ManageSelf => {
                "your role in this practice does not allow this"
            }
            Right::SponsorDelegates => "a delegate cannot invite anyone, not even a delegate of their own",
            Right::RequestCategories => "a delegate cannot ask for a new category; their sponsor can",
            Right::Invite => "only a practice admin can invite members and admins; a member can invite a delegate",
            Right::RemoveMembers => "only a practice admin can remove members or change their dates",
            Right::ChangeSettings => "only a practice admin can change the practice's settings",
        }
    }
}

/// Whether `role` holds `right`: the one table.
///
/// | right | admin | member | delegate |
/// |---|---|---|---|
/// | read | yes | yes | yes |
/// | act on referrals | yes | yes | yes |
/// | post messages and attachments | yes | yes | yes |
/// | send referrals | yes | yes | yes |
/// | key group | yes | yes | yes |
/// | own notifications, leave | yes | yes | yes |
/// | invite a delegate of one's own | yes | yes | no |
/// | ask staff for a new category | yes | yes | no |
/// | invite members and admins | yes | no | no |
/// | remove members, set dates | yes | no | no |
/// | practice settings | yes | no | no |
pub fn may(role: Role, right: Right) -> bool {
    match right {
        Right::Read | Right::ActOnReferrals | Right::Post | Right::SendReferrals | Right::ManageKeys | Right::ManageSelf => match role {
            Role::Admin | Role::Member | Role::Delegate => true,
        },
        Right::SponsorDelegates | Right::RequestCategories => match role {
            Role::Admin | Role::Member => true,
            Role::Delegate => false,
        },
        Right::Invite | Right::RemoveMembers | Right::ChangeSettings => match role {
            Role::Admin => true,
            Role::Member | Role::Delegate => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN_ONLY: [Right; 3] = [Right::Invite, Right::RemoveMembers, Right::ChangeSettings];
    const NOT_A_DELEGATES: [Right; 5] =
        [Right::SponsorDelegates, Right::RequestCategories, Right::Invite, Right::RemoveMembers, Right::ChangeSettings];

    #[test]
    fn an_admin_holds_every_right() {
        assert!(Right::ALL.iter().all(|r| may(Role::Admin, *r)));
    }

    #[test]
    fn a_delegate_cannot_invite_remove_or_change_settings_and_otherwise_acts_as_a_member() {
        for r in Right::ALL {
            assert_eq!(may(Role::Delegate, r), !NOT_A_DELEGATES.contains(&r), "{r:?}");
            // The rights a member holds for themself and a delegate does not.
            if !matches!(r, Right::SponsorDelegates | Right::RequestCategories) {
                assert_eq!(may(Role::Delegate, r), may(Role::Member, r), "{r:?}");
            }
        }
    }

    #[test]
    fn a_member_sponsors_delegates_but_does_not_invite_remove_or_change_settings() {
        for r in Right::ALL {
            assert_eq!(may(Role::Member, r), !ADMIN_ONLY.contains(&r), "{r:?}");
        }
    }
}
