//! The signed-in user's sessions on the wire: the session list and ending
//! sessions (`/account/sessions`).
//!
//! A session is named by its *handle*, a random id the server gives each
//! session. It is neither the session token nor the token's hash: a handle
//! read from the list signs nobody in.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// One of the user's sessions, as the session list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// Names the session in `DELETE /account/sessions/{handle}` (URL-safe base64).
    pub handle: String,
    /// A short label for the browser and system, from its `User-Agent`
    /// ("Chrome on Linux"; "Unknown browser" without one).
    pub browser: String,
    /// The client address the session was started from.
    pub client_addr: String,
    /// When the session was started.
    pub created_at: UnixMillis,
    /// The session's last activity the server knows of.
    pub last_seen_at: UnixMillis,
    /// This is the session the list was asked with.
    pub current: bool,
}

/// Answer to `GET /account/sessions`: the user's live sessions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionInfo>,
}

/// Answer to `POST /account/sessions/end-others`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsEnded {
    /// How many sessions were ended.
    pub ended: u32,
}
