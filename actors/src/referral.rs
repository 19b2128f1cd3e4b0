//! ReferralActor: one referral's state machine, history and thread.
//!
//! Transitions: `sent → accepted | rejected | cancelled`, `accepted →
//! cancelled`. Only the receiving practice accepts, rejects, opens and
//! re-files; only the referring practice cancels; both add attachments and
//! post messages, in any state. Every change is one store commit: the new
//! referral state, its event on the referral's stream and on both practices'
//! streams, the idempotency record, and (for accept and reject) the status
//! emails to the referring practice's opted-in members.

use std::sync::Weak;
use std::time::Instant;

use actix::prelude::*;

use handoff_protocol::ws::{AckBody, Command, Event, IdemKey, MAX_MESSAGE, Referral, ReferralId, Status, StreamId};
use handoff_protocol::{ErrorCode, UserId};
use handoff_store::{Commit, IdemRecord, NewMail, ReferralError, ReferralRecord, Store, StoredEvent};

use crate::fanout::Fanout;
use crate::hub::{Deliver, Hub};
use crate::{CmdError, CmdResult, now_millis};

/// A state-changing command on one referral.
#[derive(Message)]
#[rtype(result = "CmdResult<(bool, AckBody)>")]
pub(crate) struct Execute {
    pub user: UserId,
    pub idem: IdemKey,
    pub hash: Vec<u8>,
    pub cmd: Command,
}

/// The referral a command acts on.
pub(crate) fn target(cmd: &Command) -> Option<ReferralId> {
    Some(match cmd {
        Command::MarkOpened { referral }
        | Command::Accept { referral }
        | Command::Reject { referral, .. }
        | Command::ChangeCategory { referral, .. }
        | Command::ChangeUrgency { referral, .. }
        | Command::Cancel { referral }
        | Command::AddAttachment { referral, .. }
        | Command::PostMessage { referral, .. } => *referral,
        Command::Subscribe { .. } | Command::Unsubscribe { .. } | Command::SendReferral { .. } => return None,
    })
}

pub(crate) struct ReferralActor {
    rec: ReferralRecord,
    hub: Weak<Hub>,
    fanout: Fanout,
    ready: bool,
    last_active: Instant,
}

impl ReferralActor {
    pub(crate) fn new(rec: ReferralRecord, hub: Weak<Hub>) -> Self {
        let stream = StreamId::Referral(rec.id);
        Self { rec, hub, fanout: Fanout::new(stream, 0), ready: false, last_active: Instant::now() }
    }
}

impl Actor for ReferralActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(hub) = self.hub.upgrade() else {
            ctx.stop();
            return;
        };
        // Activation: the Hub loaded the record; learn how far the stream has got.
        let store = hub.store.clone();
        let stream = self.fanout.stream;
        ctx.wait(async move { store.stream_head(stream).await }.into_actor(self).map(|head, act, ctx| match head {
            Ok(h) => {
                act.fanout.head = h;
                act.ready = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "referral stream unreadable");
                ctx.stop();
            }
        }));
        crate::practice::passivate_when_idle(ctx, hub.config.idle);
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(hub) = self.hub.upgrade() {
            hub.forget_referral(self.rec.id, &ctx.address());
        }
    }
}

crate::stream_handlers!(ReferralActor);

/// How a command ended.
pub(crate) enum Outcome {
    /// Committed (or nothing to change): the new record, the stored events, the answer.
    Done { updated: Option<Box<ReferralRecord>>, events: Vec<StoredEvent>, ack: AckBody },
    /// A concurrent retry with the same idempotency key committed first.
    Duplicate(AckBody),
}

/// What a command changes, decided before anything is written.
struct Change {
    referral: Referral,
    first_opened_at: Option<i64>,
    event: Option<Event>,
    attach: Option<handoff_protocol::ws::BlobId>,
    mail: Vec<NewMail>,
}

fn forbidden(what: &str) -> CmdError {
    CmdError::new(ErrorCode::Forbidden, what.to_string())
}

fn transition(from: Status, to: Status) -> CmdResult<()> {
    let ok = matches!(
        (from, to),
        (Status::Sent, Status::Accepted)
            | (Status::Sent, Status::Rejected)
            | (Status::Sent, Status::Cancelled)
            | (Status::Accepted, Status::Cancelled)
    );
    if ok {
        Ok(())
    } else {
        Err(CmdError::new(ErrorCode::InvalidTransition, format!("a {from:?} referral cannot become {to:?}").to_lowercase()))
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Sent => "sent",
        Status::Accepted => "accepted",
        Status::Rejected => "rejected",
        Status::Cancelled => "cancelled",
    }
}

async fn decide(
    store: &dyn Store,
    public_url: &str,
    user: UserId,
    mut r: Referral,
    opened: Option<i64>,
    cmd: Command,
) -> CmdResult<Change> {
    let receiver = store.role(r.to_practice, user).await?.is_some();
    let sender = store.role(r.from_practice, user).await?.is_some();
    if !receiver && !sender {
        return Err(CmdError::not_found("referral"));
    }
    let at = now_millis();
    let mut change = Change { referral: r.clone(), first_opened_at: opened, event: None, attach: None, mail: vec![] };
    let status_change =
        |r: &mut Referral, to: Status, reason, note, mail: &mut Vec<NewMail>, recipients: Vec<String>| -> CmdResult<Event> {
            transition(r.status, to)?;
            r.status = to;
            r.reject_reason = reason;
            for to_addr in recipients {
                mail.push(NewMail {
                    recipient: to_addr,
                    subject: format!("Referral {} was {}", r.number, status_str(to)),
                    body: format!(
                        "Referral {} is now {}.\n\nSign in to Handoff to see the details: {public_url}/referrals/{}\n\n\
                     This email carries no patient information.\n",
                        r.number,
                        status_str(to),
                        r.id
                    ),
                    now: at,
                });
            }
            Ok(Event::StatusChanged { referral: r.id, number: r.number.clone(), status: to, reason, note, by: user, at })
        };
    match cmd {
        Command::MarkOpened { .. } => {
            if !receiver {
                return Err(forbidden("only the receiving practice marks a referral opened"));
            }
            if opened.is_none() {
                change.first_opened_at = Some(at);
                r.first_opened_at = Some(at);
                change.event = Some(Event::Opened { referral: r.id, by: user, at });
            }
        }
        Command::Accept { .. } => {
            if !receiver {
                return Err(forbidden("only the receiving practice can accept"));
            }
            let recipients = store.email_recipients(r.from_practice).await?;
            change.event = Some(status_change(&mut r, Status::Accepted, None, None, &mut change.mail, recipients)?);
        }
        Command::Reject { reason, note, .. } => {
            if !receiver {
                return Err(forbidden("only the receiving practice can reject"));
            }
            if note.0.len() > MAX_MESSAGE {
                return Err(CmdError::new(ErrorCode::PayloadTooLarge, format!("the note is over {MAX_MESSAGE} bytes")));
            }
            let recipients = store.email_recipients(r.from_practice).await?;
            change.event = Some(status_change(&mut r, Status::Rejected, Some(reason), Some(note), &mut change.mail, recipients)?);
        }
        Command::Cancel { .. } => {
            if !sender {
                return Err(forbidden("only the referring practice can cancel"));
            }
            change.event = Some(status_change(&mut r, Status::Cancelled, None, None, &mut change.mail, vec![])?);
        }
        Command::ChangeCategory { category, subcategory, .. } => {
            if !receiver {
                return Err(forbidden("only the receiving practice can change the category"));
            }
            if !matches!(r.status, Status::Sent | Status::Accepted) {
                return Err(CmdError::new(ErrorCode::InvalidTransition, "a closed referral cannot be re-filed"));
            }
            let t = store.taxonomy().await?;
            let cat = t
                .specialties
                .iter()
                .find(|s| s.slug == r.routing.specialty)
                .and_then(|s| s.categories.iter().find(|c| c.slug == category))
                .ok_or_else(|| CmdError::new(ErrorCode::ValidationFailed, "category: not a category of the referral's specialty"))?;
            if let Some(sub) = &subcategory
                && !cat.subcategories.iter().any(|x| &x.slug == sub)
            {
                return Err(CmdError::new(ErrorCode::ValidationFailed, "subcategory: not a subcategory of that category"));
            }
            r.routing.category = category.clone();
            r.routing.subcategory = subcategory.clone();
            change.event = Some(Event::CategoryChanged { referral: r.id, category, subcategory, by: user, at });
        }
        Command::ChangeUrgency { urgency, .. } => {
            if !receiver {
                return Err(forbidden("only the receiving practice can change the urgency"));
            }
            if !matches!(r.status, Status::Sent | Status::Accepted) {
                return Err(CmdError::new(ErrorCode::InvalidTransition, "a closed referral's urgency cannot change"));
            }
            r.routing.urgency = urgency;
            change.event = Some(Event::UrgencyChanged { referral: r.id, urgency, by: user, at });
        }
        Command::AddAttachment { attachment, .. } => {
            if attachment.meta.0.len() > MAX_MESSAGE {
                return Err(CmdError::new(ErrorCode::PayloadTooLarge, "attachment metadata is too large"));
            }
            if r.attachments.len() >= crate::routing::MAX_ATTACHMENTS {
                return Err(CmdError::new(ErrorCode::ValidationFailed, "a referral has at most 50 attachments"));
            }
            match store.blob_meta(attachment.blob).await? {
                Some(b) if b.owner == user && b.referral.is_none() => {}
                _ => return Err(CmdError::not_found("blob")),
            }
            change.attach = Some(attachment.blob);
            r.attachments.push(attachment.clone());
            change.event = Some(Event::AttachmentAdded { referral: r.id, attachment, by: user, at });
        }
        Command::PostMessage { message, .. } => {
            if message.body.0.len() > MAX_MESSAGE || message.signature.0.len() != 64 {
                return Err(CmdError::new(
                    ErrorCode::ValidationFailed,
                    format!("a message body is at most {MAX_MESSAGE} bytes with a 64-byte signature"),
                ));
            }
            change.event = Some(Event::MessagePosted { referral: r.id, message, by: user, at });
        }
        Command::Subscribe { .. } | Command::Unsubscribe { .. } | Command::SendReferral { .. } => {
            return Err(CmdError::new(ErrorCode::UnknownCommand, "not a referral command"));
        }
    }
    change.referral = r;
    Ok(change)
}

impl Handler<Execute> for ReferralActor {
    type Result = AtomicResponse<Self, CmdResult<(bool, AckBody)>>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        let Some(hub) = self.hub.upgrade() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(CmdError::new(ErrorCode::Unavailable, "shutting down")))));
        };
        let rec = self.rec.clone();
        let work = async move {
            let store = hub.store.clone();
            let current: Referral = serde_json::from_str(&rec.body).map_err(|e| CmdError::new(ErrorCode::Internal, e.to_string()))?;
            let id = current.id;
            let change = decide(&*store, &hub.config.public_url, msg.user, current, rec.first_opened_at, msg.cmd).await?;
            let ack = AckBody::Done { referral: id };
            let Some(event) = change.event else {
                return Ok(Outcome::Done { updated: None, events: Vec::new(), ack });
            };
            let body = serde_json::to_string(&event).map_err(|e| CmdError::new(ErrorCode::Internal, e.to_string()))?;
            let mut updated = rec.clone();
            updated.status = change.referral.status;
            updated.first_opened_at = change.first_opened_at;
            updated.body = serde_json::to_string(&change.referral).map_err(|e| CmdError::new(ErrorCode::Internal, e.to_string()))?;
            let has_mail = !change.mail.is_empty();
            let commit = Commit {
                update: Some(updated.clone()),
                events: vec![
                    (StreamId::Referral(id), body.clone()),
                    (StreamId::Practice(rec.from_practice), body.clone()),
                    (StreamId::Practice(rec.to_practice), body),
                ],
                attach: change.attach.map(|b| vec![(b, id)]).unwrap_or_default(),
                idem: Some(IdemRecord {
                    user: msg.user,
                    key: msg.idem,
                    command: msg.hash.clone(),
                    result: serde_json::to_string(&ack).unwrap_or_default(),
                }),
                mail: change.mail,
                now: now_millis(),
                ..Default::default()
            };
            match store.commit(commit).await {
                Ok(events) => {
                    if has_mail {
                        hub.kick_mailer();
                    }
                    Ok(Outcome::Done { updated: Some(Box::new(updated)), events, ack })
                }
                Err(ReferralError::IdempotencyKeyUsed) => {
                    // A concurrent retry won the race: answer with its result.
                    Ok(Outcome::Duplicate(crate::replayed(&*store, msg.user, msg.idem, &msg.hash).await?.unwrap_or(ack)))
                }
                Err(ReferralError::BlobUnavailable) => Err(CmdError::not_found("blob")),
                Err(e) => Err(e.into()),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|res, act, ctx| match res? {
            Outcome::Done { updated, events, ack } => {
                if let Some(u) = updated {
                    act.rec = *u;
                }
                push_all(act, ctx, events);
                Ok((false, ack))
            }
            Outcome::Duplicate(ack) => Ok((true, ack)),
        })))
    }
}

/// Delivers committed events: the referral's own stream here, the practice
/// streams through their actors.
fn push_all(act: &mut ReferralActor, ctx: &mut Context<ReferralActor>, events: Vec<StoredEvent>) {
    let (mine, others): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| e.stream == act.fanout.stream);
    if act.ready {
        act.fanout.deliver(&mine);
        if act.fanout.head < mine.last().map(|e| e.seq).unwrap_or(0) {
            // A gap (should not happen: this actor is the stream's only writer); resync via Deliver.
            ctx.notify(Deliver { events: mine });
        }
    }
    if let Some(hub) = act.hub.upgrade() {
        actix::spawn(async move { hub.deliver(others).await });
    }
}
