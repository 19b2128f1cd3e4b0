//! ReferralActor: one referral's state machine, history and thread.
//!
//! Transitions: `sent → accepted | rejected | cancelled`, `accepted →
//! cancelled`. Only the receiving practice accepts, rejects, opens and
//! re-files; only the referring practice cancels; both add attachments and
//! post messages, in any state. Every change is one store commit: the new
//! referral state, its event on the referral's stream and on both practices'
//! streams, the idempotency record, and (for accept and reject) the status
//! emails to the referring practice's opted-in members.

use std::sync::Arc;

use actix::prelude::*;

use handoff_domain::access::{Action, Forbidden, Parties};
use handoff_domain::limits::MAX_ATTACHMENTS;
use handoff_domain::{routing, status};
use handoff_protocol::ws::{AckBody, Command, Event, MAX_MESSAGE, Referral, ReferralId, RejectReason, Status, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Commit, IdemRecord, NewMail, ReferralError, ReferralRecord, Store, StoredEvent};

use crate::clock::Clock;
use crate::messages::Execute;
use crate::stream::{StreamActor, StreamKind};
use crate::{ApiError, ApiResult, now_millis};

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
        // The waiting room's commands go to its RoomActor.
        Command::RoomHost { .. }
        | Command::RoomHostStatus { .. }
        | Command::RoomLeave { .. }
        | Command::RoomAdmit { .. }
        | Command::RoomReturn { .. }
        | Command::RoomRemove { .. }
        | Command::RoomHandOver { .. }
        | Command::RoomMessage { .. }
        | Command::RoomEnd { .. }
        | Command::RoomSignal { .. }
        | Command::GuestCheckIn { .. }
        | Command::GuestSignal { .. }
        | Command::GuestLeave {} => return None,
    })
}

/// A referral's stream: its history and thread. The actor holds the
/// referral's current record, loaded at activation.
pub(crate) struct ReferralStream {
    rec: ReferralRecord,
}

/// The live actor of one referral.
pub(crate) type ReferralActor = StreamActor<ReferralStream>;

impl StreamKind for ReferralStream {
    type Id = ReferralId;
    const WAKE_ON_DELIVER: bool = false;

    fn stream(id: ReferralId) -> StreamId {
        StreamId::Referral(id)
    }

    fn id(&self) -> ReferralId {
        self.rec.id
    }

    async fn load(store: Arc<dyn Store>, id: ReferralId) -> ApiResult<Self> {
        let rec = store.referral(id).await?.ok_or_else(|| ApiError::not_found("referral"))?;
        Ok(Self { rec })
    }

    type Scope = Parties;

    fn scope(&self) -> Parties {
        crate::access::parties(&self.rec)
    }

    fn practices(parties: Parties) -> Vec<PracticeId> {
        crate::access::practices_of(parties)
    }

    /// Both sides of a referral see its stream (`handoff_domain::access`).
    async fn sees(store: Arc<dyn Store>, clock: Clock, user: UserId, parties: Parties) -> ApiResult<bool> {
        Ok(crate::access::may_read(&*store, &clock, user, parties).await?)
    }

    async fn authorize(store: Arc<dyn Store>, clock: Clock, user: UserId, id: ReferralId) -> ApiResult<()> {
        let Some(rec) = store.referral(id).await? else { return Err(ApiError::not_found("stream")) };
        let parties = crate::access::parties(&rec);
        if Self::sees(store.clone(), clock.clone(), user, parties).await? {
            Ok(())
        } else {
            Err(crate::access::refusal(&*store, &clock, user, parties, "stream").await)
        }
    }
}

/// How a command ended.
pub(crate) enum Outcome {
    /// Committed (or nothing to change): the new record, the stored events, the answer.
    Done { updated: Option<Box<ReferralRecord>>, events: Vec<StoredEvent>, ack: AckBody },
    /// A concurrent retry with the same idempotency key committed first.
    Duplicate(AckBody),
}

/// The streams an event about a referral goes to: the referral's own, the
/// sending practice's inbox (a free referral has none) and the receiver's.
pub(crate) fn referral_streams(id: ReferralId, from: Option<PracticeId>, to: PracticeId) -> impl Iterator<Item = StreamId> {
    std::iter::once(StreamId::Referral(id)).chain(from.map(StreamId::Practice)).chain(std::iter::once(StreamId::Practice(to)))
}

/// Who is emailed when the receiver accepts or declines a referral.
enum Recipients {
    /// The referring practice's members who opted in to emails.
    Members(Vec<String>),
    /// A free sender's verified address.
    FreeSender(String),
}

/// The referral's status-email recipients, from its stored sender.
async fn recipients(store: &dyn Store, rec: &ReferralRecord) -> ApiResult<Recipients> {
    Ok(match (rec.from_practice, &rec.free_email) {
        (Some(p), _) => Recipients::Members(store.email_recipients(p).await?),
        (None, Some(email)) => Recipients::FreeSender(email.clone()),
        (None, None) => Recipients::Members(vec![]),
    })
}

/// The human words for a decline reason, in the free sender's email.
fn reason_words(r: RejectReason) -> &'static str {
    match r {
        RejectReason::WrongCategory => "wrong category (the specialist does not see this category)",
        RejectReason::WrongSpecialty => "wrong specialty",
        RejectReason::AnotherSpecialist => "send to another specialist",
        RejectReason::Other => "other",
    }
}

/// The emails a status change sends: the number, the new status and, to a
/// free sender, the decline reason. Never the patient, and never the
/// specialist's note, which is sealed where only the two practices can open it.
fn status_mail(r: &Referral, to: Recipients, public_url: &str, at: i64) -> Vec<NewMail> {
    let subject = format!("Referral {} was {}", r.number, status::name(r.status));
    match to {
        Recipients::Members(addrs) => addrs
            .into_iter()
            .map(|recipient| NewMail {
                recipient,
                subject: subject.clone(),
                body: format!(
                    "Referral {} is now {}.\n\nSign in to Handoff to see the details: {public_url}/referrals/{}\n\n\
                     This email carries no patient information.\n",
                    r.number,
                    status::name(r.status),
                    r.id
                ),
                now: at,
            })
            .collect(),
        Recipients::FreeSender(recipient) => {
            let reason = r.reject_reason.map(|why| format!("Reason: {}.\n\n", reason_words(why))).unwrap_or_default();
            vec![NewMail {
                recipient,
                subject,
                body: format!(
                    "The free referral {} that you sent through Handoff was {}.\n\n{reason}\
                     Any note from the specialist is encrypted for the practices on the referral, so it cannot be emailed.\n\n\
                     You will receive no other updates about this referral. With an account you can follow referrals in Handoff, \
                     see category and urgency changes, add attachments and message the specialist: {public_url}/register\n\n\
                     This email carries no patient information.\n",
                    r.number,
                    status::name(r.status),
                ),
                now: at,
            }]
        }
    }
}

/// What a command changes, decided before anything is written.
struct Change {
    referral: Referral,
    first_opened_at: Option<i64>,
    event: Option<Event>,
    attach: Option<handoff_protocol::ws::BlobId>,
    mail: Vec<NewMail>,
}

async fn decide(
    store: &dyn Store,
    clock: &Clock,
    public_url: &str,
    user: UserId,
    rec: &ReferralRecord,
    mut r: Referral,
    cmd: Command,
) -> ApiResult<Change> {
    let opened = rec.first_opened_at;
    let Some(access) = crate::access::referral_access(store, clock, user, rec).await? else {
        return Err(crate::access::refusal(store, clock, user, crate::access::parties(rec), "referral").await);
    };
    let may = |action| access.permits(action).map_err(|Forbidden(why)| ApiError::new(ErrorCode::Forbidden, why));
    // Whom a delegate acts for, on each side they stand on (from their membership now).
    let for_receiver = if access.receiver { crate::access::on_behalf_of(store, clock, rec.to_practice, user).await? } else { None };
    let for_sender = match rec.from_practice {
        Some(p) if access.sender => crate::access::on_behalf_of(store, clock, p, user).await?,
        _ => None,
    };
    // A thread message or attachment is written from the side the user works on (the receiver's, if both).
    let for_either = if access.receiver { for_receiver } else { for_sender };
    let at = now_millis();
    let mut change = Change { referral: r.clone(), first_opened_at: opened, event: None, attach: None, mail: vec![] };
    let status_change = |r: &mut Referral,
                         to: Status,
                         reason,
                         note,
                         mail: &mut Vec<NewMail>,
                         recipients: Recipients,
                         on_behalf_of: Option<UserId>|
     -> ApiResult<Event> {
        status::transition(r.status, to).map_err(|e| ApiError::new(ErrorCode::InvalidTransition, e.to_string()))?;
        r.status = to;
        r.reject_reason = reason;
        mail.extend(status_mail(r, recipients, public_url, at));
        Ok(Event::StatusChanged { referral: r.id, number: r.number.clone(), status: to, reason, note, by: user, on_behalf_of, at })
    };
    match cmd {
        Command::MarkOpened { .. } => {
            may(Action::MarkOpened)?;
            if opened.is_none() {
                change.first_opened_at = Some(at);
                r.first_opened_at = Some(at);
                change.event = Some(Event::Opened { referral: r.id, by: user, on_behalf_of: for_receiver, at });
            }
        }
        Command::Accept { .. } => {
            may(Action::Accept)?;
            let recipients = recipients(store, rec).await?;
            change.event = Some(status_change(&mut r, Status::Accepted, None, None, &mut change.mail, recipients, for_receiver)?);
        }
        Command::Reject { reason, note, .. } => {
            may(Action::Reject)?;
            if note.0.len() > MAX_MESSAGE {
                return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("the note is over {MAX_MESSAGE} bytes")));
            }
            let recipients = recipients(store, rec).await?;
            change.event =
                Some(status_change(&mut r, Status::Rejected, Some(reason), Some(note), &mut change.mail, recipients, for_receiver)?);
        }
        Command::Cancel { .. } => {
            may(Action::Cancel)?;
            change.event =
                Some(status_change(&mut r, Status::Cancelled, None, None, &mut change.mail, Recipients::Members(vec![]), for_sender)?);
        }
        Command::ChangeCategory { category, subcategory, .. } => {
            may(Action::ChangeCategory)?;
            if !status::is_open(r.status) {
                return Err(ApiError::new(ErrorCode::InvalidTransition, "a closed referral cannot be re-filed"));
            }
            let t = store.taxonomy().await?;
            routing::refile(&t, &r.routing.specialty, &category, subcategory.as_deref())
                .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.to_string()))?;
            r.routing.category = category.clone();
            r.routing.subcategory = subcategory.clone();
            change.event = Some(Event::CategoryChanged { referral: r.id, category, subcategory, by: user, on_behalf_of: for_receiver, at });
        }
        Command::ChangeUrgency { urgency, .. } => {
            may(Action::ChangeUrgency)?;
            if !status::is_open(r.status) {
                return Err(ApiError::new(ErrorCode::InvalidTransition, "a closed referral's urgency cannot change"));
            }
            r.routing.urgency = urgency;
            change.event = Some(Event::UrgencyChanged { referral: r.id, urgency, by: user, on_behalf_of: for_receiver, at });
        }
        Command::AddAttachment { attachment, .. } => {
            may(Action::AddAttachment)?;
            if attachment.meta.0.len() > MAX_MESSAGE {
                return Err(ApiError::new(ErrorCode::PayloadTooLarge, "attachment metadata is too large"));
            }
            if r.attachments.len() >= MAX_ATTACHMENTS {
                return Err(ApiError::new(ErrorCode::ValidationFailed, "a referral has at most 50 attachments"));
            }
            match store.blob_meta(attachment.blob).await? {
                Some(b) if b.owner == user && b.referral.is_none() => {}
                _ => return Err(ApiError::not_found("blob")),
            }
            change.attach = Some(attachment.blob);
            r.attachments.push(attachment.clone());
            change.event = Some(Event::AttachmentAdded { referral: r.id, attachment, by: user, on_behalf_of: for_either, at });
        }
        Command::PostMessage { message, .. } => {
            may(Action::PostMessage)?;
            if message.body.0.len() > MAX_MESSAGE || message.signature.0.len() != 64 {
                return Err(ApiError::new(
                    ErrorCode::ValidationFailed,
                    format!("a message body is at most {MAX_MESSAGE} bytes with a 64-byte signature"),
                ));
            }
            change.event = Some(Event::MessagePosted { referral: r.id, message, by: user, on_behalf_of: for_either, at });
        }
        Command::Subscribe { .. }
        | Command::Unsubscribe { .. }
        | Command::SendReferral { .. }
        | Command::RoomHost { .. }
        | Command::RoomHostStatus { .. }
        | Command::RoomLeave { .. }
        | Command::RoomAdmit { .. }
        | Command::RoomReturn { .. }
        | Command::RoomRemove { .. }
        | Command::RoomHandOver { .. }
        | Command::RoomMessage { .. }
        | Command::RoomEnd { .. }
        | Command::RoomSignal { .. }
        | Command::GuestCheckIn { .. }
        | Command::GuestSignal { .. }
        | Command::GuestLeave {} => {
            return Err(ApiError::new(ErrorCode::UnknownCommand, "not a referral command"));
        }
    }
    change.referral = r;
    Ok(change)
}

impl Handler<Execute> for ReferralActor {
    type Result = AtomicResponse<Self, ApiResult<(bool, AckBody)>>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(env) = self.env.upgrade() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down")))));
        };
        let rec = self.kind.rec.clone();
        let work = async move {
            let store = env.store.clone();
            let current: Referral = serde_json::from_str(&rec.body).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let id = current.id;
            let change = decide(&*store, &env.config.clock, &env.config.public_url, msg.user, &rec, current, msg.cmd).await?;
            let ack = AckBody::Done { referral: id };
            let Some(event) = change.event else {
                return Ok(Outcome::Done { updated: None, events: Vec::new(), ack });
            };
            let body = serde_json::to_string(&event).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let mut updated = rec.clone();
            updated.status = change.referral.status;
            updated.first_opened_at = change.first_opened_at;
            updated.body = serde_json::to_string(&change.referral).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let has_mail = !change.mail.is_empty();
            let commit = Commit {
                update: Some(updated.clone()),
                events: referral_streams(id, rec.from_practice, rec.to_practice).map(|s| (s, body.clone())).collect(),
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
            match env.config.metrics.timed("commit", store.commit(commit)).await {
                Ok(events) => {
                    if has_mail {
                        env.kick_mailer();
                    }
                    Ok(Outcome::Done { updated: Some(Box::new(updated)), events, ack })
                }
                Err(ReferralError::IdempotencyKeyUsed) => {
                    // A concurrent retry won the race: answer with its result.
                    Ok(Outcome::Duplicate(crate::replayed(&*store, msg.user, msg.idem, &msg.hash).await?.unwrap_or(ack)))
                }
                Err(ReferralError::BlobUnavailable) => Err(ApiError::not_found("blob")),
                Err(e) => Err(e.into()),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(|res, act, ctx| match res? {
            Outcome::Done { updated, events, ack } => {
                if let Some(u) = updated {
                    act.kind.rec = *u;
                }
                act.publish(ctx, events);
                Ok((false, ack))
            }
            Outcome::Duplicate(ack) => Ok((true, ack)),
        })))
    }
}
