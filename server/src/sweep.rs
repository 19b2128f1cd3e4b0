//! The periodic sweep: what has outlived its use is deleted, on a schedule.
//!
//! Every [`Config::sweep_every_secs`] the server deletes, with the retention
//! README.md documents:
//!
//! - sessions past their expiry, and sessions idle past `session_idle_secs`
//!   (plus the minute their activity may wait in memory); both are refused at
//!   once anyway, the rows go;
//! - pending registrations past their expiry (`registration_ttl_secs`: the
//!   link no longer confirms anything, and the email address goes with them);
//! - invites past their expiry (their links can never work again);
//! - idempotency records older than [`Config::idempotency_retention_secs`]
//!   (a client retries a command within seconds or minutes, never days);
//! - the record of sent mail (recipient, subject, times; the body is cleared
//!   when it is sent) older than [`Config::sent_mail_retention_secs`];
//! - attachment blobs (and abandoned uploads) that no referral took within
//!   [`Config::blob_unattached_secs`] (they count towards the owner's quota);
//! - free referral drafts past their time (`free_draft_ttl_secs` from their
//!   start, or from their verification): their email address and token go;
//! - audit log entries older than [`Config::audit_retention_days`], when it
//!   is set (by default the log keeps everything); each pruned chain keeps an
//!   anchor so it still verifies;
//! - waiting-room guests whose token expired;
//! - in folder-mail mode (no SMTP), `.eml` files in `<data>/mail/` older
//!   than [`Config::mail_folder_retention_secs`]: they hold invite links,
//!   which are credentials.
//!
//! One pass is [`sweep_once`], which tests call with a chosen `now`; [`start`]
//! runs it on a timer. A failing part is logged and the others still run; the
//! next pass tries again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use handoff_protocol::UnixMillis;
use handoff_store::Store;

use crate::config::Config;
use crate::state::now;

/// What one pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired and idle sessions.
    pub sessions: u64,
    /// Expired pending registrations.
    pub registrations: u64,
    /// Expired invites.
    pub invites: u64,
    /// Idempotency records past their retention.
    pub idempotency: u64,
    /// Sent-mail records past their retention.
    pub sent_mail: u64,
    /// Unattached blobs and abandoned uploads past their retention.
    pub blobs: u64,
    /// `.eml` files in the mail folder past their retention.
    pub mail_files: u64,
    /// Free referral drafts past their time.
    pub drafts: u64,
    /// Audit entries past `audit_retention_days`.
    pub audit: u64,
    /// Waiting-room guests whose token expired (12 hours after check-in).
    pub guests: u64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn secs(s: u64) -> i64 {
    ms(Duration::from_secs(s))
}

/// Logs a failed part of the pass and counts it as nothing deleted.
fn logged<E: std::fmt::Display>(what: &str, r: Result<u64, E>) -> u64 {
    r.unwrap_or_else(|e| {
        tracing::warn!(part = what, error = %e, "sweep: part failed; the next pass retries");
        0
    })
}

/// The mail folder the server writes to, if it writes mail to a folder.
pub fn mail_folder(config: &Config) -> Option<PathBuf> {
    config.smtp_url.is_none().then(|| config.data.join("mail"))
}

/// Deletes `.eml` files in `dir` last modified before `before`.
fn purge_mail_files(dir: &Path, before: SystemTime) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.extension().and_then(|x| x.to_str()) != Some("eml") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() && meta.modified()? < before {
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Sessions whose stored activity is older than this are idle at `at`. The
/// server writes activity through at most once per
/// [`crate::sessions::WRITE_EVERY`], so the cutoff leaves that much more room:
/// the sweep never deletes a session whose newer activity is still in memory.
fn idle_cutoff(config: &Config, at: UnixMillis) -> UnixMillis {
    at.saturating_sub(ms(config.session_idle())).saturating_sub(ms(crate::sessions::WRITE_EVERY))
}

/// One pass at time `at` (Unix milliseconds; file ages are measured against
/// the same instant).
pub async fn sweep_once(store: &dyn Store, config: &Config, at: UnixMillis) -> Swept {
    let file_cutoff = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(at.saturating_sub(secs(config.mail_folder_retention_secs))).unwrap_or(0));
    let swept = Swept {
        sessions: logged("sessions", store.purge_sessions(at).await)
            + logged("idle sessions", store.purge_idle_sessions(idle_cutoff(config, at)).await),
        registrations: logged("pending registrations", store.purge_pending_registrations(at).await),
        invites: logged("invites", store.purge_invites(at).await),
        idempotency: logged("idempotency", store.purge_idempotency(at.saturating_sub(secs(config.idempotency_retention_secs))).await),
        sent_mail: logged("sent mail", store.purge_sent_mail(at.saturating_sub(secs(config.sent_mail_retention_secs))).await),
        blobs: logged(
            "unattached blobs",
            crate::referrals::purge_unattached_blobs(store, Duration::from_secs(config.blob_unattached_secs), at).await,
        ),
        mail_files: match mail_folder(config) {
            Some(dir) => logged("mail folder", purge_mail_files(&dir, file_cutoff)),
            None => 0,
        },
        drafts: logged("free referral drafts", store.purge_drafts(at).await),
        audit: match config.audit_retention_days {
            Some(days) => logged("audit log", store.prune_audit(at.saturating_sub(secs(days.saturating_mul(86_400)))).await),
            None => 0,
        },
        guests: logged("expired room guests", store.sweep_guests(at).await),
    };
    if swept != Swept::default() {
        tracing::info!(?swept, "sweep");
    }
    swept
}

/// Runs [`sweep_once`] now and then every `config.sweep_every_secs` on the
/// current actix runtime, until the server stops.
pub fn start(store: std::sync::Arc<dyn Store>, config: std::sync::Arc<Config>, sessions: std::sync::Arc<crate::sessions::Sessions>) {
    let every = Duration::from_secs(config.sweep_every_secs.max(1));
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let at = now();
            sweep_once(&*store, &config, at).await;
            sessions.prune(at);
        }
    });
}
