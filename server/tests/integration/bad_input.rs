//! Bad input gets a documented error and changes nothing; never a panic or a 500.

use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, GetHealth, GetPractice, GetPracticeKey, ListMembers, ListPendingGrants, Login, Prelogin};
use handoff_protocol::v1::{MAX_JSON_BODY, PracticeAction, PracticeKind, Role};

use handoff_testkit::RegisterConfirmed as _;

use crate::harness::{PASSWORD, TestServer};

fn code(r: &handoff_client::RawResponse) -> ErrorCode {
    r.error().unwrap_or_else(|| panic!("not an error body: {} {}", r.status, r.body)).error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_mistyped_bodies() {
    let srv = TestServer::start(None);
    let c = srv.client();
    let post = |body: &'static [u8]| c.raw("POST", Login::PATH, Some("application/json"), body.to_vec());

    let r = post(b"{\"email\": ").await.unwrap();
    assert_eq!((r.status, code(&r)), (400, ErrorCode::MalformedJson));
    let r = post(b"not json at all").await.unwrap();
    assert_eq!((r.status, code(&r)), (400, ErrorCode::MalformedJson));
    let r = post(br#"{"email": 42, "auth_key": "AAAA"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody));
    let r = post(br#"{"email": "a@b.example"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody), "missing field");
    let r = post(br#"{"email": "a@b.example", "auth_key": "AAAA", "password": "x"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody), "unknown fields are refused, never ignored");
    let r = post(br#"{"email": "a@b.example", "auth_key": "not base64!"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::InvalidBody));
    let r = post(br#"{"email": "a@b.example", "auth_key": "AAAA"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed), "a 3-byte auth key");
    let r = post(br#"{"email": "not an email", "auth_key": "AAAA"}"#).await.unwrap();
    assert_eq!((r.status, code(&r)), (422, ErrorCode::ValidationFailed));

    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(MAX_JSON_BODY + 10));
    let r = c.raw("POST", Prelogin::PATH, Some("application/json"), big.into_bytes()).await.unwrap();
    assert_eq!((r.status, code(&r)), (413, ErrorCode::PayloadTooLarge));

    let r = c.raw("POST", Prelogin::PATH, Some("text/plain"), br#"{"email":"a@b.example"}"#.to_vec()).await.unwrap();
    assert_eq!((r.status, code(&r)), (415, ErrorCode::UnsupportedMediaType));

    // path-literal-ok: a route that does not exist.
    let r = c.raw("GET", "/api/v1/no/such/route", None, vec![]).await.unwrap();
    assert_eq!((r.status, code(&r)), (404, ErrorCode::NoRoute));

    // The server is still up and answers normally.
    let r = c.raw("GET", GetHealth::PATH, None, vec![]).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"ok\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_registration_wrong_password_and_unknown_account() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    // A taken address is not told in the API (security_accounts has the full
    // check); its owner is told by email, and emails compare case-insensitively.
    let mut again = srv.client();
    again.register("A@Clinic.example", "A again", PASSWORD, None).await.unwrap();
    assert!(again.awaiting_confirmation());
    let notice = srv.wait_for_folder_mail("a@clinic.example", "already have an account").await;
    assert!(!notice.contains("/confirm/"), "a taken address gets no confirmation link");
    let err = srv.client().login("a@clinic.example", "wrong password!").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    // The API says plainly that there is no email reset.
    let msg = err.to_string();
    assert!(msg.contains("Emergency Access Kit") && msg.contains("cannot reset it by email"), "{msg}");
    let err = srv.client().login("nobody@clinic.example", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials), "same answer for unknown accounts");
    // The original account still works.
    srv.client().login("a@clinic.example", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prelogin_does_not_reveal_accounts() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let c = srv.client();
    let salt = |email: &str| {
        let body = serde_json::json!({ "email": email }).to_string().into_bytes();
        let c = &c;
        async move {
            let r = c.raw("POST", Prelogin::PATH, Some("application/json"), body).await.unwrap();
            assert_eq!(r.status, 200);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            (v["salt"].as_str().unwrap().to_string(), v["m_kib"].as_u64().unwrap())
        }
    };
    let (real, m) = salt("a@clinic.example").await;
    let (fake1, m2) = salt("ghost@clinic.example").await;
    let (fake2, _) = salt("ghost@clinic.example").await;
    assert_eq!((m, m2), (19456, 19456));
    assert_eq!(fake1, fake2, "a decoy salt is stable, like a real one");
    assert_eq!(real.len(), fake1.len());
    assert_ne!(real, fake1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_kit_word_or_position_is_refused() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    let kit = a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();

    // A word that is not a kit word: caught locally, names the position.
    let mut bad = kit.clone();
    bad[4] = "pizzazz".into();
    let err = srv.client().recover("a@clinic.example", &bad, "new password here").await.unwrap_err();
    assert!(matches!(err, handoff_client::ClientError::Crypto(handoff_crypto::CryptoError::KitUnknownWord { position: 5 })), "{err:?}");

    // Another account's valid kit: passes the checksum, refused by the server.
    let mut b = srv.client();
    let other_kit = b.register_confirmed("b@clinic.example", "B", PASSWORD).await.unwrap();
    let err = srv.client().recover("a@clinic.example", &other_kit, "new password here").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidRecoveryKit));

    // The password is unchanged.
    srv.client().login("a@clinic.example", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_kit_attempts_are_rate_limited() {
    let srv = TestServer::start_with(None, |c| {
        c.auth_failures_per_account = 3;
        c.auth_attempts_per_ip = 1000;
    });
    let mut a = srv.client();
    let kit = a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    for _ in 0..3 {
        let e = srv.client().login("a@clinic.example", "wrong password!").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidCredentials));
    }
    // Locked: even the right password waits out the window.
    let e = srv.client().login("a@clinic.example", PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
    // Another account is unaffected.
    let mut b = srv.client();
    b.register_confirmed("b@clinic.example", "B", PASSWORD).await.unwrap();
    srv.client().login("b@clinic.example", PASSWORD).await.unwrap();

    // Kit guessing has its own lock.
    let mut c = srv.client();
    let c_kit = c.register_confirmed("c@clinic.example", "C", PASSWORD).await.unwrap();
    for _ in 0..3 {
        let e = srv.client().recover("c@clinic.example", &kit, "new password here").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidRecoveryKit));
    }
    let e = srv.client().recover("c@clinic.example", &c_kit, "new password here").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_limit_applies_across_accounts() {
    let srv = TestServer::start_with(None, |c| {
        c.auth_attempts_per_ip = 4;
        c.auth_failures_per_account = 100;
    });
    for i in 0..4 {
        let e = srv.client().login(&format!("u{i}@clinic.example"), PASSWORD).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidCredentials));
    }
    let e = srv.client().login("u9@clinic.example", PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited));
    let r = srv
        .client()
        .raw(
            "POST",
            Login::PATH,
            Some("application/json"),
            br#"{"email":"x@clinic.example","auth_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_missing_sessions() {
    let srv = TestServer::start_with(None, |c| c.session_ttl_secs = 1);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    a.me().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(a.me().await.unwrap_err().code(), Some(ErrorCode::SessionExpired));
    // The expired session is gone for good: the next try is simply unknown.
    assert_eq!(a.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
    let anon = srv.client();
    assert_eq!(anon.practices().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
    let mut forged = srv.client();
    forged.set_token(Some("forged-token".into()));
    assert_eq!(forged.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_foreign_ids_look_the_same() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let p = a.create_practice("A Clinic", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let mut b = srv.client();
    b.register_confirmed("b@clinic.example", "B", PASSWORD).await.unwrap();
    let unknown = handoff_protocol::PracticeId(uuid::Uuid::from_u128(0x1234));

    let paths = |id| [GetPractice::path(&id), ListMembers::path(&id), GetPracticeKey::path(&id), ListPendingGrants::path(&id)];
    for (foreign, missing) in paths(p.id).into_iter().zip(paths(unknown)) {
        let path = foreign.replace(&p.id.to_string(), "{id}");
        let foreign = b.raw("GET", &foreign, None, vec![]).await.unwrap();
        let missing = b.raw("GET", &missing, None, vec![]).await.unwrap();
        assert_eq!((foreign.status, code(&foreign)), (404, ErrorCode::NotFound), "{path}");
        assert_eq!(foreign.body, missing.body, "foreign and unknown answer identically on {path}");
    }
    // path-literal-ok: a malformed id.
    let bad = b.raw("GET", "/api/v1/practices/not-a-uuid", None, vec![]).await.unwrap();
    assert_eq!((bad.status, code(&bad)), (404, ErrorCode::NotFound));
    // Writes to a foreign practice are refused the same way, and change nothing.
    assert_eq!(b.invite(p.id, "c@clinic.example", Role::Admin).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert_eq!(b.delete_practice(p.id, "A Clinic").await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert_eq!(b.remove_member(p.id, a.user_id().unwrap()).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert_eq!(a.practice(p.id).await.unwrap().name, "A Clinic");
    assert_eq!(a.members(p.id).await.unwrap().members.len(), 1);
    // Unknown invite tokens.
    assert_eq!(b.invite_info("nope").await.unwrap_err().code(), Some(ErrorCode::InviteInvalid));
    assert_eq!(b.accept_invite("nope").await.unwrap_err().code(), Some(ErrorCode::InviteInvalid));
    // Staff routes for non-staff.
    assert_eq!(b.admin_practices().await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    assert_eq!(b.admin_practice_action(p.id, PracticeAction::Verify).await.unwrap_err().code(), Some(ErrorCode::Forbidden));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practice_creation_is_validated() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let e = a.create_practice("X", PracticeKind::Specialist, Some("astrology"), Some("fraser"), vec![]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationFailed));
    let e = a.create_practice("X", PracticeKind::Specialist, Some("cardiology"), Some("atlantis"), vec![]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationFailed));
    let e = a
        .create_practice(
            "X",
            PracticeKind::Specialist,
            Some("cardiology"),
            Some("fraser"),
            vec![handoff_protocol::v1::Intake { category: "knee".into(), subcategory: None }],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationFailed), "a category from another specialty");
    let e = a.create_practice("X", PracticeKind::Specialist, None, None, vec![]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationFailed));
    let e = a.create_practice("   ", PracticeKind::Referring, None, None, vec![]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationFailed));
    assert!(a.practices().await.unwrap().is_empty(), "nothing was created");
}
