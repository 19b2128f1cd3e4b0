//! Access governance (issue 14), membership with dates: end dates that end
//! access by themselves, start dates, delegates and their sponsors, the
//! rights a delegate lacks, the admins' reminder a week before an end date.
//!
//! Dates pass on the server's test clock (`Config::clock`, moved with
//! `Clock::advance`), never by sleeping; the member-terms timer runs every
//! few milliseconds here, and the tests wait for what it does.

use std::time::Duration;

use handoff_client::Client;
use handoff_client::referrals::To;
use handoff_crypto::mls::{Declared, MlsStore, MlsUser, Processed};
use handoff_crypto::referral::ReferralKey;
use handoff_protocol::api::{DeletePractice, GetPracticeAudit, InviteMember, RequirePracticeTwoFactor, SetFreeIntake, SetMemberDates};
use handoff_protocol::audit::{AuditAction, AuditQuery};
use handoff_protocol::free::FreeIntake;
use handoff_protocol::two_factor::RequireTwoFactor;
use handoff_protocol::v1::{DeletePracticeRequest, InviteRequest, MemberDates, Role};
use handoff_protocol::ws::{AckBody, Command, Event, SentFrom, Status, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UnixMillis, UserId};
use handoff_testkit::{RegisterConfirmed as _, content, routing};

use crate::harness::{PASSWORD, Smtp, TestServer, world};
use crate::mls::{member, name_of, send};

const WAIT: Duration = Duration::from_secs(20);
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A server whose mail goes to the data folder, checking membership terms every 20 ms.
fn server() -> TestServer {
    TestServer::start_with(None, |c| {
        c.smtp_url = None;
        c.member_terms_check_ms = 20;
    })
}

/// Now, by the server's (movable) clock.
fn now(srv: &TestServer) -> UnixMillis {
    srv.config.clock.now()
}

/// The code of a refused call.
fn code<T: std::fmt::Debug>(r: handoff_client::Result<T>) -> Option<ErrorCode> {
    r.expect_err("refused").code()
}

/// Invites `email` to `p` by `inviter` as `role` with dates, and registers them through the invite.
pub(crate) async fn join_dated(
    srv: &TestServer,
    inviter: &Client,
    p: PracticeId,
    email: &str,
    role: Role,
    starts_at: Option<UnixMillis>,
    ends_at: Option<UnixMillis>,
) -> Client {
    inviter.invite_dated(p, email, role, starts_at, ends_at).await.unwrap();
    let token = srv.folder_invite_token(email).await;
    let mut c = srv.client();
    c.register(email, email, PASSWORD, Some(&token)).await.unwrap();
    c
}

/// Waits until `user` is no longer on `p`'s member list (the terms timer removed them).
async fn wait_until_gone(admin: &Client, p: PracticeId, user: UserId) {
    let deadline = std::time::Instant::now() + WAIT;
    while admin.members(p).await.unwrap().members.iter().any(|m| m.user_id == user) {
        assert!(std::time::Instant::now() < deadline, "the ended member is still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_end_date_ends_their_access() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    w.spec.mls_sync(p.id).await.unwrap();
    let carol = crate::mls::join(&srv, &w.spec, p.id, "carol@cardio.example").await;
    let bob = crate::mls::join(&srv, &w.spec, p.id, "bob@cardio.example").await;
    carol.mls_publish_key_packages(1).await.unwrap();
    bob.mls_publish_key_packages(1).await.unwrap();
    w.spec.mls_reconcile(p.id).await.unwrap();
    carol.mls_sync(p.id).await.unwrap();
    bob.mls_sync(p.id).await.unwrap();
    let before = send(&w, &p, "Old Patient").await;
    assert_eq!(name_of(&carol, before).await, "Old Patient");
    // Everything Carol will keep: every epoch key, and her whole MLS state.
    for e in 0..=2 {
        carol.practice_key_at(p.id, e).await.unwrap();
    }
    let kept_keys = carol.held_practice_keys();
    assert_eq!(kept_keys.len(), 3);
    let kept_state = carol.mls_user().unwrap().store().to_bytes().unwrap();
    let carol_id = carol.user_id().unwrap();

    // The admin gives her an end date in two hours; the members page lists it.
    let ends_at = now(&srv) + 2 * HOUR;
    let shown = w.spec.set_member_dates(p.id, carol_id, MemberDates { starts_at: None, ends_at: Some(ends_at) }).await.unwrap();
    assert_eq!(shown.ends_at, Some(ends_at));
    let listed = w.spec.members(p.id).await.unwrap();
    assert_eq!(listed.members.iter().find(|m| m.user_id == carol_id).unwrap().ends_at, Some(ends_at));

    // She follows the practice's inbox on a live socket, and works normally until then.
    let mut carol_live = carol.live().await.unwrap();
    carol_live.subscribe(StreamId::Practice(p.id), 0).await.unwrap();
    while carol_live.next_event(Duration::from_millis(300)).await.is_some() {}
    carol.practice(p.id).await.unwrap();

    // The end date passes.
    srv.config.clock.advance(3 * HOUR);

    // The server refuses her at once, worded as for a practice that does not exist.
    assert_eq!(code(carol.practice(p.id).await), Some(ErrorCode::NotFound));
    assert_eq!(code(carol.members(p.id).await), Some(ErrorCode::NotFound));
    assert_eq!(code(carol.referral(before).await), Some(ErrorCode::NotFound));
    // Her socket's subscription to the practice closes: told `access_ended`, by the timer, without a sleep past the date.
    let ended = carol_live.next_error(WAIT).await.expect("her practice stream is closed");
    assert_eq!(ended.error, ErrorCode::AccessEnded, "{ended:?}");
    assert!(ended.message.contains(&StreamId::Practice(p.id).to_string()), "{ended:?}");
    assert_eq!(code(carol_live.subscribe(StreamId::Practice(p.id), 0).await), Some(ErrorCode::NotFound));
    wait_until_gone(&w.spec, p.id, carol_id).await;

    // A colleague's client sees her among the pending removals and commits the removal, as for a manual one.
    assert_eq!(bob.mls_pending(p.id).await.unwrap().remove, vec![carol_id]);
    assert_eq!(bob.mls_reconcile(p.id).await.unwrap(), Some(3));
    assert_eq!(member(w.spec.mls_sync(p.id).await.unwrap()), 3);
    assert!(bob.mls_pending(p.id).await.unwrap().remove.is_empty());
    assert_eq!(code(carol.mls_log(p.id, 0).await), Some(ErrorCode::NotFound));

    // A referral sent afterwards: nothing she kept opens it.
    let after = send(&w, &p, "New Patient").await;
    let r_after = bob.referral(after).await.unwrap();
    assert_eq!(r_after.to_key.epoch, 3);
    assert_eq!(name_of(&bob, after).await, "New Patient");
    for k in &kept_keys {
        assert!(ReferralKey::unwrap_with(after, p.id, k, r_after.to_key.sealed.as_slice()).is_err(), "epoch {} opened it", k.epoch());
    }
    // Her restored MLS state, fed the removal commit, only learns she is out.
    let log = bob.mls_log(p.id, 2).await.unwrap();
    let removal = log.entries[0].commit.clone().unwrap();
    assert_eq!(log.entries[0].removed, vec![carol_id]);
    let declared = Declared { committer: log.entries[0].committer, added: &log.entries[0].added, removed: &log.entries[0].removed };
    let restored =
        MlsUser::new(carol_id, &carol.identity().unwrap().secrets, MlsStore::from_bytes(&kept_state).unwrap(), Default::default());
    for m in bob.members(p.id).await.unwrap().members {
        restored.directory().insert(m.user_id, m.sign_pub.as_slice().try_into().unwrap());
    }
    assert_eq!(restored.process(p.id, removal.as_slice(), &declared).unwrap(), Processed::Removed);
    assert!(restored.epoch_key(p.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_start_date_an_invitee_has_no_access() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    w.spec.mls_sync(p.id).await.unwrap();
    let starts_at = now(&srv) + DAY;
    let dana = join_dated(&srv, &w.spec, p.id, "dana@cardio.example", Role::Member, Some(starts_at), None).await;
    let dana_id = dana.user_id().unwrap();
    dana.mls_publish_key_packages(1).await.unwrap();
    let listed = w.spec.members(p.id).await.unwrap();
    assert_eq!(listed.members.iter().find(|m| m.user_id == dana_id).unwrap().starts_at, Some(starts_at));

    // Before the start: nothing of the practice, live or not, and the key group does not add her yet.
    assert_eq!(code(dana.practice(p.id).await), Some(ErrorCode::NotFound));
    assert_eq!(code(dana.members(p.id).await), Some(ErrorCode::NotFound));
    let live = dana.live().await.unwrap();
    assert_eq!(code(live.subscribe(StreamId::Practice(p.id), 0).await), Some(ErrorCode::NotFound));
    assert!(w.spec.mls_pending(p.id).await.unwrap().add.iter().all(|m| m.user_id != dana_id));

    // An existing account accepting a dated invite has joined, and reaches nothing until the start either.
    let mut eve = srv.client();
    eve.register_confirmed("eve@cardio.example", "Eve", PASSWORD).await.unwrap();
    w.spec.invite_dated(p.id, "eve@cardio.example", Role::Member, Some(starts_at), None).await.unwrap();
    let token = srv.folder_invite_token("eve@cardio.example").await;
    assert_eq!(eve.accept_invite(&token).await.unwrap().id, p.id);
    assert_eq!(code(eve.practice(p.id).await), Some(ErrorCode::NotFound));

    // From the start on she is a member like any other.
    srv.config.clock.advance(DAY + HOUR);
    dana.practice(p.id).await.unwrap();
    assert!(w.spec.mls_pending(p.id).await.unwrap().add.iter().any(|m| m.user_id == dana_id));
    live.subscribe(StreamId::Practice(p.id), 0).await.unwrap();
    eve.practice(p.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dates_are_refused_with_invalid_dates_and_change_nothing() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let t = now(&srv);
    let invite = |role, starts_at, ends_at| InviteRequest { email: "erin@cardio.example".into(), role, starts_at, ends_at };
    for (why, req) in [
        ("a start in the past", invite(Role::Member, Some(t - HOUR), None)),
        ("an end in the past", invite(Role::Member, None, Some(t - HOUR))),
        ("an end before the start", invite(Role::Member, Some(t + 2 * DAY), Some(t + DAY))),
        ("an end at the start", invite(Role::Member, Some(t + DAY), Some(t + DAY))),
        ("a delegate without dates", invite(Role::Delegate, None, None)),
        ("a delegate without an end", invite(Role::Delegate, Some(t + DAY), None)),
        ("a delegate without a start", invite(Role::Delegate, None, Some(t + DAY))),
    ] {
        assert_eq!(code(w.spec.call::<InviteMember>(&p, &req).await), Some(ErrorCode::InvalidDates), "{why}");
    }
    assert!(w.spec.members(p).await.unwrap().pending_invites.is_empty(), "no invite was made");

    let bob = crate::mls::join(&srv, &w.spec, p, "bob@cardio.example").await;
    let bob_id = bob.user_id().unwrap();
    let dates = |starts_at, ends_at| MemberDates { starts_at, ends_at };
    for (why, d) in [("an end in the past", dates(None, Some(t - 1))), ("a start for a member who has started", dates(Some(t + DAY), None))]
    {
        assert_eq!(code(w.spec.call::<SetMemberDates>(&(p, bob_id), &d).await), Some(ErrorCode::InvalidDates), "{why}");
    }
    let spec_id = w.spec.user_id().unwrap();
    assert_eq!(
        code(w.spec.call::<SetMemberDates>(&(p, spec_id), &dates(None, Some(t + DAY))).await),
        Some(ErrorCode::InvalidDates),
        "an admin's own end date"
    );
    let unknown = UserId(uuid::Uuid::new_v4());
    assert_eq!(code(w.spec.call::<SetMemberDates>(&(p, unknown), &dates(None, Some(t + DAY))).await), Some(ErrorCode::NotFound));
    let m = w.spec.members(p).await.unwrap();
    assert!(m.members.iter().all(|m| m.starts_at.is_none() && m.ends_at.is_none()), "nothing changed: {m:?}");
    // A good date is taken, and can be cleared again.
    w.spec.set_member_dates(p, bob_id, dates(None, Some(t + DAY))).await.unwrap();
    assert_eq!(w.spec.set_member_dates(p, bob_id, dates(None, None)).await.unwrap().ends_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegate_cannot_invite_remove_or_change_practice_settings() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    let bob = crate::mls::join(&srv, &w.spec, p.id, "bob@cardio.example").await;
    let t = now(&srv);
    let res = join_dated(&srv, &w.spec, p.id, "res@cardio.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    srv.config.clock.advance(2 * HOUR);
    let (res_id, bob_id, spec_id) = (res.user_id().unwrap(), bob.user_id().unwrap(), w.spec.user_id().unwrap());
    // The members list shows the delegate's role, dates and sponsor.
    let listed = w.spec.members(p.id).await.unwrap();
    let row = listed.members.iter().find(|m| m.user_id == res_id).unwrap();
    assert_eq!((row.role, row.sponsor, row.starts_at, row.ends_at), (Role::Delegate, Some(spec_id), Some(t + HOUR), Some(t + 90 * DAY)));
    // They act like a member: the practice, its members, its referrals.
    assert_eq!(res.practice(p.id).await.unwrap().my_role, Role::Delegate);
    res.referrals(p.id).await.unwrap();

    let forbidden = Some(ErrorCode::Forbidden);
    let invite = |role| InviteRequest { email: "x@cardio.example".into(), role, starts_at: Some(t + 3 * HOUR), ends_at: Some(t + DAY) };
    assert_eq!(code(res.call::<InviteMember>(&p.id, &invite(Role::Member)).await), forbidden, "invite a member");
    assert_eq!(code(res.call::<InviteMember>(&p.id, &invite(Role::Admin)).await), forbidden, "invite an admin");
    assert_eq!(code(res.call::<InviteMember>(&p.id, &invite(Role::Delegate)).await), forbidden, "invite a delegate");
    assert_eq!(code(res.remove_member(p.id, bob_id).await), forbidden, "remove a member");
    let dates = MemberDates { starts_at: None, ends_at: Some(t + DAY) };
    assert_eq!(code(res.call::<SetMemberDates>(&(p.id, bob_id), &dates).await), forbidden, "set a member's dates");
    assert_eq!(code(res.call::<SetFreeIntake>(&p.id, &FreeIntake { accepts: false }).await), forbidden, "free intake");
    assert_eq!(code(res.call::<RequirePracticeTwoFactor>(&p.id, &RequireTwoFactor { required: true }).await), forbidden, "2FA requirement");
    let confirm = DeletePracticeRequest { confirm_name: p.name.clone() };
    assert_eq!(code(res.call::<DeletePractice>(&p.id, &confirm).await), forbidden, "delete the practice");
    assert_eq!(code(res.request_category(p.id, "Sleep", "note").await), forbidden, "request a category");
    // Nothing changed.
    let after = w.spec.members(p.id).await.unwrap();
    assert_eq!(after.members.len(), 3);
    assert!(after.pending_invites.is_empty());
    assert!(w.spec.practice(p.id).await.unwrap().accepts_free_referrals);
    // A member may invite a delegate of their own (and is their sponsor), but not a member.
    assert_eq!(code(bob.call::<InviteMember>(&p.id, &invite(Role::Member)).await), forbidden);
    bob.call::<InviteMember>(&p.id, &invite(Role::Delegate)).await.unwrap();
    // The delegate may still leave.
    res.remove_member(p.id, res_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_sponsor_ends_their_delegates_access() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let bob = crate::mls::join(&srv, &w.spec, p, "bob@cardio.example").await;
    let t = now(&srv);
    let res = join_dated(&srv, &bob, p, "res@cardio.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    let sib = join_dated(&srv, &bob, p, "sib@cardio.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    srv.config.clock.advance(2 * HOUR);
    let bob_id = bob.user_id().unwrap();
    let listed = w.spec.members(p).await.unwrap();
    assert!(listed.members.iter().filter(|m| m.role == Role::Delegate).all(|m| m.sponsor == Some(bob_id)));
    res.practice(p).await.unwrap();
    let mut res_live = res.live().await.unwrap();
    res_live.subscribe(StreamId::Practice(p), 0).await.unwrap();
    while res_live.next_event(Duration::from_millis(300)).await.is_some() {}

    // The admin removes the sponsor: both delegates lose access with them.
    w.spec.remove_member(p, bob_id).await.unwrap();
    for d in [&res, &sib] {
        assert_eq!(code(d.practice(p).await), Some(ErrorCode::NotFound));
    }
    let ended = res_live.next_error(WAIT).await.expect("the delegate's practice stream is closed");
    assert_eq!(ended.error, ErrorCode::AccessEnded, "{ended:?}");
    let left = w.spec.members(p).await.unwrap();
    assert_eq!(left.members.len(), 1, "only the admin remains: {left:?}");

    // A sponsor whose own end date passes takes their delegates along too.
    let cy = crate::mls::join(&srv, &w.spec, p, "cy@cardio.example").await;
    let t = now(&srv);
    let dee = join_dated(&srv, &cy, p, "dee@cardio.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    srv.config.clock.advance(2 * HOUR);
    dee.practice(p).await.unwrap();
    w.spec.set_member_dates(p, cy.user_id().unwrap(), MemberDates { starts_at: None, ends_at: Some(now(&srv) + HOUR) }).await.unwrap();
    srv.config.clock.advance(2 * HOUR);
    assert_eq!(code(dee.practice(p).await), Some(ErrorCode::NotFound), "refused at once, with the sponsor");
    wait_until_gone(&w.spec, p, dee.user_id().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_emailed_once_a_week_before_a_members_end_date() {
    let smtp = Smtp::start();
    let srv = TestServer::start_with(Some(&smtp), |c| c.member_terms_check_ms = 20);
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let join = |email: &'static str| {
        let (srv, smtp, spec) = (&srv, &smtp, &w.spec);
        async move {
            spec.invite(p, email, Role::Member).await.unwrap();
            let token = smtp.invite_token(email).await;
            let mut c = srv.client();
            c.register(email, email, PASSWORD, Some(&token)).await.unwrap();
            c
        }
    };
    let ann = join("ann@cardio.example").await;
    let ben = join("ben@cardio.example").await;
    let admin = w.spec_account.email.clone();
    let t = now(&srv);
    w.spec.set_member_dates(p, ann.user_id().unwrap(), MemberDates { starts_at: None, ends_at: Some(t + 10 * DAY) }).await.unwrap();
    w.spec.set_member_dates(p, ben.user_id().unwrap(), MemberDates { starts_at: None, ends_at: Some(t + 20 * DAY) }).await.unwrap();
    // Six days before Ann's end: the admin is told, once.
    srv.config.clock.advance(4 * DAY);
    let mail = smtp.wait_for(&admin, "ann@cardio.example's membership").await;
    assert!(mail.contains("Fraser Cardiology 0"), "{mail}");
    // Later passes (shown by Ben's reminder, which a later pass sends) do not tell it again.
    srv.config.clock.advance(10 * DAY);
    smtp.wait_for(&admin, "ben@cardio.example's membership").await;
    let about_ann = smtp.messages().iter().filter(|m| crate::harness::unfold(m).contains("ann@cardio.example's membership")).count();
    assert_eq!(about_ann, 1, "one reminder per end date");
    // It goes to the admins only.
    for m in smtp.messages().iter().map(|m| crate::harness::unfold(m)).filter(|m| m.contains("'s membership of")) {
        assert!(m.contains(&admin), "{m}");
    }
}

/// Every event of a referral's stream, replayed from the start on a fresh socket of `c`.
async fn history(c: &Client, rid: handoff_protocol::ws::ReferralId, n: usize) -> Vec<Event> {
    let mut live = c.live().await.unwrap();
    live.subscribe(StreamId::Referral(rid), 0).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        out.push(live.next_event(WAIT).await.expect("a replayed event").event);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegates_accept_and_message_show_on_behalf_of() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    let spec_id = w.spec.user_id().unwrap();
    w.spec.mls_sync(p.id).await.unwrap();
    // A resident acts on the specialist's behalf in the receiving practice.
    let t = now(&srv);
    let res = join_dated(&srv, &w.spec, p.id, "res@cardio.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    srv.config.clock.advance(2 * HOUR);
    let res_id = res.user_id().unwrap();
    res.mls_publish_key_packages(1).await.unwrap();
    w.spec.mls_reconcile(p.id).await.unwrap();
    res.mls_sync(p.id).await.unwrap();

    let rid = send(&w, &p, "Delegated Patient").await;
    let res_live = res.live().await.unwrap();
    res_live.command(Command::MarkOpened { referral: rid }).await.unwrap();
    res_live.command(Command::Accept { referral: rid }).await.unwrap();
    let r = res.referral(rid).await.unwrap();
    res.post_message(&res_live, &r, "Booked for Tuesday").await.unwrap();
    // The referring office answers as itself.
    let moa_live = w.moa.live().await.unwrap();
    w.moa.post_message(&moa_live, &r, "Thanks").await.unwrap();

    let events = history(&w.moa, rid, 5).await;
    let by = |e: &Event| match e {
        Event::ReferralSent { referral } => match &referral.from {
            SentFrom::Practice { user, on_behalf_of, .. } => (*user, *on_behalf_of),
            SentFrom::Free => panic!("a practice sent it"),
        },
        Event::Opened { by, on_behalf_of, .. }
        | Event::StatusChanged { by, on_behalf_of, .. }
        | Event::CategoryChanged { by, on_behalf_of, .. }
        | Event::UrgencyChanged { by, on_behalf_of, .. }
        | Event::AttachmentAdded { by, on_behalf_of, .. }
        | Event::MessagePosted { by, on_behalf_of, .. } => (*by, *on_behalf_of),
        Event::EpochAdvanced { .. } => panic!("not on a referral stream"),
    };
    let moa_id = w.moa.user_id().unwrap();
    assert!(matches!(events[0], Event::ReferralSent { .. }));
    assert_eq!(by(&events[0]), (moa_id, None), "a member sends as themself");
    assert!(matches!(events[1], Event::Opened { .. }));
    assert_eq!(by(&events[1]), (res_id, Some(spec_id)), "opened on behalf of the sponsor");
    assert!(matches!(events[2], Event::StatusChanged { status: Status::Accepted, .. }));
    assert_eq!(by(&events[2]), (res_id, Some(spec_id)), "accepted on behalf of the sponsor (history)");
    assert!(matches!(events[3], Event::MessagePosted { .. }));
    assert_eq!(by(&events[3]), (res_id, Some(spec_id)), "the message on behalf of the sponsor (thread)");
    assert_eq!(by(&events[4]), (moa_id, None));
    // The thread message still opens for the other side, signed by the delegate.
    let Event::MessagePosted { message, .. } = &events[3] else { unreachable!() };
    assert_eq!(w.moa.open_message(&r, res_id, message).await.unwrap().text, "Booked for Tuesday");
    // And in the audit log: the delegate's open, accept and message, each naming the sponsor.
    let log = w.spec.call::<GetPracticeAudit>(&p.id, &AuditQuery::default()).await.unwrap();
    for action in [AuditAction::ReferralOpened, AuditAction::ReferralAccepted, AuditAction::MessagePosted] {
        let row = log
            .entries
            .iter()
            .find(|e| e.action == action && e.target.as_deref() == Some(rid.to_string().as_str()))
            .unwrap_or_else(|| panic!("{action:?} is in the receiving practice's audit log"));
        assert_eq!((row.actor, row.on_behalf_of), (Some(res_id), Some(spec_id)), "{action:?} on behalf of the sponsor (audit log)");
        assert!(row.on_behalf_of_name.as_deref().is_some_and(|n| !n.is_empty()), "the sponsor is named: {row:?}");
    }
    // A scribe sending for the referring office sends on behalf of their sponsor too.
    let office = w.referring.id;
    w.moa.mls_sync(office).await.unwrap();
    let t = now(&srv);
    let scribe = join_dated(&srv, &w.moa, office, "scribe@kingsway.example", Role::Delegate, Some(t + HOUR), Some(t + 90 * DAY)).await;
    srv.config.clock.advance(2 * HOUR);
    scribe.mls_publish_key_packages(1).await.unwrap();
    w.moa.mls_reconcile(office).await.unwrap();
    scribe.mls_sync(office).await.unwrap();
    let scribe_live = scribe.live().await.unwrap();
    let ack = scribe
        .send_referral(&scribe_live, office, To::Practice(p.id), routing("arrhythmia"), &content("Scribed Patient"), &[])
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: sent, .. } = ack else { panic!("{ack:?}") };
    let sent_events = history(&w.spec, sent, 1).await;
    assert_eq!(by(&sent_events[0]), (scribe.user_id().unwrap(), Some(moa_id)), "sent on behalf of the sponsor");
    // A client cannot claim to act on someone's behalf: commands carry no such field.
    let forged = serde_json::json!({"type": "accept", "referral": rid, "on_behalf_of": moa_id});
    assert!(serde_json::from_value::<Command>(forged).is_err());
}
