//! The audit log on the wire: what the server records (never content), the
//! filters of a practice's log and of the platform's, and one page of entries.
//!
//! Every entry names its action with a closed [`AuditAction`], its actor and
//! the user they acted on behalf of by id, its target by id (a referral, a
//! member, a blob), and the client address. The server logs what it serves; a
//! client that decrypts what it already holds is invisible to it.

use serde::{Deserialize, Serialize};

use crate::v1::UnknownWord;
use crate::{PracticeId, UnixMillis, UserId};

/// The most entries one page of the log holds.
pub const AUDIT_PAGE: u32 = 100;

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// What an audit entry records. The wire and stored text is the
        /// snake_case word (`as_str`), stable forever: it is hashed into the chain.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The stable text, e.g. `"sign_in"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }
    };
}

audit_actions! {
    /// A password sign-in (or its second step) started a session.
    SignIn = "sign_in",
    /// A session was ended by its user.
    SignOut = "sign_out",
    /// A sign-in with a wrong password (or a wrong second factor) for an existing account.
    SignInFailed = "sign_in_failed",
    /// The password was reset with the Emergency Access Kit.
    KitReset = "kit_reset",
    /// Two-factor sign-in was turned on.
    TwoFactorEnabled = "two_factor_enabled",
    /// Two-factor sign-in was turned off.
    TwoFactorDisabled = "two_factor_disabled",
    /// A recovery code stood in for a code.
    RecoveryCodeUsed = "recovery_code_used",
    /// A practice admin turned the practice's two-factor requirement on or off.
    PracticeTwoFactorChanged = "practice_two_factor_changed",
    /// A referral was served by `GET /referrals/{id}`.
    ReferralServed = "referral_served",
    /// An attachment blob of a referral was downloaded.
    BlobServed = "blob_served",
    /// A member's first live subscription to a referral's stream.
    ReferralOpened = "referral_opened",
    /// A member sent a referral from the practice.
    ReferralSent = "referral_sent",
    /// A member of the receiving practice accepted a referral.
    ReferralAccepted = "referral_accepted",
    /// A member of the receiving practice declined a referral.
    ReferralRejected = "referral_rejected",
    /// A member of the receiving practice re-filed a referral's category or urgency.
    ReferralRefiled = "referral_refiled",
    /// A member of the sending practice cancelled a referral.
    ReferralCancelled = "referral_cancelled",
    /// A member posted a message on a referral's thread (its text is sealed; never recorded).
    MessagePosted = "message_posted",
    /// A member added an attachment to a referral.
    AttachmentAdded = "attachment_added",
    /// A practice was created (its creator is its first admin).
    PracticeCreated = "practice_created",
    /// An admin invited someone to the practice.
    MemberInvited = "member_invited",
    /// An invite was accepted: a new member.
    InviteAccepted = "invite_accepted",
    /// A member was removed (or left).
    MemberRemoved = "member_removed",
    /// The practice was deleted.
    PracticeDeleted = "practice_deleted",
    /// An admin set or changed a member's start or end date.
    MemberDatesSet = "member_dates_set",
    /// A membership reached its end date (or its sponsor's ended or was
    /// removed, for a delegate), and the server ended it: no actor.
    MembershipEnded = "membership_ended",
    /// A commit was appended to the practice's key group (MLS).
    KeyGroupCommit = "key_group_commit",
    /// A member was granted a practice key (epoch 0).
    KeyGranted = "key_granted",
    /// Staff verified a practice.
    PracticeVerified = "practice_verified",
    /// Staff withdrew a practice's verification.
    PracticeUnverified = "practice_unverified",
    /// Staff paused a practice's intake.
    PracticePaused = "practice_paused",
    /// Staff resumed a practice's intake.
    PracticeUnpaused = "practice_unpaused",
    /// Staff edited the taxonomy.
    TaxonomyEdited = "taxonomy_edited",
    /// Staff resolved a category request.
    CategoryRequestResolved = "category_request_resolved",
    /// Staff blocked a sender of free referrals.
    FreeBlockAdded = "free_block_added",
    /// Staff lifted a block.
    FreeBlockLifted = "free_block_lifted",
    // The telehealth waiting room (issue 15, wt-rooms-server): ids only.
    /// A member created a waiting room.
    RoomCreated = "room_created",
    /// A member renamed a waiting room.
    RoomRenamed = "room_renamed",
    /// A member rotated a waiting room's patient link (the old one stopped).
    RoomRotated = "room_rotated",
    /// A member deleted a waiting room.
    RoomDeleted = "room_deleted",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditAction {
    type Err = UnknownWord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownWord { what: "audit action", word: s.into() })
    }
}

/// The filters of `GET /practices/{id}/audit`, `GET /practices/{id}/audit.csv`
/// and `GET /admin/audit`, as the query string. Every field is optional; the
/// server checks each and answers `invalid_input` for a bad one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries this user made, or made on their behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<UserId>,
    /// Only this action (an [`AuditAction`] word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only entries on or after this UTC day, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Only entries on or before this UTC day, `YYYY-MM-DD` (the whole day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Paging: only entries older than this sequence number (the previous page's `next_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

/// One audit entry as an admin (or staff) reads it. The names are looked up
/// when the log is read; the chain stores ids only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRow {
    /// The entry's number in its chain (1, 2, …).
    pub seq: u64,
    /// When it happened.
    pub at: UnixMillis,
    /// What happened.
    pub action: AuditAction,
    /// Who did it, if anyone signed in did.
    pub actor: Option<UserId>,
    /// The actor's display name today, if the account still exists.
    pub actor_name: Option<String>,
    /// The user the actor acted on behalf of (a delegate's sponsor).
    pub on_behalf_of: Option<UserId>,
    /// The sponsor's display name today.
    pub on_behalf_of_name: Option<String>,
    /// What it was done to: an id (referral, member, blob, practice), never content.
    pub target: Option<String>,
    /// The client address the server saw.
    pub address: Option<String>,
    /// The entry's chain hash, hex.
    pub hash: String,
}

/// One page of a log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The practice whose log this is; `None` for the platform's.
    pub practice: Option<PracticeId>,
    /// At most [`AUDIT_PAGE`] entries, newest first.
    pub entries: Vec<AuditRow>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<u64>,
}

/// The columns of the CSV export, in order; the screen labels its cells with the same names.
pub const CSV_HEADER: [&str; 10] =
    ["seq", "time_utc", "action", "actor", "actor_name", "on_behalf_of", "on_behalf_of_name", "target", "address", "hash"];

/// A time as the log's screen and its CSV show it: `YYYY-MM-DD HH:MM:SS`, UTC.
pub fn utc(at: UnixMillis) -> String {
    let secs = at.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // The civil date of a day number (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_text_and_serde() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(*a));
            assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{}\"", a.as_str()));
        }
        assert!("signin".parse::<AuditAction>().is_err());
    }

    #[test]
    fn times_show_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_083_200_000 + 3_723_999), "2026-12-01 01:02:03");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }
}
