//! Issue 12 item 6: every account's resources are bounded. Each test is an
//! attack on one bound: attachment storage (quota, the sweep of unattached
//! blobs, uploads that would hold the store), sockets per user, the outgoing
//! queue in bytes, key packages, MLS message sizes, and what an MLS sync reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use handoff_client::Client;
use handoff_protocol::api::{
    CountKeyPackages, Endpoint as _, GetBlob, GetMlsWelcome, LoadMlsState, PutBlob, SaveMlsState, SubmitMlsCommit,
};
use handoff_protocol::mls::{PutMlsState, SubmitCommit};
use handoff_protocol::v1::{BlobStored, PracticePublicKey, Role};
use handoff_protocol::ws::{AckBody, BlobId, StreamId};
use handoff_protocol::{B64, ErrorBody, ErrorCode, PracticeId};
use handoff_store::{ReferralStore as _, sqlite::SqliteStore};
use handoff_testkit::{content, moa_account, routing};

use crate::harness::{PASSWORD, TestServer, world};

const MIB: usize = 1024 * 1024;

fn blob() -> BlobId {
    BlobId(uuid::Uuid::new_v4())
}

async fn upload(c: &Client, id: BlobId, bytes: Vec<u8>) -> handoff_client::Result<BlobStored> {
    c.upload_octets::<PutBlob>(&id, bytes).await
}

fn code<T: std::fmt::Debug>(r: handoff_client::Result<T>) -> Option<ErrorCode> {
    r.unwrap_err().code()
}

/// A second connection to the server's own store on disk (WAL: it reads while the server writes).
fn store_of(srv: &TestServer) -> SqliteStore {
    SqliteStore::open(srv.data_dir()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_cannot_store_more_than_its_quota() {
    let srv = TestServer::start_with(None, |c| c.blob_quota_bytes = 3 * MIB as u64);
    let c = moa_account().register(&srv.url()).await.unwrap();
    upload(&c, blob(), vec![1; 2 * MIB]).await.unwrap();
    // The second 2 MiB would take the account past 3 MiB.
    let refused = blob();
    assert_eq!(code(upload(&c, refused, vec![2; 2 * MIB]).await), Some(ErrorCode::QuotaExceeded));
    assert_eq!(ErrorCode::QuotaExceeded.http_status(), 507);
    // Nothing of the refused upload is kept: it cannot be read, and it uses none of the quota.
    assert_eq!(code(c.download_octets::<GetBlob>(&refused).await), Some(ErrorCode::NotFound));
    assert_eq!(store_of(&srv).blob_usage(c.user_id().unwrap()).await.unwrap(), 2 * MIB as u64);
    upload(&c, blob(), vec![3; MIB]).await.unwrap();
    assert_eq!(code(upload(&c, blob(), vec![4; 1]).await), Some(ErrorCode::QuotaExceeded), "exactly full");
    // The quota is per account: another account still stores.
    let other = moa_account().register(&srv.url()).await.unwrap();
    upload(&other, blob(), vec![5; 2 * MIB]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unattached_blobs_are_removed_after_a_day() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    // One blob left unattached, one attached to a referral.
    let loose = blob();
    upload(&w.moa, loose, vec![7; 1000]).await.unwrap();
    let live = w.moa.live().await.unwrap();
    let file = handoff_client::referrals::File { name: "ecg.pdf".into(), media_type: "application/pdf".into(), bytes: vec![8; 5000] };
    let ack = w
        .moa
        .send_referral(&live, w.referring.id, handoff_client::referrals::To::Practice(to), routing("arrhythmia"), &content("Kept"), &[file])
        .await
        .unwrap();
    let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
    let r = w.moa.referral(referral).await.unwrap();
    let attached = r.attachments[0].clone();

    let store = store_of(&srv);
    let day = Duration::from_secs(srv.config.blob_unattached_secs);
    assert_eq!(day, Duration::from_secs(24 * 3600), "the documented default");
    let now = handoff_actors::now_millis();
    // An hour later, nothing is old enough.
    let removed = handoff_server::referrals::purge_unattached_blobs(&store, day, now + 3_600_000).await.unwrap();
    assert_eq!(removed, 0);
    assert_eq!(w.moa.download_octets::<GetBlob>(&loose).await.unwrap(), vec![7; 1000]);
    // A day and a minute later, the unattached blob is gone and the attached one stays.
    let removed = handoff_server::referrals::purge_unattached_blobs(&store, day, now + 24 * 3_600_000 + 60_000).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(code(w.moa.download_octets::<GetBlob>(&loose).await), Some(ErrorCode::NotFound));
    let kept = store.blob_meta(attached.blob).await.unwrap().unwrap();
    assert_eq!(store.blob_usage(w.moa.user_id().unwrap()).await.unwrap(), kept.size, "only the attached blob is left");
    let (_, bytes) = w.spec.download(&r, &attached).await.unwrap();
    assert_eq!(bytes, vec![8; 5000]);
}

/// Starts `POST /api/v1/blobs/{id}` on a raw socket, announcing `total` bytes, and sends `first` of them.
async fn begin_raw_upload(srv: &TestServer, token: &str, id: BlobId, total: usize, first: &[u8]) -> tokio::net::TcpStream {
    let addr = srv.server.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/octet-stream\r\n\
         content-length: {total}\r\nconnection: close\r\n\r\n",
        PutBlob::path(&id)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(first).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_does_not_hold_the_store() {
    let srv = TestServer::start(None);
    let c = moa_account().register(&srv.url()).await.unwrap();
    let me = c.user_id().unwrap();
    let store = store_of(&srv);
    let id = blob();
    let total = 5 * MIB;
    let mut up = begin_raw_upload(&srv, c.token().unwrap(), id, total, &vec![9; 4 * MIB]).await;
    // The upload is in progress: the server writes what arrived to the store
    // as it arrives (it is not held in memory until the end) ...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.blob_usage(me).await.unwrap() < 4 * MIB as u64 {
        assert!(tokio::time::Instant::now() < deadline, "the first 4 MiB never reached the store while the upload was in progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and other calls go through the store meanwhile: a small upload and a read complete first.
    let small = blob();
    upload(&c, small, vec![1; 10]).await.unwrap();
    assert_eq!(c.download_octets::<GetBlob>(&small).await.unwrap(), vec![1; 10]);
    c.practices().await.unwrap();
    // The big upload is still unfinished: not readable, and no answer yet.
    assert_eq!(code(c.download_octets::<GetBlob>(&id).await), Some(ErrorCode::NotFound));
    let mut answer = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(50), up.read(&mut answer)).await.is_err(), "no answer before the body ends");
    // The rest arrives; the upload completes whole.
    up.write_all(&vec![9; total - 4 * MIB]).await.unwrap();
    let mut response = String::new();
    up.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert_eq!(c.download_octets::<GetBlob>(&id).await.unwrap(), vec![9; total]);
}

/// A raw WebSocket upgrade for `token`: the socket, or the refusal's status and error body.
type RawWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(srv: &TestServer, token: &str) -> Result<RawWs, (u16, Option<ErrorBody>)> {
    let mut req = format!("{}/ws", srv.url().replacen("http", "ws", 1)).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_ref().and_then(|b| serde_json::from_slice(b).ok());
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("{e}"),
    }
}

/// A raw WebSocket upgrade request that the server refuses: the response head and body, read to the end.
async fn refused_upgrade(srv: &TestServer, token: &str) -> (String, String) {
    let addr = srv.server.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        handoff_protocol::api::WS_PATH
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_open_more_than_the_socket_cap() {
    let srv = TestServer::start(None);
    let cap = srv.config.ws_sockets_per_user;
    assert_eq!(cap, 16, "the documented default");
    let c = moa_account().register(&srv.url()).await.unwrap();
    let token = c.token().unwrap().to_string();
    let mut open = Vec::new();
    for _ in 0..cap {
        open.push(connect(&srv, &token).await.unwrap());
    }
    let Err((status, _)) = connect(&srv, &token).await else { panic!("socket {} was accepted", cap + 1) };
    assert_eq!(status, 429);
    // The refusal's body, read whole (a WebSocket client may stop at the head).
    let (head, body) = refused_upgrade(&srv, &token).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let body: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(body.error, ErrorCode::TooManySockets, "{}", body.message);
    // Another user is not affected.
    let other = moa_account().register(&srv.url()).await.unwrap();
    connect(&srv, other.token().unwrap()).await.unwrap();
    // Closing one frees its place.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    while let Some(Ok(_)) = first.next().await {}
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match connect(&srv, &token).await {
            Ok(_) => break,
            Err((429, _)) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the freed place was not given back: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_at_the_byte_bound() {
    // The frame bound stays at its default (1024): only the byte bound can cut this reader off.
    let srv = TestServer::start_with(None, |c| c.ws_outgoing_bytes = 512 * 1024);
    assert_eq!(srv.config.ws_outgoing_buffer, 1024);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let inbox = StreamId::Practice(to);
    let moa_live = w.moa.live().await.unwrap();
    let ack = w
        .moa
        .send_referral(
            &moa_live,
            w.referring.id,
            handoff_client::referrals::To::Practice(to),
            routing("arrhythmia"),
            &content("Flood"),
            &[],
        )
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let r = w.moa.referral(rid).await.unwrap();

    let mut stalled = connect(&srv, w.spec.token().unwrap()).await.unwrap();
    let sub = serde_json::json!({"id": 1, "cmd": {"type": "subscribe", "stream": inbox.to_string(), "after_seq": 0}});
    stalled.send(Message::Text(sub.to_string().into())).await.unwrap();
    let mut healthy = w.spec.live().await.unwrap();
    healthy.subscribe(inbox, 0).await.unwrap();
    // 400 frames of ~27 KB: about 11 MB (more than loopback's socket buffers
    // hold), far under 1024 frames but 20 times the byte bound.
    let total = 400u64;
    let big = "x".repeat(20_000);
    for _ in 0..total {
        w.moa.post_message(&moa_live, &r, &big).await.unwrap();
    }
    let mut got = 0u64;
    while got < total + 1 {
        let Some(_) = healthy.wait_for(inbox, Duration::from_secs(20), |_| true).await else { break };
        got += 1;
    }
    assert_eq!(got, total + 1, "the healthy reader gets every event");
    let (mut events, mut close_code) = (0u64, None);
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
        match m {
            Ok(Message::Text(t)) if t.contains("\"type\":\"event\"") => events += 1,
            Ok(Message::Close(f)) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(events < total + 1, "the stalled reader was cut off (it got {events} of {})", total + 1);
    if let Some(c) = close_code {
        assert_eq!(c, handoff_protocol::ws::close::SLOW_CONSUMER);
    }
    w.moa.post_message(&moa_live, &r, "still here").await.unwrap();
    assert!(healthy.wait_for(inbox, Duration::from_secs(20), |_| true).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_packages_are_capped_per_user() {
    let srv = TestServer::start_with(None, |c| c.key_packages_per_user = 6);
    let c = moa_account().register(&srv.url()).await.unwrap();
    let start = key_package_count(&c).await;
    assert!(start <= 6);
    let room = 6 - start as usize;
    assert_eq!(c.mls_publish_key_packages(room).await.unwrap() as usize, 6);
    assert_eq!(code(c.mls_publish_key_packages(1).await), Some(ErrorCode::QuotaExceeded));
    assert_eq!(key_package_count(&c).await, 6, "nothing of the refused call was kept");
}

/// The caller's unclaimed key packages, as the server counts them.
async fn key_package_count(c: &Client) -> u32 {
    c.call::<CountKeyPackages>(&(), &()).await.unwrap().available
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_mls_messages_are_refused() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    assert_eq!(w.spec.mls_sync(p).await.map(|_| ()).ok(), Some(()));
    let me = w.spec.user_id().unwrap();
    let pk = PracticePublicKey { epoch: 2, hpke_pub: B64(vec![0; 32]), signer: me, signature: B64(vec![0; 64]) };
    let entry = |commit: usize, welcome: usize| SubmitCommit {
        epoch: 2,
        commit: Some(B64(vec![0; commit])),
        welcome: (welcome > 0).then(|| B64(vec![0; welcome])),
        group_info: None,
        reinit: None,
        added: vec![],
        removed: vec![me],
        public_key: pk.clone(),
        history: B64(vec![0; 56]),
    };
    let limit = handoff_server::mls::MAX_COMMIT;
    assert!(limit <= 512 * 1024 && handoff_server::mls::MAX_WELCOME <= 512 * 1024, "well below the old 8 MiB");
    let e = w.spec.call::<SubmitMlsCommit>(&p, &entry(limit + 1, 0)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadTooLarge), "{e}");
    let e = w.spec.call::<SubmitMlsCommit>(&p, &entry(100, handoff_server::mls::MAX_WELCOME + 1)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadTooLarge), "{e}");
    let mut with_info = entry(100, 0);
    with_info.group_info = Some(B64(vec![0; handoff_server::mls::MAX_GROUP_INFO + 1]));
    let e = w.spec.call::<SubmitMlsCommit>(&p, &with_info).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadTooLarge), "a group info has its limit too: {e}");
    // A body past the MLS routes' limit is refused before it is parsed.
    let e = w.spec.call::<SubmitMlsCommit>(&p, &entry(2 * MIB, 0)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadTooLarge), "{e}");
    // The sealed state has its own limit.
    let version = w.spec.call::<LoadMlsState>(&(), &()).await.unwrap().version;
    let big = PutMlsState { expected_version: version, sealed: B64(vec![0; handoff_server::mls::MAX_SEALED_STATE + 1]) };
    let e = w.spec.call::<SaveMlsState>(&(), &big).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadTooLarge), "{e}");
    // Nothing was stored: the group is where it was and the state is unchanged.
    assert_eq!(w.spec.practice(p).await.unwrap().public_key.epoch, 1);
    assert_eq!(w.spec.call::<LoadMlsState>(&(), &()).await.unwrap().version, version);
}

/// A loopback TCP proxy in front of the server that records the `after` of every MLS log read passing through.
async fn recording_proxy(srv: &TestServer) -> (String, Arc<Mutex<Vec<u64>>>) {
    let upstream = srv.server.as_ref().unwrap().addr;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    for part in text.split("mls?after=").skip(1) {
                        if let Ok(after) = part.chars().take_while(char::is_ascii_digit).collect::<String>().parse() {
                            record.lock().unwrap().push(after);
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mls_sync_reads_only_what_it_needs() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    assert!(w.spec.mls_sync(p).await.is_ok());
    let (proxy, reads) = recording_proxy(&srv).await;
    // Bob's client goes through the proxy.
    let bob = join_via(&srv, &w.spec, p, &proxy, "bob").await;
    bob.mls_publish_key_packages(2).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(p).await.unwrap(), Some(2));
    assert!(bob.mls_sync(p).await.is_ok(), "bob joins (a joiner may read the whole log once)");
    // Two more epochs go by: two more members are added.
    let mut later = Vec::new();
    for name in ["carol", "dave"] {
        let c = join_via(&srv, &w.spec, p, &srv.url(), name).await;
        c.mls_publish_key_packages(1).await.unwrap();
        w.spec.mls_reconcile(p).await.unwrap().unwrap();
        later.push(c.user_id().unwrap());
    }
    let (carol, dave) = (later[0], later[1]);
    reads.lock().unwrap().clear();
    assert!(matches!(bob.mls_sync(p).await.unwrap(), handoff_client::mls::SyncOutcome::Member(4)));
    bob.practice_key_at(p, 3).await.unwrap();
    let seen = reads.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the proxy saw the log reads");
    assert!(seen.iter().all(|after| *after >= 2), "a member at epoch 2 reads the log only after its epoch, not from 0: {seen:?}");
    assert_eq!(bob.practice_key(p).await.unwrap(), w.spec.practice_key(p).await.unwrap());

    // Bob has joined and caught up: his welcome is neither served nor kept any more.
    assert!(matches!(bob.mls_sync(p).await.unwrap(), handoff_client::mls::SyncOutcome::Member(4)));
    let e = bob.call::<GetMlsWelcome>(&p, &()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    let store = store_of(&srv);
    let log = handoff_store::MlsStore::mls_log(&store, p, 1, 10).await.unwrap();
    assert_eq!(log.iter().map(|e| (e.epoch, e.welcome.is_some())).collect::<Vec<_>>(), vec![(2, false), (3, true), (4, true)]);
    // Carol and Dave have not joined yet: theirs stay.
    assert_eq!(handoff_store::MlsStore::mls_welcome(&store, p, carol).await.unwrap().map(|w| w.0), Some(3));
    assert_eq!(handoff_store::MlsStore::mls_welcome(&store, p, dave).await.unwrap().map(|w| w.0), Some(4));
}

/// Invites `name` to `p` and registers them through the invite, their client talking to `url`.
async fn join_via(srv: &TestServer, admin: &Client, p: PracticeId, url: &str, name: &str) -> Client {
    let email = format!("{name}-{}@cardio.example", uuid::Uuid::new_v4());
    admin.invite(p, &email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(&email).await;
    let mut c = Client::new(url);
    c.register(&email, &email, PASSWORD, Some(&token)).await.unwrap();
    c
}
