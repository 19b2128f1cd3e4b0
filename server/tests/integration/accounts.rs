//! The foundation walk-through and account behaviour.

use handoff_client::ClientError;
use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, Login, Prelogin};
use handoff_protocol::v1::{Intake, PracticeAction, PracticeKind, Role};

use handoff_testkit::RegisterConfirmed as _;

use crate::harness::{PASSWORD, Smtp, TestServer, invite_token};

/// The issue's "done when" sequence, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_practice_verify_invite_join_and_reset() {
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));

    // 1. Register and receive the kit grid.
    let mut admin = srv.client();
    let kit = admin.register_confirmed("dr.lee@clinic.example", "Dr. Lee", PASSWORD).await.unwrap();
    assert_eq!(kit.len(), 24, "a 24-word grid");
    assert!(kit.iter().all(|w| !w.is_empty()));

    // 2. Log in from a fresh client.
    let mut admin = srv.client();
    admin.login("dr.lee@clinic.example", PASSWORD).await.unwrap();
    assert_eq!(admin.me().await.unwrap().email, "dr.lee@clinic.example");

    // 3. A specialist practice that cannot receive until staff verify it.
    let practice = admin
        .create_practice(
            "Fraser Heart Clinic",
            PracticeKind::Specialist,
            Some("cardiology"),
            Some("fraser"),
            vec![Intake { category: "arrhythmia".into(), subcategory: None }],
        )
        .await
        .unwrap();
    assert!(!practice.verified && !practice.can_receive);
    assert!(admin.directory(Some("cardiology"), Some("fraser")).await.unwrap().is_empty(), "unverified: not in the directory");
    admin.verify_practice_key(practice.id).await.unwrap();

    // 4. Staff verify it, through the admin API.
    let mut staff = srv.client();
    staff.register_confirmed("ops@handoff.example", "Ops", PASSWORD).await.unwrap();
    srv.grant_staff("ops@handoff.example");
    staff.admin_practice_action(practice.id, PracticeAction::Verify).await.unwrap();
    let p = admin.practice(practice.id).await.unwrap();
    assert!(p.verified && p.can_receive, "the practice sees its verification");
    let dir = admin.directory(Some("cardiology"), Some("fraser")).await.unwrap();
    assert_eq!(dir.iter().map(|d| d.id).collect::<Vec<_>>(), vec![practice.id]);
    smtp.wait_for("dr.lee@clinic.example", "has been verified").await;

    // 5. Invite a member by email; the link comes from the SMTP server's mailbox.
    admin.invite(practice.id, "moa.kim@clinic.example", Role::Member).await.unwrap();
    let mail = smtp.wait_for("moa.kim@clinic.example", "/invite/").await;
    assert!(mail.contains("Fraser Heart Clinic"));
    let token = invite_token(&mail);
    assert!(token.len() >= 40, "a 256-bit token: {token}");

    // 6. The invitee registers through the link, lands in the practice, and gets the key.
    let mut moa = srv.client();
    let info = moa.invite_info(&token).await.unwrap();
    assert_eq!((info.practice_name.as_str(), info.account_exists), ("Fraser Heart Clinic", false));
    let moa_kit = moa.register("moa.kim@clinic.example", "Kim (MOA)", "another long password", Some(&token)).await.unwrap();
    let mine = moa.practices().await.unwrap();
    assert_eq!(mine.iter().map(|p| (p.id, p.my_role)).collect::<Vec<_>>(), vec![(practice.id, Role::Member)]);
    assert!(moa.practice_key(practice.id).await.is_err(), "no key until a member's client grants it");
    assert_eq!(admin.complete_pending_grants(practice.id).await.unwrap(), 1);
    assert_eq!(admin.complete_pending_grants(practice.id).await.unwrap(), 0, "nothing left pending");
    let admin_key = admin.practice_key(practice.id).await.unwrap();
    let moa_key = moa.practice_key(practice.id).await.unwrap();
    assert_eq!(moa_key, admin_key, "the invitee unwraps the same practice key");
    assert!(moa.members(practice.id).await.unwrap().members.iter().all(|m| m.has_key));
    // The invite link is single-use.
    assert_eq!(moa.accept_invite(&token).await.unwrap_err().code(), Some(ErrorCode::InviteInvalid));

    // 7. Reset the password with the kit; the practice key still unwraps.
    let mut reset = srv.client();
    reset.recover("moa.kim@clinic.example", &moa_kit, "a brand new password").await.unwrap();
    assert_eq!(reset.practice_key(practice.id).await.unwrap(), admin_key);
    // The old password no longer works; the new one does, and so do the keys.
    let mut old = srv.client();
    assert_eq!(old.login("moa.kim@clinic.example", "another long password").await.unwrap_err().code(), Some(ErrorCode::InvalidCredentials));
    let mut fresh = srv.client();
    fresh.login("moa.kim@clinic.example", "a brand new password").await.unwrap();
    assert_eq!(fresh.practice_key(practice.id).await.unwrap(), admin_key);
    // Resetting revoked the sessions that existed before.
    assert_eq!(moa.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));

    // 8. One word swapped between two grid positions fails.
    let mut swapped = moa_kit.clone();
    let (i, j) = (0..24).flat_map(|i| (i + 1..24).map(move |j| (i, j))).find(|&(i, j)| swapped[i] != swapped[j]).unwrap();
    swapped.swap(i, j);
    let err = srv.client().recover("moa.kim@clinic.example", &swapped, "yet another password").await.unwrap_err();
    match err {
        ClientError::Crypto(handoff_crypto::CryptoError::KitChecksum) => {}
        ClientError::Api { body, .. } => assert_eq!(body.error, ErrorCode::InvalidRecoveryKit),
        other => panic!("unexpected {other:?}"),
    }
    // And the password did not change.
    srv.client().login("moa.kim@clinic.example", "a brand new password").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_verifies_and_pauses_practices() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let p = a.create_practice("Island Derm", PracticeKind::Specialist, Some("dermatology"), Some("island"), vec![]).await.unwrap();
    let out = srv.admin_cli(&["verify-practice", &p.id.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(a.practice(p.id).await.unwrap().can_receive);
    let out = srv.admin_cli(&["pause-practice", &p.id.to_string()]);
    assert!(out.status.success());
    let now = a.practice(p.id).await.unwrap();
    assert!(now.verified && now.paused && !now.can_receive);
    assert!(a.directory(None, None).await.unwrap().is_empty(), "paused: out of the directory");
    let out = srv.admin_cli(&["unpause-practice", &p.id.to_string()]);
    assert!(out.status.success());
    assert!(a.practice(p.id).await.unwrap().can_receive);
    let out = srv.admin_cli(&["verify-practice", "00000000-0000-4000-8000-000000000000"]);
    assert!(!out.status.success(), "an unknown id fails");
    let out = srv.admin_cli(&["verify-practice", "not-a-uuid"]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let mut srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let p = a.create_practice("North Family Practice", PracticeKind::Referring, None, Some("northern"), vec![]).await.unwrap();
    let key = a.practice_key(p.id).await.unwrap();
    srv.restart();
    let mut again = srv.client();
    again.login("a@clinic.example", PASSWORD).await.unwrap();
    assert_eq!(again.practice_key(p.id).await.unwrap(), key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_goes_to_the_data_folder() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let p = a.create_practice("Folder Clinic", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    a.invite(p.id, "b@clinic.example", Role::Member).await.unwrap();
    let dir = srv.data_dir().join("mail");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found =
            std::fs::read_dir(&dir).ok().into_iter().flatten().flatten().any(|e| {
                std::fs::read_to_string(e.path()).map(|t| t.contains("b@clinic.example") && t.contains("/invite/")).unwrap_or(false)
            });
        if found {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no .eml in {}", dir.display());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let token = a.token().unwrap().to_string();
    a.logout().await.unwrap();
    let mut b = srv.client();
    b.set_token(Some(token));
    assert_eq!(b.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_is_httponly_and_samesite() {
    let srv = TestServer::start(None);
    let c = srv.client();
    let body = serde_json::json!({"email": "nobody@clinic.example"});
    let r = c.raw("POST", Prelogin::PATH, Some("application/json"), body.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status, 200);
    // Register through the raw API to see the Set-Cookie header.
    let mut a = srv.client();
    a.register_confirmed("cookie@clinic.example", "C", PASSWORD).await.unwrap();
    let prelogin: serde_json::Value = serde_json::from_str(
        &c.raw("POST", Prelogin::PATH, Some("application/json"), br#"{"email":"cookie@clinic.example"}"#.to_vec()).await.unwrap().body,
    )
    .unwrap();
    let salt = handoff_protocol::B64::decode(prelogin["salt"].as_str().unwrap()).unwrap();
    let keys = handoff_crypto::PasswordKeys::derive(PASSWORD, salt.as_slice()).unwrap();
    let login = serde_json::json!({"email": "cookie@clinic.example", "auth_key": handoff_protocol::B64(keys.auth_key.to_vec())});
    let r = c.raw("POST", Login::PATH, Some("application/json"), login.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("handoff_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http in tests: no Secure flag");

    // Over HTTPS (per public_url) the cookie is Secure.
    let tls = TestServer::start_with(None, |c| c.public_url = Some("https://handoff.example".into()));
    let mut b = tls.client();
    b.register_confirmed("s@clinic.example", "S", PASSWORD).await.unwrap();
    let c2 = tls.client();
    let pre: serde_json::Value = serde_json::from_str(
        &c2.raw("POST", Prelogin::PATH, Some("application/json"), br#"{"email":"s@clinic.example"}"#.to_vec()).await.unwrap().body,
    )
    .unwrap();
    let salt = handoff_protocol::B64::decode(pre["salt"].as_str().unwrap()).unwrap();
    let keys = handoff_crypto::PasswordKeys::derive(PASSWORD, salt.as_slice()).unwrap();
    let login = serde_json::json!({"email": "s@clinic.example", "auth_key": handoff_protocol::B64(keys.auth_key.to_vec())});
    let r = c2.raw("POST", Login::PATH, Some("application/json"), login.to_string().into_bytes()).await.unwrap();
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
}
