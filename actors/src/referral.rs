//! ReferralActor: one referral's state machine, history and thread.
//!
//! Transitions: `sent → accepted | rejected | cancelled`, `accepted →
//! cancelled`. Only the receiving practice accepts, rejects, opens and
//! re-files; only the referring practice cancels; both add attachments and
//! post messages, in any state. Every change is one store commit: the new
//! referral state, its event on the referral's stream and on both practices'
//! streams, the idempotency record, and (for accept and reject) the status
//! emails to the referring practice's opted-in members.
//!
//! **Pipelining.** The actor decides commands one at a time, each against the
//! referral as every earlier decision leaves it (durable or still being
//! committed), submits each change to the store on the actor's [`Chain`] and
//! goes on without waiting, so a busy thread's messages share fsyncs (the
//! store's group commit). Every command is answered in decision order, and a
//! change is acknowledged and pushed only once its own commit is durable. If
//! a commit fails, the store fails every later commit of the chain unapplied
//! (each was decided on top of it); the actor goes back to the durable record
//! on a new chain, and every command decided on the failed one (committed or
//! not: a refusal or a no-op too) is decided again.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use handoff_domain::access::{Action, Forbidden, Parties};
use handoff_domain::limits::MAX_ATTACHMENTS;
use handoff_domain::{routing, status};
use handoff_protocol::ws::{AckBody, Command, Event, MAX_MESSAGE, Referral, ReferralId, RejectReason, Status, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Chain, Commit, IdemRecord, NewMail, ReferralError, ReferralRecord, Store, StoredEvent};

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
/// referral's record (loaded at activation) and its pipeline of commits.
pub(crate) struct ReferralStream {
    /// The record as every decision so far leaves it, pending commits included.
    rec: ReferralRecord,
    /// The record as the durable commits leave it.
    durable: ReferralRecord,
    /// The chain new changes are submitted on (replaced after a failure).
    chain: Chain,
    /// The ticket the next decision gets.
    next: u64,
    /// The ticket answered next: answers go out in decision order.
    answer: u64,
    /// Decisions done (or commits finished) ahead of an earlier ticket's.
    finished: BTreeMap<u64, Finished>,
    /// The arrival number the next command gets.
    arrived: u64,
    /// The arrival number decided next: commands are decided in arrival order.
    decide_next: u64,
    /// Commands whose standing is checked, waiting for their turn to be decided.
    checked: BTreeMap<u64, Arrived>,
    /// Whether a decision is running (in `ctx.wait`).
    deciding: bool,
}

impl ReferralStream {
    fn new(rec: ReferralRecord) -> Self {
        Self {
            durable: rec.clone(),
            rec,
            chain: Chain::new(),
            next: 0,
            answer: 0,
            finished: BTreeMap::new(),
            arrived: 0,
            decide_next: 0,
            checked: BTreeMap::new(),
            deciding: false,
        }
    }
}

/// A command that arrived, with where its user stands on the referral
/// (checked concurrently with other commands), waiting to be decided.
struct Arrived {
    msg: Execute,
    who: ApiResult<Who>,
    reply: oneshot::Sender<Reply>,
}

/// Where a user stands on a referral: their access, and whom a delegate acts
/// for on each side (from their membership now). Depends only on the user
/// and the referral's parties, which never change, so it is read before the
/// command's turn.
struct Who {
    access: handoff_domain::access::Access,
    for_receiver: Option<UserId>,
    for_sender: Option<UserId>,
    /// When the command is audited: the user's chains on this referral.
    chains: crate::audit::Chains,
}

/// Reads where `user` stands on `rec`: the refusal if they have no access;
/// with `audited`, also the chains their action is recorded in.
async fn who(store: &dyn Store, clock: &Clock, user: UserId, rec: &ReferralRecord, audited: bool) -> ApiResult<Who> {
    let Some(access) = crate::access::referral_access(store, clock, user, rec).await? else {
        return Err(crate::access::refusal(store, clock, user, crate::access::parties(rec), "referral").await);
    };
    let for_receiver = if access.receiver { crate::access::on_behalf_of(store, clock, rec.to_practice, user).await? } else { None };
    let for_sender = match rec.from_practice {
        Some(p) if access.sender => crate::access::on_behalf_of(store, clock, p, user).await?,
        _ => None,
    };
    let chains =
        if audited { crate::audit::chains(store, user, rec.from_practice.into_iter().chain([rec.to_practice])).await? } else { Vec::new() };
    Ok(Who { access, for_receiver, for_sender, chains })
}

/// One decided command, ready to be answered in its turn.
struct Finished {
    /// The chain it was decided on: broken means it was decided on a failed change.
    decided_on: Chain,
    done: Done,
    reply: oneshot::Sender<Reply>,
}

/// What a decision came to.
enum Done {
    /// Refused before anything was written.
    Refused(ApiError),
    /// Nothing to change.
    Unchanged(AckBody),
    /// Its commit finished.
    Committed { result: Result<Vec<StoredEvent>, ReferralError>, updated: Box<ReferralRecord>, ack: AckBody, mail: bool },
}

/// What the actor tells the waiting sender.
enum Reply {
    /// The answer: acknowledged (durable, or nothing to change) or refused.
    Answer(ApiResult<AckBody>),
    /// The commit failed; the sender's side works out the answer (it may read the store).
    Failed(ReferralError, AckBody),
    /// Decided on a change that failed: decide it again.
    Redo,
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
        Ok(Self::new(rec))
    }

    fn busy(&self) -> bool {
        // Commits in flight, or commands arrived and not yet decided.
        self.answer != self.next || self.decide_next != self.arrived
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
    public_url: &str,
    who: Who,
    user: UserId,
    rec: &ReferralRecord,
    mut r: Referral,
    cmd: Command,
) -> ApiResult<Change> {
    let opened = rec.first_opened_at;
    let Who { access, for_receiver, for_sender, .. } = who;
    let may = |action| access.permits(action).map_err(|Forbidden(why)| ApiError::new(ErrorCode::Forbidden, why));
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

/// A decided change: the commit to submit, the record it leaves, the answer.
struct Decided {
    commit: Commit,
    updated: ReferralRecord,
    ack: AckBody,
    mail: bool,
}

/// Decides `msg` against `rec`: the change to commit, or `None` if nothing changes.
async fn decide_change(env: &crate::env::Env, rec: ReferralRecord, msg: Execute, mut who: Who) -> ApiResult<(Option<Decided>, AckBody)> {
    let internal = |e: serde_json::Error| ApiError::new(ErrorCode::Internal, e.to_string());
    let current: Referral = serde_json::from_str(&rec.body).map_err(internal)?;
    let id = current.id;
    let current_copy = current.clone();
    let action = msg.audit_from.as_ref().and(crate::audit::action_of(&msg.cmd));
    let chains = std::mem::take(&mut who.chains);
    let change = decide(&*env.store, &env.config.public_url, who, msg.user, &rec, current, msg.cmd).await?;
    let ack = AckBody::Done { referral: id };
    let Some(event) = change.event else {
        return Ok((None, ack));
    };
    let body = serde_json::to_string(&event).map_err(internal)?;
    // A thread message leaves the record as it is: no rewrite of its (large) body.
    let same = change.referral == current_copy && change.first_opened_at == rec.first_opened_at;
    let mut updated = rec.clone();
    if !same {
        updated.status = change.referral.status;
        updated.first_opened_at = change.first_opened_at;
        updated.body = serde_json::to_string(&change.referral).map_err(internal)?;
    }
    let mail = !change.mail.is_empty();
    let now = now_millis();
    let commit = Commit {
        update: (!same).then(|| updated.clone()),
        events: referral_streams(id, rec.from_practice, rec.to_practice).map(|s| (s, body.clone())).collect(),
        attach: change.attach.map(|b| vec![(b, id)]).unwrap_or_default(),
        idem: Some(IdemRecord {
            user: msg.user,
            key: msg.idem,
            command: msg.hash.clone(),
            result: serde_json::to_string(&ack).unwrap_or_default(),
        }),
        mail: change.mail,
        audit: action.map(|a| crate::audit::entries(&chains, msg.user, a, id, msg.audit_from.as_deref(), now)).unwrap_or_default(),
        now,
        ..Default::default()
    };
    Ok((Some(Decided { commit, updated, ack: ack.clone(), mail }), ack))
}

/// How many times one command is decided again before the sender is told to retry.
const MAX_REDO: u8 = 8;

impl ReferralActor {
    /// Takes a decision in decision order: submits its change on the current
    /// chain at once (the next command is decided on top of it), and answers
    /// it in its turn.
    fn submit_change(&mut self, decided: ApiResult<(Option<Decided>, AckBody)>, reply: oneshot::Sender<Reply>, ctx: &mut Context<Self>) {
        let ticket = self.kind.next;
        self.kind.next += 1;
        let decided_on = self.kind.chain.clone();
        let done = match (decided, self.env.upgrade()) {
            (Err(e), _) => Done::Refused(e),
            (Ok((None, ack)), _) => Done::Unchanged(ack),
            (Ok(_), None) => Done::Refused(ApiError::new(ErrorCode::Unavailable, "shutting down")),
            (Ok((Some(d), _)), Some(env)) => {
                let committed = env.store.submit(d.commit, &self.kind.chain);
                self.kind.rec = d.updated.clone();
                let metrics = env.config.metrics.clone();
                let timed = async move { metrics.timed("commit", committed).await };
                let (updated, ack, mail) = (Box::new(d.updated), d.ack, d.mail);
                ctx.spawn(timed.into_actor(self).map(move |result, act, ctx| {
                    let done = Done::Committed { result, updated, ack, mail };
                    act.kind.finished.insert(ticket, Finished { decided_on, done, reply });
                    act.answer_in_order(ctx);
                }));
                return;
            }
        };
        self.kind.finished.insert(ticket, Finished { decided_on, done, reply });
        self.answer_in_order(ctx);
    }

    /// Decides the next arrived command if its standing is read and no
    /// decision is running; each decision, once submitted, starts the next.
    fn decide_in_turn(&mut self, ctx: &mut Context<Self>) {
        if self.kind.deciding {
            return;
        }
        let Some(Arrived { msg, who, reply }) = self.kind.checked.remove(&self.kind.decide_next) else { return };
        self.kind.decide_next += 1;
        let Some(env) = self.env.upgrade() else {
            let _ = reply.send(Reply::Answer(Err(ApiError::new(ErrorCode::Unavailable, "shutting down"))));
            return;
        };
        let who = match who {
            Ok(w) => w,
            Err(e) => {
                // Refused in its turn, so it is answered in order too.
                self.submit_change(Err(e), reply, ctx);
                return self.decide_in_turn(ctx);
            }
        };
        self.kind.deciding = true;
        let rec = self.kind.rec.clone();
        let work = async move { decide_change(&env, rec, msg, who).await };
        ctx.wait(work.into_actor(self).map(move |decided, act, ctx| {
            act.kind.deciding = false;
            act.submit_change(decided, reply, ctx);
            act.decide_in_turn(ctx);
        }));
    }

    /// Answers every finished decision whose turn it is, oldest first: a
    /// durable change is published and acknowledged; anything decided on a
    /// failed change is decided again.
    fn answer_in_order(&mut self, ctx: &mut Context<Self>) {
        while let Some(f) = self.kind.finished.remove(&self.kind.answer) {
            self.kind.answer += 1;
            let reply = match f.done {
                Done::Refused(_) | Done::Unchanged(_) if f.decided_on.is_broken() => Reply::Redo,
                Done::Refused(e) => Reply::Answer(Err(e)),
                Done::Unchanged(ack) => Reply::Answer(Ok(ack)),
                Done::Committed { result: Ok(events), updated, ack, mail } => {
                    self.kind.durable = *updated;
                    if mail && let Some(env) = self.env.upgrade() {
                        env.kick_mailer();
                    }
                    self.publish(ctx, events);
                    Reply::Answer(Ok(ack))
                }
                Done::Committed { result: Err(e), ack, .. } => {
                    if self.kind.chain.is_broken() {
                        // Every later change on this chain was decided on this one and fails unapplied:
                        // go back to the durable record, on a new chain.
                        self.kind.chain = Chain::new();
                        self.kind.rec = self.kind.durable.clone();
                    }
                    match e {
                        ReferralError::ChainBroken => Reply::Redo,
                        e => Reply::Failed(e, ack),
                    }
                }
            };
            let _ = f.reply.send(reply);
        }
    }
}

fn mailbox_err<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, format!("the server is busy or restarting ({e}); retry"))
}

impl Handler<Execute> for ReferralActor {
    type Result = ResponseFuture<ApiResult<(bool, AckBody)>>;

    /// Reads where the user stands (concurrently with other commands), then
    /// decides the command in its arrival turn while the actor decides
    /// nothing else, submits its change, and waits for the answer outside the
    /// actor, so the next command is decided meanwhile.
    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(env) = self.env.upgrade() else {
            return Box::pin(std::future::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down"))));
        };
        let (reply, answer) = oneshot::channel();
        let again = msg.clone();
        let store = env.store.clone();
        let arrival = self.kind.arrived;
        self.kind.arrived += 1;
        let rec = self.kind.rec.clone();
        let user = msg.user;
        let audited = msg.audit_from.is_some() && crate::audit::action_of(&msg.cmd).is_some();
        let standing = async move { who(&*env.store, &env.config.clock, user, &rec, audited).await };
        ctx.spawn(standing.into_actor(self).map(move |who, act, ctx| {
            act.kind.checked.insert(arrival, Arrived { msg, who, reply });
            act.decide_in_turn(ctx);
        }));
        let addr = ctx.address();
        Box::pin(async move {
            match answer.await {
                Ok(Reply::Answer(r)) => r.map(|ack| (false, ack)),
                Ok(Reply::Failed(ReferralError::IdempotencyKeyUsed, ack)) => {
                    // A concurrent retry won the race: answer with its result.
                    Ok((true, crate::replayed(&*store, again.user, again.idem, &again.hash).await?.unwrap_or(ack)))
                }
                Ok(Reply::Failed(ReferralError::BlobUnavailable, _)) => Err(ApiError::not_found("blob")),
                Ok(Reply::Failed(e, _)) => Err(e.into()),
                Ok(Reply::Redo) => {
                    let mut again = again;
                    if again.redo >= MAX_REDO {
                        return Err(ApiError::new(ErrorCode::Unavailable, "the referral is busy; retry"));
                    }
                    again.redo += 1;
                    addr.send(again).await.map_err(mailbox_err)?
                }
                Err(_) => Err(ApiError::new(ErrorCode::Unavailable, "shutting down")),
            }
        })
    }
}
