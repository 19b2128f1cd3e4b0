//! The Mailer: delivers the mail outbox with retries.
//!
//! Mail is written to the store's outbox *before* anyone is told it was sent
//! (the invariant that every state change is persisted first). The Mailer polls
//! the outbox, sends what is due, marks it sent (clearing the body, since
//! invite links are credentials), and on failure schedules a retry with
//! exponential backoff. An SMTP outage therefore delays mail but loses none.
//! Delivery is at-least-once: a crash between the SMTP `250 OK` and the
//! `mail_sent` write re-sends that one message on restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use handoff_store::{MailRecord, Store};

use crate::now_millis;

/// Where mail goes.
#[derive(Clone, Debug)]
pub enum Transport {
    /// An SMTP server, by lettre connection URL: `smtp://host:port` (plain),
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`.
    Smtp(String),
    /// No SMTP configured: each mail becomes an `.eml` file in this folder.
    Folder(PathBuf),
}

/// Mailer settings.
#[derive(Clone, Debug)]
pub struct MailerConfig {
    /// Where mail goes.
    pub transport: Transport,
    /// The From address.
    pub from: String,
    /// How often the outbox is polled when nothing kicks it.
    pub poll: Duration,
    /// First retry delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

/// Why a mail could not be built or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The address or message was invalid; retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The transport failed; retry later.
    #[error("transport: {0}")]
    Transport(String),
}

enum Sender {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>),
}

/// The actor.
pub struct Mailer {
    store: Arc<dyn Store>,
    config: MailerConfig,
    from: Mailbox,
    sender: Arc<Sender>,
    busy: bool,
    again: bool,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Ask the mailer to look at the outbox now (sent after enqueueing).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Kick;

impl Mailer {
    /// Builds a mailer; fails if the From address or SMTP URL is invalid.
    pub fn new(store: Arc<dyn Store>, config: MailerConfig) -> Result<Self, MailError> {
        let from: Mailbox = config.from.parse().map_err(|e| MailError::Invalid(format!("from address: {e}")))?;
        let sender = match &config.transport {
            Transport::Smtp(url) => Sender::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Invalid(format!("SMTP URL: {e}")))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            Transport::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| MailError::Invalid(format!("mail folder: {e}")))?;
                Sender::Folder(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
        };
        Ok(Self { store, config, from, sender: Arc::new(sender), busy: false, again: false })
    }

    fn drain(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        let store = self.store.clone();
        let sender = self.sender.clone();
        let from = self.from.clone();
        let cfg = self.config.clone();
        let work = async move { drain_once(&*store, &sender, &from, &cfg).await };
        ctx.spawn(work.into_actor(self).map(|_, act, ctx| {
            act.busy = false;
            if std::mem::take(&mut act.again) {
                act.drain(ctx);
            }
        }));
    }
}

async fn drain_once(store: &dyn Store, sender: &Sender, from: &Mailbox, cfg: &MailerConfig) {
    let due = match store.due_mail(now_millis(), 50).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "mail outbox unreadable");
            return;
        }
    };
    for m in due {
        match send(sender, from, &m).await {
            Ok(file) => {
                if let Err(e) = store.mail_sent(m.id, now_millis()).await {
                    tracing::error!(id = m.id, error = %e, "mail sent but not marked; it may be sent again");
                }
                if let (Some(file), Transport::Folder(dir)) = (file, &cfg.transport) {
                    let path = dir.join(format!("{file}.eml"));
                    tracing::info!(id = m.id, path = %path.display(), "no SMTP configured: mail written to a file");
                }
            }
            Err(e) => {
                let exp = m.attempts.min(20);
                let delay = cfg.backoff_base.saturating_mul(1u32 << exp.min(16)).min(cfg.backoff_max);
                let next = now_millis() + delay.as_millis() as i64;
                tracing::warn!(id = m.id, attempts = m.attempts + 1, retry_in_ms = delay.as_millis() as u64, error = %e, "mail delivery failed");
                if let Err(e) = store.mail_failed(m.id, next, &e.to_string()).await {
                    tracing::error!(id = m.id, error = %e, "could not record mail failure");
                }
            }
        }
    }
}

/// Sends one message; for the folder transport, returns the file's id.
async fn send(sender: &Sender, from: &Mailbox, m: &MailRecord) -> Result<Option<String>, MailError> {
    let to: Mailbox = m.recipient.parse().map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
    let msg = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| MailError::Invalid(e.to_string()))?;
    match sender {
        Sender::Smtp(t) => t.send(msg).await.map(|_| None).map_err(|e| MailError::Transport(e.to_string())),
        Sender::Folder(t) => t.send(msg).await.map(Some).map_err(|e| MailError::Transport(e.to_string())),
    }
}

impl Actor for Mailer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A bounded mailbox: kicks beyond this are dropped by `try_send`, which
        // is harmless because one drain covers every due message.
        ctx.set_mailbox_capacity(64);
        ctx.run_interval(self.config.poll, |act, ctx| act.drain(ctx));
        self.drain(ctx);
    }
}

impl Handler<Kick> for Mailer {
    type Result = ();
    fn handle(&mut self, _: Kick, ctx: &mut Self::Context) {
        self.drain(ctx);
    }
}
