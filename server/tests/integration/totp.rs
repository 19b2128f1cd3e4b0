//! Issue 14, two-factor sign-in (TOTP, RFC 6238): enrollment, the second
//! sign-in step, replay and window, rate limits, recovery codes, the kit
//! reset's second factor, a practice's requirement, what is stored, and bad
//! input on each new route. Codes are computed here from the secret the
//! server hands out, with the same crate the server checks them with, for a
//! chosen time (so "the next code" and "an expired code" need no waiting).

use std::time::{SystemTime, UNIX_EPOCH};

use handoff_client::{Client, SecondFactor};
use handoff_protocol::api::{
    ConfirmTwoFactor, DisableTwoFactor, Endpoint as _, Login, RecoverFinish, RequirePracticeTwoFactor, SecondFactorSignIn, StartTwoFactor,
};
use handoff_protocol::two_factor::{LoginResponse, RECOVERY_CODES};
use handoff_protocol::v1::{PracticeKind, Role};
use handoff_protocol::ws::StreamId;
use handoff_protocol::{B64, ErrorCode};
use handoff_testkit::RegisterConfirmed as _;
use totp_rs::{Builder, Secret};

use crate::harness::{PASSWORD, TestServer, all_bytes, contains};

const NEW_PASSWORD: &str = "a brand new password";

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@clinic.example", uuid::Uuid::new_v4())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The code of `secret` (base32) at `secs`, as an authenticator app shows it.
fn code_at(secret: &str, secs: u64) -> String {
    let t = Builder::new().with_secret(Secret::try_from_base32(secret).unwrap()).build().unwrap();
    t.generate(secs).to_string()
}

/// The code of the step after now: inside the ±1 window, and later than the
/// step any code of "now" used.
fn next_code(secret: &str) -> String {
    code_at(secret, now_secs() + 30)
}

/// Six digits that are no code of `secret` anywhere near now.
fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = (0..8).map(|i| code_at(secret, now_secs() + i * 30 - 120)).collect();
    (0..).map(|n: u32| format!("{:06}", (123_457 + n * 7919) % 1_000_000)).find(|c| !near.contains(c)).unwrap()
}

fn code(r: &handoff_client::RawResponse) -> ErrorCode {
    r.error().unwrap_or_else(|| panic!("not an error body: {} {}", r.status, r.body)).error
}

/// A signed-in account with two-factor sign-in on: the client, its email,
/// kit words, secret (base32) and recovery codes. The confirming code is the
/// one of now, so the next sign-in uses [`next_code`].
struct Enrolled {
    client: Client,
    email: String,
    kit: Vec<String>,
    secret: String,
    recovery: Vec<String>,
}

async fn enrolled(srv: &TestServer, tag: &str) -> Enrolled {
    let email = unique_email(tag);
    let mut client = srv.client();
    let kit = client.register_confirmed(&email, "Owner", PASSWORD).await.unwrap();
    let e = client.start_two_factor().await.unwrap();
    assert!(e.otpauth_uri.starts_with("otpauth://totp/"), "{}", e.otpauth_uri);
    assert!(e.otpauth_uri.contains(&format!("secret={}", e.secret)), "{}", e.otpauth_uri);
    assert!(e.otpauth_uri.contains("issuer=Handoff"), "{}", e.otpauth_uri);
    let recovery = client.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    Enrolled { client, email, kit, secret: e.secret, recovery }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_enrolling_the_password_alone_no_longer_signs_in_and_a_code_from_the_secret_does() {
    let srv = TestServer::start(None);
    let mut a = enrolled(&srv, "owner").await;
    assert_eq!(a.recovery.len(), RECOVERY_CODES);
    let status = a.client.two_factor_status().await.unwrap();
    assert!(status.enabled);
    assert_eq!(status.recovery_codes_left, RECOVERY_CODES as u32);
    a.client.logout().await.unwrap();

    // The password step answers a pending-login token and no session.
    let mut fresh = srv.client();
    assert!(matches!(fresh.login(&a.email, PASSWORD).await.unwrap_err(), handoff_client::ClientError::SecondFactorNeeded));
    assert_eq!(fresh.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated), "no session after the password alone");

    let mut c = srv.client();
    c.login_with_code(&a.email, PASSWORD, SecondFactor::Code(&next_code(&a.secret))).await.unwrap();
    assert_eq!(c.me().await.unwrap().email, a.email);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_step_of_an_account_with_two_factor_sets_no_session_cookie() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let anon = srv.client();
    let prelogin = handoff_protocol::v1::PreloginRequest { email: a.email.clone() };
    let params = anon.call::<handoff_protocol::api::Prelogin>(&(), &prelogin).await.unwrap();
    let pw = handoff_crypto::PasswordKeys::derive_with(PASSWORD, params.salt.as_slice(), params.m_kib, params.t, params.p).unwrap();
    let body = serde_json::json!({ "email": a.email, "auth_key": B64(pw.auth_key.to_vec()) });
    let r = srv.client().raw("POST", Login::PATH, Some("application/json"), body.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none(), "no session cookie before the second factor");
    match serde_json::from_str::<LoginResponse>(&r.body).unwrap() {
        LoginResponse::SecondFactor(ch) => {
            assert_eq!(ch.second_factor, "totp");
            assert!(!ch.pending_token.is_empty());
        }
        LoginResponse::SignedIn(_) => panic!("signed in with the password alone: {}", r.body),
    }
    // The pending token is no session token.
    let mut bearer = srv.client();
    bearer.set_token(serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["pending_token"].as_str().map(str::to_string));
    assert_eq!(bearer.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_refused() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let mut c = srv.client();
    let e = c.login_with_code(&a.email, PASSWORD, SecondFactor::Code(&wrong_code(&a.secret))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong));
    assert_eq!(c.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_signs_in_once_and_its_replay_is_refused() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let code = next_code(&a.secret);
    srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&code)).await.unwrap();
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&code)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "the same code a second time");
    // The code that confirmed the enrollment was used too.
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&code_at(&a.secret, now_secs() - 30))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "a code of an earlier step than the last used one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_outside_the_one_step_window_is_refused() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let late = code_at(&a.secret, now_secs() + 120);
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&late)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "four steps ahead");
    let expired = code_at(&a.secret, now_secs() - 120);
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&expired)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "four steps ago");
    // The window's edge still works: the next step.
    srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&next_code(&a.secret))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_code_try_is_refused_even_with_the_right_code() {
    let srv = TestServer::start_with(None, |c| c.auth_failures_per_account = 5);
    let a = enrolled(&srv, "owner").await;
    let wrong = wrong_code(&a.secret);
    for i in 0..5 {
        let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&wrong)).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "try {i}");
    }
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&next_code(&a.secret))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
    // Recovery codes count against the same limit.
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode(&a.recovery[0])).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_meet_their_own_per_account_ceiling_below_the_passwords() {
    let srv = TestServer::start_with(None, |c| {
        c.auth_failures_per_account = 1000;
        c.second_factor_failures_per_account_total = 3;
    });
    let a = enrolled(&srv, "owner").await;
    let wrong = wrong_code(&a.secret);
    for i in 0..3 {
        let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&wrong)).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "try {i}");
    }
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::Code(&next_code(&a.secret))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited), "the account's ceiling holds though the address has room");
    // The password step itself is not limited by wrong codes.
    let e = srv.client().login(&a.email, PASSWORD).await.unwrap_err();
    assert!(matches!(e, handoff_client::ClientError::SecondFactorNeeded), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_signs_in_once_and_is_refused_the_second_time() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let rc = a.recovery[3].clone();
    let mut c = srv.client();
    c.login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode(&rc)).await.unwrap();
    assert_eq!(c.two_factor_status().await.unwrap().recovery_codes_left, RECOVERY_CODES as u32 - 1);
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode(&rc)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RecoveryCodeUsed));
    // Typed in lower case without dashes, another one still works.
    let typed = a.recovery[4].replace('-', "").to_lowercase();
    srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode(&typed)).await.unwrap();
    let e = srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode("AAAA-BBBB-CCCC-DDDD")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong), "a code that was never issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_kit_alone_does_not_reset_an_account_with_two_factor() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let e = srv.client().recover(&a.email, &a.kit, NEW_PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::SecondFactorNeeded));
    let e = srv.client().recover_with_code(&a.email, &a.kit, NEW_PASSWORD, SecondFactor::Code(&wrong_code(&a.secret))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong));

    // Skipping recover/start: the finish step without its proof is refused too.
    let kit = handoff_crypto::EmergencyKit::from_words(&a.kit).unwrap();
    let secrets = a.client.identity().unwrap().secrets.clone();
    let req = handoff_client_core::account::recover_finish(&a.email, B64(kit.auth_key().to_vec()), NEW_PASSWORD, &secrets).unwrap();
    let r = srv.client().raw("POST", RecoverFinish::PATH, Some("application/json"), serde_json::to_vec(&req).unwrap()).await.unwrap();
    assert_eq!((r.status, code(&r)), (401, ErrorCode::SecondFactorNeeded));
    let mut forged = req.clone();
    forged.second_factor_token = Some("AAAA".repeat(19));
    let r = srv.client().raw("POST", RecoverFinish::PATH, Some("application/json"), serde_json::to_vec(&forged).unwrap()).await.unwrap();
    assert_eq!((r.status, code(&r)), (401, ErrorCode::SecondFactorNeeded), "a forged proof");
    // The old password still signs in: nothing was reset.
    srv.client().login_with_code(&a.email, PASSWORD, SecondFactor::RecoveryCode(&a.recovery[0])).await.unwrap();

    // With the kit and a code, the reset works, and two-factor sign-in stays on.
    let mut c = srv.client();
    c.recover_with_code(&a.email, &a.kit, NEW_PASSWORD, SecondFactor::Code(&next_code(&a.secret))).await.unwrap();
    assert!(c.two_factor_status().await.unwrap().enabled);
    let e = srv.client().login(&a.email, NEW_PASSWORD).await.unwrap_err();
    assert!(matches!(e, handoff_client::ClientError::SecondFactorNeeded), "{e}");
    srv.client().login_with_code(&a.email, NEW_PASSWORD, SecondFactor::RecoveryCode(&a.recovery[1])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_two_factor_off_needs_a_code_and_the_password_alone_signs_in_again() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let e = a.client.disable_two_factor(SecondFactor::Code(&wrong_code(&a.secret))).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TwoFactorCodeWrong));
    assert!(a.client.two_factor_status().await.unwrap().enabled);
    a.client.disable_two_factor(SecondFactor::Code(&next_code(&a.secret))).await.unwrap();
    assert!(!a.client.two_factor_status().await.unwrap().enabled);
    srv.client().login(&a.email, PASSWORD).await.unwrap();
    // The old recovery codes are gone with it.
    let e = a.client.disable_two_factor(SecondFactor::RecoveryCode(&a.recovery[0])).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Conflict));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_is_not_in_force_until_a_code_confirms_it() {
    let srv = TestServer::start(None);
    let email = unique_email("owner");
    let mut c = srv.client();
    c.register_confirmed(&email, "Owner", PASSWORD).await.unwrap();
    let e = c.start_two_factor().await.unwrap();
    let err = c.confirm_two_factor(&wrong_code(&e.secret)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TwoFactorCodeWrong));
    assert!(!c.two_factor_status().await.unwrap().enabled);
    srv.client().login(&email, PASSWORD).await.unwrap();
    // Once on, starting again is refused: the secret in force is not replaced by a session alone.
    c.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    assert_eq!(c.start_two_factor().await.unwrap_err().code(), Some(ErrorCode::Conflict));
    assert_eq!(c.confirm_two_factor(&next_code(&e.secret)).await.unwrap_err().code(), Some(ErrorCode::Conflict));
}

/// An admin with a practice, and a member without two-factor sign-in.
async fn practice_with_member(srv: &TestServer) -> (Enrolled, Client, handoff_protocol::PracticeId) {
    let admin = enrolled(srv, "admin").await;
    let p = admin.client.create_practice("Valley Family Practice", PracticeKind::Referring, None, Some("interior"), vec![]).await.unwrap();
    let email = unique_email("bob");
    let mut bob = srv.client();
    bob.register_confirmed(&email, "Bob", PASSWORD).await.unwrap();
    admin.client.invite(p.id, &email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(&email).await;
    bob.accept_invite(&token).await.unwrap();
    (admin, bob, p.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_requiring_two_factor_holds_back_a_member_without_it_until_they_enroll() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let (admin, mut bob, p) = practice_with_member(&srv).await;
    bob.members(p).await.unwrap();
    admin.client.require_two_factor(p, true).await.unwrap();

    // Bob still signs in, but reaches nothing of the practice: HTTP routes and its stream.
    let bob_email = bob.me().await.unwrap().email;
    bob.login(&bob_email, PASSWORD).await.unwrap();
    assert_eq!(bob.members(p).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    assert_eq!(bob.practice(p).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    let live = bob.live().await.unwrap();
    assert_eq!(live.subscribe(StreamId::Practice(p), 0).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    // The admin (with two-factor on) is not held back.
    admin.client.members(p).await.unwrap();

    // After enrolling, Bob reaches the practice again.
    let e = bob.start_two_factor().await.unwrap();
    bob.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    bob.members(p).await.unwrap();
    bob.live().await.unwrap().subscribe(StreamId::Practice(p), 0).await.unwrap();

    // Lifting the requirement lets a member without two-factor back in.
    bob.disable_two_factor(SecondFactor::Code(&next_code(&e.secret))).await.unwrap();
    assert_eq!(bob.members(p).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    admin.client.require_two_factor(p, false).await.unwrap();
    bob.members(p).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_is_not_an_admin_cannot_require_two_factor() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let (_admin, bob, p) = practice_with_member(&srv).await;
    let e = bob.start_two_factor().await.unwrap();
    bob.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    assert_eq!(bob.require_two_factor(p, true).await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    bob.members(p).await.unwrap();
    // Someone outside the practice is told nothing about it.
    let mut eve = srv.client();
    eve.register_confirmed(&unique_email("eve"), "Eve", PASSWORD).await.unwrap();
    assert_eq!(eve.require_two_factor(p, true).await.unwrap_err().code(), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_without_two_factor_cannot_require_it_and_lock_themself_out() {
    let srv = TestServer::start(None);
    let mut admin = srv.client();
    admin.register_confirmed(&unique_email("admin"), "Admin", PASSWORD).await.unwrap();
    let p = admin.create_practice("Valley Family Practice", PracticeKind::Referring, None, Some("interior"), vec![]).await.unwrap();
    assert_eq!(admin.require_two_factor(p.id, true).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    admin.members(p.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_totp_secret_and_recovery_codes_are_not_stored_in_plain_text() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let raw = Secret::try_from_base32(&a.secret).unwrap().as_bytes().to_vec();
    let mut needles: Vec<(String, Vec<u8>)> = vec![("secret bytes".into(), raw), ("secret base32".into(), a.secret.clone().into_bytes())];
    for rc in &a.recovery {
        needles.push((format!("recovery code {rc}"), rc.clone().into_bytes()));
        needles.push((format!("recovery code {rc} without dashes"), rc.replace('-', "").into_bytes()));
    }
    for (path, bytes) in all_bytes(srv.data_dir()) {
        for (what, n) in &needles {
            assert!(!contains(&bytes, n), "{what} found in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_each_two_factor_route_gets_a_documented_error() {
    let srv = TestServer::start(None);
    let a = enrolled(&srv, "owner").await;
    let p = a.client.create_practice("Valley Family Practice", PracticeKind::Referring, None, Some("interior"), vec![]).await.unwrap();
    let require_path = RequirePracticeTwoFactor::PATH.replace("{id}", &p.id.to_string());
    let routes: [(&str, String); 4] = [
        ("POST", SecondFactorSignIn::PATH.to_string()),
        ("POST", ConfirmTwoFactor::PATH.to_string()),
        ("POST", DisableTwoFactor::PATH.to_string()),
        ("PUT", require_path.clone()),
    ];
    for (method, path) in &routes {
        let send = |body: &str| a.client.raw(method, path, Some("application/json"), body.as_bytes().to_vec());
        let r = send("not json at all").await.unwrap();
        assert_eq!((r.status, code(&r)), (400, ErrorCode::MalformedJson), "{method} {path}");
        let r = send(r#"{"code": 123456, "required": "yes", "pending_token": 7}"#).await.unwrap();
        assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody), "{method} {path}: wrong types");
        let r = send(r#"{"code": "123456", "secret": "x", "pending_token": "x", "required": true}"#).await.unwrap();
        assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody), "{method} {path}: unknown fields");
    }
    // Values of the right type that are not a factor.
    let r = a.client.raw("POST", DisableTwoFactor::PATH, Some("application/json"), br#"{"code": "12ab56"}"#.to_vec()).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed));
    let both = serde_json::json!({ "code": next_code(&a.secret), "recovery_code": a.recovery[0] }).to_string();
    let r = a.client.raw("POST", DisableTwoFactor::PATH, Some("application/json"), both.into_bytes()).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed), "a code and a recovery code at once");
    let r = a.client.raw("POST", DisableTwoFactor::PATH, Some("application/json"), b"{}".to_vec()).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed), "neither");
    let r = a.client.raw("POST", ConfirmTwoFactor::PATH, Some("application/json"), br#"{"recovery_code": "ABCD-EFGH-IJKL-MNOP"}"#.to_vec());
    let r = r.await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed), "enrollment is confirmed with a code");
    let r = a
        .client
        .raw("POST", DisableTwoFactor::PATH, Some("application/json"), br#"{"recovery_code": "not-a-code!"}"#.to_vec())
        .await
        .unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed));
    // A pending token that is not one.
    for token in ["", "garbage", &"A".repeat(500)] {
        let body = serde_json::json!({ "pending_token": token, "code": "123456" }).to_string();
        let r = srv.client().raw("POST", SecondFactorSignIn::PATH, Some("application/json"), body.into_bytes()).await.unwrap();
        assert_eq!((r.status, code(&r)), (401, ErrorCode::SecondFactorNeeded), "{token:?}");
    }
    // Signed out, the account routes need a session.
    let r = srv.client().raw("POST", StartTwoFactor::PATH, Some("application/json"), Vec::new()).await.unwrap();
    assert_eq!((r.status, code(&r)), (401, ErrorCode::Unauthenticated));
    // Nothing changed: two-factor sign-in is still on.
    assert!(a.client.two_factor_status().await.unwrap().enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requiring_two_factor_cuts_a_held_back_members_live_streams_and_referrals_tell_them_to_enroll() {
    use handoff_client::referrals::To;
    use handoff_protocol::ws::{AckBody, ReferralId};
    use handoff_testkit::{content, routing};
    use std::time::Duration;

    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let w = crate::harness::world(&srv, 1).await;
    let p = w.specialists[0].id;
    let e = w.spec.start_two_factor().await.unwrap();
    w.spec.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    w.spec.invite(p, "carol@cardio.example", Role::Member).await.unwrap();
    let token = srv.folder_invite_token("carol@cardio.example").await;
    let mut carol = srv.client();
    carol.register("carol@cardio.example", "Carol", PASSWORD, Some(&token)).await.unwrap();

    let moa_live = w.moa.live().await.unwrap();
    let ack = w.moa.send_referral(&moa_live, w.referring.id, To::Practice(p), routing("arrhythmia"), &content("Held Back"), &[]).await;
    let AckBody::ReferralSent { referral, .. } = ack.unwrap() else { panic!("not sent") };
    let rid: ReferralId = referral;
    let rs = StreamId::Referral(rid);
    let mut carol_live = carol.live().await.unwrap();
    carol_live.subscribe(rs, 0).await.unwrap();
    carol_live.subscribe(StreamId::Practice(p), 0).await.unwrap();

    w.spec.require_two_factor(p, true).await.unwrap();
    // Both of her streams are cut at once, each with its frame.
    let mut ended = Vec::new();
    for _ in 0..2 {
        let frame = carol_live.next_error(Duration::from_secs(20)).await.expect("a frame saying the stream ended");
        assert_eq!(frame.error, ErrorCode::AccessEnded, "{frame:?}");
        ended.push(frame.message);
    }
    assert!(ended.iter().any(|m| m.contains(&rs.to_string())), "{ended:?}");
    assert!(ended.iter().any(|m| m.contains(&StreamId::Practice(p).to_string())), "{ended:?}");
    // Subscribing again, and the referral's HTTP routes, say why: enroll.
    assert_eq!(carol_live.subscribe(rs, 0).await.unwrap_err().code(), Some(ErrorCode::TwoFactorRequired));
    let path = handoff_protocol::api::GetReferral::PATH.replace("{id}", &rid.to_string());
    let r = carol.raw("GET", &path, None, Vec::new()).await.unwrap();
    assert_eq!((r.status, code(&r)), (403, ErrorCode::TwoFactorRequired));
    // The admin, with two-factor on, still reads it.
    let r = w.spec.raw("GET", &path, None, Vec::new()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Someone outside both practices still learns nothing.
    let mut eve = srv.client();
    eve.register_confirmed(&unique_email("eve"), "Eve", PASSWORD).await.unwrap();
    let r = eve.raw("GET", &path, None, Vec::new()).await.unwrap();
    assert_eq!((r.status, code(&r)), (404, ErrorCode::NotFound));
}

/// The attack: a member who kept the practice key sends a referral *as the
/// practice* after the practice started requiring two-factor sign-in, which
/// they have off. Every other practice route holds them back; sending did
/// not, because the sender check asked for the role, not the standing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_member_cannot_send_a_referral_for_the_practice() {
    use handoff_client::referrals::To;
    use handoff_protocol::ws::Command;
    use handoff_testkit::{content, routing};

    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let w = crate::harness::world(&srv, 1).await;
    let (office, to) = (w.referring.id, w.specialists[0].id);
    let e = w.moa.start_two_factor().await.unwrap();
    w.moa.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    let email = unique_email("dave");
    w.moa.invite(office, &email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(&email).await;
    let mut dave = srv.client();
    dave.register(&email, "Dave", PASSWORD, Some(&token)).await.unwrap();
    w.moa.complete_pending_grants(office).await.unwrap();
    // Sealed while Dave was in good standing: he holds the practice key.
    let (referral, _) =
        dave.prepare_referral(office, To::Practice(to), routing("arrhythmia"), &content("Held Back Sender"), &[]).await.unwrap();

    w.moa.require_two_factor(office, true).await.unwrap();
    let live = dave.live().await.unwrap();
    let refused = live.command(Command::SendReferral { referral: referral.clone() }).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::TwoFactorRequired), "{refused}");
    assert!(w.spec.referrals(to).await.unwrap().iter().all(|r| r.id != referral.id), "nothing was sent");
    // Once he enrolls, the same referral goes.
    let e = dave.start_two_factor().await.unwrap();
    dave.confirm_two_factor(&code_at(&e.secret, now_secs())).await.unwrap();
    live.command(Command::SendReferral { referral }).await.unwrap();
}
