//! Configuration in layers: compiled-in defaults, then an optional TOML file
//! (`--config FILE` or `HANDOFF_CONFIG`), then `HANDOFF_*` environment
//! variables, then command-line flags. The defaults serve: `handoff serve`
//! with nothing else stores in `./data` and listens on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA: &str = "./data";

/// Everything the server needs to run.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub bind: SocketAddr,
    /// Where the store, and the mail folder without SMTP, live.
    pub data: PathBuf,
    /// The URL people open; used in email links and to decide `Secure` cookies.
    /// Defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// The built web client to serve at `/` (xtask builds it into `target/web`).
    pub static_dir: Option<PathBuf>,
    /// lettre SMTP URL (`smtp://host:port`, `smtp://host:587?tls=required`,
    /// `smtps://user:pass@host`). Unset: mail goes to `<data>/mail/`.
    pub smtp_url: Option<String>,
    /// From address for outgoing mail.
    pub mail_from: String,
    /// Session lifetime, seconds.
    pub session_ttl_secs: u64,
    /// Invite lifetime, seconds.
    pub invite_ttl_secs: u64,
    /// Login and recovery attempts per client address per window.
    pub auth_attempts_per_ip: u32,
    /// Failed logins (or kit attempts) per account per window before lock-out.
    pub auth_failures_per_account: u32,
    /// Registrations per client address per window.
    pub registrations_per_ip: u32,
    /// The rate-limit window, seconds.
    pub rate_window_secs: u64,
    /// Mail outbox poll interval, milliseconds.
    pub mail_poll_ms: u64,
    /// First mail retry delay, milliseconds (doubles per attempt).
    pub mail_backoff_ms: u64,
    /// Longest mail retry delay, milliseconds.
    pub mail_backoff_max_ms: u64,
    /// Trust `X-Forwarded-For` for the client address (only behind your own proxy).
    pub trust_forwarded_for: bool,
    /// Taxonomy seed file; the one compiled in is used when unset.
    pub taxonomy_seed: Option<PathBuf>,
    /// Frames queued per WebSocket before the client counts as a slow consumer
    /// and is disconnected (close code 4008). Bounds memory per connection.
    pub ws_outgoing_buffer: usize,
    /// Seconds a hub actor with no subscribers stays in memory before passivating.
    pub actor_idle_secs: u64,
    /// Bytes of frames queued per WebSocket before the client counts as a slow
    /// consumer and is disconnected (close code 4008), on top of the frame bound.
    pub ws_outgoing_bytes: usize,
    /// Open WebSockets per user; one more upgrade is refused with `too_many_sockets` (429).
    pub ws_sockets_per_user: usize,
    /// Bytes of attachment blobs one account may hold (attached or not);
    /// an upload past it is refused with `quota_exceeded` (507).
    pub blob_quota_bytes: u64,
    /// Seconds an uploaded blob may stay unattached to any referral before the
    /// sweep ([`crate::referrals::purge_unattached_blobs`]) removes it.
    pub blob_unattached_secs: u64,
    /// Unclaimed MLS key packages one user may have published; publishing past
    /// it is refused with `quota_exceeded` (507).
    pub key_packages_per_user: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: DEFAULT_BIND.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data: PathBuf::from(DEFAULT_DATA),
            public_url: None,
            static_dir: None,
            smtp_url: None,
            mail_from: "Handoff <no-reply@handoff.localhost>".into(),
            session_ttl_secs: 12 * 3600,
            invite_ttl_secs: 7 * 24 * 3600,
            auth_attempts_per_ip: 60,
            auth_failures_per_account: 5,
            registrations_per_ip: 30,
            rate_window_secs: 15 * 60,
            mail_poll_ms: 2_000,
            mail_backoff_ms: 5_000,
            mail_backoff_max_ms: 15 * 60 * 1000,
            trust_forwarded_for: false,
            taxonomy_seed: None,
            ws_outgoing_buffer: handoff_actors::conn::OUTGOING_BUFFER,
            actor_idle_secs: 60,
            ws_outgoing_bytes: handoff_actors::conn::OUTGOING_BUFFER_BYTES,
            ws_sockets_per_user: 16,
            blob_quota_bytes: 512 * 1024 * 1024,
            blob_unattached_secs: 24 * 3600,
            key_packages_per_user: 200,
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for [`Config`].
    #[error("parsing {0}: {1}")]
    Parse(PathBuf, String),
    /// An environment variable has an invalid value.
    #[error("environment variable {0}: {1}")]
    Env(&'static str, String),
}

impl Config {
    /// Defaults, then the file, then the environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let file = file.or_else(|| std::env::var_os("HANDOFF_CONFIG").map(PathBuf::from));
        let mut c = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read(path.clone(), e))?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse(path, e.to_string()))?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("HANDOFF_BIND") {
            c.bind = v.parse().map_err(|e: std::net::AddrParseError| ConfigError::Env("HANDOFF_BIND", e.to_string()))?;
        }
        if let Some(v) = std::env::var_os("HANDOFF_DATA") {
            c.data = v.into();
        }
        if let Ok(v) = std::env::var("HANDOFF_PUBLIC_URL") {
            c.public_url = Some(v);
        }
        if let Ok(v) = std::env::var("HANDOFF_SMTP_URL") {
            c.smtp_url = Some(v);
        }
        if let Ok(v) = std::env::var("HANDOFF_MAIL_FROM") {
            c.mail_from = v;
        }
        if let Some(v) = std::env::var_os("HANDOFF_STATIC_DIR") {
            c.static_dir = Some(v.into());
        }
        Ok(c)
    }

    /// The public URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }

    /// Cookies get `Secure` when people reach us over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    pub(crate) fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }
}
