//! The server's route table is `handoff_protocol::api::ALL`: every endpoint
//! is served with its method, and nothing else is.

use handoff_protocol::ErrorCode;
use handoff_protocol::api::{ALL, Method};

use crate::harness::TestServer;

/// The table as `app::routes` registers it.
fn served() -> Vec<(Method, String)> {
    let mut served = Vec::new();
    let _ = actix_web::App::new().configure(|c| served = handoff_server::app::routes(c));
    served
}

#[test]
fn the_route_table_is_the_protocols_list() {
    let served = served();
    let expected: Vec<(Method, String)> = ALL.iter().map(|(m, p)| (*m, p.to_string())).collect();
    for e in &expected {
        assert!(served.contains(e), "{} {} is in the protocol but not served", e.0, e.1);
    }
    for s in &served {
        assert!(expected.contains(s), "{} {} is served but not in the protocol", s.0, s.1);
    }
    assert_eq!(served.len(), expected.len(), "a route is registered twice");
}

/// Every endpoint answers its method with something other than `no_route`
/// (without a session most answer 401; that is the handler's answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_is_reachable_over_http() {
    let srv = TestServer::start(None);
    let c = srv.client();
    let id = uuid::Uuid::from_u128(0x42).to_string();
    for (method, pattern) in ALL {
        let mut path = String::new();
        let mut rest = *pattern;
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').expect("a closed placeholder") + open;
            path.push_str(&id);
            rest = &rest[close + 1..];
        }
        path.push_str(rest);
        let r = c.raw(method.as_str(), &path, Some("application/json"), b"{}".to_vec()).await.unwrap();
        assert_ne!(r.status, 405, "{method} {pattern}: method not allowed");
        assert_ne!(r.error().map(|e| e.error), Some(ErrorCode::NoRoute), "{method} {pattern}: {} {}", r.status, r.body);
    }
}
