//! The built-in video call's server side (issue 15, wt-rooms-video): the ICE
//! servers reach every browser, a patient's included, without a session.

use handoff_protocol::api::GetIceServers;
use handoff_protocol::call::IceServer;

use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_ice_servers_reach_a_browser_without_a_session_and_default_to_none() {
    let plain = TestServer::start(None);
    assert!(plain.client().call::<GetIceServers>(&(), &()).await.unwrap().ice_servers.is_empty(), "none by default");

    let turn =
        IceServer { urls: vec!["turn:turn.example:3478".into()], username: Some("handoff".into()), credential: Some("secret".into()) };
    let stun = IceServer { urls: vec!["stun:stun.example:3478".into()], username: None, credential: None };
    let servers = vec![stun, turn];
    let configured = servers.clone();
    let srv = TestServer::start_with(None, move |c| c.ice_servers = configured);
    // A fresh client has no session, as a patient's browser.
    let got = srv.client().call::<GetIceServers>(&(), &()).await.unwrap();
    assert_eq!(got.ice_servers, servers);
}
