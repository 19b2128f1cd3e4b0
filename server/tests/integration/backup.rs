//! Backups and restores (issue 17): `handoff admin backup` under a load of
//! referral commands, restored into a fresh data directory and served again;
//! and every refusal of `handoff admin restore`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff_client::referrals::To;
use handoff_protocol::PracticeId;
use handoff_protocol::ws::{AckBody, Command, Event, MessageId, ReferralId, StreamId};
use handoff_store::sqlite::{self, MIGRATIONS, RestoreError};
use handoff_testkit::{content, routing};
use sha2::{Digest as _, Sha256};

use crate::harness::{PASSWORD, ProcessServer, TestServer, world};

/// A command whose answer came back: its effect is committed.
#[derive(Clone, Debug)]
enum Acked {
    Referral { id: ReferralId, from: PracticeId, to: PracticeId, patient: String },
    Message { referral: ReferralId, id: MessageId },
}

fn newest_schema() -> u32 {
    MIGRATIONS.iter().map(|m| m.version).max().expect("migrations")
}

/// Every stored event of a store file, by stream, in seq order.
fn events_by_stream(db: &Path) -> BTreeMap<String, Vec<(u64, Event)>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the restored store");
    let mut stmt = conn.prepare("SELECT stream, seq, body FROM events ORDER BY stream, seq").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))).unwrap();
    let mut out: BTreeMap<String, Vec<(u64, Event)>> = BTreeMap::new();
    for row in rows {
        let (stream, seq, body) = row.unwrap();
        let event: Event = serde_json::from_str(&body).expect("a stored event decodes");
        out.entry(stream).or_default().push((u64::try_from(seq).expect("positive seq"), event));
    }
    out
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

fn user_version(path: &Path) -> u32 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
}

/// A backup of a fresh server's store, in its own directory.
fn a_backup() -> (TestServer, tempfile::TempDir, std::path::PathBuf) {
    let srv = TestServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let info = sqlite::backup(srv.data_dir(), &dir.path().join("b.db")).expect("backup");
    (srv, dir, info.path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_event_with_gapless_seqs() {
    let srv = TestServer::start(None);
    let w = Arc::new(world(&srv, 2).await);
    let sockets =
        Arc::new(futures_util::future::join_all((0..4).map(|_| w.moa.live())).await.into_iter().map(Result::unwrap).collect::<Vec<_>>());
    // A referral to each specialist first, so the load has threads to post to.
    let mut threads = Vec::new();
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    for (i, p) in w.specialists.iter().enumerate() {
        let patient = format!("Seed {i}");
        let ack =
            w.moa.send_referral(&sockets[0], w.referring.id, To::Practice(p.id), routing("arrhythmia"), &content(&patient), &[]).await;
        let AckBody::ReferralSent { referral, to_practice, .. } = ack.unwrap() else { panic!("not a referral ack") };
        acked.lock().unwrap().push(Acked::Referral { id: referral, from: w.referring.id, to: to_practice, patient });
        threads.push(w.moa.referral(referral).await.unwrap());
    }
    let threads = Arc::new(threads);

    // The load: rounds of eight concurrent commands (four sends, four thread messages)
    // over four sockets, until told to stop. Each answer is recorded as it returns.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (w, sockets, threads, acked, stop) = (w.clone(), sockets.clone(), threads.clone(), acked.clone(), stop.clone());
        async move {
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let commands = (0..8).map(|k| {
                    let (w, sockets, threads, acked) = (w.clone(), sockets.clone(), threads.clone(), acked.clone());
                    async move {
                        let live = &sockets[k % sockets.len()];
                        if k % 2 == 0 {
                            let to = w.specialists[(k / 2) % w.specialists.len()].id;
                            let patient = format!("Patient {round}-{k}");
                            let (new, _) = w
                                .moa
                                .prepare_referral(w.referring.id, To::Practice(to), routing("arrhythmia"), &content(&patient), &[])
                                .await?;
                            let id = new.id;
                            let AckBody::ReferralSent { to_practice, .. } = live.command(Command::SendReferral { referral: new }).await?
                            else {
                                panic!("not a referral ack")
                            };
                            acked.lock().unwrap().push(Acked::Referral { id, from: w.referring.id, to: to_practice, patient });
                        } else {
                            let r = &threads[(k / 2) % threads.len()];
                            let message = w.moa.seal_message(r, &format!("message {round}-{k}")).await?;
                            let id = message.id;
                            live.command(Command::PostMessage { referral: r.id, message }).await?;
                            acked.lock().unwrap().push(Acked::Message { referral: r.id, id });
                        }
                        Ok::<_, handoff_client::ClientError>(())
                    }
                });
                for outcome in futures_util::future::join_all(commands).await {
                    outcome.expect("every command of the load is answered");
                }
                round += 1;
            }
        }
    });
    let wait_for = |n: usize| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while acked.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(40).await;

    // Everything acknowledged before the backup begins must be in it.
    let before: Vec<Acked> = acked.lock().unwrap().clone();
    let dest_dir = tempfile::tempdir().unwrap();
    let dest = dest_dir.path().join("handoff-backup.db");
    let data = srv.data_dir().to_path_buf();
    let info = tokio::task::spawn_blocking({
        let dest = dest.clone();
        move || sqlite::backup(&data, &dest)
    })
    .await
    .unwrap()
    .expect("the backup succeeds while the server serves");
    // The server kept serving: the load goes on after the backup, then stops.
    wait_for(before.len() + 24).await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("the load ran without a failed command");

    assert_eq!(info.path, dest);
    assert_eq!(info.schema_version, newest_schema());
    assert_eq!(info.bytes, std::fs::metadata(&dest).unwrap().len());
    assert_eq!(info.sha256, sha256_hex(&dest), "the printed checksum is the file's SHA-256");

    // Restore into a fresh data directory.
    let fresh = tempfile::tempdir().unwrap();
    let restored = sqlite::restore(&dest, fresh.path(), false).expect("restore into an empty directory");
    assert_eq!(restored.sha256, info.sha256);
    assert_eq!(restored.schema_version, newest_schema());
    let db = fresh.path().join(sqlite::DB_FILE);
    assert_eq!(user_version(&db), newest_schema(), "the restored store's schema version");

    let streams = events_by_stream(&db);
    for (stream, events) in &streams {
        let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{stream}: seqs are dense from 1");
    }
    let sent_in = |stream: &StreamId, id: ReferralId| {
        streams
            .get(&stream.to_string())
            .is_some_and(|es| es.iter().any(|(_, e)| matches!(e, Event::ReferralSent { referral } if referral.id == id)))
    };
    let mut messages: HashMap<ReferralId, usize> = HashMap::new();
    for a in &before {
        match a {
            Acked::Referral { id, from, to, .. } => {
                for s in [StreamId::Referral(*id), StreamId::Practice(*from), StreamId::Practice(*to)] {
                    assert!(sent_in(&s, *id), "acknowledged referral {id} is on {s} in the backup");
                }
            }
            Acked::Message { referral, id } => {
                let on = streams.get(&StreamId::Referral(*referral).to_string()).expect("the thread's stream");
                assert!(
                    on.iter().any(|(_, e)| matches!(e, Event::MessagePosted { message, .. } if message.id == *id)),
                    "acknowledged message {id:?} is in the backup"
                );
                *messages.entry(*referral).or_default() += 1;
            }
        }
    }
    assert!(messages.values().sum::<usize>() > 0 && before.len() >= 40, "the backup was taken with acknowledged load behind it");

    // The restored directory serves: the MOA signs in and reads an acknowledged referral.
    let fresh_dir = fresh.path().to_path_buf();
    let served = TestServer::start_with(None, move |c| c.data = fresh_dir);
    let mut moa = served.client();
    moa.login(&w.moa_account.email, PASSWORD).await.expect("sign in on the restored server");
    let listed: Vec<ReferralId> = moa.referrals(w.referring.id).await.unwrap().into_iter().map(|r| r.id).collect();
    for a in &before {
        if let Acked::Referral { id, .. } = a {
            assert!(listed.contains(id), "the restored server lists acknowledged referral {id}");
        }
    }
    let Some(Acked::Referral { id, patient, .. }) = before.iter().rev().find(|a| matches!(a, Acked::Referral { .. })) else {
        panic!("no referral was acknowledged")
    };
    let r = moa.referral(*id).await.unwrap();
    assert_eq!(moa.open_referral(&r).await.unwrap(), content(patient), "the restored referral decrypts to what was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_command_prints_the_path_size_schema_version_and_the_files_sha256() {
    let srv = TestServer::start(None);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nightly.db");
    let out = srv.admin_cli(&["backup", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: HashMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(printed.get("backup").map(String::as_str), dest.to_str());
    assert_eq!(printed.get("bytes"), Some(&std::fs::metadata(&dest).unwrap().len().to_string()));
    assert_eq!(printed.get("schema_version"), Some(&newest_schema().to_string()));
    assert_eq!(printed.get("sha256"), Some(&sha256_hex(&dest)));
    // A second backup to the same file is refused; the first is untouched.
    let again = srv.admin_cli(&["backup", dest.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(printed.get("sha256"), Some(&sha256_hex(&dest)));
    // A directory gets a file named after the time.
    let into_dir = srv.admin_cli(&["backup", dir.path().to_str().unwrap()]);
    assert!(into_dir.status.success(), "{}", String::from_utf8_lossy(&into_dir.stderr));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("handoff-") && n.ends_with("Z.db")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_backup_with_a_newer_schema_version() {
    let (_srv, dir, backup) = a_backup();
    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup, &newer).unwrap();
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", newest_schema() + 1).unwrap();
    let target = tempfile::tempdir().unwrap();
    match sqlite::restore(&newer, target.path(), false) {
        Err(RestoreError::SchemaTooNew { found, supported, .. }) => {
            assert_eq!((found, supported), (newest_schema() + 1, newest_schema()));
        }
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
    assert!(!target.path().join(sqlite::DB_FILE).exists(), "nothing was restored");
    // The CLI says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["admin", "restore"])
        .arg(&newer)
        .arg("--data")
        .arg(target.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("schema version {}", newest_schema() + 1)) && err.contains("newer than this build's"), "{err}");
    // An older schema is accepted: the server migrates it at its next start.
    let older = dir.path().join("older.db");
    std::fs::copy(&backup, &older).unwrap();
    rusqlite::Connection::open(&older).unwrap().pragma_update(None, "user_version", newest_schema() - 1).unwrap();
    assert_eq!(sqlite::inspect(&older).expect("an older schema is restorable").schema_version, newest_schema() - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_file_that_is_not_a_handoff_store() {
    let dir = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all, though it is long enough to have a header").unwrap();
    assert!(matches!(sqlite::restore(&text, target.path(), false), Err(RestoreError::NotAStore { .. })));
    // A SQLite database, but someone else's.
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY); PRAGMA user_version = 3;").unwrap();
    drop(conn);
    match sqlite::restore(&other, target.path(), false) {
        Err(RestoreError::NotAStore { why, .. }) => assert!(why.contains("no `users` table"), "{why}"),
        r => panic!("another application's database must be refused, got {r:?}"),
    }
    // A damaged store: a page in the middle overwritten.
    let (_srv, bdir, backup) = a_backup();
    let damaged = bdir.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let page = 4096;
    let mid = (bytes.len() / page / 2) * page;
    bytes[mid..mid + page].fill(0xA5);
    std::fs::write(&damaged, bytes).unwrap();
    assert!(matches!(sqlite::restore(&damaged, target.path(), false), Err(RestoreError::Corrupt { .. })), "a damaged file is refused");
    assert!(!target.path().join(sqlite::DB_FILE).exists(), "nothing was restored");
    assert!(matches!(sqlite::restore(&dir.path().join("missing.db"), target.path(), false), Err(RestoreError::NotAStore { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_to_replace_a_store_without_force_and_keeps_the_old_one_with_it() {
    let (srv, _dir, backup) = a_backup();
    // A directory whose store has more in it than the backup.
    let target = tempfile::tempdir().unwrap();
    sqlite::restore(&backup, target.path(), false).unwrap();
    let live = rusqlite::Connection::open(target.path().join(sqlite::DB_FILE)).unwrap();
    live.pragma_update(None, "journal_mode", "WAL").unwrap();
    live.execute("INSERT INTO events (stream, seq, body, created_at) VALUES ('practice:x', 1, '{}', 0)", []).unwrap();
    let before = events_in(&target.path().join(sqlite::DB_FILE));
    match sqlite::restore(&backup, target.path(), false) {
        Err(RestoreError::StoreExists(d)) => assert_eq!(d, target.path()),
        r => panic!("replacing a store needs --force, got {r:?}"),
    }
    assert_eq!(events_in(&target.path().join(sqlite::DB_FILE)), before, "the store is untouched");
    drop(live);
    // A stale WAL, as a crashed server could leave: it must go with the old store, never meet the restored one.
    std::fs::write(target.path().join("handoff.db-wal"), vec![0x5A; 8192]).unwrap();
    let out = srv.admin_cli(&["restore", backup.to_str().unwrap(), "--data", target.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    // With --force the backup replaces it; the old store is kept aside, openable.
    let out = srv.admin_cli(&["restore", backup.to_str().unwrap(), "--data", target.path().to_str().unwrap(), "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256_hex(&target.path().join(sqlite::DB_FILE)), sha256_hex(&backup));
    let aside: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("handoff.db.replaced-") && !name.ends_with("-wal")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(events_in(&aside[0]), before, "the replaced store kept its data");
    assert!(!target.path().join("handoff.db-wal").exists(), "no stale WAL beside the restored store");
}

fn events_in(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_while_a_server_runs_on_the_data_directory() {
    let mut running = ProcessServer::start().await;
    let (_srv, _dir, backup) = a_backup();
    let data = running.data.path().to_path_buf();
    let restore = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["admin", "restore"])
            .arg(&backup)
            .arg("--data")
            .arg(&data)
            .arg("--force")
            .output()
            .unwrap()
    };
    use std::os::unix::fs::MetadataExt as _;
    let inode = || std::fs::metadata(data.join(sqlite::DB_FILE)).unwrap().ino();
    let before = inode();
    let out = restore();
    assert!(!out.status.success(), "refused even with --force");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a Handoff server is running"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(reqwest::get(format!("{}/healthz", running.url())).await.unwrap().status().is_success(), "the server still serves");
    assert_eq!(inode(), before, "its store file was not replaced");
    // Once it has stopped (the kernel drops the lock with the process), the restore goes ahead.
    running.kill9();
    let out = restore();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256_hex(&data.join(sqlite::DB_FILE)), sha256_hex(&backup));
}
