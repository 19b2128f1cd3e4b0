//! The tamper-evident audit log (issue 14): what the server records as it
//! serves (sign-ins, referrals served and opened, membership, key-group
//! commits, staff actions), the chains and their verification against edits
//! of the database file, the practice's log and its CSV export, the refusals,
//! retention, and that no entry carries content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use handoff_client::ClientError;
use handoff_client::referrals::{File, To};
use handoff_protocol::api::{AdminGetAudit, Endpoint as _, GetPracticeAudit, GetPracticeAuditCsv};
use handoff_protocol::audit::{AuditAction, AuditPage, AuditQuery};
use handoff_protocol::v1::Role;
use handoff_protocol::ws::{AckBody, Command, ReferralId, StreamId};
use handoff_protocol::{ErrorCode, PracticeId};
use handoff_store::sqlite::{self, SqliteStore};
use handoff_store::{AuditFilter, AuditStore as _, verify_audit};
use handoff_testkit::{World, content, routing};

use crate::harness::{PASSWORD, TestServer, world};

const PATIENT: &str = "Philippa Ravensworth-Nakagawa";
const MESSAGE: &str = "Please bring the Holter strips from March";
const FILE_NAME: &str = "holter-ravensworth.txt";

/// A scenario with something of every kind in the log: staff verified the
/// specialist practice, the MOA sent a referral with an attachment, the
/// specialist signed in again, read it, downloaded the attachment, opened it
/// live twice (one first open) and answered in the thread.
struct Scenario {
    srv: TestServer,
    w: World,
    referral: ReferralId,
}

async fn scenario() -> Scenario {
    let srv = TestServer::start(None);
    let mut w = world(&srv, 1).await;
    let moa = w.moa.live().await.unwrap();
    let file = File { name: FILE_NAME.into(), media_type: "text/plain".into(), bytes: b"runs of SVT overnight".to_vec() };
    let AckBody::ReferralSent { referral, .. } = w
        .moa
        .send_referral(&moa, w.referring.id, To::Practice(w.specialists[0].id), routing("arrhythmia"), &content(PATIENT), &[file])
        .await
        .unwrap()
    else {
        panic!("not a referral ack")
    };
    let (email, password) = (w.spec_account.email.clone(), w.spec_account.password.clone());
    w.spec.logout().await.unwrap();
    w.spec.login(&email, &password).await.unwrap();
    let r = w.spec.referral(referral).await.unwrap();
    w.spec.download(&r, &r.attachments[0]).await.unwrap();
    for _ in 0..2 {
        let live = w.spec.live().await.unwrap();
        live.subscribe(StreamId::Referral(referral), 0).await.unwrap();
    }
    let spec_live = w.spec.live().await.unwrap();
    // The web client's first open: mark_opened (the same first open: not recorded twice).
    spec_live.command(Command::MarkOpened { referral }).await.unwrap();
    w.spec.post_message(&spec_live, &r, MESSAGE).await.unwrap();
    Scenario { srv, w, referral }
}

/// A separate connection to the running server's store file.
fn store_of(srv: &TestServer) -> SqliteStore {
    SqliteStore::open(srv.data_dir()).unwrap()
}

/// A consistent copy of the server's store in a directory of its own, to damage.
fn copy_of(srv: &TestServer) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    sqlite::backup(srv.data_dir(), &dir.path().join(sqlite::DB_FILE)).unwrap();
    let db = dir.path().join(sqlite::DB_FILE);
    (dir, db)
}

/// Runs SQL on a store file directly, as someone with the file would (the
/// append-only trigger is dropped first: it guards against the server's own
/// mistakes, not against whoever can write the file).
fn tamper(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("DROP TRIGGER IF EXISTS audit_append_only;").unwrap();
    conn.execute_batch(sql).unwrap();
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn entries(store: &SqliteStore, practice: Option<PracticeId>) -> Vec<handoff_store::AuditRecord> {
    store.audit_entries(AuditFilter { practice, limit: 1_000, ..Default::default() }).await.unwrap()
}

fn count(rs: &[handoff_store::AuditRecord], action: AuditAction) -> usize {
    rs.iter().filter(|r| r.entry.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_server_serves_and_changes_is_recorded_in_the_right_chain() {
    let s = scenario().await;
    let store = store_of(&s.srv);
    let spec = s.w.spec.user_id().unwrap();
    let specialist = entries(&store, Some(s.w.specialists[0].id)).await;
    let mine = |a: AuditAction| specialist.iter().filter(|r| r.entry.action == a && r.entry.actor == Some(spec)).count();
    assert_eq!(mine(AuditAction::SignOut), 1);
    assert!(mine(AuditAction::SignIn) >= 1, "the specialist's sign-in is in their practice's chain");
    assert_eq!(mine(AuditAction::ReferralServed), 1, "GET /referrals/{{id}}");
    assert_eq!(mine(AuditAction::BlobServed), 1, "the attachment download");
    assert_eq!(mine(AuditAction::ReferralOpened), 1, "two subscriptions and a mark_opened: one first open");
    let opened = specialist.iter().find(|r| r.entry.action == AuditAction::ReferralOpened).unwrap();
    assert_eq!(opened.entry.target.as_deref(), Some(s.referral.to_string().as_str()));
    assert_eq!(opened.entry.address.as_deref(), Some("127.0.0.1"), "the client address the rate limits use");
    assert!(count(&specialist, AuditAction::PracticeCreated) == 1);
    // The sender read nothing through GET /referrals: nothing served in its chain.
    let referring = entries(&store, Some(s.w.referring.id)).await;
    assert_eq!(count(&referring, AuditAction::ReferralServed), 0);
    // Staff verified the specialist practice: the platform chain.
    let platform = entries(&store, None).await;
    let verified = platform.iter().find(|r| r.entry.action == AuditAction::PracticeVerified).expect("the staff action");
    assert_eq!(verified.entry.actor, Some(s.w.staff.user_id().unwrap()));
    assert_eq!(verified.entry.target.as_deref(), Some(s.w.specialists[0].id.to_string().as_str()));
    // A wrong password for an existing account is recorded against it; one for no account is not recorded at all.
    let mut stranger = s.srv.client();
    assert!(stranger.login(&s.w.spec_account.email, "not the password at all").await.is_err());
    assert!(stranger.login("nobody-at-all@example.org", "not the password at all").await.is_err());
    let platform = entries(&store, None).await;
    let failed: Vec<_> = platform.iter().filter(|r| r.entry.action == AuditAction::SignInFailed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].entry.actor, Some(spec));
    assert_eq!(verify_audit(&store).await.unwrap().broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_verifies_and_a_modified_row_breaks_it() {
    let s = scenario().await;
    let report = verify_audit(&store_of(&s.srv)).await.unwrap();
    assert_eq!(report.broken, None);
    assert!(report.chains.len() >= 3, "the platform and two practices: {report:?}");
    let ok = s.srv.admin_cli(&["verify-audit"]);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(ok.status.success(), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(text.contains("verified\t"), "{text}");

    // Someone with the file changes what one entry says it served.
    let practice = s.w.specialists[0].id;
    let target =
        entries(&store_of(&s.srv), Some(practice)).await.into_iter().find(|r| r.entry.action == AuditAction::ReferralServed).unwrap();
    let (dir, db) = copy_of(&s.srv);
    tamper(
        &db,
        &format!(
            "UPDATE audit SET target = '00000000-0000-0000-0000-000000000000' WHERE chain = X'{}' AND seq = {}",
            hexs(practice.as_bytes()),
            target.seq
        ),
    );
    let report = verify_audit(&SqliteStore::open(dir.path()).unwrap()).await.unwrap();
    let broken = report.broken.expect("the edit is found");
    assert_eq!((broken.practice, broken.seq), (Some(practice), target.seq), "{broken}");
    assert!(broken.problem.contains("hash"), "{broken}");

    // The CLI names the same row and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["admin", "--data"])
        .arg(dir.path())
        .arg("verify-audit")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains(&format!("practice {practice} chain, entry {}", target.seq)), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_reordered_audit_row_breaks_the_chain() {
    let s = scenario().await;
    let practice = s.w.specialists[0].id;
    let key = hexs(practice.as_bytes());
    let n = entries(&store_of(&s.srv), Some(practice)).await.len() as u64;
    assert!(n >= 5, "enough entries to damage the middle: {n}");

    let (dir, db) = copy_of(&s.srv);
    tamper(&db, &format!("DELETE FROM audit WHERE chain = X'{key}' AND seq = 3"));
    let broken = verify_audit(&SqliteStore::open(dir.path()).unwrap()).await.unwrap().broken.expect("the deletion is found");
    assert_eq!((broken.practice, broken.seq), (Some(practice), 3), "{broken}");
    assert!(broken.problem.contains("missing"), "{broken}");

    // Entries 2 and 3 swap places (each takes the other's seq).
    let (dir, db) = copy_of(&s.srv);
    tamper(
        &db,
        &format!(
            "UPDATE audit SET seq = -2 WHERE chain = X'{key}' AND seq = 2; \
             UPDATE audit SET seq = 2 WHERE chain = X'{key}' AND seq = 3; \
             UPDATE audit SET seq = 3 WHERE chain = X'{key}' AND seq = -2;"
        ),
    );
    let broken = verify_audit(&SqliteStore::open(dir.path()).unwrap()).await.unwrap().broken.expect("the reordering is found");
    assert_eq!((broken.practice, broken.seq), (Some(practice), 2), "{broken}");
}

async fn page(c: &handoff_client::Client, p: PracticeId, q: &AuditQuery) -> Result<AuditPage, ClientError> {
    c.call::<GetPracticeAudit>(&p, q).await
}

async fn csv_text(c: &handoff_client::Client, p: PracticeId, q: &AuditQuery) -> (u16, String) {
    let path = GetPracticeAuditCsv::request(&p, q).unwrap().path;
    let r = c.raw("GET", &path, None, Vec::new()).await.unwrap();
    (r.status, r.body)
}

/// The page's rows as the CSV writes them.
fn as_csv_rows(page: &AuditPage) -> Vec<Vec<String>> {
    let opt = |u: &Option<handoff_protocol::UserId>| u.map(|u| u.to_string()).unwrap_or_default();
    page.entries
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                handoff_server::audit::utc(r.at),
                r.action.as_str().to_string(),
                opt(&r.actor),
                r.actor_name.clone().unwrap_or_default(),
                opt(&r.on_behalf_of),
                r.on_behalf_of_name.clone().unwrap_or_default(),
                r.target.clone().unwrap_or_default(),
                r.address.clone().unwrap_or_default(),
                r.hash.clone(),
            ]
        })
        .collect()
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header = rd.headers().unwrap().iter().map(str::to_string).collect();
    let rows = rd.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_matches_the_entries() {
    let s = scenario().await;
    let p = s.w.specialists[0].id;
    let store = store_of(&s.srv);
    for q in [
        AuditQuery::default(),
        AuditQuery { action: Some("referral_served".into()), ..Default::default() },
        AuditQuery {
            member: Some(s.w.spec.user_id().unwrap()),
            from: Some("2000-01-01".into()),
            to: Some("2999-12-31".into()),
            ..Default::default()
        },
    ] {
        let shown = page(&s.w.spec, p, &q).await.unwrap();
        let (status, text) = csv_text(&s.w.spec, p, &q).await;
        assert_eq!(status, 200, "{text}");
        let (header, rows) = parse_csv(&text);
        assert_eq!(header, handoff_server::audit::CSV_HEADER.to_vec());
        assert_eq!(rows, as_csv_rows(&shown), "the CSV rows are the screen's rows for {q:?}");
        // And both are the stored entries, newest first.
        let stored = store.audit_entries(AuditFilter { practice: Some(p), limit: 1_000, ..Default::default() }).await.unwrap();
        let want: Vec<u64> = stored
            .iter()
            .filter(|r| q.action.as_deref().is_none_or(|a| r.entry.action.as_str() == a))
            .filter(|r| q.member.is_none_or(|m| r.entry.actor == Some(m) || r.entry.on_behalf_of == Some(m)))
            .map(|r| r.seq)
            .collect();
        assert_eq!(shown.entries.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
        assert!(!want.is_empty());
        for (row, rec) in shown.entries.iter().zip(stored.iter().filter(|r| want.contains(&r.seq))) {
            assert_eq!(row.hash, hexs(&rec.hash));
        }
    }
    let served = page(&s.w.spec, p, &AuditQuery { action: Some("referral_served".into()), ..Default::default() }).await.unwrap();
    assert!(served.entries.iter().all(|r| r.action == AuditAction::ReferralServed));
    assert_eq!(served.entries[0].actor_name.as_deref(), Some(s.w.spec_account.display_name.as_str()), "names are looked up on reading");
    // Staff read the platform chain.
    let platform = s.w.staff.call::<AdminGetAudit>(&(), &AuditQuery::default()).await.unwrap();
    assert!(platform.entries.iter().any(|r| r.action == AuditAction::PracticeVerified));
    assert_eq!(platform.practice, None);
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Err(ClientError::Api { body, .. }) => body.error,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_practices_audit_log_is_refused() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let (referring, specialist) = (w.referring.id, w.specialists[0].id);
    // An admin of another practice: not_found, for the log and for its CSV (as for every admin-only practice route).
    assert_eq!(code_of(page(&w.spec, referring, &AuditQuery::default()).await), ErrorCode::NotFound);
    let (status, body) = csv_text(&w.spec, referring, &AuditQuery::default()).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
    assert!(!body.contains("sign_in"), "{body}");
    // Staff are not members: the same.
    assert_eq!(code_of(page(&w.staff, specialist, &AuditQuery::default()).await), ErrorCode::NotFound);
    // A member who is not an admin: forbidden.
    let email = format!("nurse-{}@cardio.example", uuid::Uuid::new_v4());
    w.spec.invite(specialist, &email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(&email).await;
    let mut nurse = srv.client();
    nurse.register(&email, "Nurse", PASSWORD, Some(&token)).await.unwrap();
    assert_eq!(code_of(page(&nurse, specialist, &AuditQuery::default()).await), ErrorCode::Forbidden);
    assert_eq!(csv_text(&nurse, specialist, &AuditQuery::default()).await.0, 403);
    // The platform log is for staff only; anonymous callers are not signed in.
    assert_eq!(code_of(w.spec.call::<AdminGetAudit>(&(), &AuditQuery::default()).await), ErrorCode::Forbidden);
    assert_eq!(code_of(srv.client().call::<AdminGetAudit>(&(), &AuditQuery::default()).await), ErrorCode::Unauthenticated);
    assert_eq!(code_of(srv.client().call::<GetPracticeAudit>(&specialist, &AuditQuery::default()).await), ErrorCode::Unauthenticated);
    // Bad filters: validation_failed, on the screen's route and the CSV's alike.
    for q in [
        AuditQuery { from: Some("2026-02-30".into()), ..Default::default() },
        AuditQuery { to: Some("yesterday".into()), ..Default::default() },
        AuditQuery { action: Some("read_everything".into()), ..Default::default() },
        AuditQuery { from: Some("2026-05-02".into()), to: Some("2026-05-01".into()), ..Default::default() },
    ] {
        assert_eq!(code_of(page(&w.spec, specialist, &q).await), ErrorCode::ValidationFailed, "{q:?}");
        let (status, body) = csv_text(&w.spec, specialist, &q).await;
        assert_eq!(status, 422, "{q:?}: {body}");
        assert!(body.contains("validation_failed"), "{body}");
    }
    let path = format!("{}?member=not-a-uuid", GetPracticeAudit::request(&specialist, &AuditQuery::default()).unwrap().path);
    let r = w.spec.raw("GET", &path, None, Vec::new()).await.unwrap();
    assert!(r.body.contains("validation_failed"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_entry_carries_content() {
    let s = scenario().await;
    let conn = rusqlite::Connection::open(s.srv.data_dir().join(sqlite::DB_FILE)).unwrap();
    let mut st = conn.prepare("SELECT quote(chain), quote(actor), quote(on_behalf_of), action, target, address FROM audit").unwrap();
    let rows: Vec<String> = st
        .query_map([], |r| {
            Ok((0..6).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default().unwrap_or_default()).collect::<Vec<_>>().join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.len() >= 10, "{rows:?}");
    let surname = PATIENT.rsplit(' ').next().unwrap();
    let needles = [
        PATIENT,
        surname,
        MESSAGE,
        "Holter",
        FILE_NAME,
        s.w.spec_account.email.as_str(),
        s.w.moa_account.email.as_str(),
        s.w.spec_account.display_name.as_str(),
        s.w.referring.name.as_str(),
    ];
    for row in &rows {
        for n in needles {
            assert!(!row.to_lowercase().contains(&n.to_lowercase()), "{n:?} in audit row {row}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_prunes_audit_entries_past_retention_and_the_chains_still_verify() {
    let srv = TestServer::start_with(None, |c| c.audit_retention_days = Some(30));
    let w = world(&srv, 1).await;
    let store = store_of(&srv);
    let p = w.specialists[0].id;
    let before = entries(&store, Some(p)).await.len();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cut = handoff_server::state::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    w.spec.referrals(p).await.unwrap();
    let r = w.spec.call::<GetPracticeAudit>(&p, &AuditQuery::default()).await.unwrap();
    assert!(!r.entries.is_empty());
    let (email, password) = (w.spec_account.email.clone(), w.spec_account.password.clone());
    let mut again = srv.client();
    again.login(&email, &password).await.unwrap();
    let kept_seqs: Vec<u64> = entries(&store, Some(p)).await.iter().filter(|r| r.entry.at >= cut).map(|r| r.seq).collect();
    assert!(!kept_seqs.is_empty());

    // Thirty days after `cut`: everything before it is past retention.
    let config = srv.config.clone();
    let swept = handoff_server::sweep::sweep_once(&store, &config, cut + 30 * 86_400_000).await;
    assert!(swept.audit >= before as u64, "{swept:?}");
    let left = entries(&store, Some(p)).await;
    let mut left_seqs: Vec<u64> = left.iter().map(|r| r.seq).collect();
    left_seqs.reverse();
    assert_eq!(left_seqs, kept_seqs, "exactly the entries before the cutoff went");
    let report = verify_audit(&store).await.unwrap();
    assert_eq!(report.broken, None, "verification starts from each chain's anchor");
    // New entries still chain on after the anchor.
    again.login(&email, &password).await.unwrap();
    assert_eq!(verify_audit(&store).await.unwrap().broken, None);

    // Without a retention period nothing is pruned.
    let keep = TestServer::start(None);
    let w2 = world(&keep, 1).await;
    let s2 = store_of(&keep);
    let n = entries(&s2, Some(w2.specialists[0].id)).await.len();
    let swept = handoff_server::sweep::sweep_once(&s2, &keep.config, handoff_server::state::now() + 3_650 * 86_400_000).await;
    assert_eq!(swept.audit, 0);
    assert_eq!(entries(&s2, Some(w2.specialists[0].id)).await.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_marked_opened_is_one_first_open_in_the_receivers_chain() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let moa = w.moa.live().await.unwrap();
    let AckBody::ReferralSent { referral, .. } = w
        .moa
        .send_referral(&moa, w.referring.id, To::Practice(w.specialists[0].id), routing("arrhythmia"), &content(PATIENT), &[])
        .await
        .unwrap()
    else {
        panic!("not a referral ack")
    };
    let spec = w.spec.live().await.unwrap();
    for _ in 0..2 {
        spec.command(Command::MarkOpened { referral }).await.unwrap();
    }
    let store = store_of(&srv);
    let opened: Vec<_> =
        entries(&store, Some(w.specialists[0].id)).await.into_iter().filter(|r| r.entry.action == AuditAction::ReferralOpened).collect();
    assert_eq!(opened.len(), 1, "once per member and referral");
    assert_eq!(opened[0].entry.actor, Some(w.spec.user_id().unwrap()));
    assert_eq!(opened[0].entry.target.as_deref(), Some(referral.to_string().as_str()));
    assert_eq!(count(&entries(&store, Some(w.referring.id)).await, AuditAction::ReferralOpened), 0, "the sender opened nothing");
}
