//! Session activity, the idle timeout, and the session list (issue 14, "Sessions").
//!
//! **Activity.** A session's activity is an authenticated HTTP request, or a
//! WebSocket command other than `subscribe`/`unsubscribe`. Opening a socket,
//! its pings, reconnects and stream resumes are not activity: a client that is
//! merely open does not keep its session alive. [`Sessions`] keeps each
//! session's last activity in memory and writes it through to the store at
//! most once per [`Sessions::write_every`], so a busy session costs one store
//! write a minute, not one per request. After a restart the stored value may
//! lag the real one by that much (the session then ends up to a minute early).
//!
//! **The idle timeout.** A session whose last activity is `session_idle_secs`
//! old (30 minutes by default) is refused with `session_idle`, deleted, and its
//! sockets closed with 4002 (`close::SESSION_IDLE`). An open socket does not wait for a request to find
//! out: it sleeps until its session's idle deadline and checks then.
//!
//! **Ending a session closes its sockets at once.** Every open socket is
//! registered under its session's token hash. Ending a session (sign-out, the
//! idle timeout, the session list, "end all others", a kit reset) kills those
//! sockets' connections, which their socket loops close with 4001 as soon as
//! they wake; the minute-long periodic re-check in `live.rs` stays only as a
//! backstop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;

use handoff_actors::conn::Conn;
use handoff_protocol::sessions::{SessionInfo, SessionList, SessionsEnded};
use handoff_protocol::ws::close;
use handoff_protocol::{ErrorCode, UnixMillis, UserId};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now};

/// The longest a session's activity waits in memory before it is written through.
pub const WRITE_EVERY: Duration = Duration::from_secs(60);

/// The most bytes of a `User-Agent` kept with a session.
pub const USER_AGENT_BYTES: usize = 256;

/// What the server knows, in memory, of a session's activity.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// The last activity.
    at: UnixMillis,
    /// The last value written through to the store.
    written: UnixMillis,
}

/// Session activity in memory, and the open sockets of each session.
#[derive(Debug)]
pub struct Sessions {
    idle_ms: i64,
    write_every_ms: i64,
    seen: Mutex<HashMap<Vec<u8>, Seen>>,
    sockets: Mutex<HashMap<Vec<u8>, Vec<Conn>>>,
}

/// One socket's place in [`Sessions`]; dropping it takes the socket out.
#[derive(Debug)]
pub struct Registered {
    sessions: Arc<Sessions>,
    token_hash: Vec<u8>,
    conn: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut sockets = self.sessions.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = sockets.get_mut(&self.token_hash) {
            conns.retain(|c| c.id != self.conn);
            if conns.is_empty() {
                sockets.remove(&self.token_hash);
            }
        }
    }
}

impl Sessions {
    /// Sessions idle after `idle`; activity is written through at most every
    /// [`WRITE_EVERY`] (or a tenth of `idle`, if that is shorter).
    pub fn new(idle: Duration) -> Self {
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX).max(1);
        let write_every_ms = (WRITE_EVERY.as_millis() as i64).min(idle_ms / 10).max(1);
        Self { idle_ms, write_every_ms, seen: Mutex::default(), sockets: Mutex::default() }
    }

    /// The idle timeout, in milliseconds.
    pub fn idle_ms(&self) -> i64 {
        self.idle_ms
    }

    /// How stale the stored `last_seen_at` may be, in milliseconds.
    pub fn write_every(&self) -> i64 {
        self.write_every_ms
    }

    /// The session's last activity: the later of what the store holds (`stored`) and what memory holds.
    pub fn last_seen(&self, token_hash: &[u8], stored: UnixMillis) -> UnixMillis {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(token_hash).map_or(stored, |s| s.at.max(stored))
    }

    /// When the session goes idle, given what the store holds.
    pub fn idle_at(&self, token_hash: &[u8], stored: UnixMillis) -> UnixMillis {
        self.last_seen(token_hash, stored).saturating_add(self.idle_ms)
    }

    /// Whether the session is idle at `at`.
    pub fn is_idle(&self, token_hash: &[u8], stored: UnixMillis, at: UnixMillis) -> bool {
        at >= self.idle_at(token_hash, stored)
    }

    /// Records activity at `at`. Answers `Some(at)` when the store should be
    /// told (the last write through is [`write_every`](Self::write_every) old).
    pub fn touch(&self, token_hash: &[u8], stored: UnixMillis, at: UnixMillis) -> Option<UnixMillis> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let s = seen.entry(token_hash.to_vec()).or_insert(Seen { at: stored, written: stored });
        s.at = s.at.max(at);
        s.written = s.written.max(stored);
        (s.at - s.written >= self.write_every_ms).then(|| {
            s.written = s.at;
            s.at
        })
    }

    /// Registers an open socket of a session, until the guard drops.
    pub fn register(self: &Arc<Self>, token_hash: &[u8], conn: Conn) -> Registered {
        let id = conn.id;
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner).entry(token_hash.to_vec()).or_default().push(conn);
        Registered { sessions: self.clone(), token_hash: token_hash.to_vec(), conn: id }
    }

    /// Forgets an ended session and closes its sockets (4001). Answers how many sockets were told.
    pub fn ended(&self, token_hash: &[u8]) -> usize {
        self.ended_with(token_hash, close::SESSION_ENDED)
    }

    /// As [`ended`](Self::ended), closing the sockets with `code` (4002 for the idle timeout).
    pub fn ended_with(&self, token_hash: &[u8], code: u16) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).remove(token_hash);
        let conns = self.sockets.lock().unwrap_or_else(PoisonError::into_inner).remove(token_hash).unwrap_or_default();
        for c in &conns {
            c.kill(code);
        }
        conns.len()
    }

    /// Forgets nothing but closes the sockets of every session of `user` (for
    /// a kit reset, which revoked all the user's sessions in the store).
    pub fn ended_for_user(&self, user: UserId) {
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        sockets.retain(|_, conns| {
            let theirs = conns.iter().any(|c| c.user == user);
            if theirs {
                conns.iter().for_each(|c| c.kill(close::SESSION_ENDED));
            }
            !theirs
        });
    }

    /// Drops the activity of sessions idle at `at` (they are refused anyway;
    /// this bounds the memory held for sessions nobody uses).
    pub fn prune(&self, at: UnixMillis) {
        let idle = self.idle_ms;
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, s| s.at.saturating_add(idle) > at);
    }

    /// Sessions with activity in memory (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Ends a session: deletes it from the store, forgets its activity, closes its sockets (4001).
pub async fn end(state: &AppState, token_hash: &[u8]) -> ApiResult<()> {
    end_in(&*state.store, &state.sessions, token_hash, close::SESSION_ENDED).await
}

/// Ends a session after the idle timeout: as [`end`], closing its sockets with 4002.
pub async fn end_idle(state: &AppState, token_hash: &[u8]) -> ApiResult<()> {
    end_in(&*state.store, &state.sessions, token_hash, close::SESSION_IDLE).await
}

/// Ends a session, closing its sockets with `code`, given the store and the
/// registry (the socket loop holds those, not the state).
pub async fn end_in(store: &dyn handoff_store::Store, sessions: &Sessions, token_hash: &[u8], code: u16) -> ApiResult<()> {
    store.delete_session(token_hash).await?;
    sessions.ended_with(token_hash, code);
    Ok(())
}

/// The refusal of an idle session.
pub fn idle_error(state: &AppState) -> ApiError {
    let minutes = state.config.session_idle().as_secs().div_ceil(60);
    ApiError::new(
        ErrorCode::SessionIdle,
        format!("you were signed out after {minutes} minute(s) without activity; sign in again with your password"),
    )
}

/// Records an authenticated HTTP request as activity on its session, writing it through when due.
pub async fn activity(state: &AppState, who: &Authed) -> ApiResult<()> {
    if let Some(at) = state.sessions.touch(&who.token_hash, who.last_seen_at, now()) {
        state.store.touch_session(&who.token_hash, at).await?;
    }
    Ok(())
}

/// The `User-Agent` of a request, truncated to [`USER_AGENT_BYTES`] (at a character boundary).
pub fn user_agent(req: &HttpRequest) -> String {
    let ua = req.headers().get("user-agent").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
    let mut end = ua.len().min(USER_AGENT_BYTES);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua.get(..end).unwrap_or_default().chars().filter(|c| !c.is_control()).collect()
}

/// A short label for a `User-Agent`: "Chrome on Linux", "Firefox on Windows",
/// "Handoff client" for the native client. A heuristic over the well-known
/// product tokens (no parser crate: the label is a hint for the user, not a
/// security decision); "Unknown browser" when nothing matches.
pub fn browser_label(ua: &str) -> String {
    if ua.is_empty() {
        return "Unknown browser".into();
    }
    let has = |t: &str| ua.contains(t);
    // Order matters: Edge and Opera also say Chrome; Chrome also says Safari.
    let browser = if has("Edg/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("HeadlessChrome/") || has("Chrome/") || has("Chromium/") || has("CriOS/") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else if has("handoff") || has("Handoff") {
        "Handoff client"
    } else {
        return ua.split('/').next().filter(|p| !p.is_empty() && p.len() <= 32).map_or("Unknown browser".into(), |p| p.to_string());
    };
    let system = if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPad") || has("iOS") {
        Some("iOS")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") || has("X11") {
        Some("Linux")
    } else {
        None
    };
    match system {
        Some(s) => format!("{browser} on {s}"),
        None => browser.to_string(),
    }
}

/// A session's handle as the wire writes it.
pub fn handle_text(handle: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(handle)
}

/// `GET /api/v1/account/sessions`: the user's live sessions, oldest first.
pub async fn list(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let t = now();
    let sessions = state
        .store
        .sessions_of(who.user.id)
        .await?
        .into_iter()
        .filter(|s| s.expires_at > t && !state.sessions.is_idle(&s.token_hash, s.last_seen_at, t))
        .map(|s| SessionInfo {
            handle: handle_text(&s.handle),
            browser: browser_label(&s.user_agent),
            client_addr: s.client_addr.clone(),
            created_at: s.created_at,
            last_seen_at: state.sessions.last_seen(&s.token_hash, s.last_seen_at),
            current: s.token_hash == who.token_hash,
        })
        .collect();
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(SessionList { sessions }))
}

/// `DELETE /api/v1/account/sessions/{handle}`: ends one of the user's own
/// sessions and closes its sockets. A handle that is not one of the user's
/// sessions (malformed, ended, or another user's) is `not_found`.
pub async fn end_one(state: web::Data<AppState>, who: Authed, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(path.as_bytes())
        .ok()
        .filter(|h| h.len() == 16)
        .ok_or_else(|| ApiError::not_found("session"))?;
    let token_hash = state.store.end_session_by_handle(who.user.id, &handle).await?;
    let closed = state.sessions.ended(&token_hash);
    tracing::info!(user = %who.user.id, sockets = closed, "session ended from the session list");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/account/sessions/end-others`: ends every session of the user but this one.
pub async fn end_others(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let ended = state.store.end_other_sessions(who.user.id, &who.token_hash).await?;
    for th in &ended {
        state.sessions.ended(th);
    }
    tracing::info!(user = %who.user.id, sessions = ended.len(), "other sessions ended");
    Ok(HttpResponse::Ok().json(SessionsEnded { ended: u32::try_from(ended.len()).unwrap_or(u32::MAX) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_short_labels() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(browser_label(chrome), "Chrome on Linux");
        let edge =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0";
        assert_eq!(browser_label(edge), "Edge on Windows");
        let firefox = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(browser_label(firefox), "Firefox on macOS");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_label(safari), "Safari on iOS");
        assert_eq!(browser_label(""), "Unknown browser");
        assert_eq!(browser_label("curl/8.5.0"), "curl");
    }

    #[test]
    fn activity_is_written_through_at_most_once_per_interval() {
        let s = Sessions::new(Duration::from_secs(1800));
        let th = [1u8; 32];
        assert_eq!(s.write_every(), 60_000);
        assert_eq!(s.touch(&th, 1_000, 2_000), None, "a second after the stored value: kept in memory");
        assert_eq!(s.last_seen(&th, 1_000), 2_000);
        assert_eq!(s.touch(&th, 1_000, 61_000), Some(61_000), "a minute after the last write: written");
        assert_eq!(s.touch(&th, 1_000, 62_000), None);
        assert!(!s.is_idle(&th, 1_000, 62_000 + 1_799_999));
        assert!(s.is_idle(&th, 1_000, 62_000 + 1_800_000));
        s.prune(62_000 + 1_800_000);
        assert_eq!(s.tracked(), 0, "idle sessions are forgotten");
    }

    #[test]
    fn ending_a_session_kills_its_connections_only() {
        let s = Arc::new(Sessions::new(Duration::from_secs(60)));
        let user = UserId::from_bytes([7; 16]);
        let (a, _out_a) = Conn::new(user, 8);
        let (b, _out_b) = Conn::new(user, 8);
        let _ra = s.register(&[1; 32], a.clone());
        let rb = s.register(&[2; 32], b.clone());
        assert_eq!(s.ended(&[1; 32]), 1);
        assert_eq!(a.kill_requested(), Some(close::SESSION_ENDED));
        assert_eq!(b.kill_requested(), None, "another session's socket stays open");
        drop(rb);
        assert_eq!(s.ended(&[2; 32]), 0, "a closed socket is no longer registered");
    }

    #[test]
    fn user_agents_are_truncated_at_a_character_boundary() {
        let long = "é".repeat(200);
        let req = actix_web::test::TestRequest::default().insert_header(("user-agent", long.as_str())).to_http_request();
        let ua = user_agent(&req);
        assert!(ua.len() <= USER_AGENT_BYTES && ua.len() >= USER_AGENT_BYTES - 1, "{}", ua.len());
    }
}
