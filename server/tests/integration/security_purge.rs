//! Nothing outlives its use: the periodic sweep (`server/src/sweep.rs`)
//! deletes expired sessions and invites, old idempotency and sent-mail
//! records, and old mail-folder files that hold invite links.

use std::time::{Duration, Instant};

use handoff_protocol::v1::{PracticeKind, Role};
use handoff_protocol::ws::IdemKey;
use handoff_server::sweep::{Swept, sweep_once};
use handoff_store::conformance::{grant, practice, user};
use handoff_store::sqlite::SqliteStore;
use handoff_store::{
    Commit, IdemRecord, InviteRecord, MailStore as _, NewMail, PendingRegistration, PracticeStore as _, ReferralStore as _, SessionRecord,
    UserStore as _,
};
use handoff_testkit::{moa_account, referring_office};
use sha2::Digest as _;

use crate::harness::TestServer;

fn sha256(b: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(b).to_vec()
}

fn eml_files(srv: &TestServer) -> usize {
    std::fs::read_dir(srv.data_dir().join("mail"))
        .map(|rd| rd.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count())
        .unwrap_or(0)
}

/// A stolen copy of the data directory after the sweep holds no session, no
/// invite and no mail file with an invite link in it: the running server's
/// own timer deleted them once they expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_invites_and_invite_mail_files_do_not_stay_on_disk() {
    let srv = TestServer::start_with(None, |c| {
        c.session_ttl_secs = 4;
        c.invite_ttl_secs = 4;
        c.sweep_every_secs = 1;
        c.mail_folder_retention_secs = 4;
    });
    let admin = moa_account().register(&srv.url()).await.unwrap();
    let session = sha256(admin.token().unwrap().as_bytes());
    let p = referring_office().create(&admin).await.unwrap();
    admin.invite(p.id, "late@clinic.example", Role::Member).await.unwrap();
    let token = srv.folder_invite_token("late@clinic.example").await;
    let invite = sha256(token.as_bytes());

    // A second connection to the server's own store, as a thief with the disk would read it.
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    assert!(store.session(&session).await.unwrap().is_some(), "the session is stored while it lives");
    assert!(store.invite(&invite).await.unwrap().is_some(), "the invite is stored while it lives");
    assert!(eml_files(&srv) >= 1);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, i, f) = (store.session(&session).await.unwrap(), store.invite(&invite).await.unwrap(), eml_files(&srv));
        if s.is_none() && i.is_none() && f == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not swept: session {:?}, invite {:?}, {f} mail files", s.is_some(), i.is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One pass deletes exactly what is past its retention, and keeps the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweep_deletes_exactly_what_is_past_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let config = handoff_server::Config {
        data: dir.path().to_path_buf(),
        smtp_url: Some("smtp://127.0.0.1:1".into()),
        idempotency_retention_secs: 100,
        sent_mail_retention_secs: 1000,
        ..handoff_server::Config::default()
    };
    let now: i64 = 10_000_000;
    let a = user(1, "a@example.org");
    store.create_user(a.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Referring);
    store.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    let session = |n: u8, expires_at, last_seen_at| SessionRecord {
        token_hash: vec![n; 32],
        user_id: a.id,
        created_at: 0,
        expires_at,
        handle: vec![n; 16],
        last_seen_at,
        user_agent: String::new(),
        client_addr: String::new(),
    };
    store.create_session(session(1, now - 1, now)).await.unwrap();
    store.create_session(session(2, now + 1, now)).await.unwrap();
    // Idle past `session_idle_secs` and the minute activity may wait in memory, and just short of that.
    let idle = (config.session_idle_secs as i64 + 60) * 1000;
    store.create_session(session(12, now + 1, now - idle - 1)).await.unwrap();
    store.create_session(session(13, now + 1, now - idle + 1)).await.unwrap();
    let invite = |n: u8, expires_at| InviteRecord {
        token_hash: vec![n; 32],
        practice_id: p.id,
        email: format!("{n}@example.org"),
        role: Role::Member,
        invited_by: a.id,
        created_at: 0,
        expires_at,
        starts_at: None,
        ends_at: None,
    };
    store.create_invite(invite(3, now - 1)).await.unwrap();
    store.create_invite(invite(4, now + 1)).await.unwrap();
    let pending = |n: u8, expires_at| {
        let mut u = user(n, &format!("pending{n}@example.org"));
        u.email_confirmed_at = None;
        PendingRegistration { token_hash: vec![n; 32], user: u, expires_at }
    };
    store.create_pending_registration(pending(7, now - 1)).await.unwrap();
    store.create_pending_registration(pending(8, now + 1)).await.unwrap();
    let idem = |n: u128| IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(n)), command: vec![1], result: "{}".into() };
    store.commit(Commit { idem: Some(idem(5)), now: now - 100_001, ..Default::default() }).await.unwrap();
    store.commit(Commit { idem: Some(idem(6)), now: now - 99_000, ..Default::default() }).await.unwrap();
    let old =
        store.enqueue_mail(NewMail { recipient: "x@example.org".into(), subject: "s".into(), body: "b".into(), now: 0 }).await.unwrap();
    store.mail_sent(old, now - 1_000_001).await.unwrap();
    let recent =
        store.enqueue_mail(NewMail { recipient: "y@example.org".into(), subject: "s".into(), body: "b".into(), now: 0 }).await.unwrap();
    store.mail_sent(recent, now - 999_000).await.unwrap();
    store.enqueue_mail(NewMail { recipient: "z@example.org".into(), subject: "s".into(), body: "b".into(), now: 0 }).await.unwrap();
    // An upload nobody attached a day and more ago, and one from just now.
    let blob = |n: u128| handoff_protocol::ws::BlobId(uuid::Uuid::from_u128(n));
    for (n, at) in [(10, now - 86_400_001), (11, now - 1_000)] {
        store.begin_blob(blob(n), a.id, at).await.unwrap();
        store.append_blob_chunk(blob(n), a.id, vec![n as u8; 100], u64::MAX).await.unwrap();
        store.finish_blob(blob(n), a.id).await.unwrap();
    }

    let swept = sweep_once(&store, &config, now).await;
    assert_eq!(
        swept,
        Swept {
            sessions: 2,
            registrations: 1,
            invites: 1,
            idempotency: 1,
            sent_mail: 1,
            blobs: 1,
            mail_files: 0,
            drafts: 0,
            audit: 0,
            guests: 0
        }
    );
    assert!(store.session(&[1; 32]).await.unwrap().is_none());
    assert!(store.session(&[2; 32]).await.unwrap().is_some());
    assert!(store.session(&[12; 32]).await.unwrap().is_none(), "idle past the limit");
    assert!(store.session(&[13; 32]).await.unwrap().is_some(), "its activity may still be in memory");
    assert!(store.invite(&[3; 32]).await.unwrap().is_none());
    assert!(store.invite(&[4; 32]).await.unwrap().is_some());
    assert!(store.idem(a.id, idem(5).key).await.unwrap().is_none());
    assert!(store.idem(a.id, idem(6).key).await.unwrap().is_some());
    assert!(store.confirm_registration(&[7; 32], handoff_protocol::UserId::from_bytes([7; 16]), now).await.is_err(), "purged");
    assert_eq!(store.due_mail(i64::MAX, 10).await.unwrap().len(), 1, "unsent mail stays queued");
    assert!(store.blob_meta(blob(10)).await.unwrap().is_none(), "the old unattached blob is gone");
    assert!(store.blob_meta(blob(11)).await.unwrap().is_some(), "a fresh upload stays");
    // A second pass at the same time finds nothing more.
    assert_eq!(sweep_once(&store, &config, now).await, Swept::default());
    assert!(store.confirm_registration(&[8; 32], handoff_protocol::UserId::from_bytes([8; 16]), now).await.is_ok(), "kept");
}
