//! Free referrals without an account: the emailed code, the verified draft,
//! the free directory, draft-owned attachments, blocks, limits and opt-out.
//! Every bad input gets its documented code and changes nothing.

use std::time::Duration;

use handoff_client::{Client, RawResponse};
use handoff_protocol::api::{
    AdminBlock, AdminLiftBlock, AdminListBlocks, Endpoint as _, GetFreeDirectory, PutFreeBlob, ResendFreeCode, SendFreeReferral,
    SetFreeIntake, StartFreeDraft, VerifyFreeCode,
};
use handoff_protocol::free::{BlockKind, DraftId, FreeIntake, LiftBlock, NewBlock, StartDraft, VerifyCode};
use handoff_protocol::v1::{DirectoryQuery, Role};
use handoff_protocol::ws::{BlobId, MAX_BLOB};
use handoff_protocol::{ErrorCode, UserId};
use handoff_server::sweep::sweep_once;
use handoff_store::sqlite::SqliteStore;
use handoff_store::{FreeStore as _, ReferralStore as _};
use handoff_testkit::{FreeSender, moa_account, referring_office, staff_account, unique_email};

use crate::harness::{PASSWORD, Smtp, TestServer, all_bytes, contains, world};

fn code<T: std::fmt::Debug>(r: handoff_client::Result<T>) -> Option<ErrorCode> {
    r.expect_err("the call should have been refused").code()
}

fn raw_code(r: &RawResponse) -> ErrorCode {
    r.error().unwrap_or_else(|| panic!("not an error body: {} {}", r.status, r.body)).error
}

fn sender_email() -> String {
    unique_email("moa", "free-clinic.example")
}

/// A code that is not `right` (six digits all the same, differing from it).
fn wrong(right: &str) -> String {
    if right == "111111" { "222222".into() } else { "111111".into() }
}

/// A sender whose draft is started and whose code was read, not yet verified.
async fn started(srv: &TestServer) -> (FreeSender, String) {
    FreeSender::start(&srv.url(), &sender_email()).await.unwrap()
}

fn all_practices() -> DirectoryQuery {
    DirectoryQuery { specialty: None, region: None }
}

/// How many messages are in the mail folder once at least `n` arrived and
/// the outbox had time to write any more.
async fn settled_mail(srv: &TestServer, n: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while srv.folder_messages().len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several mailer polls (100 ms each in tests), for any message that should not exist.
    tokio::time::sleep(Duration::from_millis(500)).await;
    srv.folder_messages().len()
}

async fn staff(srv: &TestServer) -> Client {
    let account = staff_account();
    let c = account.register(&srv.url()).await.unwrap();
    srv.grant_staff(&account.email);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_sender_proves_their_email_with_the_emailed_code_and_gets_a_verified_draft() {
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));
    let email = sender_email();
    let (mut sender, code_) = FreeSender::start(&srv.url(), &email).await.unwrap();
    assert_eq!(code_.len(), 6);
    assert!(code_.bytes().all(|b| b.is_ascii_digit()), "{code_}");

    // The email: the code in the subject and the body, 10 minutes, and nothing about any patient.
    let mail = sender.last_code_mail().unwrap().to_owned();
    assert!(mail.contains(&format!("Subject: Your Handoff code is {code_}")), "{mail}");
    assert!(mail.contains("expires in 10 minutes"), "{mail}");
    assert!(!mail.contains(&sender.draft.to_string()), "the draft id is not in the mail");

    let v = sender.verify(&code_).await.unwrap();
    assert_eq!((v.draft, v.email.as_str()), (sender.draft, email.as_str()));
    assert_eq!(v.token.len(), 43, "256 random bits, URL-safe base64");
    // With the token, the free directory answers.
    sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap();

    // A browser gets the token as a cookie: HttpOnly, SameSite=Strict, only for the free routes.
    let (other, code2) = started(&srv).await;
    let r = reqwest::Client::new()
        .post(format!("{}{}", srv.url(), VerifyFreeCode::path(&other.draft)))
        .json(&VerifyCode { code: format!(" {} {} ", &code2[..3], &code2[3..]) })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "spaces in a typed code are ignored");
    let cookie = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap().to_owned();
    assert!(cookie.starts_with("handoff_draft="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", &format!("Path={}", StartFreeDraft::PATH.rsplit_once('/').unwrap().0)] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = reqwest::Client::new().get(format!("{}{}", srv.url(), GetFreeDirectory::PATH)).header("cookie", pair).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the cookie alone is a verified draft");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_refused_with_the_tries_left() {
    let srv = TestServer::start(None);
    let (mut sender, right) = started(&srv).await;
    let err = sender.verify(&wrong(&right)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CodeWrong));
    assert!(err.to_string().contains("4 tries left"), "{err}");
    assert!(sender.token.is_none());
    // The right code still works afterwards.
    sender.verify(&right).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_code_try_is_refused_even_with_the_right_code() {
    let srv = TestServer::start(None);
    let (mut sender, right) = started(&srv).await;
    for left in (0..5).rev() {
        let err = sender.verify(&wrong(&right)).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::CodeWrong));
        assert!(err.to_string().contains(&format!("{left} tries left")), "{err}");
    }
    assert_eq!(code(sender.verify(&right).await), Some(ErrorCode::CodeTriesExhausted));
    assert_eq!(code(sender.call::<GetFreeDirectory>(&(), &all_practices()).await), Some(ErrorCode::DraftUnverified));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_code_tries_cannot_exceed_five() {
    let srv = TestServer::start(None);
    let (sender, right) = started(&srv).await;
    let bad = wrong(&right);
    let bodies: Vec<VerifyCode> = (0..20).map(|_| VerifyCode { code: bad.clone() }).collect();
    let tries = bodies.iter().map(|b| sender.call::<VerifyFreeCode>(&sender.draft, b));
    let outcomes = futures_util::future::join_all(tries).await;
    let count = |c: ErrorCode| outcomes.iter().filter(|o| o.as_ref().err().and_then(|e| e.code()) == Some(c)).count();
    assert_eq!((count(ErrorCode::CodeWrong), count(ErrorCode::CodeTriesExhausted)), (5, 15));
    assert_eq!(code(sender.call::<VerifyFreeCode>(&sender.draft, &VerifyCode { code: right }).await), Some(ErrorCode::CodeTriesExhausted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let srv = TestServer::start_with(None, |c| c.free_code_ttl_secs = 1);
    let (mut sender, right) = started(&srv).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(code(sender.verify(&right).await), Some(ErrorCode::CodeExpired));
    // A new code works.
    let (_, fresh) = sender.resend().await.unwrap();
    sender.verify(&fresh).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_code_is_refused_as_expired() {
    let srv = TestServer::start(None);
    let (mut sender, right) = started(&srv).await;
    let first = sender.verify(&right).await.unwrap();
    let err = sender.verify(&right).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CodeExpired));
    // The first token still works; the refused reuse made none.
    sender.token = Some(first.token);
    sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_code_replaces_the_old_one_and_resends_are_limited() {
    let srv = TestServer::start_with(None, |c| c.free_codes_per_email_per_hour = 100);
    let (mut sender, old) = started(&srv).await;
    let (sent, new) = sender.resend().await.unwrap();
    assert_eq!((sent.draft, sent.resends_left), (sender.draft, 2));
    if new != old {
        assert_eq!(code(sender.verify(&old).await), Some(ErrorCode::CodeWrong), "the old code died");
    }
    assert_eq!(sender.resend().await.unwrap().0.resends_left, 1);
    let (last, newest) = sender.resend().await.unwrap();
    assert_eq!(last.resends_left, 0);
    assert_eq!(code(sender.call::<ResendFreeCode>(&sender.draft, &()).await), Some(ErrorCode::RateLimited), "a fourth resend");
    sender.verify(&newest).await.unwrap();
    // An unknown draft has nothing to resend.
    assert_eq!(code(sender.call::<ResendFreeCode>(&DraftId::from_bytes([7; 16]), &()).await), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_that_need_a_verified_draft_refuse_without_one() {
    let srv = TestServer::start(None);
    let (mut sender, _) = started(&srv).await;
    let blob = BlobId::from_bytes([1; 16]);
    // Unverified (no token), then a forged token, then a session token (the
    // send: `a_free_send_needs_a_verified_draft_and_no_sending_practice`).
    for token in [None, Some("forged".to_string())] {
        sender.token = token;
        assert_eq!(code(sender.call::<GetFreeDirectory>(&(), &all_practices()).await), Some(ErrorCode::DraftUnverified));
        assert_eq!(code(sender.upload::<PutFreeBlob>(&blob, vec![1; 10]).await), Some(ErrorCode::DraftUnverified));
    }
    let member = moa_account().register(&srv.url()).await.unwrap();
    let r = member.raw("GET", GetFreeDirectory::PATH, None, vec![]).await.unwrap();
    assert_eq!(raw_code(&r), ErrorCode::DraftUnverified, "a session is not a verified draft");
    // Nothing was stored for the refused upload.
    assert!(SqliteStore::open(srv.data_dir()).unwrap().blob_meta(blob).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_draft_is_refused_and_swept() {
    let srv = TestServer::start_with(None, |c| c.free_draft_ttl_secs = 2);
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(code(sender.call::<GetFreeDirectory>(&(), &all_practices()).await), Some(ErrorCode::DraftUnverified));
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    let swept = sweep_once(&store, &srv.config, handoff_server::state::now()).await;
    assert_eq!(swept.drafts, 1);
    assert!(store.draft(sender.draft).await.unwrap().is_none(), "its email address and token are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_email_is_refused_and_nothing_is_mailed() {
    let srv = TestServer::start(None);
    let c = srv.client();
    for bad in ["not an email", "two@@at.example", "", "a@nodot", "a b@c.example"] {
        let err = c.call::<StartFreeDraft>(&(), &StartDraft { email: bad.into() }).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ValidationFailed), "{bad:?}");
    }
    // A malformed code is refused before it counts as a try.
    let (sender, right) = started(&srv).await;
    for bad in ["12345", "1234567", "12a456", ""] {
        let err = sender.call::<VerifyFreeCode>(&sender.draft, &VerifyCode { code: bad.into() }).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ValidationFailed), "{bad:?}");
    }
    for _ in 0..4 {
        sender.call::<VerifyFreeCode>(&sender.draft, &VerifyCode { code: wrong(&right) }).await.unwrap_err();
    }
    sender.call::<VerifyFreeCode>(&sender.draft, &VerifyCode { code: right }).await.expect("the fifth try is still the right one's");
    assert_eq!(settled_mail(&srv, 1).await, 1, "the one code mail; the refused starts mailed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_email_or_address_is_refused_on_start_resend_and_verify() {
    let srv = TestServer::start(None);
    let staff = staff(&srv).await;
    let email = sender_email();
    let (mut pending, right) = FreeSender::start(&srv.url(), &email).await.unwrap();

    // An email block, written in another case: refused at start, resend and verify.
    let b = staff
        .call::<AdminBlock>(&(), &NewBlock { kind: BlockKind::Email, value: email.to_uppercase(), reason: "spam".into() })
        .await
        .unwrap();
    assert_eq!(b.value, email, "normalised");
    let start = |e: String| {
        let c = srv.client();
        async move { c.call::<StartFreeDraft>(&(), &StartDraft { email: e }).await }
    };
    assert_eq!(code(start(email.clone()).await), Some(ErrorCode::SenderBlocked));
    assert_eq!(code(pending.call::<ResendFreeCode>(&pending.draft, &()).await), Some(ErrorCode::SenderBlocked));
    assert_eq!(code(pending.verify(&right).await), Some(ErrorCode::SenderBlocked));
    start(sender_email()).await.expect("another address is not blocked");
    let list = staff.call::<AdminListBlocks>(&(), &()).await.unwrap();
    assert_eq!(list.blocks.len(), 1);
    staff.call::<AdminLiftBlock>(&(), &LiftBlock { kind: BlockKind::Email, value: email.clone() }).await.unwrap();
    assert_eq!(
        code(staff.call::<AdminLiftBlock>(&(), &LiftBlock { kind: BlockKind::Email, value: email.clone() }).await),
        Some(ErrorCode::NotFound)
    );
    pending.verify(&right).await.expect("the refused verify counted no try; the lifted block lets it through");

    // An address block (this test's client is 127.0.0.1): every email from it is refused.
    staff.call::<AdminBlock>(&(), &NewBlock { kind: BlockKind::Address, value: "127.0.0.1".into(), reason: String::new() }).await.unwrap();
    assert_eq!(code(start(sender_email()).await), Some(ErrorCode::SenderBlocked));
    let bad = NewBlock { kind: BlockKind::Address, value: "not-an-address".into(), reason: String::new() };
    assert_eq!(code(staff.call::<AdminBlock>(&(), &bad).await), Some(ErrorCode::ValidationFailed));
    assert_eq!(staff.call::<AdminListBlocks>(&(), &()).await.unwrap().blocks.len(), 1, "the bad block stored nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_blocks_lists_and_lifts_free_senders() {
    let srv = TestServer::start(None);
    let email = sender_email();
    let out = srv.admin_cli(&["free-block", "add", "--email", &email, "--reason", "reported by a clinic"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = srv.client();
    assert_eq!(code(c.call::<StartFreeDraft>(&(), &StartDraft { email: email.clone() }).await), Some(ErrorCode::SenderBlocked));
    let out = srv.admin_cli(&["free-block", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains(&email) && listed.contains("reported by a clinic"), "{listed}");
    let out = srv.admin_cli(&["free-block", "add", "--address", "nonsense"]);
    assert!(!out.status.success(), "a bad address is refused");
    let out = srv.admin_cli(&["free-block", "add", "--email", &email, "--address", "127.0.0.1"]);
    assert!(!out.status.success(), "one of --email and --address, not both");
    let out = srv.admin_cli(&["free-block", "lift", "--email", &email]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.call::<StartFreeDraft>(&(), &StartDraft { email }).await.expect("lifted");
    // The CLI's function, called directly, normalises an IPv6 address to its /64.
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    let b = handoff_server::admin::free_block(&store, BlockKind::Address, "2001:db8:1:2:aaaa::9", "", 1).await.unwrap();
    assert_eq!(b.value, "2001:db8:1:2::/64");
    handoff_server::admin::free_lift(&store, BlockKind::Address, "2001:db8:1:2::1").await.expect("any address of the /64 lifts it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_rate_limited_per_email_and_per_address_including_resends() {
    let srv = TestServer::start_with(None, |c| {
        c.free_codes_per_email_per_hour = 2;
        c.free_codes_per_address_per_hour = 4;
    });
    let c = srv.client();
    let start = |e: &str| c.raw("POST", StartFreeDraft::PATH, Some("application/json"), format!("{{\"email\":\"{e}\"}}").into_bytes());
    let (a, b, other) = (sender_email(), sender_email(), sender_email());
    let first = start(&a).await.unwrap();
    assert_eq!(first.status, 201);
    let draft: handoff_protocol::free::CodeSent = serde_json::from_str(&first.body).unwrap();
    assert_eq!(start(&a).await.unwrap().status, 201);
    let r = start(&a).await.unwrap();
    assert_eq!((r.status, raw_code(&r)), (429, ErrorCode::RateLimited), "a third code for one email in the hour");
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(code(c.call::<ResendFreeCode>(&draft.draft, &()).await), Some(ErrorCode::RateLimited), "a resend counts too");
    // Another email from the same address, until the address's limit.
    assert_eq!(start(&b).await.unwrap().status, 201);
    assert_eq!(start(&b).await.unwrap().status, 201);
    let r = start(&other).await.unwrap();
    assert_eq!((r.status, raw_code(&r)), (429, ErrorCode::RateLimited), "a fifth code from one address");
    assert_eq!(settled_mail(&srv, 4).await, 4, "only the counted codes were mailed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_blob_uploads_are_limited_in_size_and_count() {
    let srv = TestServer::start(None);
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let id = || BlobId(uuid::Uuid::new_v4());
    let too_big = id();
    assert_eq!(code(sender.upload::<PutFreeBlob>(&too_big, vec![1; MAX_BLOB + 1]).await), Some(ErrorCode::PayloadTooLarge));
    assert_eq!(code(sender.upload::<PutFreeBlob>(&id(), Vec::new()).await), Some(ErrorCode::ValidationFailed), "empty");
    let first = id();
    let stored = sender.upload::<PutFreeBlob>(&first, vec![2; 1000]).await.unwrap();
    assert_eq!((stored.id, stored.size), (first, 1000));
    assert_eq!(code(sender.upload::<PutFreeBlob>(&first, vec![2; 10]).await), Some(ErrorCode::Conflict), "an id is used once");
    for _ in 1..handoff_domain::limits::MAX_ATTACHMENTS {
        sender.upload::<PutFreeBlob>(&id(), vec![3; 10]).await.unwrap();
    }
    let over = id();
    assert_eq!(code(sender.upload::<PutFreeBlob>(&over, vec![4; 10]).await), Some(ErrorCode::QuotaExceeded), "one past the count");
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    let meta = store.blob_meta(first).await.unwrap().unwrap();
    assert_eq!(meta.owner, UserId::from_bytes(*sender.draft.as_bytes()), "the draft owns its uploads");
    for refused in [too_big, over] {
        assert!(store.blob_meta(refused).await.unwrap().is_none(), "a refused upload keeps nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_manage_free_blocks() {
    let srv = TestServer::start(None);
    let member = moa_account().register(&srv.url()).await.unwrap();
    let block = NewBlock { kind: BlockKind::Email, value: "x@spam.example".into(), reason: String::new() };
    assert_eq!(code(member.call::<AdminListBlocks>(&(), &()).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(member.call::<AdminBlock>(&(), &block).await), Some(ErrorCode::Forbidden));
    let lift = LiftBlock { kind: BlockKind::Email, value: "x@spam.example".into() };
    assert_eq!(code(member.call::<AdminLiftBlock>(&(), &lift).await), Some(ErrorCode::Forbidden));
    assert_eq!(code(srv.client().call::<AdminBlock>(&(), &block).await), Some(ErrorCode::Unauthenticated));
    // A verified draft is no staff session either.
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    assert_eq!(code(sender.call::<AdminBlock>(&(), &block).await), Some(ErrorCode::Unauthenticated));
    assert!(staff(&srv).await.call::<AdminListBlocks>(&(), &()).await.unwrap().blocks.is_empty(), "nothing was blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_practices_admins_set_its_free_intake() {
    let srv = TestServer::start(None);
    let admin = moa_account().register(&srv.url()).await.unwrap();
    let p = referring_office().create(&admin).await.unwrap();
    assert!(p.accepts_free_referrals, "practices accept free referrals until they opt out");
    let email = unique_email("member", "clinic.example");
    admin.invite(p.id, &email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(&email).await;
    let mut member = srv.client();
    member.register(&email, "Member", PASSWORD, Some(&token)).await.unwrap();
    let off = FreeIntake { accepts: false };
    assert_eq!(code(member.call::<SetFreeIntake>(&p.id, &off).await), Some(ErrorCode::Forbidden));
    let stranger = moa_account().register(&srv.url()).await.unwrap();
    assert_eq!(code(stranger.call::<SetFreeIntake>(&p.id, &off).await), Some(ErrorCode::NotFound));
    assert!(admin.practice(p.id).await.unwrap().accepts_free_referrals, "the refusals changed nothing");
    assert_eq!(admin.call::<SetFreeIntake>(&p.id, &off).await.unwrap(), off);
    assert!(!member.practice(p.id).await.unwrap().accepts_free_referrals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_practice_is_absent_from_the_free_directory() {
    let srv = TestServer::start(None);
    let w = world(&srv, 2).await;
    let (out, stays) = (w.specialists[0].id, w.specialists[1].id);
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let listed = |d: handoff_protocol::v1::Directory| d.practices.iter().map(|p| p.id).collect::<Vec<_>>();
    let before = listed(sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap());
    assert!(before.contains(&out) && before.contains(&stays), "{before:?}");
    assert!(!before.contains(&w.referring.id), "a referring practice receives nothing");
    w.spec.call::<SetFreeIntake>(&out, &FreeIntake { accepts: false }).await.unwrap();
    let after = listed(sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap());
    assert!(!after.contains(&out) && after.contains(&stays), "{after:?}");
    // Account holders still see it: the opt-out is from free referrals only.
    assert!(w.moa.directory(None, None).await.unwrap().iter().any(|p| p.id == out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mistyped_and_unknown_fields_on_each_free_post() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let (sender, _) = started(&srv).await;
    let anon = srv.client();
    let verify = VerifyFreeCode::path(&sender.draft);
    let intake = SetFreeIntake::path(&w.specialists[0].id);
    let cases: Vec<(&Client, &str, String, Vec<&str>)> = vec![
        (&anon, "POST", StartFreeDraft::PATH.to_string(), vec![r#"{"email": 42}"#, r#"{"email": "a@b.example", "name": "x"}"#, "{}"]),
        (&anon, "POST", verify, vec![r#"{"code": 123456}"#, r#"{"code": "123456", "email": "x"}"#, "{}"]),
        (&w.spec, "PUT", intake, vec![r#"{"accepts": "no"}"#, r#"{"accepts": false, "why": 1}"#, "{}"]),
        (&w.staff, "POST", AdminBlock::PATH.to_string(), vec![r#"{"kind": "phone", "value": "1"}"#, r#"{"kind": "email", "value": 7}"#]),
        (
            &w.staff,
            "DELETE",
            AdminLiftBlock::PATH.to_string(),
            vec![r#"{"kind": "email"}"#, r#"{"kind": "email", "value": "a@b.example", "x": 1}"#],
        ),
    ];
    for (c, method, path, mistyped) in cases {
        let r = c.raw(method, &path, Some("application/json"), b"{not json".to_vec()).await.unwrap();
        assert_eq!((r.status, raw_code(&r)), (400, ErrorCode::MalformedJson), "{method} {path}");
        for body in mistyped {
            let r = c.raw(method, &path, Some("application/json"), body.as_bytes().to_vec()).await.unwrap();
            assert_eq!((r.status, raw_code(&r)), (422, ErrorCode::InvalidBody), "{method} {path} {body}");
        }
    }
    // A malformed draft id names nothing.
    let bogus = VerifyFreeCode::PATH.replace("{id}", "not-a-uuid");
    let r = anon.raw("POST", &bogus, Some("application/json"), br#"{"code":"123456"}"#.to_vec()).await.unwrap();
    assert_eq!(raw_code(&r), ErrorCode::NotFound);
    // Nothing changed: no block, the practice still takes free referrals, the draft is still unverified with all its tries.
    assert!(w.staff.call::<AdminListBlocks>(&(), &()).await.unwrap().blocks.is_empty());
    assert!(w.spec.practice(w.specialists[0].id).await.unwrap().accepts_free_referrals);
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    let d = store.draft(sender.draft).await.unwrap().unwrap();
    assert_eq!((d.tries, d.verified_at), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_or_token_is_stored_in_plaintext() {
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));
    let (mut sender, right) = started(&srv).await;
    let v = sender.verify(&right).await.unwrap();
    // The token appears in no stored byte (database, WAL, anything under the data directory).
    for (path, bytes) in all_bytes(srv.data_dir()) {
        assert!(!contains(&bytes, v.token.as_bytes()), "the draft token is in {}", path.display());
    }
    // The code is stored as a keyed hash: neither the digits nor their plain SHA-256.
    let db = rusqlite::Connection::open(srv.data_dir().join("handoff.db")).unwrap();
    let (stored_code, stored_token): (Vec<u8>, Vec<u8>) = db
        .query_row("SELECT code_hash, token_hash FROM free_drafts WHERE id = ?1", [sender.draft.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    use sha2::Digest as _;
    assert_eq!(stored_code.len(), 32);
    assert_ne!(stored_code, right.as_bytes());
    assert_ne!(stored_code, sha2::Sha256::digest(right.as_bytes()).to_vec(), "a plain hash of 6 digits is a lookup away");
    assert_eq!(stored_token, sha2::Sha256::digest(v.token.as_bytes()).to_vec(), "the token is stored as its hash only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_free_request_is_refused_and_changes_nothing() {
    let srv = TestServer::start(None);
    let (mut sender, right) = started(&srv).await;
    let evil = |path: String, body: String| {
        reqwest::Client::new()
            .post(format!("{}{path}", srv.url()))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = evil(StartFreeDraft::PATH.into(), format!("{{\"email\":\"{}\"}}", sender_email())).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = evil(VerifyFreeCode::path(&sender.draft), format!("{{\"code\":\"{}\"}}", wrong(&right))).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(settled_mail(&srv, 1).await, 1, "the refused start mailed nothing");
    // The refused verify took no try: five are still there, and the right code works.
    for _ in 0..4 {
        sender.verify(&wrong(&right)).await.unwrap_err();
    }
    sender.verify(&right).await.unwrap();
    let token = sender.token.clone().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}{}", srv.url(), PutFreeBlob::path(&BlobId::from_bytes([3; 16]))))
        .header("origin", "https://evil.example")
        .header("cookie", format!("handoff_draft={token}"))
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a cross-site upload with the draft cookie");
}

/// Free sender details, as the public page seals them into the content.
fn free_content(patient: &str, email: &str) -> handoff_crypto::referral::ReferralContent {
    let mut c = handoff_testkit::content(patient);
    c.free_sender = Some(handoff_crypto::referral::FreeSender {
        role: handoff_crypto::referral::SenderRole::Moa,
        name: "Pat Quillfeather".into(),
        email: email.into(),
        provider_name: "Dr. Orla Brightwater".into(),
        provider_msp: "90417".into(),
        clinic_name: "Seaside Walk-in".into(),
        clinic_phone: "604-555-0142".into(),
        clinic_address: "77 Harbourfront Way, Gibsons BC".into(),
    });
    c
}

fn idem() -> handoff_protocol::ws::IdemKey {
    handoff_protocol::ws::IdemKey(uuid::Uuid::new_v4())
}

/// A free referral to practices the sender names from the account holders'
/// directory (which lists opted-out practices too), sealed as the page seals one.
fn sealed_to(
    targets: &[handoff_protocol::v1::DirectoryEntry],
    destination: handoff_protocol::ws::Destination,
    from: Option<(handoff_protocol::PracticeId, &handoff_crypto::PracticeKey)>,
) -> handoff_protocol::ws::NewReferral {
    let id = handoff_protocol::ws::ReferralId(uuid::Uuid::new_v4());
    let r = handoff_crypto::referral::ReferralKey::generate().unwrap();
    let content = free_content("Wren Ashdown", "x@free-clinic.example");
    handoff_client_core::referral::seal_referral(
        id,
        &r,
        from,
        targets,
        destination,
        handoff_testkit::routing("arrhythmia"),
        &content,
        vec![],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_referral_is_sent_once_and_a_replay_answers_the_same() {
    use handoff_client::referrals::{File, To};
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = &w.specialists[0];
    let email = sender_email();
    let sender = FreeSender::verified(&srv.url(), &email).await.unwrap();
    let file = File { name: "holter-summary.pdf".into(), media_type: "application/pdf".into(), bytes: vec![7; 100 * 1024] };
    let referral = sender
        .prepare(To::Practice(to.id), handoff_testkit::routing("arrhythmia"), &free_content("Wren Ashdown", &email), &[file])
        .await
        .unwrap();
    let key = idem();
    let sent = sender.send(key, referral.clone()).await.unwrap();
    assert_eq!((sent.referral, sent.to_practice, sent.to_practice_name.as_str()), (referral.id, to.id, to.name.as_str()));
    assert!(sent.number.starts_with("HR-"), "{}", sent.number);

    // The specialist receives it as a free referral and reads the sender's details.
    let r = w.spec.referral(sent.referral).await.unwrap();
    assert_eq!((r.from.clone(), r.number.clone(), r.created_at), (handoff_protocol::ws::SentFrom::Free, sent.number.clone(), sent.sent_at));
    let opened = w.spec.open_referral(&r).await.unwrap();
    assert_eq!(opened.patient.name, "Wren Ashdown");
    assert_eq!(opened.free_sender.as_ref().map(|f| f.provider_msp.as_str()), Some("90417"));
    let (_, bytes) = w.spec.download(&r, &r.attachments[0]).await.unwrap();
    assert_eq!(bytes.len(), 100 * 1024);

    // A replay with the same key answers the same and sends nothing more.
    assert_eq!(sender.send(key, referral.clone()).await.unwrap(), sent);
    // Any other send from the draft is refused.
    let late = File { name: "late.pdf".into(), media_type: "application/pdf".into(), bytes: vec![8; 10] };
    let other = sender.prepare(To::Practice(to.id), handoff_testkit::routing("arrhythmia"), &free_content("Other", &email), &[late]).await;
    assert_eq!(code(other), Some(ErrorCode::DraftUsed), "no upload after the send");
    let again =
        sealed_to(&w.moa.directory(None, None).await.unwrap(), handoff_protocol::ws::Destination::Practice { practice: to.id }, None);
    assert_eq!(code(sender.send(idem(), again).await), Some(ErrorCode::DraftUsed));
    assert_eq!(w.spec.referrals(to.id).await.unwrap().len(), 1, "one referral");

    // The server keeps the sender's email (for the status emails) and nothing readable about the patient or the sender.
    for (path, bytes) in all_bytes(srv.data_dir()) {
        for secret in ["Wren Ashdown", "Pat Quillfeather", "90417", "Seaside Walk-in", "604-555-0142", "Harbourfront"] {
            assert!(!contains(&bytes, secret.as_bytes()), "{secret} is in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_free_sends_with_different_keys_make_one_referral() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let dir = w.moa.directory(None, None).await.unwrap();
    let referrals: Vec<_> = (0..6).map(|_| sealed_to(&dir, handoff_protocol::ws::Destination::Practice { practice: to }, None)).collect();
    let sends = referrals.into_iter().map(|r| sender.send(idem(), r));
    let outcomes = futures_util::future::join_all(sends).await;
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let used = outcomes.iter().filter(|o| o.as_ref().err().and_then(|e| e.code()) == Some(ErrorCode::DraftUsed)).count();
    assert_eq!((ok, used), (1, 5));
    assert_eq!(w.spec.referrals(to).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_send_needs_a_verified_draft_and_no_sending_practice() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let dir = w.moa.directory(None, None).await.unwrap();
    let (mut unverified, right) = started(&srv).await;
    let r = sealed_to(&dir, handoff_protocol::ws::Destination::Practice { practice: to }, None);
    assert_eq!(code(unverified.send(idem(), r.clone()).await), Some(ErrorCode::DraftUnverified));
    unverified.token = Some("forged".into());
    assert_eq!(code(unverified.send(idem(), r.clone()).await), Some(ErrorCode::DraftUnverified));
    unverified.token = None;
    unverified.verify(&right).await.unwrap();
    // A referral from a practice is refused on the free route, and the draft can still send.
    let key = w.moa.practice_key(w.referring.id).await.unwrap();
    let from_practice = sealed_to(&dir, handoff_protocol::ws::Destination::Practice { practice: to }, Some((w.referring.id, &key)));
    assert_eq!(code(unverified.send(idem(), from_practice).await), Some(ErrorCode::ValidationFailed));
    unverified.send(idem(), r).await.expect("the refused send took nothing");
    assert!(w.spec.referrals(to).await.unwrap().iter().all(|r| r.from == handoff_protocol::ws::SentFrom::Free));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_practice_refuses_a_named_free_referral_and_choose_for_me_skips_it() {
    let srv = TestServer::start(None);
    let w = world(&srv, 2).await;
    let (out, stays) = (w.specialists[0].id, w.specialists[1].id);
    w.spec.call::<SetFreeIntake>(&out, &FreeIntake { accepts: false }).await.unwrap();
    let dir = w.moa.directory(None, None).await.unwrap();
    assert_eq!(dir.len(), 2, "account holders' directory lists both");
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let named = sealed_to(&dir, handoff_protocol::ws::Destination::Practice { practice: out }, None);
    assert_eq!(code(sender.send(idem(), named).await), Some(ErrorCode::NotEligible));
    // The refusal gave the draft's send back: choose-for-me, wrapped to both, goes to the one that takes free referrals.
    let sent = sender.send(idem(), sealed_to(&dir, handoff_protocol::ws::Destination::ChooseForMe, None)).await.unwrap();
    assert_eq!(sent.to_practice, stays);
    for _ in 0..3 {
        let s = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
        let sent = s.send(idem(), sealed_to(&dir, handoff_protocol::ws::Destination::ChooseForMe, None)).await.unwrap();
        assert_eq!(sent.to_practice, stays, "choose-for-me never picks the opted-out practice");
    }
    assert!(w.spec.referrals(out).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_sends_are_rate_limited_per_email_and_per_address() {
    let srv = TestServer::start_with(None, |c| {
        c.free_referrals_per_email_per_day = 1;
        c.free_referrals_per_address_per_day = 2;
    });
    let w = world(&srv, 1).await;
    let dir = w.moa.directory(None, None).await.unwrap();
    let to = handoff_protocol::ws::Destination::Practice { practice: w.specialists[0].id };
    let (a, b, c) = (sender_email(), sender_email(), sender_email());
    FreeSender::verified(&srv.url(), &a).await.unwrap().send(idem(), sealed_to(&dir, to.clone(), None)).await.unwrap();
    let a2 = FreeSender::verified(&srv.url(), &a).await.unwrap();
    assert_eq!(
        code(a2.send(idem(), sealed_to(&dir, to.clone(), None)).await),
        Some(ErrorCode::RateLimited),
        "a second referral by one email"
    );
    FreeSender::verified(&srv.url(), &b).await.unwrap().send(idem(), sealed_to(&dir, to.clone(), None)).await.unwrap();
    let c1 = FreeSender::verified(&srv.url(), &c).await.unwrap();
    assert_eq!(code(c1.send(idem(), sealed_to(&dir, to, None)).await), Some(ErrorCode::RateLimited), "a third from one address");
    assert_eq!(w.spec.referrals(w.specialists[0].id).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_blocked_after_verifying_cannot_send() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let email = sender_email();
    let sender = FreeSender::verified(&srv.url(), &email).await.unwrap();
    w.staff.call::<AdminBlock>(&(), &NewBlock { kind: BlockKind::Email, value: email, reason: "abuse".into() }).await.unwrap();
    let dir = w.moa.directory(None, None).await.unwrap();
    let r = sealed_to(&dir, handoff_protocol::ws::Destination::Practice { practice: w.specialists[0].id }, None);
    assert_eq!(code(sender.send(idem(), r).await), Some(ErrorCode::SenderBlocked));
    assert!(w.spec.referrals(w.specialists[0].id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mistyped_and_unknown_fields_on_the_free_send() {
    let srv = TestServer::start(None);
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let send = |body: &str| sender.raw("POST", SendFreeReferral::PATH, Some("application/json"), body.as_bytes().to_vec());
    let r = send("{not json").await.unwrap();
    assert_eq!((r.status, raw_code(&r)), (400, ErrorCode::MalformedJson));
    let idem = uuid::Uuid::new_v4();
    for body in [
        r#"{"idem": 5, "referral": {}}"#.to_string(),
        format!(r#"{{"idem": "{idem}"}}"#),
        format!(r#"{{"idem": "{idem}", "referral": {{}}, "x": 1}}"#),
    ] {
        let r = send(&body).await.unwrap();
        assert_eq!((r.status, raw_code(&r)), (422, ErrorCode::InvalidBody), "{body}");
    }
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    assert!(store.draft(sender.draft).await.unwrap().unwrap().sent.is_none(), "nothing was sent");
}

/// The receiving practice works a free referral like any other (it arrives
/// live on its inbox, marked free), but it has no thread and takes no later
/// attachment; declining emails the free sender exactly once, through SMTP,
/// with the number and the reason's words and nothing about the patient, the
/// sender or the note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_free_referral_emails_its_sender_once_with_the_number_and_reason_and_no_patient_data() {
    use handoff_client::referrals::To;
    use handoff_protocol::ws::{Command, Event, RejectReason, SentFrom, StreamId};
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));
    let w = world(&srv, 2).await;
    let email = sender_email();
    let sender = FreeSender::verified(&srv.url(), &email).await.unwrap();
    let mut live = w.spec.live().await.unwrap();
    for p in &w.specialists {
        live.subscribe(StreamId::Practice(p.id), 0).await.unwrap();
    }
    let referral =
        sender.prepare(To::ChooseForMe, handoff_testkit::routing("arrhythmia"), &free_content("Wren Ashdown", &email), &[]).await.unwrap();
    let sent = sender.send(idem(), referral).await.unwrap();
    let pushed = live
        .wait_for(StreamId::Practice(sent.to_practice), Duration::from_secs(10), |e| matches!(e, Event::ReferralSent { .. }))
        .await
        .expect("the referral arrives live on the receiving inbox");
    let Event::ReferralSent { referral: r } = pushed.event else { unreachable!() };
    assert_eq!((r.from.clone(), r.number.clone()), (SentFrom::Free, sent.number.clone()));
    assert!(r.is_free() && r.from_practice().is_none() && r.sent_by().is_none());
    let opened = w.spec.open_referral(&r).await.unwrap();
    assert_eq!(opened.free_sender.as_ref().map(|f| f.clinic_name.as_str()), Some("Seaside Walk-in"), "the receiver reads the sender");

    // No thread and no later attachment: nobody on the sending side could read them.
    let refused = w.spec.post_message(&live, &r, "Can you send the Holter?").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    let file = handoff_client::referrals::File { name: "x.pdf".into(), media_type: "application/pdf".into(), bytes: vec![1; 10] };
    let refused = w.spec.add_attachment(&live, &r, &file).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    // Re-filing and urgency are the receiver's to change, and are not emailed.
    live.command(Command::ChangeUrgency { referral: r.id, urgency: handoff_protocol::ws::Urgency::Urgent }).await.unwrap();

    w.spec.reject(&live, &r, RejectReason::WrongCategory, "Please send to the EP clinic, Dr. Rhythm").await.unwrap();
    let mail = smtp.wait_for(&email, &sent.number).await;
    assert!(mail.contains("declined") || mail.contains("rejected"), "{mail}");
    assert!(mail.contains("wrong category"), "the reason's words: {mail}");
    for secret in ["Wren Ashdown", "9876 543 210", "1961-04-12", "Dr. Rhythm", "EP clinic", "Pat Quillfeather", "Seaside Walk-in", "90417"]
    {
        assert!(!mail.contains(secret), "{secret} is in the status email: {mail}");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Maildir file names do not sort by arrival: pick the sender's mail by content.
    let all: Vec<String> = smtp.messages().iter().map(|m| handoff_testkit::mail::unfold(m)).collect();
    let to_sender: Vec<&String> = all.iter().filter(|m| m.contains(&format!("To: {email}"))).collect();
    let about_it = to_sender.iter().filter(|m| m.contains(&sent.number)).count();
    assert_eq!(about_it, 1, "exactly one status email (no urgency email): {to_sender:?}");
    assert_eq!(to_sender.len(), 2, "the code and the status email, nothing else: {to_sender:?}");
}

/// Nobody but the receiving practice's members gets a free referral back: not
/// the free sender (a verified draft reaches no referral route), not another
/// practice's members, not platform staff, not over the WebSocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_returns_a_free_referral_to_anyone_but_the_receiving_practice() {
    use handoff_client::referrals::{File, To};
    use handoff_protocol::api::{GetBlob, GetReferral, GetReferralKeys};
    use handoff_protocol::ws::StreamId;
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let email = sender_email();
    let sender = FreeSender::verified(&srv.url(), &email).await.unwrap();
    let file = File { name: "ecg.pdf".into(), media_type: "application/pdf".into(), bytes: vec![3; 2048] };
    let referral = sender
        .prepare(To::Practice(to), handoff_testkit::routing("arrhythmia"), &free_content("Wren Ashdown", &email), &[file])
        .await
        .unwrap();
    let sent = sender.send(idem(), referral).await.unwrap();
    let r = w.spec.referral(sent.referral).await.unwrap();
    let blob = r.attachments[0].blob;

    // The free sender's token is no session: the referral and blob routes refuse it.
    for path in [GetReferral::path(&r.id), GetReferralKeys::path(&r.id), GetBlob::path(&blob)] {
        let got = sender.raw("GET", &path, None, vec![]).await.unwrap();
        assert_eq!((got.status, raw_code(&got)), (401, ErrorCode::Unauthenticated), "{path}");
    }
    // Members of another practice and staff see nothing, worded as for an absent id.
    for outsider in [&w.moa, &w.staff] {
        assert_eq!(code(outsider.referral(r.id).await), Some(ErrorCode::NotFound));
        assert_eq!(code(outsider.call::<GetReferralKeys>(&r.id, &()).await), Some(ErrorCode::NotFound));
        let got = outsider.raw("GET", &GetBlob::path(&blob), None, vec![]).await.unwrap();
        assert_eq!((got.status, raw_code(&got)), (404, ErrorCode::NotFound));
        let live = outsider.live().await.unwrap();
        let e = live.subscribe(StreamId::Referral(r.id), 0).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    }
    // The receiving practice's members do.
    assert_eq!(w.spec.open_referral(&r).await.unwrap().patient.name, "Wren Ashdown");
    assert_eq!(w.spec.download(&r, &r.attachments[0]).await.unwrap().1, vec![3; 2048]);
}

/// Clinnect's balancing for free senders: 100 concurrent choose-for-me free
/// referrals, each from its own verified email, spread within 1 across the
/// practices that take free referrals, and one that opted out receives none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_free_choose_for_me_referrals_balance_within_one_and_skip_an_opted_out_practice() {
    const N: usize = 100;
    let srv = TestServer::start_with(None, |c| {
        c.free_codes_per_address_per_hour = 1000;
        c.free_referrals_per_address_per_day = 1000;
    });
    let w = world(&srv, 4).await;
    let out = w.specialists[3].id;
    w.spec.call::<SetFreeIntake>(&out, &FreeIntake { accepts: false }).await.unwrap();
    let dir = w.moa.directory(None, None).await.unwrap();
    assert_eq!(dir.len(), 4, "wrapped to every practice, the opted-out one too");
    let (url, emails): (String, Vec<String>) = (srv.url(), (0..N).map(|_| sender_email()).collect());
    let senders = futures_util::future::join_all(emails.iter().map(|e| FreeSender::verified(&url, e))).await;
    let sends = senders.iter().map(|s| {
        let s = s.as_ref().expect("verified");
        s.send(idem(), sealed_to(&dir, handoff_protocol::ws::Destination::ChooseForMe, None))
    });
    let outcomes = futures_util::future::join_all(sends).await;
    let sent: Vec<_> = outcomes.into_iter().map(|o| o.expect("sent")).collect();
    assert_eq!(sent.len(), N);
    let mut counts = Vec::new();
    for p in &w.specialists[..3] {
        counts.push(sent.iter().filter(|s| s.to_practice == p.id).count());
    }
    assert_eq!(counts.iter().sum::<usize>(), N, "{counts:?}");
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 1, "counts within 1: {counts:?}");
    assert!(sent.iter().all(|s| s.to_practice != out), "the opted-out practice receives none");
    assert!(w.spec.referrals(out).await.unwrap().is_empty());
}

/// A free sender checks every practice key it wraps to against its signer's
/// account key; the signer route answers only for signers of listed keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_sender_reaches_only_the_signers_of_listed_practice_keys() {
    use handoff_protocol::api::GetFreeSignerKeys;
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let entry = sender.call::<GetFreeDirectory>(&(), &all_practices()).await.unwrap().practices.remove(0);
    let signer = sender.call::<GetFreeSignerKeys>(&entry.public_key.signer, &()).await.unwrap();
    handoff_client_core::account::verify_directory_entry(&entry, signer.sign_pub.as_slice()).expect("the key's signature verifies");
    // The referring MOA signed no listed key: a draft does not browse the user directory.
    let moa = w.moa.me().await.unwrap().id;
    assert_eq!(code(sender.call::<GetFreeSignerKeys>(&moa, &()).await), Some(ErrorCode::NotFound));
    assert_eq!(code(sender.call::<GetFreeSignerKeys>(&UserId::from_bytes([9; 16]), &()).await), Some(ErrorCode::NotFound));
    // Without a verified draft, nothing.
    let (unverified, _) = started(&srv).await;
    assert_eq!(code(unverified.call::<GetFreeSignerKeys>(&entry.public_key.signer, &()).await), Some(ErrorCode::DraftUnverified));
}

/// A free send that no practice can take is refused with its code and loses
/// nothing: an unknown category (`validation_failed`), a category the named
/// practice does not receive, a paused or an unverified practice
/// (`not_eligible`), content over the limit (`payload_too_large`). After
/// each refusal the same draft still sends its one referral.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_send_no_practice_can_take_is_refused_and_the_draft_still_sends() {
    use handoff_protocol::v1::PracticeAction;
    use handoff_protocol::ws::Destination;
    let srv = TestServer::start(None);
    let w = world(&srv, 2).await;
    let (to, paused) = (w.specialists[0].id, w.specialists[1].id);
    let dir = w.moa.directory(None, None).await.unwrap();
    let sender = FreeSender::verified(&srv.url(), &sender_email()).await.unwrap();
    let named = |practice| Destination::Practice { practice };
    let with_category = |cat: &str| {
        let mut r = sealed_to(&dir, named(to), None);
        r.routing.category = cat.into();
        r
    };
    assert_eq!(code(sender.send(idem(), with_category("no-such-category")).await), Some(ErrorCode::ValidationFailed));
    assert_eq!(
        code(sender.send(idem(), with_category("valvular-heart-disease")).await),
        Some(ErrorCode::NotEligible),
        "not received there"
    );
    w.staff.admin_practice_action(paused, PracticeAction::Pause).await.unwrap();
    assert_eq!(code(sender.send(idem(), sealed_to(&dir, named(paused), None)).await), Some(ErrorCode::NotEligible), "paused");
    w.staff.admin_practice_action(to, PracticeAction::Unverify).await.unwrap();
    assert_eq!(code(sender.send(idem(), sealed_to(&dir, named(to), None)).await), Some(ErrorCode::NotEligible), "unverified");
    assert_eq!(
        code(sender.send(idem(), sealed_to(&dir, Destination::ChooseForMe, None)).await),
        Some(ErrorCode::NoEligiblePractice),
        "choose-for-me with every candidate paused or unverified"
    );
    let mut big = sealed_to(&dir, named(paused), None);
    big.content = handoff_protocol::B64(vec![0; handoff_protocol::ws::MAX_CONTENT + 1]);
    let refused = sender.send(idem(), big).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::PayloadTooLarge), "{refused}");
    assert!(w.spec.referrals(to).await.unwrap().is_empty() && w.spec.referrals(paused).await.unwrap().is_empty(), "nothing was sent");
    // The practice is verified again: the same draft sends its one referral.
    w.staff.admin_practice_action(to, PracticeAction::Verify).await.unwrap();
    let sent = sender.send(idem(), sealed_to(&dir, named(to), None)).await.unwrap();
    assert_eq!(sent.to_practice, to);
}
