//! Issue 12, items 2, 8 and 9: attacks on accounts, practice ids and invites.
//!
//! - Item 2: a deleted practice's id is tombstoned; creating it again, or
//!   creating any id that is not yours, answers one uniform conflict.
//! - Item 8: registration is confirmed by an emailed link, so `register`
//!   answers the same for a free and a taken address, and nobody can squat
//!   an address they cannot read mail for.
//! - Item 9: invites are rate-limited per user and per practice.

use handoff_client::{Client, ClientError, RawResponse};
use handoff_protocol::api::{ConfirmAccount, Endpoint as _, Login, Prelogin, Register};
use handoff_protocol::v1::{PracticeKind, Role};
use handoff_protocol::ws::{AckBody, StreamId};
use handoff_protocol::{ErrorCode, PracticeId};
use handoff_testkit::mail::{confirmation_token, token_after};
use handoff_testkit::{Account, content, routing};

use crate::harness::{PASSWORD, TestServer, world};

/// The status and the whole error body of a refused call.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, body }) => (status, serde_json::to_string(&body).expect("error body")),
        other => panic!("expected a refusal from the server, got {other:?}"),
    }
}

/// Everything of practice `id` that `c` could reach: it must be nothing. The
/// referral stays readable only to its other party, through its own practice.
async fn nothing_of(c: &Client, id: PracticeId, referral: handoff_protocol::ws::ReferralId, who: &str, other_party: bool) {
    assert!(c.practice(id).await.is_err(), "{who} sees the practice");
    assert!(c.referrals(id).await.is_err(), "{who} lists the old inbox");
    assert_eq!(c.referral(referral).await.is_ok(), other_party, "{who} reading the old referral's metadata");
    assert!(c.members(id).await.is_err(), "{who} lists the old members");
    assert!(c.practices().await.expect("own practices").iter().all(|p| p.id != id), "{who} lists the practice as theirs");
    let live = c.live().await.expect("socket");
    assert!(live.subscribe(StreamId::Practice(id), 0).await.is_err(), "{who} subscribes to the old practice's stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_practice_id_cannot_be_created_again() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let old = w.referring.clone();
    let url = srv.url();

    // A colleague joins the referring office and is later removed.
    let colleague_account = Account::new("colleague", "family.example", "Colleague");
    let colleague = colleague_account.register(&url).await.unwrap();
    w.moa.invite(old.id, &colleague_account.email, Role::Member).await.unwrap();
    colleague.accept_invite(&srv.folder_invite_token(&colleague_account.email).await).await.unwrap();

    // The office sends a referral; the specialist receives it: the practice has history.
    let moa_live = w.moa.live().await.unwrap();
    moa_live.subscribe(StreamId::Practice(old.id), 0).await.unwrap();
    let ack = w
        .moa
        .send_referral(
            &moa_live,
            old.id,
            handoff_client::referrals::To::Practice(w.specialists[0].id),
            routing("arrhythmia"),
            &content("Old Patient"),
            &[],
        )
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!("not sent: {ack:?}") };
    let received = w.spec.referral(rid).await.unwrap();
    assert_eq!(w.spec.open_referral(&received).await.unwrap(), content("Old Patient"));
    drop(moa_live);

    w.moa.remove_member(old.id, colleague.user_id().unwrap()).await.unwrap();
    w.moa.delete_practice(old.id, &old.name).await.unwrap();

    // The reference: what creating someone else's live practice id answers.
    let stranger = Account::new("stranger", "else.example", "Stranger").register(&url).await.unwrap();
    let foreign = w.specialists[0].id;
    let reference =
        refusal(stranger.create_practice_with_id(foreign, "Mine now", PracticeKind::Referring, None, Some("fraser"), vec![]).await);
    assert_eq!(reference.0, 409);

    // Whoever tries, the old id is refused exactly as a foreign one, and
    // nothing of the old practice becomes theirs.
    for (who, c, other_party) in [
        ("the former creator", &w.moa, false),
        ("a former member", &colleague, false),
        ("the counterpart's admin", &w.spec, true),
        ("a stranger", &stranger, false),
    ] {
        let same = c.create_practice_with_id(old.id, &old.name, PracticeKind::Referring, None, old.region.as_deref(), vec![]).await;
        assert_eq!(refusal(same), reference, "{who} re-creating the deleted id");
        let other = c.create_practice_with_id(old.id, "Another Name", PracticeKind::Referring, None, None, vec![]).await;
        assert_eq!(refusal(other), reference, "{who} re-creating the deleted id under another name");
        nothing_of(c, old.id, rid, who, other_party).await;
    }
    // The counterpart keeps its own side of the history, through its own practice.
    assert!(w.spec.referrals(w.specialists[0].id).await.unwrap().iter().any(|r| r.id == rid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_foreign_or_tombstoned_id_answers_like_any_conflict() {
    let srv = TestServer::start(None);
    let url = srv.url();
    let a_account = Account::new("a", "clinic.example", "A");
    let b_account = Account::new("b", "clinic.example", "B");
    let a = a_account.register(&url).await.unwrap();
    let b = b_account.register(&url).await.unwrap();
    // A practice of B's: foreign to A.
    let foreign = b.create_practice("B's Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    // A practice A created, then deleted: tombstoned.
    let gone = a.create_practice("Gone Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    a.delete_practice(gone.id, "Gone Office").await.unwrap();
    // A practice A created, then was removed from by its other admin.
    let left = a.create_practice("Left Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    a.invite(left.id, &b_account.email, Role::Admin).await.unwrap();
    b.accept_invite(&srv.folder_invite_token(&b_account.email).await).await.unwrap();
    b.remove_member(left.id, a.user_id().unwrap()).await.unwrap();

    // A creator's own retry while still a member is answered with the practice.
    let mine = a.create_practice("Mine", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let again = a.create_practice_with_id(mine.id, "Mine", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    assert_eq!(again.id, mine.id);

    let foreign_answer = refusal(a.create_practice_with_id(foreign.id, "B's Office", PracticeKind::Referring, None, None, vec![]).await);
    let tombstoned_answer = refusal(a.create_practice_with_id(gone.id, "Gone Office", PracticeKind::Referring, None, None, vec![]).await);
    let removed_retry_answer =
        refusal(a.create_practice_with_id(left.id, "Left Office", PracticeKind::Referring, None, None, vec![]).await);
    assert_eq!(foreign_answer.0, 409);
    assert_eq!(tombstoned_answer, foreign_answer, "a tombstoned id answers as a foreign one");
    assert_eq!(removed_retry_answer, foreign_answer, "a removed creator's retry answers as a foreign id");
    // And the removed creator's retry gave nothing back.
    assert!(a.practice(left.id).await.is_err());
    assert!(a.practices().await.unwrap().iter().all(|p| p.id != left.id && p.id != gone.id));
}

/// A raw `POST` of a JSON body, for comparing whole answers.
async fn post(c: &Client, path: &str, body: &impl serde::Serialize) -> RawResponse {
    c.raw("POST", path, Some("application/json"), serde_json::to_vec(body).expect("json")).await.expect("an answer")
}

/// An answer as a person's client sees it: status, body, and every header
/// but the date.
fn seen(r: &RawResponse) -> (u16, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.as_str() != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    (r.status, r.body.clone(), headers)
}

/// A registration request as the client builds it.
fn registration(email: &str, password: &str) -> handoff_protocol::v1::RegisterRequest {
    handoff_client_core::account::new_account(email, "Someone", password, None).expect("keys").request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_taken_address_answers_exactly_like_a_free_one() {
    let srv = TestServer::start(None);
    let owner = Account::new("owner", "clinic.example", "Owner");
    owner.register(&srv.url()).await.unwrap();
    let free = handoff_testkit::unique_email("free", "clinic.example");

    let c = srv.client();
    let taken_answer = post(&c, Register::PATH, &registration(&owner.email, "an attacker's password")).await;
    let free_answer = post(&c, Register::PATH, &registration(&free, "a newcomer's password")).await;
    assert_eq!(seen(&taken_answer), seen(&free_answer), "the API answer does not tell a taken address from a free one");
    assert_eq!(taken_answer.status, 202);
    assert!(!taken_answer.body.contains("email_taken"));

    // The owner learns of it by email, with no link that would create anything.
    let notice = srv.wait_for_folder_mail(&owner.email, "already have an account").await;
    assert!(!notice.contains("/confirm/"), "{notice}");
    // The free address gets its confirmation link.
    let mail = srv.wait_for_folder_mail(&free, "/confirm/").await;
    assert!(token_after(&mail, "/confirm/").is_some());
    // The owner's account is untouched: the old password still signs in.
    srv.client().login(&owner.email, &owner.password).await.unwrap();
    assert!(srv.client().login(&owner.email, "an attacker's password").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_registration_cannot_sign_in() {
    let srv = TestServer::start(None);
    let pending = handoff_testkit::unique_email("pending", "clinic.example");
    let unknown = handoff_testkit::unique_email("unknown", "clinic.example");
    let mut c = srv.client();
    c.register(&pending, "Pending", PASSWORD, None).await.unwrap();
    assert!(c.awaiting_confirmation());
    assert!(c.me().await.is_err(), "a pending registration has no session");
    srv.wait_for_folder_mail(&pending, "/confirm/").await;

    // Sign-in fails exactly as for an address nobody registered.
    let err = srv.client().login(&pending, PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    let login = |email: &str| handoff_protocol::v1::LoginRequest { email: email.into(), auth_key: handoff_protocol::B64(vec![7; 32]) };
    assert_eq!(
        seen(&post(&c, Login::PATH, &login(&pending)).await),
        seen(&post(&c, Login::PATH, &login(&unknown)).await),
        "login answers a pending address as an unknown one"
    );
    // Prelogin gives a decoy salt, not the pending registration's own.
    let req = registration(&pending, PASSWORD);
    let pre = |email: &str| handoff_protocol::v1::PreloginRequest { email: email.into() };
    let first: serde_json::Value = serde_json::from_str(&post(&c, Prelogin::PATH, &pre(&pending)).await.body).unwrap();
    let decoy: serde_json::Value = serde_json::from_str(&post(&c, Prelogin::PATH, &pre(&unknown)).await.body).unwrap();
    assert_eq!(first["alg"], decoy["alg"]);
    // A second pending registration for the address changes nothing either.
    srv.client().register(&pending, "Pending", PASSWORD, None).await.unwrap();
    let again: serde_json::Value = serde_json::from_str(&post(&c, Prelogin::PATH, &pre(&pending)).await.body).unwrap();
    assert_eq!(first, again, "the decoy is stable and ignores pending registrations");
    assert_ne!(first["salt"], serde_json::to_value(&req.salt).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_cannot_be_squatted() {
    let srv = TestServer::start(None);
    let url = srv.url();
    let victim = handoff_testkit::unique_email("victim", "clinic.example");

    // A stranger registers the victim's address first. Their confirmation
    // link goes to the victim's mailbox, which the stranger cannot read.
    let mut stranger = srv.client();
    stranger.register(&victim, "Not The Victim", "the stranger's password", None).await.unwrap();
    let (stranger_token, stranger_mail) = confirmation_token(&url, &victim, &[]).await.unwrap();
    assert!(stranger.me().await.is_err());

    // The victim registers anyway, and confirms from their own mail.
    let mut own = srv.client();
    own.register(&victim, "Victim", PASSWORD, None).await.unwrap();
    let (own_token, _) = confirmation_token(&url, &victim, &[stranger_mail]).await.unwrap();
    assert_ne!(own_token, stranger_token);
    own.confirm(&own_token).await.unwrap();
    assert_eq!(own.me().await.unwrap().display_name, "Victim");
    srv.client().login(&victim, PASSWORD).await.unwrap();

    // The stranger's registration can no longer confirm anything.
    let unknown = post(&srv.client(), ConfirmAccount::PATH, &confirm_request("no-such-token")).await;
    let stale = post(&srv.client(), ConfirmAccount::PATH, &confirm_request(&stranger_token)).await;
    assert_eq!(stale.error().map(|e| e.error), Some(ErrorCode::ConfirmationInvalid));
    assert_eq!(seen(&stale), seen(&unknown), "a superseded link answers as an unknown one");
    assert!(srv.client().login(&victim, "the stranger's password").await.is_err());
    assert_eq!(own.me().await.unwrap().display_name, "Victim");
}

/// A confirmation with `token` and an auth key that proves no password.
fn confirm_request(token: &str) -> handoff_protocol::v1::ConfirmRequest {
    handoff_protocol::v1::ConfirmRequest { token: token.into(), auth_key: handoff_protocol::B64(vec![7; 32]) }
}

/// The squatter's second try: the link their registration sent lands in the
/// owner's mailbox, and the owner opens it anyway. Without the registration's
/// password it confirms nothing, so the stranger never gets the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_opening_a_strangers_link_does_not_confirm_the_strangers_registration() {
    let srv = TestServer::start(None);
    let url = srv.url();
    let victim = handoff_testkit::unique_email("victim", "clinic.example");
    let mut stranger = srv.client();
    stranger.register(&victim, "Not The Victim", "the stranger's password", None).await.unwrap();
    let (token, _) = confirmation_token(&url, &victim, &[]).await.unwrap();

    // The owner opens the link on their own device and types their own password.
    let err = srv.client().confirm_with_password(&token, PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials), "{err}");
    // A bare token (the link alone) with any other proof is refused too.
    let bare = post(&srv.client(), ConfirmAccount::PATH, &confirm_request(&token)).await;
    assert_eq!(bare.error().map(|e| e.error), Some(ErrorCode::InvalidCredentials), "{}", bare.body);
    // Nothing was created: the stranger's password signs nobody in.
    assert!(srv.client().login(&victim, "the stranger's password").await.is_err());
    assert!(stranger.me().await.is_err());

    // The registration's own password does confirm it, from any device: a
    // person who registered on one computer can open the link on another.
    let mut elsewhere = srv.client();
    elsewhere.confirm_with_password(&token, "the stranger's password").await.unwrap();
    assert_eq!(elsewhere.me().await.unwrap().display_name, "Not The Victim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_link_works_once_and_expires() {
    let srv = TestServer::start(None);
    let url = srv.url();
    let email = handoff_testkit::unique_email("once", "clinic.example");
    let mut c = srv.client();
    c.register(&email, "Once", PASSWORD, None).await.unwrap();
    let (token, _) = confirmation_token(&url, &email, &[]).await.unwrap();
    c.confirm(&token).await.unwrap();
    assert_eq!(c.me().await.unwrap().email, email);
    let unknown = post(&srv.client(), ConfirmAccount::PATH, &confirm_request(&"x".repeat(43))).await;
    let reused = post(&srv.client(), ConfirmAccount::PATH, &confirm_request(&token)).await;
    assert_eq!(reused.status, 410);
    assert_eq!(seen(&reused), seen(&unknown), "a used link answers as an unknown one");

    // On a server whose links expire at once, a link confirms nothing.
    let quick = TestServer::start_with(None, |c| c.registration_ttl_secs = 0);
    let email = handoff_testkit::unique_email("late", "clinic.example");
    let mut late = quick.client();
    late.register(&email, "Late", PASSWORD, None).await.unwrap();
    let (token, _) = confirmation_token(&quick.url(), &email, &[]).await.unwrap();
    let err = late.confirm(&token).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ConfirmationInvalid));
    assert!(quick.client().login(&email, PASSWORD).await.is_err(), "an expired link made no account");
}

/// A raw invite, to see the whole answer.
async fn invite(c: &Client, practice: PracticeId, email: String) -> RawResponse {
    let body = handoff_protocol::v1::InviteRequest { email, role: Role::Member, starts_at: None, ends_at: None };
    post(c, &handoff_protocol::api::InviteMember::path(&practice), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_rate_limited_per_user_and_per_practice() {
    let srv = TestServer::start_with(None, |c| {
        c.invites_per_user_per_hour = 3;
        c.invites_per_practice_per_day = 5;
    });
    let url = srv.url();
    let a_account = Account::new("a", "clinic.example", "A");
    let b_account = Account::new("b", "clinic.example", "B");
    let a = a_account.register(&url).await.unwrap();
    let b = b_account.register(&url).await.unwrap();
    let p = a.create_practice("Spam Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let q = a.create_practice("Other Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    // A second admin for the practice: A's first invite.
    a.invite(p.id, &b_account.email, Role::Admin).await.unwrap();
    b.accept_invite(&srv.folder_invite_token(&b_account.email).await).await.unwrap();

    let targets: Vec<String> = (0..8).map(|n| handoff_testkit::unique_email(&format!("target{n}"), "victims.example")).collect();
    let target = |n: usize| targets[n].clone();

    // A may send 3 an hour, whichever practice they send from.
    assert_eq!(invite(&a, p.id, target(1)).await.status, 201);
    assert_eq!(invite(&a, p.id, target(2)).await.status, 201);
    let over_user = invite(&a, q.id, target(3)).await;
    assert_eq!(over_user.error().map(|e| e.error), Some(ErrorCode::RateLimited), "{}", over_user.body);
    let retry: u64 = over_user.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((1..=3_600).contains(&retry), "the per-user window is an hour: {retry}");

    // The practice may send 5 a day, whoever sends them: B has sent none yet.
    assert_eq!(invite(&b, p.id, target(4)).await.status, 201);
    assert_eq!(invite(&b, p.id, target(5)).await.status, 201);
    let over_practice = invite(&b, p.id, target(6)).await;
    assert_eq!(over_practice.error().map(|e| e.error), Some(ErrorCode::RateLimited), "{}", over_practice.body);
    let retry: u64 =
        over_practice.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((3_600..=86_400).contains(&retry), "the per-practice window is a day: {retry}");
    // B may still invite for another practice of theirs.
    let r = b.create_practice("B's Own", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    assert_eq!(invite(&b, r.id, target(7)).await.status, 201);

    // A refused invite is neither stored nor mailed.
    let pending: Vec<String> = a.members(p.id).await.unwrap().pending_invites.into_iter().map(|i| i.email).collect();
    assert_eq!(pending.len(), 4, "{pending:?}");
    srv.wait_for_folder_mail(&target(5), "/invite/").await;
    let mailed = srv.folder_messages();
    for refused in [target(3), target(6)] {
        assert!(!pending.contains(&refused));
        assert!(!mailed.iter().any(|m| m.contains(&refused)));
    }
}
