//! Reading the server's mail as a person would, so fixtures can follow the
//! links it sends (a registration's confirmation link).
//!
//! Whoever starts a server says where its mail lands with [`deliver_to`]: the
//! data folder's `mail/` directory (a server without SMTP writes one `.eml`
//! file per message there) or an SMTP server's Maildir `new/` directory. The
//! fixtures then find a server's mail by its URL alone, so
//! [`Account::register`](crate::Account::register) keeps taking just the URL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use handoff_client::Client;

use crate::{FixtureError, Result};

/// How long a fixture waits for a message before giving up.
pub const MAIL_WAIT: Duration = Duration::from_secs(30);

fn mailboxes() -> &'static Mutex<HashMap<String, PathBuf>> {
    static M: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

fn key(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

/// Records that the mail of the server at `url` arrives as files in `dir`
/// (a mail folder, or a Maildir's `new/`). Call it again after a restart on
/// a new port.
pub fn deliver_to(url: &str, dir: impl Into<PathBuf>) {
    mailboxes().lock().unwrap_or_else(|p| p.into_inner()).insert(key(url), dir.into());
}

/// Where the mail of the server at `url` arrives, if [`deliver_to`] said.
pub fn mailbox_of(url: &str) -> Option<PathBuf> {
    mailboxes().lock().unwrap_or_else(|p| p.into_inner()).get(&key(url)).cloned()
}

/// Undoes quoted-printable soft line breaks and `=3D`, so links can be found whole.
pub fn unfold(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// Every message in `dir`, unfolded, oldest file name first.
pub fn messages_in(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()).map(|t| unfold(&t)).collect()
}

/// The token that follows `marker` (such as `"/confirm/"`) in a message.
pub fn token_after(mail: &str, marker: &str) -> Option<String> {
    let at = mail.find(marker)? + marker.len();
    let rest = mail.get(at..)?;
    let t: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    (!t.is_empty()).then_some(t)
}

/// Waits for a message in `dir` addressed to `to` whose text contains
/// `needle` and is not in `seen`, and returns it.
pub async fn wait_in(dir: &Path, to: &str, needle: &str, seen: &[String]) -> Result<String> {
    let header = format!("To: {to}");
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        if let Some(m) = messages_in(dir).into_iter().find(|m| m.contains(&header) && m.contains(needle) && !seen.contains(m)) {
            return Ok(m);
        }
        if Instant::now() >= deadline {
            return Err(FixtureError::NoMail { to: to.into(), needle: needle.into(), dir: dir.to_path_buf() });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a message from the server at `url` to `to` containing `needle`.
pub async fn wait_for(url: &str, to: &str, needle: &str) -> Result<String> {
    let dir = mailbox_of(url).ok_or_else(|| FixtureError::NoMailbox { url: url.into() })?;
    wait_in(&dir, to, needle, &[]).await
}

/// The confirmation link's token from the newest confirmation mail to `email`
/// that is not in `seen`.
pub async fn confirmation_token(url: &str, email: &str, seen: &[String]) -> Result<(String, String)> {
    let dir = mailbox_of(url).ok_or_else(|| FixtureError::NoMailbox { url: url.into() })?;
    let mail = wait_in(&dir, email, "/confirm/", seen).await?;
    let token = token_after(&mail, "/confirm/").ok_or_else(|| FixtureError::NoMail {
        to: email.into(),
        needle: "/confirm/<token>".into(),
        dir: dir.clone(),
    })?;
    Ok((token, mail))
}

/// Registration as a person does it: register, read the confirmation mail,
/// open its link. [`Client::register`] plus the mail step, for a client
/// whose server's mailbox is known ([`deliver_to`]).
#[allow(async_fn_in_trait)]
pub trait RegisterConfirmed {
    /// Registers, confirms from the emailed link, and returns the kit's words.
    async fn register_confirmed(&mut self, email: &str, display_name: &str, password: &str) -> Result<Vec<String>>;
}

impl RegisterConfirmed for Client {
    async fn register_confirmed(&mut self, email: &str, display_name: &str, password: &str) -> Result<Vec<String>> {
        let url = self.base().to_owned();
        let dir = mailbox_of(&url).ok_or_else(|| FixtureError::NoMailbox { url: url.clone() })?;
        // Mail already there for this address (an earlier registration) is not ours.
        let header = format!("To: {email}");
        let seen: Vec<String> = messages_in(&dir).into_iter().filter(|m| m.contains(&header)).collect();
        let words = self.register(email, display_name, password, None).await?;
        if self.awaiting_confirmation() {
            let (token, _) = confirmation_token(&url, email, &seen).await?;
            self.confirm(&token).await?;
        }
        Ok(words)
    }
}
