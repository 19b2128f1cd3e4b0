//! The rights table: who may call each HTTP route and each WebSocket command.
//!
//! This is the one copy of the table. The authorization matrix
//! (`authz_matrix`) reads it and checks every answer the server gives each
//! persona against it; README.md's "Who may do what" reproduces it
//! ([`markdown`] renders it). A route in `handoff_protocol::api::ALL` or a
//! command in `handoff_protocol::ws::COMMANDS` without a row here fails
//! `the_rights_table_lists_every_route_and_command`.
//!
//! A row says *who* may call, as a [`Who`]; what that means for each test
//! persona is [`Persona::expect`], one exhaustive `match`. The personas
//! stand relative to practice A, whose resources every request names; A
//! requires two-factor sign-in, which its admin and member have on and the
//! held-back member has not. Adding a persona
//! (the delegate, an ended member, a member before their start date) is one
//! variant of [`Persona`], its arm in [`Persona::expect`], its column in
//! [`markdown`] (automatic) and its fixture in `authz_matrix`; a route
//! whose rule differs for it gets a new [`Who`].

use handoff_protocol::ErrorCode;
use handoff_protocol::api::*;

/// Who may call a route or send a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Anyone, without any credential (public reference data, sign-in and
    /// registration steps, links whose token is the credential).
    Anyone,
    /// Any signed-in user (a session), about their own account or public keys.
    SignedIn,
    /// A member (any role) of the practice named in the path or the stream.
    Member,
    /// A member of the practice named in the path who is not a delegate (an admin or a member).
    MemberNotDelegate,
    /// An admin of the practice named in the path.
    Admin,
    /// A member of either party practice of the referral (the sender or the receiver).
    Party,
    /// A member of the practice that received the referral.
    Receiver,
    /// A member of the practice that sent the referral.
    Sender,
    /// Platform staff.
    Staff,
    /// The holder of a verified free-referral draft (`Authorization: Draft …`), no account.
    DraftHolder,
    /// The user whose session the path names (the matrix names a spare session of staff's).
    SessionOwner,
    /// A waiting-room guest, on its own socket (`/ws?guest=<token>`): a
    /// member's socket is refused (`forbidden`), and the token opens nothing else.
    Guest,
}

impl Who {
    /// The README's words for the rule.
    pub fn words(self) -> &'static str {
        match self {
            Who::Anyone => "anyone",
            Who::SignedIn => "signed in",
            Who::Member => "member of the practice",
            Who::MemberNotDelegate => "member of the practice, not a delegate",
            Who::Admin => "admin of the practice",
            Who::Party => "member of either party practice",
            Who::Receiver => "member of the receiving practice",
            Who::Sender => "member of the sending practice",
            Who::Staff => "platform staff",
            Who::DraftHolder => "verified free draft",
            Who::SessionOwner => "the session's own user",
            Who::Guest => "the guest, on its own socket",
        }
    }
}

/// What a route or command is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// An HTTP endpoint: its method and pattern, as `api::ALL` lists it.
    Http(Method, &'static str),
    /// A WebSocket command, by its wire name (`ws::COMMANDS`).
    Ws(&'static str),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Http(m, p) => write!(f, "{m} {p}"),
            Route::Ws(c) => write!(f, "ws {c}"),
        }
    }
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Right {
    /// The route or command.
    pub route: Route,
    /// Who may call it.
    pub who: Who,
    /// What else the handler checks once the caller is let in (shown in the README).
    pub note: &'static str,
}

const fn http<E: Endpoint>(who: Who, note: &'static str) -> Right {
    Right { route: Route::Http(E::METHOD, E::PATH), who, note }
}

const fn ws(command: &'static str, who: Who, note: &'static str) -> Right {
    Right { route: Route::Ws(command), who, note }
}

/// Every route and command with who may call it.
pub const RIGHTS: &[Right] = &[
    http::<GetHealth>(Who::Anyone, ""),
    http::<OpenLive>(Who::SignedIn, "the socket; each command has its own row"),
    http::<Prelogin>(Who::Anyone, ""),
    http::<Register>(Who::Anyone, ""),
    http::<Login>(Who::Anyone, ""),
    http::<Logout>(Who::SignedIn, "ends the caller's own session"),
    http::<RecoverStart>(Who::Anyone, "proves the Emergency Access Kit"),
    http::<RecoverFinish>(Who::Anyone, "proves the Emergency Access Kit"),
    http::<GetMe>(Who::SignedIn, "the caller's own account"),
    http::<GetTaxonomy>(Who::Anyone, ""),
    http::<GetDirectory>(Who::SignedIn, ""),
    http::<CreatePractice>(Who::SignedIn, "the creator becomes its admin"),
    http::<ListPractices>(Who::SignedIn, "the caller's own practices"),
    http::<GetPractice>(Who::Member, ""),
    http::<DeletePractice>(Who::Admin, "confirmed by the practice's name"),
    http::<ListMembers>(Who::Member, "pending invites are listed to admins only"),
    http::<RemoveMember>(Who::Admin, "a member may remove themself (leave)"),
    http::<InviteMember>(Who::Admin, "with a confirmed email address"),
    http::<GetPracticeKey>(Who::Member, "the caller's own grant"),
    http::<ListPendingGrants>(Who::Member, ""),
    http::<PutKeyGrant>(Who::Member, "a holder of the key, to a member"),
    http::<RequestCategory>(Who::MemberNotDelegate, "specialist practices"),
    http::<ListReferrals>(Who::Member, ""),
    http::<SetNotifications>(Who::Member, "the caller's own preference"),
    http::<GetReferral>(Who::Party, ""),
    http::<PutBlob>(Who::SignedIn, "owned by the uploader until attached"),
    http::<GetBlob>(Who::Party, "of the referral it is attached to; before that, its uploader"),
    http::<GetUserKeys>(Who::SignedIn, "public keys"),
    http::<GetInvite>(Who::Anyone, "the link's token is the credential"),
    http::<AcceptInvite>(Who::SignedIn, "the invited email's account"),
    http::<AdminListPractices>(Who::Staff, "metadata only"),
    http::<AdminPracticeAction>(Who::Staff, ""),
    http::<AdminEditTaxonomy>(Who::Staff, ""),
    http::<AdminListCategoryRequests>(Who::Staff, ""),
    http::<AdminResolveCategoryRequest>(Who::Staff, ""),
    http::<UploadKeyPackages>(Who::SignedIn, "the caller's own key packages"),
    http::<CountKeyPackages>(Who::SignedIn, "the caller's own key packages"),
    http::<LoadMlsState>(Who::SignedIn, "the caller's own state"),
    http::<SaveMlsState>(Who::SignedIn, "the caller's own state"),
    http::<SubmitMlsCommit>(Who::Member, "re-initialising the group: admins only"),
    http::<ReadMlsLog>(Who::Member, ""),
    http::<GetMlsWelcome>(Who::Member, "the welcome addressed to the caller"),
    http::<GetMlsPending>(Who::Member, ""),
    http::<ClaimKeyPackage>(Who::Member, "a key package of a member"),
    http::<GetReferralKeys>(Who::Party, ""),
    http::<ConfirmAccount>(Who::Anyone, "the emailed link's token is the credential"),
    http::<ConfirmParams>(Who::Anyone, "the emailed link's token is the credential"),
    http::<ReportMlsEpoch>(Who::Member, ""),
    http::<ListUnreadableReferrals>(Who::Member, ""),
    http::<StartFreeDraft>(Who::Anyone, "rate-limited per address and email"),
    http::<ResendFreeCode>(Who::Anyone, "the draft id; the code goes to the draft's email"),
    http::<VerifyFreeCode>(Who::Anyone, "the emailed code is the credential"),
    http::<GetFreeDirectory>(Who::DraftHolder, ""),
    http::<PutFreeBlob>(Who::DraftHolder, ""),
    http::<SendFreeReferral>(Who::DraftHolder, "one referral per draft"),
    http::<SetFreeIntake>(Who::Admin, ""),
    http::<AdminListBlocks>(Who::Staff, ""),
    http::<AdminBlock>(Who::Staff, ""),
    http::<AdminLiftBlock>(Who::Staff, ""),
    http::<GetFreeSignerKeys>(Who::DraftHolder, "public keys"),
    http::<SecondFactorSignIn>(Who::Anyone, "the pending-login token is the credential"),
    http::<GetTwoFactor>(Who::SignedIn, "the caller's own account"),
    http::<StartTwoFactor>(Who::SignedIn, "the caller's own account"),
    http::<ConfirmTwoFactor>(Who::SignedIn, "the caller's own account"),
    http::<DisableTwoFactor>(Who::SignedIn, "the caller's own account, with a code"),
    http::<RequirePracticeTwoFactor>(Who::Admin, "an admin who has two-factor sign-in on, to require it"),
    http::<GetOpenApi>(Who::Anyone, "the API's OpenAPI document"),
    http::<ListSessions>(Who::SignedIn, "the caller's own sessions"),
    http::<EndSession>(Who::SessionOwner, "another user's session is not_found"),
    http::<EndOtherSessions>(Who::SignedIn, "the caller's own other sessions"),
    http::<GetPracticeAudit>(Who::Admin, "the practice's audit log"),
    http::<GetPracticeAuditCsv>(Who::Admin, "the same entries as CSV"),
    http::<AdminGetAudit>(Who::Staff, "the platform's audit log"),
    http::<SetMemberDates>(Who::Admin, "a member's end date; a not-yet-started member's start date"),
    // The built-in video call (issue 15, wt-rooms-video).
    http::<GetIceServers>(Who::Anyone, "the deployment's STUN/TURN servers (a patient's browser has no session)"),
    // The inbox snapshot (issue 16, wt-inbox).
    http::<GetInbox>(Who::Member, "a page of the practice's referrals, ciphertext only"),
    // The WebSocket commands (`ws::Command`).
    ws("subscribe", Who::Member, "a practice stream: its members; a referral stream: either party's"),
    ws("unsubscribe", Who::SignedIn, "the caller's own socket"),
    ws("send_referral", Who::Member, "of the sending practice"),
    ws("mark_opened", Who::Receiver, ""),
    ws("accept", Who::Receiver, ""),
    ws("reject", Who::Receiver, ""),
    ws("change_category", Who::Receiver, ""),
    ws("change_urgency", Who::Receiver, ""),
    ws("cancel", Who::Sender, ""),
    ws("add_attachment", Who::Party, "not on a free referral; a blob the caller uploaded"),
    ws("post_message", Who::Party, "not on a free referral"),
    // The telehealth waiting room (issue 15, wt-rooms-server).
    http::<CreateRoom>(Who::Member, "any role, delegates too: hosting is front-desk work"),
    http::<ListRooms>(Who::Member, ""),
    http::<UpdateRoom>(Who::Member, "rename or settings"),
    http::<RotateRoomLink>(Who::Member, "the old patient link stops at once"),
    http::<DeleteRoom>(Who::Member, "its live sockets are told it ended"),
    http::<GetRoomInfo>(Who::Anyone, "the patient link's token is the credential"),
    http::<CheckInRoom>(Who::Anyone, "the patient link; rate-limited per address, capped per room"),
    ws("room_host", Who::Member, "of the room's practice"),
    ws("room_host_status", Who::Member, "a host of the room"),
    ws("room_leave", Who::Member, "a host of the room"),
    ws("room_admit", Who::Member, "a host of the room; a waiting guest"),
    ws("room_return", Who::Member, "a host of the room; an admitted guest"),
    ws("room_remove", Who::Member, "a host of the room"),
    ws("room_hand_over", Who::Member, "a host of the room, to another host present"),
    ws("room_message", Who::Member, "a host of the room"),
    ws("room_end", Who::Member, "a host of the room"),
    ws("room_signal", Who::Member, "a host of the room, to a guest it admitted"),
    ws("guest_check_in", Who::Guest, "the token's room"),
    ws("guest_signal", Who::Guest, "while admitted, to the admitting host"),
    ws("guest_leave", Who::Guest, "the token dies"),
];

/// The row of a route, if the table has one.
pub fn right_of(route: Route) -> Option<&'static Right> {
    RIGHTS.iter().find(|r| r.route == route)
}

/// A test persona: who calls, relative to practice A, whose resources every
/// request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persona {
    /// No credential at all.
    Anonymous,
    /// A free-referral sender with a verified draft, and no account.
    FreeSender,
    /// A member (admin) of practice B, a party to nothing of A's.
    OtherPractice,
    /// A member of A with the member role.
    Member,
    /// An admin of A.
    Admin,
    /// Platform staff, a member of no practice.
    Staff,
    /// A member of A without two-factor sign-in, which A requires: held back
    /// from everything of the practice until they enroll.
    HeldBack,
    /// A delegate of A, acting on behalf of the member who invited them,
    /// inside their start and end dates.
    Delegate,
    /// A member of A whose end date has passed.
    EndedMember,
    /// A member of A who accepted an invite whose start date is still ahead.
    NotYetStarted,
    /// A waiting-room guest's token (from a check-in to a room of A's), sent
    /// as a bearer token: it is no session, so every signed-in route refuses it.
    Guest,
}

impl Persona {
    /// Every persona, in the order the matrix calls them (a route that
    /// changes what it touches, e.g. deleting the practice, is called by its
    /// allowed personas last).
    pub const ALL: &'static [Persona] = &[
        Persona::Anonymous,
        Persona::FreeSender,
        Persona::Guest,
        Persona::OtherPractice,
        Persona::Staff,
        Persona::EndedMember,
        Persona::NotYetStarted,
        Persona::HeldBack,
        Persona::Delegate,
        Persona::Member,
        Persona::Admin,
    ];

    /// The persona's column heading in the README.
    pub fn heading(self) -> &'static str {
        match self {
            Persona::Anonymous => "anonymous",
            Persona::FreeSender => "free sender",
            Persona::OtherPractice => "other practice",
            Persona::Member => "member",
            Persona::Admin => "admin",
            Persona::Staff => "staff",
            Persona::HeldBack => "held back (no 2FA)",
            Persona::Delegate => "delegate",
            Persona::EndedMember => "ended member",
            Persona::NotYetStarted => "before start date",
            Persona::Guest => "guest token",
        }
    }

    /// What the server must answer this persona on a route whose rule is `who`.
    pub fn expect(self, who: Who) -> Expect {
        use Expect::{Allowed, Refused};
        let session = ErrorCode::Unauthenticated;
        let draft = ErrorCode::DraftUnverified;
        // Outside a practice or a referral, the answer is `not_found`, worded
        // as for an id that does not exist: it tells nothing about the object.
        let outside = ErrorCode::NotFound;
        let forbidden = ErrorCode::Forbidden;
        match (self, who) {
            (_, Who::Anyone) => Allowed,
            (Persona::Anonymous, Who::DraftHolder) => Refused(draft),
            (Persona::Anonymous, _) => Refused(session),
            (Persona::FreeSender, Who::DraftHolder) => Allowed,
            (Persona::FreeSender, _) => Refused(session),
            // A guest token works on its own socket's guest commands only.
            (Persona::Guest, Who::Guest) => Allowed,
            (Persona::Guest, Who::DraftHolder) => Refused(draft),
            (Persona::Guest, _) => Refused(session),
            // A guest command on a member's socket: refused whoever the member is.
            (_, Who::Guest) => Refused(forbidden),
            (_, Who::DraftHolder) => Refused(draft),
            (_, Who::SignedIn) => Allowed,
            // Another user's session is answered as one that does not exist.
            (Persona::Staff, Who::SessionOwner) => Allowed,
            (_, Who::SessionOwner) => Refused(outside),
            (Persona::Staff, Who::Staff) => Allowed,
            (_, Who::Staff) => Refused(forbidden),
            // Held back by the practice's two-factor requirement, and told so.
            (Persona::HeldBack, Who::Member | Who::MemberNotDelegate | Who::Admin | Who::Party | Who::Receiver | Who::Sender) => {
                Refused(ErrorCode::TwoFactorRequired)
            }
            // Outside their dates, a member of A stands outside it.
            (
                Persona::OtherPractice | Persona::Staff | Persona::EndedMember | Persona::NotYetStarted,
                Who::Member | Who::MemberNotDelegate | Who::Admin | Who::Party | Who::Receiver | Who::Sender,
            ) => Refused(outside),
            (Persona::Member | Persona::Delegate, Who::Admin) | (Persona::Delegate, Who::MemberNotDelegate) => Refused(forbidden),
            (
                Persona::Member | Persona::Admin | Persona::Delegate,
                Who::Member | Who::MemberNotDelegate | Who::Admin | Who::Party | Who::Receiver | Who::Sender,
            ) => Allowed,
        }
    }
}

/// Which side of a referral practice A stands on, for a command about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A received the referral.
    Received,
    /// A sent the referral.
    Sent,
}

impl Persona {
    /// What the server must answer this persona on a referral command whose
    /// rule is `who`, about a referral A stands on the `side` of: A's members
    /// are let in as a party, then refused (`forbidden`) an action of the
    /// other side's.
    pub fn expect_on(self, who: Who, side: Side) -> Expect {
        let other_side = matches!((who, side), (Who::Receiver, Side::Sent) | (Who::Sender, Side::Received));
        match (self.expect(who), other_side) {
            (Expect::Allowed, true) if matches!(self, Persona::Member | Persona::Admin | Persona::Delegate) => {
                Expect::Refused(ErrorCode::Forbidden)
            }
            (e, _) => e,
        }
    }
}

/// What the table says a persona gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The check passes: a success, or a domain answer that comes after it.
    Allowed,
    /// Refused by the check, with this code.
    Refused(ErrorCode),
}

/// The table as README.md shows it: one row per route and command, a
/// column per persona (✓ allowed, ✗ refused).
pub fn markdown() -> String {
    let mut out = String::from("| route | who may call | ");
    out.push_str(&Persona::ALL.iter().map(|p| p.heading()).collect::<Vec<_>>().join(" | "));
    out.push_str(" | notes |\n|---|---|");
    out.push_str(&"---|".repeat(Persona::ALL.len()));
    out.push_str("---|\n");
    for r in RIGHTS {
        let route = match r.route {
            Route::Http(m, p) => format!("`{m} {}`", p.strip_prefix(API_PREFIX).unwrap_or(p)),
            Route::Ws(c) => format!("ws `{c}`"),
        };
        let marks: Vec<&str> = Persona::ALL
            .iter()
            .map(|p| match p.expect(r.who) {
                Expect::Allowed => "✓",
                Expect::Refused(_) => "✗",
            })
            .collect();
        out.push_str(&format!("| {route} | {} | {} | {} |\n", r.who.words(), marks.join(" | "), r.note));
    }
    out
}
