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
    /// The built web client to serve at `/` (xtask builds it into `target/web-dist`);
    /// its list of files is read once at start (`static_files.rs`): restart after rebuilding it.
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
    /// Sign-in and kit attempts per client address (an IPv6 client by its /64)
    /// per window, across accounts, whatever their outcome.
    pub auth_attempts_per_ip: u32,
    /// Failed sign-ins (or kit checks, counted apart) per account *and client
    /// address* per window before that address is locked out of the account.
    /// A lock-out from one address never locks out another.
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
    /// Taxonomy seed file; the one compiled in is used when unset.
    pub taxonomy_seed: Option<PathBuf>,
    /// Frames queued per WebSocket before the client counts as a slow consumer
    /// and is disconnected (close code 4008). Bounds memory per connection.
    pub ws_outgoing_buffer: usize,
    /// Seconds a hub actor with no subscribers stays in memory before passivating.
    pub actor_idle_secs: u64,
    /// Seconds between sweeps that delete expired sessions and invites, old
    /// idempotency and sent-mail records, and old mail-folder files.
    pub sweep_every_secs: u64,
    /// Seconds an idempotency record is kept (a retry after that runs the command again).
    pub idempotency_retention_secs: u64,
    /// Seconds the record of a sent email (recipient, subject, times) is kept.
    pub sent_mail_retention_secs: u64,
    /// Seconds an `.eml` file is kept in the mail folder (no SMTP): they hold invite links.
    pub mail_folder_retention_secs: u64,
    /// How many reverse proxies of your own stand in front of the server. The
    /// client address is the `X-Forwarded-For` entry this many places left of
    /// the TCP peer: each trusted proxy appends the address it saw, so values
    /// a client writes itself are never read. 0 (the default): the TCP peer is
    /// the client and the header is ignored. Every request must pass through
    /// all of these proxies. Replaces `trust_forwarded_for`.
    pub trusted_proxy_hops: u8,
    /// Failed sign-ins (or kit checks, counted apart) per account per window
    /// from every address together: a high ceiling against a guesser spread
    /// over many addresses.
    pub auth_failures_per_account_total: u32,
    /// How long a registration's emailed confirmation link works, seconds (24 h).
    pub registration_ttl_secs: u64,
    /// Invites one user may send per hour, across all their practices.
    pub invites_per_user_per_hour: u32,
    /// Invites one practice may send per day, whoever sends them.
    pub invites_per_practice_per_day: u32,
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
    /// Free referral codes (first codes and resends) emailed per client address
    /// (an IPv6 client by its /64) per hour; past it, `rate_limited` (429).
    pub free_codes_per_address_per_hour: u32,
    /// Free referral codes emailed per email address per hour.
    pub free_codes_per_email_per_hour: u32,
    /// Free referrals sent per client address per day.
    pub free_referrals_per_address_per_day: u32,
    /// Free referrals sent per email address per day.
    pub free_referrals_per_email_per_day: u32,
    /// How long an emailed free referral code works, seconds (10 minutes).
    pub free_code_ttl_secs: u64,
    /// How long a free referral draft works, seconds (2 hours), counted from
    /// its start and again from its verification; the sweep deletes it after.
    pub free_draft_ttl_secs: u64,
    /// Where the metrics listener serves `GET /metrics` (Prometheus); unset
    /// (the default): no metrics listener. Never the public port.
    pub metrics_bind: Option<SocketAddr>,
    /// How log lines are written: `"text"` (the default) or `"json"`, one object per line.
    pub log_format: crate::logging::LogFormat,
    /// Wrong two-factor codes (and recovery codes) per account per window from
    /// every address together. Lower than the password's ceiling: only someone
    /// who already proved the password (or the kit) can try a code, and each
    /// try of six digits in a ±1-step window has a 3-in-a-million chance.
    pub second_factor_failures_per_account_total: u32,
    /// Seconds a session may go without activity (an authenticated HTTP
    /// request, or a WebSocket command other than subscribe/unsubscribe)
    /// before it is ended (30 minutes). Pings, reconnects and stream resumes
    /// are not activity. The session's absolute lifetime (`session_ttl_secs`)
    /// still applies.
    pub session_idle_secs: u64,
    /// How many days the audit log keeps its entries; `None` (the default)
    /// keeps every entry for ever. No Canadian authority sets a period
    /// (PHIPA s.10.1 requires the log and sets none), so the operator chooses.
    /// The sweep prunes older entries and keeps each chain's anchor.
    pub audit_retention_days: Option<u64>,
    /// npm `swagger-ui-dist`'s folder, for the browsable API reference at
    /// `/api/docs` (xtask installs it under `e2e/node_modules/`); unset (the
    /// default): `/api/docs` answers `no_route`. `/api/v1/openapi.json` is
    /// served either way.
    pub api_docs_dir: Option<PathBuf>,
    // Membership with dates (issue 14, wt-members).
    /// How often the server looks for memberships whose end date has passed
    /// (it ends their access, as a removal does) and for end dates a week
    /// away (it emails the practice's admins once), milliseconds (one minute).
    pub member_terms_check_ms: u64,
    // Group commit (issue 16, wt-groupcommit).
    /// Whether the referral commits queued behind one fsync share its
    /// transaction (`true`, the default). `false` gives every commit its own
    /// transaction and fsync, as before group commit: only for measuring the
    /// difference (`cargo xtask bench`); it is slower and no safer.
    pub group_commit: bool,
    /// The clock membership dates are read against: the wall clock, which
    /// only tests move (`Clock::advance`). Not read from configuration.
    #[serde(skip)]
    pub clock: handoff_actors::clock::Clock,
    // The telehealth waiting room (issue 15, wt-rooms-server).
    /// Most guests a room holds at once (checked in, not removed, token not
    /// expired); one more check-in is `room_full` (1000).
    pub room_max_waiting: u64,
    /// Check-ins per client address per minute, over every room (limiter scope 13); 20.
    pub room_checkins_per_minute_per_address: u32,
    // The built-in video call (issue 15, wt-rooms-video).
    /// STUN/TURN servers for the browsers' built-in calls, as
    /// `RTCIceServer` entries (`HANDOFF_ICE_SERVERS`: a JSON list); none by
    /// default (one machine or one network needs none).
    pub ice_servers: Vec<handoff_protocol::call::IceServer>,
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
            taxonomy_seed: None,
            ws_outgoing_buffer: handoff_actors::conn::OUTGOING_BUFFER,
            actor_idle_secs: 60,
            sweep_every_secs: 10 * 60,
            idempotency_retention_secs: 7 * 24 * 3600,
            sent_mail_retention_secs: 30 * 24 * 3600,
            mail_folder_retention_secs: 24 * 3600,
            trusted_proxy_hops: 0,
            auth_failures_per_account_total: 100,
            registration_ttl_secs: 24 * 3600,
            invites_per_user_per_hour: 20,
            invites_per_practice_per_day: 50,
            ws_outgoing_bytes: handoff_actors::conn::OUTGOING_BUFFER_BYTES,
            ws_sockets_per_user: 16,
            blob_quota_bytes: 512 * 1024 * 1024,
            blob_unattached_secs: 24 * 3600,
            key_packages_per_user: 200,
            free_codes_per_address_per_hour: 10,
            free_codes_per_email_per_hour: 5,
            free_referrals_per_address_per_day: 20,
            free_referrals_per_email_per_day: 10,
            free_code_ttl_secs: handoff_protocol::free::CODE_TTL_SECS,
            free_draft_ttl_secs: handoff_protocol::free::DRAFT_TTL_SECS,
            metrics_bind: None,
            log_format: crate::logging::LogFormat::Text,
            second_factor_failures_per_account_total: 20,
            session_idle_secs: 30 * 60,
            room_max_waiting: 1000,
            room_checkins_per_minute_per_address: 20,
            audit_retention_days: None,
            api_docs_dir: None,
            member_terms_check_ms: 60_000,
            group_commit: true,
            clock: handoff_actors::clock::Clock::default(),
            ice_servers: Vec::new(),
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
    /// The file sets `trust_forwarded_for = true`, which trusted the
    /// client-written first `X-Forwarded-For` value; `trusted_proxy_hops` replaces it.
    #[error(
        "{0}: `trust_forwarded_for` was replaced by `trusted_proxy_hops`: set it to the number of reverse proxies in front of \
         Handoff (1 for one proxy) and remove `trust_forwarded_for`"
    )]
    TrustForwardedForReplaced(PathBuf),
}

impl Config {
    /// Defaults, then the file, then the environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        let file = file.or_else(|| std::env::var_os("HANDOFF_CONFIG").map(PathBuf::from));
        let mut c = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read(path.clone(), e))?;
                Self::parse(&text, &path)?
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
        if let Some(v) = std::env::var_os("HANDOFF_API_DOCS_DIR") {
            c.api_docs_dir = Some(v.into());
        }
        if let Ok(v) = std::env::var("HANDOFF_ICE_SERVERS") {
            c.ice_servers = parse_ice_servers(&v).map_err(|e| ConfigError::Env("HANDOFF_ICE_SERVERS", e))?;
        }
        if let Some(problem) = c.ice_servers.iter().find_map(handoff_protocol::call::IceServer::problem) {
            return Err(ConfigError::Env("HANDOFF_ICE_SERVERS", problem));
        }
        Ok(c)
    }

    /// Parses a configuration file's text (`path` names it in errors). An old
    /// `trust_forwarded_for = false` is accepted (it is what 0 trusted hops
    /// means); `true` is refused with [`ConfigError::TrustForwardedForReplaced`],
    /// since the number of proxies cannot be guessed safely.
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse(path.to_path_buf(), e.to_string()))?;
        match table.remove("trust_forwarded_for") {
            None | Some(toml::Value::Boolean(false)) => {}
            Some(_) => return Err(ConfigError::TrustForwardedForReplaced(path.to_path_buf())),
        }
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Parse(path.to_path_buf(), e.to_string()))
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

    /// The idle timeout (at least one second).
    pub(crate) fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs.max(1))
    }
}

/// `HANDOFF_ICE_SERVERS`: a JSON list of `RTCIceServer`-like entries
/// (`{"urls": ["stun:..."], "username": ..., "credential": ...}`), each with
/// only STUN/TURN URLs; empty text means none.
fn parse_ice_servers(text: &str) -> Result<Vec<handoff_protocol::call::IceServer>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let servers: Vec<handoff_protocol::call::IceServer> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON list of ICE servers: {e}"))?;
    match servers.iter().find_map(handoff_protocol::call::IceServer::problem) {
        Some(p) => Err(p),
        None => Ok(servers),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn ice_servers_default_to_none_and_parse_as_a_json_list_of_stun_or_turn_urls() {
        assert!(Config::default().ice_servers.is_empty());
        assert_eq!(parse_ice_servers(""), Ok(Vec::new()));
        let servers =
            parse_ice_servers(r#"[{"urls":["stun:stun.example:3478"]},{"urls":["turns:turn.example"],"username":"u","credential":"c"}]"#)
                .unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        assert!(parse_ice_servers(r#"[{"urls":["https://stun.example"]}]"#).is_err(), "not a STUN/TURN URL");
        assert!(parse_ice_servers(r#"[{"urls":[]}]"#).is_err(), "no URL");
        assert!(parse_ice_servers(r#"{"urls":["stun:x"]}"#).is_err(), "not a list");
        assert!(parse_ice_servers(r#"[{"urls":["stun:x"],"secret":1}]"#).is_err(), "unknown field");
        let c = Config::parse("[[ice_servers]]\nurls = [\"stun:stun.example\"]\n", Path::new("handoff.toml")).unwrap();
        assert_eq!(c.ice_servers[0].urls, vec!["stun:stun.example".to_string()]);
    }

    #[test]
    fn trusted_proxy_hops_parse_and_default_to_none() {
        let p = Path::new("handoff.toml");
        assert_eq!(Config::parse("", p).unwrap().trusted_proxy_hops, 0);
        assert_eq!(Config::parse("trusted_proxy_hops = 2", p).unwrap().trusted_proxy_hops, 2);
        assert!(matches!(Config::parse("trusted_proxy_hops = 300", p), Err(ConfigError::Parse(..))));
        assert!(matches!(Config::parse("no_such_setting = 1", p), Err(ConfigError::Parse(..))), "unknown fields are still refused");
    }

    #[test]
    fn the_old_trust_forwarded_for_is_refused_when_true_and_accepted_when_false() {
        let p = Path::new("handoff.toml");
        let err = Config::parse("trust_forwarded_for = true", p).unwrap_err();
        assert!(matches!(err, ConfigError::TrustForwardedForReplaced(_)), "{err}");
        assert!(err.to_string().contains("trusted_proxy_hops"), "{err}");
        let c = Config::parse("trust_forwarded_for = false\nauth_attempts_per_ip = 7", p).unwrap();
        assert_eq!((c.trusted_proxy_hops, c.auth_attempts_per_ip), (0, 7));
    }
}
