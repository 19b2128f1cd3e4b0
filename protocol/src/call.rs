//! The built-in video call's deployment settings: the STUN/TURN servers the
//! browsers use (`HANDOFF_ICE_SERVERS`). The call's signalling itself travels
//! as sealed room commands (`room_signal` / `guest_signal`).

use serde::{Deserialize, Serialize};

/// One STUN or TURN server, in the shape `RTCIceServer` takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs of the one server.
    pub urls: Vec<String>,
    /// The TURN user name, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN credential, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// Why this entry is unusable, if it is: no URL, or a URL that is not a
    /// STUN or TURN URL.
    pub fn problem(&self) -> Option<String> {
        if self.urls.is_empty() {
            return Some("an ICE server needs at least one URL".into());
        }
        self.urls
            .iter()
            .find(|u| !["stun:", "stuns:", "turn:", "turns:"].iter().any(|s| u.starts_with(s)))
            .map(|u| format!("{u:?} is not a stun:, stuns:, turn: or turns: URL"))
    }
}

/// `GET /call/ice-servers`: the ICE servers of this deployment (none by
/// default: browsers on one machine or one network need none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IceServers {
    /// For `RTCConfiguration.iceServers`, as they are.
    pub ice_servers: Vec<IceServer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ice_server_must_name_stun_or_turn_urls() {
        let ok = IceServer { urls: vec!["stun:stun.example:3478".into(), "turns:turn.example".into()], username: None, credential: None };
        assert_eq!(ok.problem(), None);
        assert!(IceServer { urls: vec![], ..ok.clone() }.problem().is_some());
        assert!(IceServer { urls: vec!["https://turn.example".into()], ..ok }.problem().is_some());
    }
}
