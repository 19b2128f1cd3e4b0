//! The authorization matrix (issue 14, done-when 1): every route in
//! `api::ALL` and every WebSocket command, called as each [`Persona`], and
//! each answer compared with the rights table (`rights::RIGHTS`).
//!
//! The walk is generated from the protocol's own lists: a route or command
//! without a row in the table, or without a request builder here, fails the
//! test and names it. Every request names practice A's real resources (its
//! id, its members, a referral it received with an attachment, one it sent)
//! and carries a body of the route's own request type, so a caller who is
//! let in gets a success or a domain answer that comes after the check (a
//! validation error, a conflict), never the check's refusal.
//!
//! An answer is a *refusal* when its code is `unauthenticated`,
//! `session_expired`, `draft_unverified`, `forbidden` or
//! `two_factor_required`, or it is `not_found` in the words every access
//! check uses ("no such …, or you do not have access to it", which
//! `handoff-error` pins); anything else below 500 is *allowed*. A 5xx is
//! always a mismatch.
//!
//! Order: the calls that change what later calls see (removing a member,
//! deleting the practice, signing out) run last, in that order, and each
//! route's personas are called in [`Persona::ALL`]'s order, whose allowed
//! personas come last.

use std::collections::HashMap;

use handoff_client::Client;
use handoff_client::referrals::{File, To};
use handoff_protocol::api::*;
use handoff_protocol::audit::AuditQuery;
use handoff_protocol::free::{BlockKind, CodeSent, DraftId, FreeIntake, FreeSend, LiftBlock, NewBlock, StartDraft, VerifyCode};
use handoff_protocol::mls::{LogQuery, PublishKeyPackages, PutMlsState, ReportEpoch, SubmitCommit};
use handoff_protocol::two_factor::{RequireTwoFactor, SecondFactorLogin, SecondFactorProof};
use handoff_protocol::v1::*;
use handoff_protocol::ws::{
    AckBody, Attachment, BlobId, COMMANDS, Command, Destination, HostStatus, IdemKey, MessageId, NewReferral, NewSender, PROTOCOL_VERSION,
    Referral, ReferralId, RejectReason, StreamId, ThreadMessage, Urgency, WsQuery,
};
use handoff_protocol::{B64, CategoryRequestId, ErrorCode, GuestId, RoomId, UserId};
use handoff_testkit::{
    FreeSender, Verifier, content, moa_account, referring_office, routing, specialist_account, staff_account, unique_email,
    verified_specialist,
};
use serde::Serialize;

use crate::governance::join_dated;
use crate::harness::TestServer;
use crate::mls::join;
use crate::rights::{Expect, Persona, RIGHTS, Route, Side, Who, markdown, right_of};

/// What a WebSocket command is about: practice A's stream, or a referral A received or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Practice,
    Referral(Side),
}

/// The targets each command is sent about: a referral command about both a
/// referral A received and one A sent (so the receiver's and the sender's
/// actions are each refused to the other side); `subscribe` to A's stream
/// and to both referrals' streams.
fn targets(who: Who, name: &str) -> &'static [Target] {
    const BOTH: &[Target] = &[Target::Referral(Side::Received), Target::Referral(Side::Sent)];
    match who {
        _ if name == "subscribe" => &[Target::Practice, Target::Referral(Side::Received), Target::Referral(Side::Sent)],
        Who::Party | Who::Receiver | Who::Sender => BOTH,
        _ => &[Target::Practice],
    }
}

/// One HTTP request, ready to send as any persona.
#[derive(Debug)]
struct Call {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Call {
    /// Endpoint `E` with these path parameters and this request, encoded as every client encodes it.
    fn of<E: Endpoint>(path: &E::Path, request: &E::Request) -> Self
    where
        E::Request: Serialize,
    {
        let p = E::request(path, request).expect("the request encodes");
        match p.json {
            Some(json) => Call { method: p.method, path: p.path, content_type: Some("application/json"), body: json.into_bytes() },
            None => Call { method: p.method, path: p.path, content_type: None, body: Vec::new() },
        }
    }

    /// Endpoint `E`, whose request is raw bytes.
    fn octets<E: Endpoint<Request = Octets>>(path: &E::Path, bytes: Vec<u8>) -> Self {
        Call { method: E::METHOD, path: E::path(path), content_type: Some("application/octet-stream"), body: bytes }
    }
}

/// What the server answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: Option<ErrorCode>,
    message: String,
}

impl Answer {
    /// Refused by an access check, or let through (see the module docs).
    fn outcome(&self) -> Expect {
        const OUTSIDE: &str = ", or you do not have access to it";
        match self.code {
            Some(
                c @ (ErrorCode::Unauthenticated
                | ErrorCode::SessionExpired
                | ErrorCode::DraftUnverified
                | ErrorCode::Forbidden
                | ErrorCode::TwoFactorRequired),
            ) => Expect::Refused(c),
            Some(ErrorCode::NotFound) if self.message.ends_with(OUTSIDE) => Expect::Refused(ErrorCode::NotFound),
            _ => Expect::Allowed,
        }
    }

    fn describe(&self) -> String {
        match self.code {
            Some(c) => format!("{} {c} ({})", self.status, self.message),
            None => format!("{}", self.status),
        }
    }
}

/// How a persona calls: with a session (or nothing), or with a free draft's token.
enum Caller<'a> {
    Session(&'a Client),
    Draft(&'a FreeSender),
}

impl Caller<'_> {
    async fn send(&self, call: &Call) -> Answer {
        let m = call.method.as_str();
        let r = match self {
            Caller::Session(c) => c.raw(m, &call.path, call.content_type, call.body.clone()).await,
            Caller::Draft(d) => d.raw(m, &call.path, call.content_type, call.body.clone()).await,
        }
        .unwrap_or_else(|e| panic!("{m} {}: no answer: {e}", call.path));
        let e = r.error();
        Answer { status: r.status, code: e.as_ref().map(|e| e.error), message: e.map(|e| e.message).unwrap_or_default() }
    }
}

/// The world every request is about: practice A (an admin, a member and a
/// second member, `colleague`, whom requests name as their target), in an
/// MLS group, requiring two-factor sign-in, which a third member, `held_back`, has off; practice B, whose admin is the "other practice" persona;
/// practice C, which sent A a referral with an attachment; practice S,
/// which A sent a referral to; a pending invite, an open category request,
/// a blocked address; a verified free sender and one unverified draft per persona.
struct Fixture {
    srv: TestServer,
    anonymous: Client,
    free: FreeSender,
    other: Client,
    member: Client,
    admin: Client,
    staff: Client,
    colleague: Client,
    held_back: Client,
    delegate: Client,
    ended: Client,
    not_yet: Client,
    a: Practice,
    s: Practice,
    received: Referral,
    sent: ReferralId,
    invite_token: String,
    category_request: CategoryRequestId,
    blocked: String,
    drafts: HashMap<Persona, DraftId>,
    /// The handle of a second session of staff's, which only staff may end.
    staff_spare_session: String,
    /// A waiting room of A's, whose link is never rotated.
    room: Room,
    /// One room of A's per persona, for the routes that rotate and delete.
    rooms: HashMap<Persona, RoomId>,
    /// A client whose bearer token is a guest token of `room` (no session).
    guest: Client,
}

impl Fixture {
    async fn new() -> Self {
        // Every persona calls the rate-limited public routes; the limits are not what this test is about.
        let srv = TestServer::start_with(None, |c| {
            c.auth_attempts_per_ip = 10_000;
            c.registrations_per_ip = 10_000;
            c.free_codes_per_address_per_hour = 10_000;
            c.free_codes_per_email_per_hour = 10_000;
            c.free_referrals_per_address_per_day = 10_000;
            c.free_referrals_per_email_per_day = 10_000;
        });
        let url = srv.url();
        let staff_account = staff_account();
        let staff = staff_account.register(&url).await.unwrap();
        srv.grant_staff(&staff_account.email);
        let mut spare = srv.client();
        spare.login(&staff_account.email, handoff_testkit::PASSWORD).await.unwrap();
        let sessions = staff.call::<ListSessions>(&(), &()).await.unwrap().sessions;
        let staff_spare_session = sessions.iter().find(|s| !s.current).expect("staff's second session").handle.clone();

        let admin = specialist_account().register(&url).await.unwrap();
        let a = verified_specialist().name("Practice A").create(&admin, Verifier::Staff(&staff)).await.unwrap();
        admin.mls_sync(a.id).await.unwrap();
        let member = join(&srv, &admin, a.id, &unique_email("member", "cardio.example")).await;
        let colleague = join(&srv, &admin, a.id, &unique_email("colleague", "cardio.example")).await;
        member.mls_publish_key_packages(2).await.unwrap();
        colleague.mls_publish_key_packages(6).await.unwrap();
        admin.mls_reconcile(a.id).await.unwrap();
        member.mls_sync(a.id).await.unwrap();
        colleague.mls_sync(a.id).await.unwrap();

        let other = moa_account().register(&url).await.unwrap();
        referring_office().name("Practice B").create(&other).await.unwrap();

        let c_moa = moa_account().register(&url).await.unwrap();
        let c = referring_office().name("Practice C").create(&c_moa).await.unwrap();
        let live = c_moa.live().await.unwrap();
        let ecg = File { name: "ecg.pdf".into(), media_type: "application/pdf".into(), bytes: b"%PDF-1.4 ecg".to_vec() };
        let ack =
            c_moa.send_referral(&live, c.id, To::Practice(a.id), routing("arrhythmia"), &content("Ada Inbound"), &[ecg]).await.unwrap();
        let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
        let received = c_moa.referral(referral).await.unwrap();
        assert_eq!(received.attachments.len(), 1);

        let s_owner = specialist_account().register(&url).await.unwrap();
        let s = verified_specialist().name("Practice S").create(&s_owner, Verifier::Staff(&staff)).await.unwrap();
        let live = admin.live().await.unwrap();
        let ack = admin.send_referral(&live, a.id, To::Practice(s.id), routing("arrhythmia"), &content("Bo Outbound"), &[]).await.unwrap();
        let AckBody::ReferralSent { referral: sent, .. } = ack else { panic!("{ack:?}") };

        let invited = unique_email("invited", "cardio.example");
        admin.invite(a.id, &invited, Role::Member).await.unwrap();
        let invite_token = srv.folder_invite_token(&invited).await;
        let category_request = admin.request_category(a.id, "Matrix Category", "asked by the matrix").await.unwrap().id;
        let blocked = unique_email("blocked", "spam.example");
        let block = NewBlock { kind: BlockKind::Email, value: blocked.clone(), reason: "the matrix lifts it".into() };
        staff.call::<AdminBlock>(&(), &block).await.unwrap();

        // A requires two-factor sign-in: its admin and member have it on; one more member has not.
        enroll(&admin).await;
        enroll(&member).await;
        admin.require_two_factor(a.id, true).await.unwrap();
        let held_back = join(&srv, &admin, a.id, &unique_email("held-back", "cardio.example")).await;

        // Dated memberships: a delegate the member sponsors, a member whose end
        // date passes, and one whose start date is a month away. Each has
        // two-factor sign-in on, so only their dates decide.
        let (minute, day) = (60_000, 24 * 60 * 60 * 1000);
        let t = srv.config.clock.now();
        let email = |tag| unique_email(tag, "cardio.example");
        let delegate = join_dated(&srv, &member, a.id, &email("delegate"), Role::Delegate, Some(t + minute), Some(t + 60 * day)).await;
        let ended = join_dated(&srv, &admin, a.id, &email("ended"), Role::Member, None, Some(t + 2 * minute)).await;
        let not_yet = join_dated(&srv, &admin, a.id, &email("not-yet"), Role::Member, Some(t + 30 * day), None).await;
        for c in [&delegate, &ended, &not_yet] {
            enroll(c).await;
        }
        // Past the delegate's start and the ended member's end; before the other's start.
        srv.config.clock.advance(10 * minute);

        let free = FreeSender::verified(&url, &unique_email("sender", "family.example")).await.unwrap();
        let anonymous = srv.client();
        let mut drafts = HashMap::new();
        for p in Persona::ALL {
            let start = StartDraft { email: unique_email("draft", "family.example") };
            let sent: CodeSent = anonymous.call::<StartFreeDraft>(&(), &start).await.unwrap();
            drafts.insert(*p, sent.draft);
        }
        // Waiting rooms (issue 15): one to host and check in to, one per persona to rotate and delete.
        let new_room = |name: &str| NewRoom {
            id: RoomId(uuid::Uuid::new_v4()),
            name: name.into(),
            sealed_secret: B64(vec![3; 48]),
            epoch: 0,
            settings: RoomSettings::default(),
        };
        let room = admin.call::<CreateRoom>(&a.id, &new_room("Matrix room")).await.unwrap();
        let mut rooms = HashMap::new();
        for &p in Persona::ALL {
            rooms.insert(p, admin.call::<CreateRoom>(&a.id, &new_room("Persona room")).await.unwrap().id);
        }
        let checked = srv.client().call::<CheckInRoom>(&room.link, &CheckIn { sealed: B64(vec![5; 64]) }).await.unwrap();
        let mut guest = srv.client();
        guest.set_token(Some(checked.token));
        Fixture {
            srv,
            anonymous,
            free,
            other,
            member,
            admin,
            staff,
            colleague,
            held_back,
            delegate,
            ended,
            not_yet,
            a,
            s,
            received,
            sent,
            invite_token,
            category_request,
            blocked,
            drafts,
            staff_spare_session,
            room,
            rooms,
            guest,
        }
    }

    /// The persona's session client (`None` for the free sender).
    fn client(&self, p: Persona) -> Option<&Client> {
        match p {
            Persona::Anonymous => Some(&self.anonymous),
            Persona::FreeSender => None,
            Persona::OtherPractice => Some(&self.other),
            Persona::Member => Some(&self.member),
            Persona::Admin => Some(&self.admin),
            Persona::Staff => Some(&self.staff),
            Persona::HeldBack => Some(&self.held_back),
            Persona::Delegate => Some(&self.delegate),
            Persona::EndedMember => Some(&self.ended),
            Persona::NotYetStarted => Some(&self.not_yet),
            Persona::Guest => Some(&self.guest),
        }
    }

    fn caller(&self, p: Persona) -> Caller<'_> {
        match self.client(p) {
            Some(c) => Caller::Session(c),
            None => Caller::Draft(&self.free),
        }
    }

    /// The persona's user id, or a stranger's for a persona without an account.
    fn user_of(&self, p: Persona) -> UserId {
        self.client(p).and_then(|c| c.user_id().ok()).unwrap_or(UserId(uuid::Uuid::new_v4()))
    }

    /// A well-formed request of `route` as persona `p`, naming A's resources;
    /// `None` if this test has no builder for the route (a test failure).
    fn http_probe(&self, route: (Method, &str), p: Persona) -> Option<Call> {
        macro_rules! probes {
            ($($e:ty => $call:expr;)*) => {
                $(if route == (<$e as Endpoint>::METHOD, <$e as Endpoint>::PATH) {
                    return Some($call);
                })*
            };
        }
        let a = self.a.id;
        let me = self.user_of(p);
        let colleague = self.colleague.user_id().unwrap();
        let admin = self.admin.user_id().unwrap();
        let nobody = || unique_email("nobody", "nowhere.example");
        let b = |n: usize, byte: u8| B64(vec![byte; n]);
        let draft = self.drafts[&p];
        let cardiology = || DirectoryQuery { specialty: Some("cardiology".into()), region: Some("fraser".into()) };
        let proof = || SecondFactorProof { code: Some("000000".into()), recovery_code: None };
        probes! {
            GetHealth => Call::of::<GetHealth>(&(), &());
            OpenLive => Call::of::<OpenLive>(&(), &WsQuery { v: Some(PROTOCOL_VERSION), guest: None });
            Prelogin => Call::of::<Prelogin>(&(), &PreloginRequest { email: nobody() });
            Register => Call::of::<Register>(&(), &RegisterRequest {
                email: nobody(),
                display_name: "Matrix".into(),
                salt: b(16, 1),
                auth_key: b(32, 2),
                kit_auth: b(32, 3),
                keys: UserKeyBundle { sign_pub: b(32, 4), hpke_pub: b(32, 5), wrapped_by_password: b(120, 6), wrapped_by_kit: b(120, 7) },
                invite_token: None,
            });
            Login => Call::of::<Login>(&(), &LoginRequest { email: nobody(), auth_key: b(32, 1) });
            Logout => Call::of::<Logout>(&(), &());
            RecoverStart => Call::of::<RecoverStart>(&(), &RecoverStartRequest { email: nobody(), kit_auth: b(32, 1), code: None, recovery_code: None });
            RecoverFinish => Call::of::<RecoverFinish>(&(), &RecoverFinishRequest {
                email: nobody(),
                kit_auth: b(32, 1),
                salt: b(16, 2),
                auth_key: b(32, 3),
                wrapped_by_password: b(120, 4),
                second_factor_token: None,
            });
            GetMe => Call::of::<GetMe>(&(), &());
            GetTaxonomy => Call::of::<GetTaxonomy>(&(), &());
            GetDirectory => Call::of::<GetDirectory>(&(), &cardiology());
            CreatePractice => Call::of::<CreatePractice>(&(), &CreatePracticeRequest {
                id: handoff_protocol::PracticeId(uuid::Uuid::new_v4()),
                name: "Matrix Practice".into(),
                kind: PracticeKind::Referring,
                specialty: None,
                region: None,
                intake: vec![],
                // Signed by someone else: refused as invalid once the caller is let in, so nothing is created.
                public_key: PracticePublicKey { epoch: 0, hpke_pub: b(32, 1), signer: UserId(uuid::Uuid::new_v4()), signature: b(64, 2) },
                creator_grant: KeyGrant { epoch: 0, sealed: b(64, 3), granted_by: UserId(uuid::Uuid::new_v4()) },
            });
            ListPractices => Call::of::<ListPractices>(&(), &());
            GetPractice => Call::of::<GetPractice>(&a, &());
            DeletePractice => Call::of::<DeletePractice>(&a, &DeletePracticeRequest { confirm_name: self.a.name.clone() });
            ListMembers => Call::of::<ListMembers>(&a, &());
            RemoveMember => Call::of::<RemoveMember>(&(a, colleague), &());
            InviteMember => Call::of::<InviteMember>(&a, &InviteRequest { email: nobody(), role: Role::Member, starts_at: None, ends_at: None });
            GetPracticeKey => Call::of::<GetPracticeKey>(&a, &());
            ListPendingGrants => Call::of::<ListPendingGrants>(&a, &());
            // Epoch 0 while the group is at a later epoch: a conflict once the caller is let in.
            PutKeyGrant => Call::of::<PutKeyGrant>(&(a, colleague), &KeyGrant { epoch: 0, sealed: b(64, 1), granted_by: me });
            RequestCategory => Call::of::<RequestCategory>(&a, &CategoryRequestCreate { name: "Matrix Asked".into(), note: String::new() });
            ListReferrals => Call::of::<ListReferrals>(&a, &());
            SetNotifications => Call::of::<SetNotifications>(&a, &NotificationSettings { email_on_status: true });
            GetReferral => Call::of::<GetReferral>(&self.received.id, &());
            PutBlob => Call::octets::<PutBlob>(&BlobId(uuid::Uuid::new_v4()), vec![9; 64]);
            GetBlob => Call::of::<GetBlob>(&self.received.attachments[0].blob, &());
            GetUserKeys => Call::of::<GetUserKeys>(&admin, &());
            GetInvite => Call::of::<GetInvite>(&self.invite_token, &());
            AcceptInvite => Call::of::<AcceptInvite>(&self.invite_token, &());
            AdminListPractices => Call::of::<AdminListPractices>(&(), &());
            AdminPracticeAction => Call::of::<AdminPracticeAction>(&(a, PracticeAction::Verify), &());
            AdminEditTaxonomy => Call::of::<AdminEditTaxonomy>(&(), &TaxonomyEdit {
                specialty: "cardiology".into(),
                category: Some("matrix-edit".into()),
                subcategory: None,
                name: "Matrix Edit".into(),
            });
            AdminListCategoryRequests => Call::of::<AdminListCategoryRequests>(&(), &());
            AdminResolveCategoryRequest => Call::of::<AdminResolveCategoryRequest>(&self.category_request, &ResolveCategoryRequest { approve: false, slug: None });
            UploadKeyPackages => Call::of::<UploadKeyPackages>(&(), &PublishKeyPackages { key_packages: vec![b(64, 0)] });
            CountKeyPackages => Call::of::<CountKeyPackages>(&(), &());
            LoadMlsState => Call::of::<LoadMlsState>(&(), &());
            // A version nobody has: a conflict, so no one's state is overwritten.
            SaveMlsState => Call::of::<SaveMlsState>(&(), &PutMlsState { expected_version: 1_000_000, sealed: b(64, 0) });
            SubmitMlsCommit => Call::of::<SubmitMlsCommit>(&a, &SubmitCommit {
                epoch: 1_000,
                commit: None,
                group_info: None,
                welcome: None,
                reinit: None,
                added: vec![],
                removed: vec![],
                public_key: self.a.public_key.clone(),
                history: b(64, 0),
            });
            ReadMlsLog => Call::of::<ReadMlsLog>(&a, &LogQuery { after: 0 });
            GetMlsWelcome => Call::of::<GetMlsWelcome>(&a, &());
            GetMlsPending => Call::of::<GetMlsPending>(&a, &());
            ClaimKeyPackage => Call::of::<ClaimKeyPackage>(&(a, colleague), &());
            GetReferralKeys => Call::of::<GetReferralKeys>(&self.received.id, &());
            ConfirmAccount => Call::of::<ConfirmAccount>(&(), &ConfirmRequest { token: "not-a-token".into(), auth_key: b(32, 1) });
            ConfirmParams => Call::of::<ConfirmParams>(&(), &ConfirmParamsRequest { token: "not-a-token".into() });
            ReportMlsEpoch => Call::of::<ReportMlsEpoch>(&a, &ReportEpoch { epoch: 1 });
            ListUnreadableReferrals => Call::of::<ListUnreadableReferrals>(&a, &());
            StartFreeDraft => Call::of::<StartFreeDraft>(&(), &StartDraft { email: unique_email("draft", "family.example") });
            ResendFreeCode => Call::of::<ResendFreeCode>(&draft, &());
            VerifyFreeCode => Call::of::<VerifyFreeCode>(&draft, &VerifyCode { code: "000000".into() });
            GetFreeDirectory => Call::of::<GetFreeDirectory>(&(), &cardiology());
            PutFreeBlob => Call::octets::<PutFreeBlob>(&BlobId(uuid::Uuid::new_v4()), vec![9; 64]);
            // No receiver wrap: invalid once the draft is let in, so nothing is sent.
            SendFreeReferral => Call::of::<SendFreeReferral>(&(), &FreeSend {
                idem: IdemKey(uuid::Uuid::new_v4()),
                referral: NewReferral {
                    id: ReferralId(uuid::Uuid::new_v4()),
                    from: NewSender::Free,
                    destination: Destination::Practice { practice: a },
                    routing: routing("arrhythmia"),
                    content: b(64, 1),
                    to_keys: vec![],
                    attachments: vec![],
                },
            });
            SetFreeIntake => Call::of::<SetFreeIntake>(&a, &FreeIntake { accepts: true });
            AdminListBlocks => Call::of::<AdminListBlocks>(&(), &());
            AdminBlock => Call::of::<AdminBlock>(&(), &NewBlock { kind: BlockKind::Email, value: nobody(), reason: "matrix".into() });
            AdminLiftBlock => Call::of::<AdminLiftBlock>(&(), &LiftBlock { kind: BlockKind::Email, value: self.blocked.clone() });
            GetFreeSignerKeys => Call::of::<GetFreeSignerKeys>(&admin, &());
            SecondFactorSignIn => Call::of::<SecondFactorSignIn>(&(), &SecondFactorLogin {
                pending_token: "not-a-token".into(),
                code: Some("000000".into()),
                recovery_code: None,
            });
            GetTwoFactor => Call::of::<GetTwoFactor>(&(), &());
            StartTwoFactor => Call::of::<StartTwoFactor>(&(), &());
            ConfirmTwoFactor => Call::of::<ConfirmTwoFactor>(&(), &proof());
            DisableTwoFactor => Call::of::<DisableTwoFactor>(&(), &proof());
            // Requiring it again: the held-back member stays held back.
            RequirePracticeTwoFactor => Call::of::<RequirePracticeTwoFactor>(&a, &RequireTwoFactor { required: true });
            GetOpenApi => Call::of::<GetOpenApi>(&(), &());
            ListSessions => Call::of::<ListSessions>(&(), &());
            EndSession => Call::of::<EndSession>(&self.staff_spare_session, &());
            EndOtherSessions => Call::of::<EndOtherSessions>(&(), &());
            GetPracticeAudit => Call::of::<GetPracticeAudit>(&a, &AuditQuery::default());
            GetPracticeAuditCsv => Call::of::<GetPracticeAuditCsv>(&a, &AuditQuery::default());
            AdminGetAudit => Call::of::<AdminGetAudit>(&(), &AuditQuery::default());
            // An end date a month ahead: far enough that no reminder is due.
            SetMemberDates => Call::of::<SetMemberDates>(&(a, colleague), &MemberDates { starts_at: None, ends_at: Some(month_ahead()) });
            // The telehealth waiting room (issue 15, wt-rooms-server).
            CreateRoom => Call::of::<CreateRoom>(&a, &NewRoom {
                id: RoomId(uuid::Uuid::new_v4()),
                name: "Probe room".into(),
                sealed_secret: b(48, 3),
                epoch: 0,
                settings: RoomSettings::default(),
            });
            ListRooms => Call::of::<ListRooms>(&a, &());
            UpdateRoom => Call::of::<UpdateRoom>(&(a, self.room.id), &RoomUpdate { name: Some("Matrix room".into()), settings: None });
            RotateRoomLink => Call::of::<RotateRoomLink>(&(a, self.rooms[&p]), &RotateRoom { sealed_secret: b(48, 4), epoch: 0 });
            DeleteRoom => Call::of::<DeleteRoom>(&(a, self.rooms[&p]), &());
            GetRoomInfo => Call::of::<GetRoomInfo>(&self.room.link, &());
            CheckInRoom => Call::of::<CheckInRoom>(&self.room.link, &CheckIn { sealed: b(64, 5) });
            // The built-in video call (issue 15, wt-rooms-video).
            GetIceServers => Call::of::<GetIceServers>(&(), &());
            // The inbox snapshot (issue 16, wt-inbox).
            GetInbox => Call::of::<GetInbox>(&a, &InboxQuery::default());
        }
        None
    }

    /// A well-formed command `name` as persona `p` (who has the session
    /// `client`), about `target`; `None` without a builder.
    async fn ws_probe(&self, name: &str, p: Persona, client: &Client, target: Target) -> Option<Command> {
        let practice = StreamId::Practice(self.a.id);
        let received = match target {
            Target::Practice | Target::Referral(Side::Received) => self.received.id,
            Target::Referral(Side::Sent) => self.sent,
        };
        Some(match name {
            "subscribe" => match target {
                Target::Practice => Command::Subscribe { stream: practice, after_seq: 0 },
                Target::Referral(_) => Command::Subscribe { stream: StreamId::Referral(received), after_seq: 0 },
            },
            "unsubscribe" => Command::Unsubscribe { stream: practice },
            "send_referral" => {
                // A's members seal their own; anyone else sends one an admin sealed.
                let sealer = if matches!(p, Persona::Member | Persona::Admin) { client } else { &self.admin };
                let (referral, _) = sealer
                    .prepare_referral(self.a.id, To::Practice(self.s.id), routing("arrhythmia"), &content("Cy Matrix"), &[])
                    .await
                    .unwrap();
                Command::SendReferral { referral }
            }
            "mark_opened" => Command::MarkOpened { referral: received },
            "accept" => Command::Accept { referral: received },
            "reject" => Command::Reject { referral: received, reason: RejectReason::Other, note: B64(vec![1; 64]) },
            "change_category" => Command::ChangeCategory { referral: received, category: "heart-failure".into(), subcategory: None },
            "change_urgency" => Command::ChangeUrgency { referral: received, urgency: Urgency::Semi },
            "cancel" => Command::Cancel { referral: received },
            "add_attachment" => {
                // A blob of the caller's own, as the command requires.
                let blob = BlobId(uuid::Uuid::new_v4());
                client.upload_octets::<PutBlob>(&blob, vec![7; 64]).await.unwrap();
                Command::AddAttachment { referral: received, attachment: Attachment { blob, meta: B64(vec![1; 64]) } }
            }
            "post_message" => Command::PostMessage {
                referral: received,
                message: ThreadMessage { id: MessageId(uuid::Uuid::new_v4()), body: B64(vec![1; 64]), signature: B64(vec![2; 64]) },
            },
            // The waiting room: the persona's socket hosts the room first (room_host comes first in COMMANDS);
            // a command about a guest who is not there is `guest_gone`, past every access check.
            "room_host" => Command::RoomHost { room: self.room.id, status: HostStatus::Ready },
            "room_host_status" => Command::RoomHostStatus { room: self.room.id, status: HostStatus::Busy },
            "room_leave" => Command::RoomLeave { room: self.room.id },
            "room_admit" => Command::RoomAdmit { room: self.room.id, guest: nobody_guest(), sealed_admission: B64(vec![1; 64]) },
            "room_return" => Command::RoomReturn { room: self.room.id, guest: nobody_guest() },
            "room_remove" => Command::RoomRemove { room: self.room.id, guest: nobody_guest() },
            "room_hand_over" => Command::RoomHandOver { room: self.room.id, guest: nobody_guest(), to: client.user_id().unwrap() },
            "room_message" => Command::RoomMessage { room: self.room.id, sealed: B64(vec![1; 64]) },
            "room_end" => Command::RoomEnd { room: self.room.id },
            "room_signal" => Command::RoomSignal { room: self.room.id, guest: nobody_guest(), sealed: B64(vec![1; 64]) },
            "guest_check_in" => Command::GuestCheckIn { sealed: B64(vec![1; 64]) },
            "guest_signal" => Command::GuestSignal { sealed: B64(vec![1; 64]) },
            "guest_leave" => Command::GuestLeave {},
            _ => return None,
        })
    }
}

/// The wire name of a command: the server's own (`metrics::command_label`,
/// an exhaustive match, so a new `Command` variant does not compile until it
/// is named there, and then the table needs its row).
fn wire_name(c: &Command) -> &'static str {
    handoff_server::metrics::command_label(c)
}

/// Turns two-factor sign-in on for `c`, with the code of now computed from the secret.
async fn enroll(c: &Client) {
    let e = c.start_two_factor().await.unwrap();
    let totp = totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(&e.secret).unwrap()).build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    c.confirm_two_factor(&totp.generate(now).to_string()).await.unwrap();
}

/// One command of every variant (values do not matter).
fn command_samples() -> Vec<Command> {
    let referral = ReferralId(uuid::Uuid::nil());
    let stream = StreamId::Referral(referral);
    let b = || B64(vec![1; 8]);
    let new = NewReferral {
        id: referral,
        from: NewSender::Free,
        destination: Destination::ChooseForMe,
        routing: routing("arrhythmia"),
        content: b(),
        to_keys: vec![],
        attachments: vec![],
    };
    vec![
        Command::Subscribe { stream, after_seq: 0 },
        Command::Unsubscribe { stream },
        Command::SendReferral { referral: new },
        Command::MarkOpened { referral },
        Command::Accept { referral },
        Command::Reject { referral, reason: RejectReason::Other, note: b() },
        Command::ChangeCategory { referral, category: "x".into(), subcategory: None },
        Command::ChangeUrgency { referral, urgency: Urgency::Urgent },
        Command::Cancel { referral },
        Command::AddAttachment { referral, attachment: Attachment { blob: BlobId(uuid::Uuid::nil()), meta: b() } },
        Command::PostMessage { referral, message: ThreadMessage { id: MessageId(uuid::Uuid::nil()), body: b(), signature: b() } },
        Command::RoomHost { room: RoomId::NIL, status: HostStatus::Ready },
        Command::RoomHostStatus { room: RoomId::NIL, status: HostStatus::Away },
        Command::RoomLeave { room: RoomId::NIL },
        Command::RoomAdmit { room: RoomId::NIL, guest: GuestId::NIL, sealed_admission: b() },
        Command::RoomReturn { room: RoomId::NIL, guest: GuestId::NIL },
        Command::RoomRemove { room: RoomId::NIL, guest: GuestId::NIL },
        Command::RoomHandOver { room: RoomId::NIL, guest: GuestId::NIL, to: UserId::NIL },
        Command::RoomMessage { room: RoomId::NIL, sealed: b() },
        Command::RoomEnd { room: RoomId::NIL },
        Command::RoomSignal { room: RoomId::NIL, guest: GuestId::NIL, sealed: b() },
        Command::GuestCheckIn { sealed: b() },
        Command::GuestSignal { sealed: b() },
        Command::GuestLeave {},
    ]
}

/// A guest id no check-in made.
fn nobody_guest() -> GuestId {
    GuestId(uuid::Uuid::new_v4())
}

/// A month from now, in Unix milliseconds.
fn month_ahead() -> handoff_protocol::UnixMillis {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    handoff_protocol::UnixMillis::try_from(now).unwrap() + 30 * 24 * 60 * 60 * 1000
}

/// The routes that change what later calls see, in the order they run, after everything else.
const LAST: &[(Method, &str)] = &[
    (EndSession::METHOD, EndSession::PATH),
    (EndOtherSessions::METHOD, EndOtherSessions::PATH),
    (RemoveMember::METHOD, RemoveMember::PATH),
    (DeletePractice::METHOD, DeletePractice::PATH),
    (Logout::METHOD, Logout::PATH),
];

/// Collects every answer that differs from the table.
#[derive(Default)]
struct Mismatches {
    found: Vec<String>,
    calls: usize,
    succeeded: usize,
    /// Print every answer (`HANDOFF_MATRIX_DUMP=1`), to read what each persona got.
    dump: bool,
}

impl Mismatches {
    fn check(&mut self, route: Route, target: Target, persona: Persona, answer: &Answer) {
        self.calls += 1;
        if (200..300).contains(&answer.status) {
            self.succeeded += 1;
        }
        let Some(right) = right_of(route) else {
            self.found.push(format!("{route}: no row in the rights table"));
            return;
        };
        let (expected, about) = match target {
            Target::Practice => (persona.expect(right.who), String::new()),
            Target::Referral(side) => (persona.expect_on(right.who, side), format!(" (a referral A {side:?})")),
        };
        let got = answer.outcome();
        if self.dump {
            eprintln!("{route}{about} | {persona:?} | expected {expected:?} | {}", answer.describe());
        }
        if answer.status >= 500 || got != expected {
            self.found.push(format!(
                "{route}{about} as {persona:?} (rule: {}): expected {expected:?}, got {:?}: {}",
                right.who.words(),
                got,
                answer.describe()
            ));
        }
    }
}

async fn walk_http(f: &Fixture, routes: &[(Method, &'static str)], out: &mut Mismatches) {
    for &(method, pattern) in routes {
        for &p in Persona::ALL {
            let Some(call) = f.http_probe((method, pattern), p) else {
                out.found.push(format!("{method} {pattern}: no request builder in authz_matrix"));
                break;
            };
            let answer = f.caller(p).send(&call).await;
            out.check(Route::Http(method, pattern), Target::Practice, p, &answer);
        }
    }
}

async fn walk_ws(f: &Fixture, out: &mut Mismatches) {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    // Neither no credential nor a free draft's token opens the socket.
    let url = format!("{}{}", f.srv.url().replacen("http", "ws", 1), OpenLive::path(&()));
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401, "anonymous upgrade"),
        other => panic!("an anonymous upgrade must be refused with 401, got {other:?}"),
    }
    let mut req = url.as_str().into_client_request().unwrap();
    let token = f.free.token.clone().unwrap();
    req.headers_mut().insert("authorization", handoff_protocol::free::draft_authorization(&token).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401, "a free draft's upgrade"),
        other => panic!("a free draft's upgrade must be refused with 401, got {other:?}"),
    }

    for &p in Persona::ALL {
        // A guest token opens no member socket (the rooms tests drive the guest's own socket).
        let Some(client) = f.client(p).filter(|c| c.token().is_some() && p != Persona::Guest) else { continue };
        let live = client.live().await.unwrap();
        for &name in COMMANDS {
            let Some(right) = right_of(Route::Ws(name)) else {
                out.found.push(format!("ws {name}: no row in the rights table"));
                continue;
            };
            for &target in targets(right.who, name) {
                let Some(cmd) = f.ws_probe(name, p, client, target).await else {
                    out.found.push(format!("ws {name}: no command builder in authz_matrix"));
                    break;
                };
                assert_eq!(wire_name(&cmd), name, "the builder of {name} builds another command");
                let idem = cmd.mutates().then(|| IdemKey(uuid::Uuid::new_v4()));
                let answer = match live.request(idem, cmd).await {
                    Ok(_) => Answer { status: 200, code: None, message: String::new() },
                    // A WebSocket error frame has no HTTP status; 400 stands for "an error frame".
                    Err(handoff_client::ClientError::Api { body, .. }) => {
                        Answer { status: 400, code: Some(body.error), message: body.message }
                    }
                    Err(e) => panic!("ws {name} as {p:?}: no answer: {e}"),
                };
                out.check(Route::Ws(name), target, p, &answer);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_command_answers_each_persona_as_the_rights_table_says() {
    let f = Fixture::new().await;
    // Anonymous and the free sender send no WebSocket commands (they cannot open the socket).
    let socket_personas =
        Persona::ALL.iter().filter(|p| **p != Persona::Guest && f.client(**p).is_some_and(|c| c.token().is_some())).count();
    let mut out = Mismatches { dump: std::env::var_os("HANDOFF_MATRIX_DUMP").is_some(), ..Default::default() };
    let first: Vec<(Method, &str)> = ALL.iter().copied().filter(|r| !LAST.contains(r)).collect();
    walk_http(&f, &first, &mut out).await;
    walk_ws(&f, &mut out).await;
    walk_http(&f, LAST, &mut out).await;
    let probes: usize = COMMANDS.iter().map(|c| right_of(Route::Ws(c)).map_or(1, |r| targets(r.who, c).len())).sum();
    let expected_calls = ALL.len() * Persona::ALL.len() + probes * socket_personas;
    assert!(out.found.is_empty(), "{} of {} answers differ from the rights table:\n{}", out.found.len(), out.calls, out.found.join("\n"));
    assert_eq!(out.calls, expected_calls, "every route and command was called as every persona");
    assert!(out.succeeded > 0);
    eprintln!("authz matrix: {} calls, {} answered 2xx", out.calls, out.succeeded);
}

#[test]
fn the_rights_table_lists_every_route_and_command() {
    let mut problems = Vec::new();
    for (m, p) in ALL {
        let n = RIGHTS.iter().filter(|r| r.route == Route::Http(*m, p)).count();
        if n != 1 {
            problems.push(format!("{m} {p}: {n} rows in the rights table (want 1)"));
        }
    }
    for c in COMMANDS {
        let n = RIGHTS.iter().filter(|r| r.route == Route::Ws(c)).count();
        if n != 1 {
            problems.push(format!("ws {c}: {n} rows in the rights table (want 1)"));
        }
    }
    for r in RIGHTS {
        let known = match r.route {
            Route::Http(m, p) => ALL.contains(&(m, p)),
            Route::Ws(c) => COMMANDS.contains(&c),
        };
        if !known {
            problems.push(format!("{}: in the rights table but neither served nor a command", r.route));
        }
    }
    // `wire_name` (exhaustive over `Command`) follows serde's names, and names exactly `COMMANDS`.
    let mut named = Vec::new();
    for s in command_samples() {
        let tag = serde_json::to_value(&s).unwrap()["type"].as_str().unwrap().to_string();
        assert_eq!(tag, wire_name(&s), "wire_name follows serde's names");
        named.push(wire_name(&s));
    }
    named.sort_unstable();
    let mut listed = COMMANDS.to_vec();
    listed.sort_unstable();
    assert_eq!(named, listed, "ws::COMMANDS lists every Command variant once");
    assert!(problems.is_empty(), "the rights table is incomplete:\n{}", problems.join("\n"));
    // Every persona has a column, and every row a mark in it. `HANDOFF_MATRIX_DUMP=1` prints the README's table.
    let table = markdown();
    if std::env::var_os("HANDOFF_MATRIX_DUMP").is_some() {
        eprintln!("{table}");
    }
    assert_eq!(table.lines().count(), RIGHTS.len() + 2);
    assert!(table.lines().all(|l| l.matches('|').count() == Persona::ALL.len() + 4), "{table}");
}
