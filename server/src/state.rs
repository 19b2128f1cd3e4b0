//! Shared application state and small helpers every handler uses.

use std::sync::Arc;

use actix::Addr;
use sha2::{Digest, Sha256};

use handoff_actors::mailer::{Kick, Mailer};
use handoff_protocol::UnixMillis;
use handoff_store::{NewMail, Store};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::RateLimiter;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The server's settings, after every configuration layer.
    pub config: Arc<Config>,
    /// The mail outbox drainer.
    pub mailer: Addr<Mailer>,
    /// The live actor registry.
    pub hub: Arc<handoff_actors::hub::Hub>,
    /// Login, recovery and registration limits.
    pub limiter: Arc<RateLimiter>,
    /// Key for deriving decoy salts for unknown emails.
    pub prelogin_secret: Arc<Vec<u8>>,
    /// Open WebSockets per user, capped at `ws_sockets_per_user`.
    pub sockets: Arc<crate::live::Sockets>,
    /// Key of the free referral codes' keyed hash (`free.rs`).
    pub free_secret: Arc<Vec<u8>>,
    /// The server's metrics (served by the metrics listener, `metrics.rs`).
    pub metrics: Arc<handoff_actors::metrics::Metrics>,
    /// Session activity (the idle timeout) and each session's open sockets.
    pub sessions: Arc<crate::sessions::Sessions>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Queues an email durably, then wakes the mailer.
    pub async fn send_mail(&self, to: &str, subject: &str, body: String) -> ApiResult<()> {
        self.store.enqueue_mail(NewMail { recipient: to.into(), subject: subject.into(), body, now: now() }).await?;
        // Bounded mailbox: if it is full, the next poll picks the mail up anyway.
        let _ = self.mailer.try_send(Kick);
        Ok(())
    }
}

/// Now, in Unix milliseconds.
pub fn now() -> UnixMillis {
    handoff_actors::now_millis()
}

/// SHA-256.
pub fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// `n` random bytes from the OS.
pub fn random_bytes(n: usize) -> ApiResult<Vec<u8>> {
    let mut v = vec![0u8; n];
    getrandom::fill(&mut v).map_err(ApiError::internal)?;
    Ok(v)
}

/// A random URL-safe token with 256 bits of entropy.
pub fn random_token() -> ApiResult<String> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?))
}

/// Constant-time equality for secrets' hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
