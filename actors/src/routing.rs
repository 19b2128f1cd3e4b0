//! RoutingActor: decides referrals one at a time, and pipelines their commits.
//!
//! "Choose for me" (Clinnect's rule): among the verified, unpaused specialist
//! practices in the region whose intake covers the category (and
//! subcategory), pick the one that has received the fewest referrals in that
//! category (and subcategory); ties go to the smallest practice id. One actor
//! decides every referral, one after another, and each decision counts every
//! earlier one: the durable ones from the store, and those still being
//! committed from the actor's own list of pending decisions (left out of the
//! store's count, so none is counted twice). So N concurrent picks among k
//! practices end with counts that differ by at most 1.
//!
//! **Pipelining.** The actor does not wait for a commit before deciding the
//! next referral: it submits each decision to the store on its [`Chain`] and
//! goes on, so the commits queued behind one fsync share it (the store's group
//! commit). Each sender is answered, in decision order, only once its own
//! commit is durable, and the referral's events are delivered only then. If a
//! commit fails, the store fails every later commit of the chain (each was
//! decided counting the failed one) without applying it; the actor starts a
//! new chain, forgets the doomed decisions, and decides those referrals again.
//!
//! The client cannot know the receiver in advance, so it wraps `R` to every
//! candidate it saw in the directory; the server keeps only the chosen wrap.
//! Named-practice sends go through the same path, so they count too.

use std::collections::BTreeMap;
use std::sync::Weak;

use actix::prelude::*;
use tokio::sync::oneshot;

use handoff_domain::eligibility::{self, Receiver};
use handoff_domain::limits::{MAX_ATTACHMENTS, MAX_CANDIDATES};
use handoff_domain::rights::Right;
use handoff_domain::routing;
use handoff_protocol::audit::AuditAction;
use handoff_protocol::ws::{
    AckBody, Destination, Event, MAX_CONTENT, NewReferral, NewSender, Referral, ReferralId, Routing, SentFrom, Status, WrappedKey,
};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Chain, Commit, IdemRecord, PracticeRecord, ReferralError, ReferralRecord, Store, StoredEvent};

use crate::env::Env;
use crate::messages::{Create, Creator};
use crate::{ApiError, ApiResult, now_millis};

pub(crate) struct RoutingActor {
    env: Weak<Env>,
    /// The chain new decisions are submitted on (replaced after a failure).
    chain: Chain,
    /// Decisions submitted and not yet answered, oldest first.
    pending: Vec<Pending>,
    /// The ticket the next decision gets.
    next: u64,
    /// The ticket answered next: answers go out in decision order.
    answer: u64,
    /// Commits that finished ahead of an earlier ticket's, waiting for it.
    finished: BTreeMap<u64, Finished>,
}

impl RoutingActor {
    pub(crate) fn new(env: Weak<Env>) -> Self {
        Self { env, chain: Chain::new(), pending: Vec::new(), next: 0, answer: 0, finished: BTreeMap::new() }
    }
}

/// A decision being committed: what the next decisions must count.
#[derive(Clone, Debug)]
struct Pending {
    ticket: u64,
    id: ReferralId,
    to: PracticeId,
    category: String,
    sub: Option<String>,
}

impl Pending {
    /// Whether this referral counts for `to` in a count by `category` (and `sub`, when given).
    fn counts_for(&self, to: PracticeId, category: &str, sub: Option<&str>) -> bool {
        self.to == to && self.category == category && sub.is_none_or(|s| self.sub.as_deref() == Some(s))
    }
}

/// A submitted decision's commit, done, with what its answer needs.
struct Finished {
    result: Result<Vec<StoredEvent>, ReferralError>,
    ack: AckBody,
    reply: oneshot::Sender<Reply>,
}

/// What the actor tells the waiting sender.
enum Reply {
    /// Refused before anything was written.
    Refused(ApiError),
    /// Durable: the answer.
    Sent(AckBody),
    /// The commit failed; the sender's side works out the answer (it may read the store).
    Failed(ReferralError, AckBody),
}

impl Actor for RoutingActor {
    type Context = Context<Self>;
}

/// A human-readable referral number: `HR-` and eight Crockford base32
/// characters (no I, L, O or U), random so it reveals no volumes.
pub fn referral_number() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Fall back to the clock; uniqueness is still enforced by the store.
        b = now_millis().to_be_bytes();
    }
    let mut number = String::from("HR-");
    for (i, x) in b.iter().enumerate() {
        if i == 4 {
            number.push('-');
        }
        number.push(ALPHABET.get(usize::from(*x) % ALPHABET.len()).map_or('0', |c| char::from(*c)));
    }
    number
}

/// Whether a stored practice can receive this referral now (`handoff_domain::eligibility`).
pub(crate) fn eligible(p: &PracticeRecord, r: &Routing) -> bool {
    eligibility::eligible(
        &Receiver {
            kind: p.kind,
            verified: p.verified,
            paused: p.paused,
            specialty: p.specialty.as_deref(),
            region: p.region.as_deref(),
            intake: &p.intake,
        },
        r,
    )
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed, msg)
}

fn check_wrap(w: &WrappedKey) -> ApiResult<()> {
    if (48..=512).contains(&w.sealed.0.len()) { Ok(()) } else { Err(invalid("a wrapped key must be 48 to 512 bytes")) }
}

async fn check_routing(store: &dyn Store, r: &Routing) -> ApiResult<()> {
    let t = store.taxonomy().await?;
    routing::validate(&t, r).map_err(|e| invalid(e.to_string()))
}

/// The practices a new referral may go to, each with the wrap made for it:
/// the named practice, or every eligible candidate of a choose-for-me. Read
/// before the decision, concurrently with other referrals' checks.
async fn receivers(store: &dyn Store, n: &NewReferral, creator: &Creator) -> ApiResult<Vec<(PracticeRecord, WrappedKey)>> {
    let takes = |p: &PracticeRecord| eligible(p, &n.routing) && creator.may_send_to(p);
    let stale =
        || ApiError::new(ErrorCode::StaleKey, "a practice key has changed since you fetched the directory; fetch it again and retry");
    match &n.destination {
        Destination::Practice { practice } => {
            let p = store.practice(*practice).await?.filter(|p| takes(p)).ok_or_else(|| {
                ApiError::new(ErrorCode::NotEligible, "that practice cannot receive referrals in this category and region now")
            })?;
            let w = n.to_keys.iter().find(|w| w.practice == p.id).ok_or_else(|| invalid("to_keys: no wrap for the chosen practice"))?;
            if w.epoch != p.key_epoch {
                return Err(stale());
            }
            Ok(vec![(p, w.clone())])
        }
        Destination::ChooseForMe => {
            let mut candidates: Vec<(PracticeRecord, WrappedKey)> = Vec::new();
            for w in &n.to_keys {
                if let Some(p) = store.practice(w.practice).await?
                    && takes(&p)
                {
                    if w.epoch != p.key_epoch {
                        return Err(stale());
                    }
                    if !candidates.iter().any(|(c, _)| c.id == p.id) {
                        candidates.push((p, w.clone()));
                    }
                }
            }
            if candidates.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::NoEligiblePractice,
                    "no practice you wrapped a key for can receive this referral now",
                ));
            }
            Ok(candidates)
        }
    }
}

/// Picks the receiver among the checked `candidates`, counting the `pending`
/// decisions; returns it with the wrap made for it. A named send has one
/// candidate and reads nothing; a choose-for-me reads the store's counts,
/// which is why the actor runs this one decision at a time.
async fn choose(
    store: &dyn Store,
    n: &NewReferral,
    mut candidates: Vec<(PracticeRecord, WrappedKey)>,
    pending: &[Pending],
) -> ApiResult<(PracticeRecord, WrappedKey)> {
    if let Destination::Practice { .. } = n.destination {
        return candidates.pop().ok_or_else(|| ApiError::new(ErrorCode::Internal, "no receiver"));
    }
    let ids: Vec<PracticeId> = candidates.iter().map(|(p, _)| p.id).collect();
    let (category, sub) = (n.routing.category.as_str(), n.routing.subcategory.as_deref());
    let counted: Vec<&Pending> = pending.iter().filter(|d| ids.iter().any(|p| d.counts_for(*p, category, sub))).collect();
    let excluded: Vec<ReferralId> = counted.iter().map(|d| d.id).collect();
    // The store's durable count, without the pending decisions, plus the pending ones: each counted once.
    let counts = store.routing_counts(&ids, category, sub, &excluded).await?;
    let counts = counts.into_iter().map(|(p, c)| (p, c + counted.iter().filter(|d| d.counts_for(p, category, sub)).count() as u64));
    let (best, _) = counts.min_by_key(|(id, c)| (*c, *id)).ok_or_else(|| ApiError::new(ErrorCode::Internal, "no counts"))?;
    candidates.into_iter().find(|(p, _)| p.id == best).ok_or_else(|| ApiError::new(ErrorCode::Internal, "lost the choice"))
}

/// A decided referral: the commit to submit, what to count while it is pending, and the answer.
struct Decision {
    commit: Commit,
    route: Pending,
    ack: AckBody,
}

/// The sending side of a new referral, checked: the practice and its wrap of
/// `R`, or nobody (a free sender).
struct From {
    practice: Option<(PracticeRecord, UserId, WrappedKey)>,
    /// For a delegate sending: their sponsor.
    on_behalf_of: Option<UserId>,
    free_email: Option<String>,
}

/// Checks that the creator may send as the referral's declared sender.
/// A member sends for a practice only in good standing there
/// ([`crate::access::standing`]: dates, sponsor, two-factor requirement) and
/// with the right to send ([`Right::SendReferrals`]).
async fn sender(store: &dyn Store, clock: &crate::clock::Clock, creator: &Creator, n: &NewReferral) -> ApiResult<From> {
    match (creator, &n.from) {
        (Creator::Member(user), NewSender::Practice { practice, key }) => {
            crate::access::require(store, clock, *practice, *user, Right::SendReferrals).await?;
            let on_behalf_of = crate::access::on_behalf_of(store, clock, *practice, *user).await?;
            check_wrap(key)?;
            let from = store.practice(*practice).await?.ok_or_else(|| ApiError::not_found("practice"))?;
            if key.practice != from.id {
                return Err(invalid("from.key: must be wrapped to the sending practice"));
            }
            if key.epoch != from.key_epoch {
                return Err(ApiError::new(ErrorCode::StaleKey, "your practice's key has changed; reload and retry"));
            }
            Ok(From { practice: Some((from, *user, key.clone())), on_behalf_of, free_email: None })
        }
        (Creator::Free { email, .. }, NewSender::Free) => Ok(From { practice: None, on_behalf_of: None, free_email: Some(email.clone()) }),
        (Creator::Member(_), NewSender::Free) => {
            Err(invalid("from: a member sends for a practice; a free referral is sent without an account (POST /free/referrals)"))
        }
        (Creator::Free { .. }, NewSender::Practice { .. }) => Err(invalid("from: a free referral has no sending practice")),
    }
}

/// A new referral, checked: everything about it that does not depend on
/// the other referrals being decided.
struct Checked {
    from: From,
    candidates: Vec<(PracticeRecord, WrappedKey)>,
    /// When the sending is audited: the member's chains among the sending
    /// practice and every candidate receiver (the decision keeps those of
    /// the sender and the chosen receiver).
    chains: crate::audit::Chains,
}

/// Checks a new referral (sizes, the sender's standing and keys, the
/// routing, the attachments, the possible receivers); writes nothing. Runs
/// concurrently with other referrals' checks and decisions: nothing here is
/// counted, so the order does not matter.
async fn check(store: &dyn Store, clock: &crate::clock::Clock, msg: &Create) -> ApiResult<Checked> {
    let (creator, n) = (&msg.creator, &*msg.referral);
    let owner = creator.owner();
    if n.content.0.len() > MAX_CONTENT {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("referral content is over {MAX_CONTENT} bytes")));
    }
    if n.attachments.len() > MAX_ATTACHMENTS || n.to_keys.len() > MAX_CANDIDATES || n.to_keys.is_empty() {
        return Err(invalid(format!("at most {MAX_ATTACHMENTS} attachments and 1 to {MAX_CANDIDATES} receiver wraps")));
    }
    let from = sender(store, clock, creator, n).await?;
    for w in &n.to_keys {
        check_wrap(w)?;
    }
    check_routing(store, &n.routing).await?;
    for a in &n.attachments {
        match store.blob_meta(a.blob).await? {
            Some(b) if b.owner == owner && b.referral.is_none() => {}
            _ => return Err(ApiError::not_found("blob")),
        }
    }
    let candidates = receivers(store, n, creator).await?;
    let chains = match (&msg.audit_from, creator) {
        (Some(_), Creator::Member(user)) => {
            let from_practice = from.practice.as_ref().map(|(p, _, _)| p.id);
            crate::audit::chains(store, *user, from_practice.into_iter().chain(candidates.iter().map(|(p, _)| p.id))).await?
        }
        _ => Vec::new(),
    };
    Ok(Checked { from, candidates, chains })
}

/// Decides a checked referral's receiver, counting the `pending` decisions,
/// and makes its commit; writes nothing.
async fn decide(store: &dyn Store, msg: &Create, checked: Checked, pending: &[Pending]) -> ApiResult<Decision> {
    let (creator, n) = (&msg.creator, &*msg.referral);
    let owner = creator.owner();
    let Checked { from, candidates, chains } = checked;
    let (to, to_key) = choose(store, n, candidates, pending).await?;
    let from_practice = from.practice.as_ref().map(|(p, _, _)| p.id);
    if from_practice == Some(to.id) {
        return Err(invalid("a practice cannot refer to itself"));
    }
    let sent_from = match from.practice {
        Some((p, user, key)) => SentFrom::Practice { practice: p.id, user, key, on_behalf_of: from.on_behalf_of },
        None => SentFrom::Free,
    };
    let now = now_millis();
    let number = referral_number();
    let referral = Referral {
        id: n.id,
        number: number.clone(),
        from: sent_from,
        to_practice: to.id,
        routing: n.routing.clone(),
        status: Status::Sent,
        reject_reason: None,
        content: n.content.clone(),
        to_key,
        attachments: n.attachments.clone(),
        created_at: now,
        first_opened_at: None,
    };
    let ack = AckBody::ReferralSent { referral: n.id, number: number.clone(), to_practice: to.id };
    let internal = |e: serde_json::Error| ApiError::new(ErrorCode::Internal, e.to_string());
    let body = serde_json::to_string(&referral).map_err(internal)?;
    let event = serde_json::to_string(&Event::ReferralSent { referral: Box::new(referral) }).map_err(internal)?;
    let commit = Commit {
        insert: Some(ReferralRecord {
            id: n.id,
            number,
            from_practice,
            free_email: from.free_email,
            to_practice: to.id,
            routed_category: n.routing.category.clone(),
            routed_sub: n.routing.subcategory.clone(),
            body,
            status: Status::Sent,
            created_at: now,
            first_opened_at: None,
        }),
        events: crate::referral::referral_streams(n.id, from_practice, to.id).map(|s| (s, event.clone())).collect(),
        attach: n.attachments.iter().map(|a| (a.blob, n.id)).collect(),
        idem: Some(IdemRecord {
            user: owner,
            key: msg.idem,
            command: msg.hash.clone(),
            result: serde_json::to_string(&ack).unwrap_or_default(),
        }),
        audit: match creator {
            Creator::Member(user) => {
                let chains: crate::audit::Chains = chains.into_iter().filter(|(p, _)| from_practice == Some(*p) || *p == to.id).collect();
                crate::audit::entries(&chains, *user, AuditAction::ReferralSent, n.id, msg.audit_from.as_deref(), now)
            }
            Creator::Free { .. } => Vec::new(),
        },
        now,
        ..Default::default()
    };
    let route = Pending { ticket: 0, id: n.id, to: to.id, category: n.routing.category.clone(), sub: n.routing.subcategory.clone() };
    Ok(Decision { commit, route, ack })
}

/// How many times one referral is decided again before the sender is told to retry.
const MAX_REDO: u8 = 8;

fn mailbox_err<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, format!("the server is busy or restarting ({e}); retry"))
}

impl RoutingActor {
    /// Submits a decision on the current chain (at once, in decision order) and
    /// answers it once its commit is durable.
    fn submit(&mut self, decided: ApiResult<Decision>, reply: oneshot::Sender<Reply>, ctx: &mut Context<Self>) {
        let (decision, env) = match (decided, self.env.upgrade()) {
            (Ok(d), Some(env)) => (d, env),
            (Err(e), _) => {
                let _ = reply.send(Reply::Refused(e));
                return;
            }
            (Ok(_), None) => {
                let _ = reply.send(Reply::Refused(ApiError::new(ErrorCode::Unavailable, "shutting down")));
                return;
            }
        };
        let ticket = self.next;
        self.next += 1;
        let committed = env.store.submit(decision.commit, &self.chain);
        self.pending.push(Pending { ticket, ..decision.route });
        let ack = decision.ack;
        let metrics = env.config.metrics.clone();
        let timed = async move { metrics.timed("commit", committed).await };
        ctx.spawn(timed.into_actor(self).map(move |result, act, _| {
            act.finished.insert(ticket, Finished { result, ack, reply });
            act.answer_in_order();
        }));
    }

    /// Answers every finished decision whose turn it is, oldest first.
    fn answer_in_order(&mut self) {
        while let Some(done) = self.finished.remove(&self.answer) {
            let ticket = self.answer;
            self.answer += 1;
            self.pending.retain(|d| d.ticket != ticket);
            match done.result {
                Ok(events) => {
                    // Durable: answer, then deliver (outside the routing critical path).
                    let _ = done.reply.send(Reply::Sent(done.ack));
                    if let Some(env) = self.env.upgrade() {
                        env.deliver(events);
                    }
                }
                Err(e) => {
                    if self.chain.is_broken() {
                        // Every later decision on this chain counted this one and will fail unapplied:
                        // forget them, and decide from here on a new chain.
                        self.chain = Chain::new();
                        self.pending.clear();
                    }
                    let _ = done.reply.send(Reply::Failed(e, done.ack));
                }
            }
        }
    }
}

impl Handler<Create> for RoutingActor {
    type Result = ResponseFuture<ApiResult<(bool, AckBody)>>;

    /// Checks the referral concurrently with others; then decides it while
    /// the actor decides nothing else (counting the pending decisions),
    /// submits it, and waits for its commit outside the actor, so the next
    /// referral is decided meanwhile.
    fn handle(&mut self, msg: Create, ctx: &mut Self::Context) -> Self::Result {
        let Some(env) = self.env.upgrade() else {
            return Box::pin(std::future::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down"))));
        };
        let (reply, answer) = oneshot::channel();
        let again = msg.clone();
        let store = env.store.clone();
        let checked = {
            let (env, msg) = (env.clone(), msg.clone());
            async move { check(&*env.store, &env.config.clock, &msg).await }
        };
        // Spawned, not waited on: many referrals are checked at once. The
        // decision then runs in `ctx.wait`, which holds back every other
        // spawned future's continuation (so every other decision) until it is
        // submitted: decisions stay one at a time, each counting all before it.
        ctx.spawn(checked.into_actor(self).map(move |checked, act, ctx| match checked {
            Err(e) => {
                let _ = reply.send(Reply::Refused(e));
            }
            Ok(checked) => {
                let pending = act.pending.clone();
                let work = async move { decide(&*env.store, &msg, checked, &pending).await };
                ctx.wait(work.into_actor(act).map(move |decided, act, ctx| act.submit(decided, reply, ctx)));
            }
        }));
        let addr = ctx.address();
        Box::pin(async move {
            let redo = |mut msg: Create| async move {
                if msg.redo >= MAX_REDO {
                    return Err(ApiError::new(ErrorCode::Unavailable, "the server is busy; retry"));
                }
                msg.redo += 1;
                addr.send(msg).await.map_err(mailbox_err)?
            };
            match answer.await {
                Ok(Reply::Sent(ack)) => Ok((false, ack)),
                Ok(Reply::Refused(e)) => Err(e),
                Ok(Reply::Failed(ReferralError::IdempotencyKeyUsed, ack)) => {
                    // A concurrent retry with the same key committed first: answer with its result.
                    Ok((true, crate::replayed(&*store, again.creator.owner(), again.idem, &again.hash).await?.unwrap_or(ack)))
                }
                Ok(Reply::Failed(ReferralError::ReferralExists, _)) => {
                    if store.referral(again.referral.id).await?.is_some() {
                        return Err(ApiError::new(ErrorCode::Conflict, "a referral with this id exists; generate a new id"));
                    }
                    // A referral-number collision: decide again with a new number.
                    redo(again).await
                }
                Ok(Reply::Failed(ReferralError::ChainBroken, _)) => redo(again).await,
                Ok(Reply::Failed(ReferralError::BlobUnavailable, _)) => Err(ApiError::not_found("blob")),
                Ok(Reply::Failed(e, _)) => Err(e.into()),
                Err(_) => Err(ApiError::new(ErrorCode::Unavailable, "shutting down")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::referral_number;

    #[test]
    fn referral_numbers_are_two_groups_of_four_crockford_characters() {
        for _ in 0..200 {
            let n = referral_number();
            let (prefix, rest) = n.split_at(3);
            assert_eq!(prefix, "HR-", "{n}");
            let groups: Vec<&str> = rest.split('-').collect();
            assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), vec![4, 4], "{n}");
            assert!(rest.chars().all(|c| c == '-' || (c.is_ascii_alphanumeric() && !"ILOU".contains(c) && !c.is_ascii_lowercase())), "{n}");
        }
    }
}
