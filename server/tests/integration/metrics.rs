//! The metrics listener (issue 17): after a scenario over HTTP and the live
//! socket, a scrape of `GET /metrics` on the metrics address holds every
//! expected series with plausible values, and no identifier (no id, email,
//! token or referral number) anywhere; the public port does not serve it.

use std::time::Duration;

use handoff_client::referrals::To;
use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, GetReferral, Login};
use handoff_protocol::ws::{AckBody, Command, Event, StreamId};
use handoff_testkit::{content, routing};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{TestServer, world};

const WAIT: Duration = Duration::from_secs(20);

/// A test server with its metrics listener on a free loopback port.
pub fn with_metrics(adjust: impl FnOnce(&mut handoff_server::Config)) -> TestServer {
    TestServer::start_with(None, |c| {
        c.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        adjust(c);
    })
}

/// The text of `GET /metrics` on `srv`'s metrics listener.
pub async fn scrape(srv: &TestServer) -> String {
    let addr = srv.server.as_ref().and_then(|s| s.metrics_addr).expect("the metrics listener is bound");
    let res = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    res.text().await.unwrap()
}

/// The value of the sample `series` (its name and labels, exactly as
/// rendered), or `None` if the scrape has no such sample.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

/// Whether `text` holds a UUID, hyphenated or as 32 hex digits in a row.
fn has_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    let hyphenated =
        |w: &[u8]| w.iter().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    let run = b.split(|c| !c.is_ascii_hexdigit()).any(|r| r.len() >= 32);
    run || b.windows(36).any(hyphenated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_scenario_has_every_series_and_no_identifier() {
    let srv = with_metrics(|_| {});
    // Sign-ins, practices, verification and keys: the world's own HTTP traffic.
    let w = world(&srv, 1).await;
    // And one sign-in of the usual kind, on a client of its own.
    let mut again = srv.client();
    again.login(&w.moa_account.email, &w.moa_account.password).await.unwrap();
    let to = w.specialists[0].id;
    let mut spec_live = w.spec.live().await.unwrap();
    spec_live.subscribe(StreamId::Practice(to), 0).await.unwrap();
    let moa_live = w.moa.live().await.unwrap();
    moa_live.subscribe(StreamId::Practice(w.referring.id), 0).await.unwrap();

    // A referral and a thread message, each live at the other side.
    let ack = w
        .moa
        .send_referral(&moa_live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Metric Patient"), &[])
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, number, .. } = ack else { panic!("{ack:?}") };
    spec_live.wait_for(StreamId::Practice(to), WAIT, |e| matches!(e, Event::ReferralSent { .. })).await.expect("the referral arrives");
    let r = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r, "Metrics are counted, never read.").await.unwrap();
    spec_live.wait_for(StreamId::Practice(to), WAIT, |e| matches!(e, Event::MessagePosted { .. })).await.expect("the message arrives");
    // Two refused commands: one the hub refuses, one the decoder does.
    let e = spec_live.command(Command::Cancel { referral: rid }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden));
    spec_live.send_raw(Message::Text(r#"{"id": 77, "cmd": {"type": "launch_rockets"}}"#.into())).unwrap();
    assert_eq!(spec_live.next_error(WAIT).await.unwrap().error, ErrorCode::UnknownCommand);

    // The public port answers /metrics as any unknown route.
    let public = reqwest::get(format!("{}/metrics", srv.url())).await.unwrap();
    assert_eq!(public.status(), 404, "metrics are never on the public port");
    let body: serde_json::Value = public.json().await.unwrap();
    assert_eq!(body["error"], "no_route");
    // And the metrics listener serves nothing else.
    let addr = srv.server.as_ref().and_then(|s| s.metrics_addr).unwrap();
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 404);

    let text = scrape(&srv).await;
    let at_least = |series: &str, min: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("{series} missing from the scrape:\n{text}"));
        assert!(v >= min, "{series} is {v}, expected at least {min}:\n{text}");
    };
    // Sockets and actors, now: both sockets open, the inboxes and the referral live.
    at_least("handoff_ws_sockets", 2.0);
    at_least(r#"handoff_live_actors{kind="practice"}"#, 2.0);
    at_least(r#"handoff_live_actors{kind="referral"}"#, 1.0);
    // Every command sent, by type and outcome.
    at_least(r#"handoff_ws_commands_total{command="subscribe",outcome="ok"}"#, 2.0);
    at_least(r#"handoff_ws_commands_total{command="send_referral",outcome="ok"}"#, 1.0);
    at_least(r#"handoff_ws_commands_total{command="post_message",outcome="ok"}"#, 1.0);
    at_least(r#"handoff_ws_commands_total{command="cancel",outcome="forbidden"}"#, 1.0);
    at_least(r#"handoff_ws_commands_total{command="unknown",outcome="unknown_command"}"#, 1.0);
    let commands: f64 = text
        .lines()
        .filter(|l| l.starts_with("handoff_ws_commands_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(commands >= 6.0, "six commands were sent, {commands} counted");
    // The store writes behind them: the referral and the message, each one commit.
    at_least(r#"handoff_store_commits_total{call="commit"}"#, 2.0);
    at_least(r#"handoff_store_commit_seconds_count{call="commit"}"#, 2.0);
    at_least(r#"handoff_store_commit_seconds_bucket{le="+Inf",call="commit"}"#, 2.0);
    // The events pushed: the referral and the message reached both inboxes.
    at_least("handoff_ws_events_pushed_total", 4.0);
    at_least("handoff_ws_slow_consumer_closes_total", 0.0);
    at_least("handoff_mail_outbox_depth", 0.0);
    at_least("handoff_mail_outbox_oldest_age_seconds", 0.0);
    // HTTP by route pattern and status, with latency; a path no route matched is `unmatched`.
    let (referral_route, login_route) = (GetReferral::PATH, Login::PATH);
    at_least(&format!(r#"handoff_http_requests_total{{method="GET",route="{referral_route}",status="200"}}"#), 1.0);
    at_least(&format!(r#"handoff_http_requests_total{{method="POST",route="{login_route}",status="200"}}"#), 1.0);
    at_least(r#"handoff_http_requests_total{method="GET",route="unmatched",status="404"}"#, 1.0);
    at_least(&format!(r#"handoff_http_request_seconds_count{{method="GET",route="{referral_route}"}}"#), 1.0);

    // No identifier anywhere: no UUID, no email, no session token, no referral number.
    assert!(!has_uuid(&text), "a UUID in the scrape:\n{text}");
    assert!(!text.contains('@'), "an email address in the scrape:\n{text}");
    for token in [w.moa.token(), w.spec.token(), w.staff.token(), again.token()].into_iter().flatten() {
        assert!(!text.contains(token), "a session token in the scrape");
    }
    assert!(!text.contains("HR-") && !text.contains(&number), "a referral number in the scrape:\n{text}");
    for id in [rid.0, w.referring.id.0, to.0, w.moa.user_id().unwrap().0] {
        assert!(!text.contains(&id.simple().to_string()) && !text.contains(&id.to_string()), "an id in the scrape");
    }
}

#[test]
fn the_uuid_scan_finds_both_spellings_and_nothing_else() {
    let id = uuid::Uuid::new_v4();
    assert!(has_uuid(&format!("x{id}y")));
    assert!(has_uuid(&id.simple().to_string()));
    assert!(!has_uuid(r#"handoff_http_request_seconds_bucket{le="0.0005"} 3"#));
}
