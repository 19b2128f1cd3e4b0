//! Issue 12, item 5: the sign-in and kit-check rate limits cannot be
//! bypassed. Each test is an attack on the limits, named after what it stops:
//! parallel guesses racing the count, a stranger locking the owner out, forged
//! `X-Forwarded-For` values, hopping between addresses of one IPv6 /64, a
//! restart wiping the counters, and one account guessed from many addresses.
//!
//! The test servers trust one proxy hop: the test process plays the proxy
//! (the TCP peer is always 127.0.0.1) and says who the client is with the
//! rightmost `X-Forwarded-For` value, as a real reverse proxy appends it. A
//! request without the header comes from the proxy's own address.

use handoff_protocol::api::{Endpoint as _, Login, RecoverStart};
use handoff_protocol::v1::{LoginRequest, RecoverStartRequest};
use handoff_protocol::{B64, ErrorCode};
use handoff_testkit::mail::RegisterConfirmed as _;

use crate::harness::{PASSWORD, TestServer};

const NEW_PASSWORD: &str = "a brand new password";

/// A server behind one trusted proxy hop, with these limits.
fn server(failures_per_account: u32, attempts_per_ip: u32) -> TestServer {
    TestServer::start_with(None, |c| {
        c.trusted_proxy_hops = 1;
        c.auth_failures_per_account = failures_per_account;
        c.auth_attempts_per_ip = attempts_per_ip;
    })
}

fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@clinic.example", uuid::Uuid::new_v4())
}

/// One wrong login for `email`, sent through the proxy with `forwarded` as
/// the `X-Forwarded-For` header lines (none: the proxy's own address). The
/// HTTP status of the answer.
async fn wrong_login(http: &reqwest::Client, srv: &TestServer, email: &str, forwarded: &[&str]) -> u16 {
    let body = LoginRequest { email: email.into(), auth_key: B64(vec![7; 32]) };
    let mut rb = http.post(format!("{}{}", srv.url(), Login::PATH)).json(&body);
    for f in forwarded {
        rb = rb.header("x-forwarded-for", *f);
    }
    rb.send().await.expect("the server answers").status().as_u16()
}

/// One wrong Emergency Access Kit check for `email`, as [`wrong_login`].
async fn wrong_kit(http: &reqwest::Client, srv: &TestServer, email: &str, forwarded: &[&str]) -> u16 {
    let body = RecoverStartRequest { email: email.into(), kit_auth: B64(vec![9; 32]), code: None, recovery_code: None };
    let mut rb = http.post(format!("{}{}", srv.url(), RecoverStart::PATH)).json(&body);
    for f in forwarded {
        rb = rb.header("x-forwarded-for", *f);
    }
    rb.send().await.expect("the server answers").status().as_u16()
}

/// How many answers in `statuses` were not `429 rate_limited`; each must be
/// either that or `expected` (the answer to a wrong guess).
fn not_limited(statuses: &[u16], expected: u16) -> usize {
    for s in statuses {
        assert!(*s == 429 || *s == expected, "unexpected status {s} in {statuses:?}");
    }
    statuses.iter().filter(|s| **s != 429).count()
}

async fn registered(srv: &TestServer, tag: &str) -> (String, Vec<String>) {
    let email = unique_email(tag);
    let kit = srv.client().register_confirmed(&email, "Owner", PASSWORD).await.expect("register");
    (email, kit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_wrong_logins_get_at_most_the_limit() {
    let srv = server(5, 1000);
    let (email, _) = registered(&srv, "owner").await;
    let http = reqwest::Client::new();
    let guesses = (0..40).map(|_| wrong_login(&http, &srv, &email, &[]));
    let statuses = futures_util::future::join_all(guesses).await;
    let through = not_limited(&statuses, 401);
    assert!(through <= 5, "{through} of 40 concurrent guesses were checked; the limit is 5: {statuses:?}");
    assert!(through >= 1, "the first guesses are answered as wrong: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_wrong_kit_checks_get_at_most_the_limit() {
    let srv = server(5, 1000);
    let (email, _) = registered(&srv, "owner").await;
    let http = reqwest::Client::new();
    let guesses = (0..40).map(|_| wrong_kit(&http, &srv, &email, &[]));
    let statuses = futures_util::future::join_all(guesses).await;
    let through = not_limited(&statuses, 401);
    assert!(through <= 5, "{through} of 40 concurrent kit guesses were checked; the limit is 5: {statuses:?}");
    assert!(through >= 1, "the first guesses are answered as wrong: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_lock_the_owner_out() {
    let srv = server(3, 1000);
    let (email, kit) = registered(&srv, "owner").await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(wrong_login(&http, &srv, &email, &["203.0.113.7"]).await);
    }
    assert_eq!(not_limited(&statuses, 401), 3, "the stranger is locked out after 3 failures: {statuses:?}");
    // The owner, from their own address, still signs in.
    srv.client().login(&email, PASSWORD).await.expect("the owner signs in from their own address");

    // The same for the Emergency Access Kit.
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(wrong_kit(&http, &srv, &email, &["203.0.113.7"]).await);
    }
    assert_eq!(not_limited(&statuses, 401), 3, "the stranger's kit guesses are locked out after 3: {statuses:?}");
    srv.client().recover(&email, &kit, NEW_PASSWORD).await.expect("the owner resets with the kit from their own address");
    srv.client().login(&email, NEW_PASSWORD).await.expect("and signs in with the new password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forwarded_for_values_change_nothing() {
    let srv = server(100, 3);
    let http = reqwest::Client::new();
    // The attacker at 198.51.100.9 prepends a fresh fake address each time;
    // the proxy appends the address it really saw. Each guess names a new
    // account, so only the per-address limit stands in the way.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let forged = format!("10.0.0.{i}, 192.0.2.{i}, 198.51.100.9");
        statuses.push(wrong_login(&http, &srv, &unique_email("sprayed"), &[&forged]).await);
    }
    // The fake values in header lines of their own, before the proxy's line.
    for i in 0..4 {
        let fake = format!("10.1.0.{i}");
        statuses.push(wrong_login(&http, &srv, &unique_email("sprayed"), &[&fake, "198.51.100.9"]).await);
    }
    assert_eq!(not_limited(&statuses, 401), 3, "forged values did not escape the per-address limit of 3: {statuses:?}");
    // Another real address is not affected.
    assert_eq!(wrong_login(&http, &srv, &unique_email("other"), &["10.0.0.1, 198.51.100.10"]).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_neighbours_in_one_64_share_a_limit() {
    let srv = server(3, 4);
    let http = reqwest::Client::new();
    // Every address of one /64 is one client: the per-address limit is shared.
    let mut statuses = Vec::new();
    for i in 1..=8u32 {
        let addr = format!("2001:db8:1:2::{i:x}");
        statuses.push(wrong_login(&http, &srv, &unique_email("sprayed"), &[&addr]).await);
    }
    assert_eq!(not_limited(&statuses, 401), 4, "the /64 shares one per-address limit of 4: {statuses:?}");
    // So is the lock-out of one account from that /64.
    let (email, _) = registered(&srv, "owner").await;
    let mut statuses = Vec::new();
    for i in 1..=6u32 {
        let addr = format!("2001:db8:5:6:{i:x}::1");
        statuses.push(wrong_login(&http, &srv, &email, &[&addr]).await);
    }
    assert_eq!(not_limited(&statuses, 401), 3, "the account is locked for the whole /64 after 3 failures: {statuses:?}");
    // The next /64 is another client.
    assert_eq!(wrong_login(&http, &srv, &email, &["2001:db8:5:7::1"]).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockouts_survive_a_restart() {
    let mut srv = server(3, 1000);
    let (email, kit) = registered(&srv, "owner").await;
    for _ in 0..3 {
        let e = srv.client().login(&email, "wrong password!").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidCredentials));
    }
    let e = srv.client().login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited), "locked before the restart");
    let http = reqwest::Client::new();
    let statuses = [
        wrong_kit(&http, &srv, &email, &[]).await,
        wrong_kit(&http, &srv, &email, &[]).await,
        wrong_kit(&http, &srv, &email, &[]).await,
        wrong_kit(&http, &srv, &email, &[]).await,
    ];
    assert_eq!(not_limited(&statuses, 401), 3, "kit checks locked before the restart: {statuses:?}");

    srv.restart();

    let e = srv.client().login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited), "still locked after the restart");
    let e = srv.client().recover(&email, &kit, NEW_PASSWORD).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::RateLimited), "kit checks still locked after the restart");
    // Another address was never locked.
    assert_eq!(wrong_login(&http, &srv, &email, &["203.0.113.8"]).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_spread_over_many_addresses_meets_the_account_ceiling() {
    let srv = TestServer::start_with(None, |c| {
        c.trusted_proxy_hops = 1;
        c.auth_failures_per_account = 3;
        c.auth_failures_per_account_total = 6;
        c.auth_attempts_per_ip = 1000;
    });
    let (email, _) = registered(&srv, "owner").await;
    let http = reqwest::Client::new();
    // Two guesses from each of ten addresses: under every per-address limit.
    let mut statuses = Vec::new();
    for i in 0..10 {
        let addr = format!("203.0.113.{i}");
        for _ in 0..2 {
            statuses.push(wrong_login(&http, &srv, &email, &[&addr]).await);
        }
    }
    assert_eq!(not_limited(&statuses, 401), 6, "the account's ceiling of 6 failures from every address holds: {statuses:?}");
}
