//! Issue 14, "Sessions": the idle timeout (activity is a request or a
//! command; an open socket with its pings is not), ending a session closes
//! its sockets at once, and the session list (a user sees and ends only
//! their own sessions).
//!
//! Idle tests run a server with a one- or two-second `session_idle_secs`
//! and wait a little longer than that: the server's clock is the wall clock.
//! Socket-close tests wait generously (5 s) for a close that the periodic
//! session re-check (every 60 s, `live::SESSION_CHECK`) could not have sent
//! yet, so the close they see came from ending the session.

use std::time::Duration;

use handoff_client::Client;
use handoff_protocol::ErrorCode;
use handoff_protocol::api::{EndOtherSessions, EndSession, ListSessions};
use handoff_protocol::sessions::SessionInfo;
use handoff_protocol::ws::{Command, ReferralId, close};
use handoff_store::UserStore as _;
use handoff_store::sqlite::SqliteStore;
use handoff_testkit::Account;

use crate::harness::{PASSWORD, TestServer};

/// Long enough for a close that ending a session sends at once, far shorter
/// than the periodic re-check (60 s).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A server whose mail goes to its data folder, with `idle_secs` as the idle timeout.
fn server(idle_secs: u64) -> TestServer {
    TestServer::start_with(None, |c| {
        c.smtp_url = None;
        c.session_idle_secs = idle_secs;
    })
}

/// A registered, signed-in account and its email.
async fn account(srv: &TestServer, tag: &str) -> (Client, String) {
    let a = Account::new(tag, "clinic.example", tag);
    (a.register(&srv.url()).await.unwrap(), a.email)
}

/// Another session of the same account.
async fn second_session(srv: &TestServer, email: &str) -> Client {
    let mut c = srv.client();
    c.login(email, PASSWORD).await.unwrap();
    c
}

async fn list(c: &Client) -> Vec<SessionInfo> {
    c.call::<ListSessions>(&(), &()).await.unwrap().sessions
}

fn code(r: handoff_client::Result<impl std::fmt::Debug>) -> Option<ErrorCode> {
    r.unwrap_err().code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_refused_and_ended() {
    let srv = server(1);
    let (a, _) = account(&srv, "idle").await;
    assert_eq!(a.me().await.unwrap().idle_timeout_secs, 1, "the server tells the client its idle timeout");
    let token_hash = handoff_server::state::sha256(a.token().unwrap().as_bytes());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(code(a.me().await), Some(ErrorCode::SessionIdle), "idle past the limit: refused with session_idle");
    let store = SqliteStore::open(srv.data_dir()).unwrap();
    assert_eq!(store.session(&token_hash).await.unwrap(), None, "and ended on the server");
    assert_eq!(code(a.me().await), Some(ErrorCode::Unauthenticated), "the old token signs nobody in again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_a_session_alive_past_the_idle_timeout() {
    let srv = server(2);
    let (a, _) = account(&srv, "busy").await;
    // Four seconds of requests half a second apart: twice the idle timeout, never idle.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        a.me().await.unwrap();
    }
    let token_hash = handoff_server::state::sha256(a.token().unwrap().as_bytes());
    let stored = SqliteStore::open(srv.data_dir()).unwrap().session(&token_hash).await.unwrap().unwrap();
    assert!(stored.last_seen_at > stored.created_at, "activity is written through to the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_socket_does_not_keep_its_session_alive() {
    let srv = server(1);
    let (a, _) = account(&srv, "open").await;
    let mut live = a.live().await.unwrap();
    // Nothing but the socket (and its pings): the session goes idle, the socket closes by itself.
    let closed = live.closed(CLOSE_WAIT).await.expect("the idle session's socket closes");
    assert_eq!(closed.0, close::SESSION_IDLE, "{closed:?}");
    assert_eq!(code(a.me().await), Some(ErrorCode::Unauthenticated), "the socket's idle check ended the session on the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_reconnect_is_not_activity_but_a_command_is() {
    let srv = server(2);
    let (a, _) = account(&srv, "cmds").await;
    let live = a.live().await.unwrap();
    // Commands every half second for four seconds keep the session alive
    // (each is refused, the referral does not exist, but it is the user's doing).
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = live.command(Command::MarkOpened { referral: ReferralId(uuid::Uuid::new_v4()) }).await;
        assert!(r.is_err(), "no such referral");
    }
    a.me().await.expect("commands are activity");
    drop(live);
    // Reconnects alone do not keep it alive.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match a.live().await {
            Ok(l) => drop(l),
            Err(_) => break,
        }
    }
    assert!(
        matches!(code(a.me().await), Some(ErrorCode::SessionIdle | ErrorCode::Unauthenticated)),
        "three seconds of reconnects left the session idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_closes_its_sockets_at_once() {
    let srv = server(1800);
    let (a, email) = account(&srv, "end").await;
    let b = second_session(&srv, &email).await;
    let mut b_live = b.live().await.unwrap();
    let mut a_live = a.live().await.unwrap();
    let theirs = list(&a).await.into_iter().find(|s| !s.current).expect("b's session is listed");
    a.call::<EndSession>(&theirs.handle, &()).await.unwrap();
    let closed = b_live.closed(CLOSE_WAIT).await.expect("the ended session's socket closes at once, not after the minute's re-check");
    assert_eq!(closed.0, close::SESSION_ENDED, "{closed:?}");
    assert_eq!(code(b.me().await), Some(ErrorCode::Unauthenticated), "the ended session is refused");
    assert!(a_live.close_info().is_none(), "the other session's socket stays open");
    a.me().await.expect("the other session still works");
    assert!(a_live.closed(Duration::from_millis(300)).await.is_none(), "and its socket is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_closes_the_sessions_sockets_at_once() {
    let srv = server(1800);
    let (mut a, _) = account(&srv, "logout").await;
    let mut live = a.live().await.unwrap();
    a.logout().await.unwrap();
    let closed = live.closed(CLOSE_WAIT).await.expect("signing out closes the socket at once");
    assert_eq!(closed.0, close::SESSION_ENDED, "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kit_reset_closes_every_old_sessions_sockets_at_once() {
    let srv = server(1800);
    let acct = Account::new("reset", "clinic.example", "reset");
    let mut a = Client::new(srv.url());
    let words = {
        use handoff_testkit::RegisterConfirmed as _;
        a.register_confirmed(&acct.email, &acct.display_name, PASSWORD).await.unwrap()
    };
    let mut live = a.live().await.unwrap();
    let mut other = srv.client();
    other.recover(&acct.email, &words, "another password entirely").await.unwrap();
    let closed = live.closed(CLOSE_WAIT).await.expect("the reset closes the old session's socket at once");
    assert_eq!(closed.0, close::SESSION_ENDED, "{closed:?}");
    other.me().await.expect("the reset's new session works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_list_shows_the_users_own_sessions_only() {
    let srv = server(1800);
    let (a, email) = account(&srv, "list").await;
    let _b = second_session(&srv, &email).await;
    let (c, _) = account(&srv, "stranger").await;
    let mine = list(&a).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine.iter().filter(|s| s.current).count(), 1, "exactly one is this session");
    assert!(mine.iter().all(|s| s.client_addr == "127.0.0.1"), "{mine:?}");
    assert!(mine.iter().all(|s| s.created_at > 0 && s.last_seen_at >= s.created_at), "{mine:?}");
    let theirs = list(&c).await;
    assert_eq!(theirs.len(), 1, "a stranger sees only their own session");
    assert!(theirs.iter().all(|t| mine.iter().all(|m| m.handle != t.handle)));
    // A handle is neither the token nor its hash.
    let token = a.token().unwrap();
    let hash = handoff_server::state::sha256(token.as_bytes());
    for s in &mine {
        assert_ne!(s.handle, token);
        assert!(!s.handle.contains(&handoff_server::sessions::handle_text(&hash)), "the handle is not the token hash");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_end_another_users_session() {
    let srv = server(1800);
    let (a, _) = account(&srv, "victim").await;
    let (mallory, _) = account(&srv, "mallory").await;
    let mut a_live = a.live().await.unwrap();
    let handle = list(&a).await.into_iter().next().unwrap().handle;
    assert_eq!(code(mallory.call::<EndSession>(&handle, &()).await), Some(ErrorCode::NotFound), "another user's handle is not found");
    let ended = mallory.call::<EndOtherSessions>(&(), &()).await.unwrap();
    assert_eq!(ended.ended, 0, "end-others ends only one's own sessions");
    a.me().await.expect("the victim's session still works");
    assert!(a_live.closed(Duration::from_millis(300)).await.is_none(), "and their socket is open");
    for bad in ["", "not-base64!", "AAAA", &"A".repeat(400)] {
        let r = mallory.call::<EndSession>(&bad.to_string(), &()).await;
        assert!(matches!(r.unwrap_err().code(), Some(ErrorCode::NotFound | ErrorCode::NoRoute)), "{bad:?}");
    }
    assert_eq!(code(srv.client().call::<EndSession>(&handle, &()).await), Some(ErrorCode::Unauthenticated), "anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_one_session_leaves_the_others_working() {
    let srv = server(1800);
    let (a, email) = account(&srv, "one").await;
    let b = second_session(&srv, &email).await;
    let c = second_session(&srv, &email).await;
    assert_eq!(list(&a).await.len(), 3);
    let b_handle = list(&b).await.into_iter().find(|s| s.current).unwrap().handle;
    c.call::<EndSession>(&b_handle, &()).await.unwrap();
    assert_eq!(code(b.me().await), Some(ErrorCode::Unauthenticated));
    a.me().await.expect("a's session still works");
    c.me().await.expect("c's session still works");
    assert_eq!(list(&a).await.len(), 2);
    assert_eq!(code(c.call::<EndSession>(&b_handle, &()).await), Some(ErrorCode::NotFound), "an ended session is ended once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_all_other_sessions_leaves_the_current_one() {
    let srv = server(1800);
    let (a, email) = account(&srv, "others").await;
    let b = second_session(&srv, &email).await;
    let c = second_session(&srv, &email).await;
    let mut b_live = b.live().await.unwrap();
    let mut c_live = c.live().await.unwrap();
    let ended = a.call::<EndOtherSessions>(&(), &()).await.unwrap();
    assert_eq!(ended.ended, 2);
    for live in [&mut b_live, &mut c_live] {
        let closed = live.closed(CLOSE_WAIT).await.expect("every other session's socket closes at once");
        assert_eq!(closed.0, close::SESSION_ENDED);
    }
    assert_eq!(code(b.me().await), Some(ErrorCode::Unauthenticated));
    assert_eq!(code(c.me().await), Some(ErrorCode::Unauthenticated));
    a.me().await.expect("the current session stays");
    let left = list(&a).await;
    assert_eq!(left.len(), 1);
    assert!(left.iter().all(|s| s.current));
}
