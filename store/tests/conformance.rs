//! The conformance suite on the embedded SQLite backend, plus SQLite-only
//! properties: durability across reopen and all-or-nothing migrations.

use handoff_store::sqlite::{MIGRATIONS, Migration, SqliteStore};
use handoff_store::{OpenError, UserStore, conformance};

/// The newest schema version this build knows (versions are numbered per
/// feature, so the list may have gaps while features land).
fn newest() -> u32 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap()
}

async fn fresh() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open(dir.path()).unwrap(), dir)
}

handoff_store::conformance_tests!(fresh);

/// A store at version N applies only the migrations above N, in list order:
/// a list out of order would skip some on an existing store, or set the
/// version backwards on a fresh one.
#[test]
fn migrations_are_listed_in_increasing_version_order() {
    let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert_eq!(versions.first(), Some(&1));
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let u = conformance::user(1, "a@example.org");
    {
        let s = SqliteStore::open(dir.path()).unwrap();
        s.create_user(u.clone()).await.unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.user_by_email("a@example.org").await.unwrap(), Some(u));
    assert_eq!(s.schema_version().await.unwrap(), newest());
}

#[tokio::test]
async fn failed_migration_leaves_nothing_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let broken =
        [MIGRATIONS[0], Migration { version: 2, sql: "CREATE TABLE half (x INTEGER) STRICT; INSERT INTO no_such_table VALUES (1);" }];
    let err = SqliteStore::open_with_migrations(dir.path(), &broken).unwrap_err();
    assert!(err.to_string().contains("migration 2"), "{err}");
    // Version 1 applied and committed; version 2 left no trace.
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().await.unwrap(), newest());
    let conn = rusqlite::Connection::open(dir.path().join("handoff.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'half'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut future = MIGRATIONS.to_vec();
    let next = newest() + 1;
    future.push(Migration { version: next, sql: "CREATE TABLE later (x INTEGER) STRICT;" });
    SqliteStore::open_with_migrations(dir.path(), &future).unwrap();
    match SqliteStore::open(dir.path()) {
        Err(OpenError::SchemaTooNew { found, supported }) if found == next && supported == next - 1 => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn blobs_stored_whole_before_chunking_survive_the_migration() {
    use handoff_store::ReferralStore as _;
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<Migration> = MIGRATIONS.iter().copied().filter(|m| m.version < 6).collect();
    SqliteStore::open_with_migrations(dir.path(), &before).unwrap();
    let blob = handoff_protocol::ws::BlobId(uuid::Uuid::from_u128(5));
    let owner = handoff_protocol::UserId::from_bytes([3; 16]);
    {
        let conn = rusqlite::Connection::open(dir.path().join("handoff.db")).unwrap();
        conn.execute(
            "INSERT INTO blobs (id, owner, referral, bytes, created_at) VALUES (?1, ?2, NULL, ?3, 1)",
            rusqlite::params![blob.as_bytes().as_slice(), owner.as_bytes().as_slice(), vec![7u8; 300]],
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(s.blob_bytes(blob).await.unwrap(), Some(vec![7; 300]));
    assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().size, 300);
    assert_eq!(s.blob_usage(owner).await.unwrap(), 300);
}

/// Referrals and `referral_sent` events stored before free referrals name
/// their sender in `from_practice`/`sent_by`/`from_key`; the migration moves
/// them into the tagged `from`, so they still parse as protocol JSON and keep
/// every value.
#[tokio::test]
async fn referrals_sent_before_free_referrals_keep_their_sender_through_the_migration() {
    use handoff_protocol::ws::{Event, Referral, SentFrom, StreamId};
    use handoff_store::ReferralStore as _;
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<Migration> = MIGRATIONS.iter().copied().filter(|m| m.version < 9).collect();
    SqliteStore::open_with_migrations(dir.path(), &before).unwrap();
    let (id, from, to, user) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2), uuid::Uuid::from_u128(3), uuid::Uuid::from_u128(4));
    let old = serde_json::json!({
        "id": id, "number": "HR-AAAA-BBBB", "from_practice": from, "to_practice": to, "sent_by": user,
        "routing": {"specialty": "cardiology", "category": "arrhythmia", "subcategory": null, "region": "fraser", "urgency": "routine"},
        "status": "sent", "reject_reason": null, "content": "AQID",
        "from_key": {"practice": from, "epoch": 3, "sealed": "BAUG"},
        "to_key": {"practice": to, "epoch": 1, "sealed": "BwgJ"},
        "attachments": [], "created_at": 5, "first_opened_at": null
    });
    {
        let conn = rusqlite::Connection::open(dir.path().join("handoff.db")).unwrap();
        conn.execute(
            "INSERT INTO referrals (id, number, from_practice, to_practice, routed_category, routed_sub, status, body, created_at) \
             VALUES (?1, 'HR-AAAA-BBBB', ?2, ?3, 'arrhythmia', NULL, 'sent', ?4, 5)",
            rusqlite::params![id.as_bytes().as_slice(), from.as_bytes().as_slice(), to.as_bytes().as_slice(), old.to_string()],
        )
        .unwrap();
        let event = serde_json::json!({"type": "referral_sent", "referral": old});
        conn.execute(
            "INSERT INTO events (stream, seq, body, created_at) VALUES (?1, 1, ?2, 5)",
            rusqlite::params![format!("referral:{id}"), event.to_string()],
        )
        .unwrap();
    }
    let s = SqliteStore::open(dir.path()).unwrap();
    let rec = s.referral(handoff_protocol::ws::ReferralId(id)).await.unwrap().unwrap();
    assert_eq!(rec.from_practice, Some(handoff_protocol::PracticeId(from)));
    assert_eq!(rec.free_email, None);
    let r: Referral = serde_json::from_str(&rec.body).unwrap();
    let want_key = handoff_protocol::ws::WrappedKey {
        practice: handoff_protocol::PracticeId(from),
        epoch: 3,
        sealed: handoff_protocol::B64(vec![4, 5, 6]),
    };
    assert_eq!(
        r.from,
        SentFrom::Practice {
            practice: handoff_protocol::PracticeId(from),
            user: handoff_protocol::UserId(user),
            key: want_key,
            on_behalf_of: None
        }
    );
    assert_eq!(r.to_key.sealed.as_slice(), &[7, 8, 9]);
    let events = s.events_after(StreamId::Referral(handoff_protocol::ws::ReferralId(id)), 0, 10).await.unwrap();
    match serde_json::from_str::<Event>(&events[0].body).unwrap() {
        Event::ReferralSent { referral } => assert_eq!(*referral, r),
        other => panic!("{other:?}"),
    }
}

/// Commits queued together share one transaction and one fsync: every one
/// of them is there after the store is closed and opened again, and a store
/// set to commit one at a time stores the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_commits_of_a_batch_are_visible_after_reopen() {
    use handoff_protocol::ws::StreamId;
    use handoff_store::{Chain, Commit, ReferralStore as _};
    for grouped in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let stream = StreamId::Practice(handoff_protocol::PracticeId::from_bytes([9; 16]));
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.set_group_commit(grouped);
            let pending: Vec<_> = (0..200)
                .map(|i| s.submit(Commit { events: vec![(stream, format!("e{i}"))], now: 1, ..Default::default() }, &Chain::new()))
                .collect();
            for p in pending {
                p.await.unwrap();
            }
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let events = s.events_after(stream, 0, 1000).await.unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=200).collect::<Vec<u64>>(), "grouped: {grouped}");
        assert_eq!(events.iter().map(|e| e.body.clone()).collect::<Vec<_>>(), (0..200).map(|i| format!("e{i}")).collect::<Vec<_>>());
    }
}
