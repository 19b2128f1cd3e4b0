//! Cross-site request forgery: a page on another site makes the victim's
//! browser send a state-changing request with the victim's session cookie.
//! Every such request is refused before it does anything (`server/src/origin.rs`).

use handoff_protocol::ErrorCode;
use handoff_protocol::api::{ALL, AcceptInvite, Endpoint as _, GetMe, ListPractices, Logout, Method};
use handoff_protocol::v1::Role;
use handoff_testkit::{moa_account, referring_office};

use crate::harness::{Smtp, TestServer};

const EVIL: &str = "https://evil.example";

/// A path of `pattern` with every `{placeholder}` filled with a well-formed id.
fn filled(pattern: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    pattern.split('/').map(|seg| if seg.starts_with('{') { id.as_str() } else { seg }).collect::<Vec<_>>().join("/")
}

fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// A request as the victim's browser would send it: the session as a cookie.
fn browser(url: &str, m: reqwest::Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(m, format!("{url}{path}"))
        .header("cookie", format!("handoff_session={cookie}"))
        .header("content-type", "application/json")
        .body("{}")
}

async fn refused(rb: reqwest::RequestBuilder, what: &str) {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let body: handoff_protocol::ErrorBody = r.json().await.unwrap_or_else(|e| panic!("{what}: not an error body ({status}): {e}"));
    assert_eq!((status, body.error), (403, ErrorCode::Forbidden), "{what}");
    assert!(body.message.contains("this server's own pages"), "{what}: {}", body.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_route_refuses_another_sites_origin() {
    let srv = TestServer::start(None);
    let victim = moa_account().register(&srv.url()).await.unwrap();
    let cookie = victim.token().unwrap().to_owned();
    let url = srv.url();
    let mut checked = 0;
    for (m, pattern) in ALL.iter().copied().filter(|(m, _)| *m != Method::Get) {
        let path = filled(pattern);
        let what = format!("{m:?} {pattern}");
        refused(browser(&url, method(m), &path, &cookie).header("origin", EVIL), &format!("{what} with Origin {EVIL}")).await;
        refused(browser(&url, method(m), &path, &cookie).header("origin", "null"), &format!("{what} with Origin null")).await;
        refused(
            browser(&url, method(m), &path, &cookie).header("sec-fetch-site", "cross-site"),
            &format!("{what} with Sec-Fetch-Site: cross-site and no Origin"),
        )
        .await;
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} state-changing routes in api::ALL");
    // Reads are not state changes: a cross-site GET is answered (the browser
    // keeps the answer from the other site's script; SameSite keeps the cookie off).
    let r = browser(&url, reqwest::Method::GET, GetMe::PATH, &cookie).header("origin", EVIL).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_logout_does_not_end_the_session() {
    let srv = TestServer::start(None);
    let victim = moa_account().register(&srv.url()).await.unwrap();
    let cookie = victim.token().unwrap().to_owned();
    let url = srv.url();
    refused(browser(&url, reqwest::Method::POST, Logout::PATH, &cookie).header("origin", EVIL), "logout from another site").await;
    victim.me().await.expect("the session survives a cross-site logout");

    // The server's own pages (by Host, or by the configured public URL) may sign out.
    let host = url.trim_start_matches("http://").to_owned();
    let own = browser(&url, reqwest::Method::POST, Logout::PATH, &cookie).header("origin", format!("http://{host}")).send().await.unwrap();
    assert!(own.status().is_success(), "same-origin logout: {}", own.status());
    assert_eq!(victim.me().await.unwrap_err().code(), Some(ErrorCode::Unauthenticated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_invite_acceptance_joins_nothing() {
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));
    let admin = moa_account().register(&srv.url()).await.unwrap();
    let practice = referring_office().create(&admin).await.unwrap();
    let bob_account = moa_account();
    let bob = bob_account.register(&srv.url()).await.unwrap();
    admin.invite(practice.id, &bob_account.email, Role::Member).await.unwrap();
    let token = smtp.invite_token(&bob_account.email).await;
    let cookie = bob.token().unwrap().to_owned();
    let url = srv.url();
    let accept = AcceptInvite::PATH.replace("{token}", &token);
    assert_ne!(accept, AcceptInvite::PATH, "the pattern names its token {{token}}");

    refused(browser(&url, reqwest::Method::POST, &accept, &cookie).header("origin", EVIL), "invite acceptance from another site").await;
    refused(
        browser(&url, reqwest::Method::POST, &accept, &cookie).header("sec-fetch-site", "same-site"),
        "invite acceptance from a sibling subdomain",
    )
    .await;
    assert!(bob.practices().await.unwrap().is_empty(), "a refused acceptance joins nothing");
    assert_eq!(admin.members(practice.id).await.unwrap().members.len(), 1);

    // From the configured public origin (behind a proxy), the same acceptance works, once.
    let own = browser(&url, reqwest::Method::POST, &accept, &cookie).header("origin", "http://handoff.test").send().await.unwrap();
    assert!(own.status().is_success(), "acceptance from the public origin: {}", own.status());
    let r = browser(&url, reqwest::Method::GET, ListPractices::PATH, &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(bob.practices().await.unwrap().len(), 1);
}
