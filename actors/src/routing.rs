//! RoutingActor: creates referrals one at a time.
//!
//! "Choose for me" (Clinnect's rule): among the verified, unpaused specialist
//! practices in the region whose intake covers the category (and
//! subcategory), pick the one that has received the fewest referrals in that
//! category (and subcategory); ties go to the smallest practice id. Because one
//! actor decides and commits each referral before the next, N concurrent picks
//! among k practices end with counts that differ by at most 1.
//!
//! The client cannot know the receiver in advance, so it wraps `R` to every
//! candidate it saw in the directory; the server keeps only the chosen wrap.
//! Named-practice sends go through the same path, so they count too.

use std::sync::Weak;

use actix::prelude::*;

use handoff_domain::eligibility::{self, Receiver};
use handoff_domain::limits::{MAX_ATTACHMENTS, MAX_CANDIDATES};
use handoff_domain::rights::Right;
use handoff_domain::routing;
use handoff_protocol::ws::{
    AckBody, Destination, Event, IdemKey, MAX_CONTENT, NewReferral, NewSender, Referral, Routing, SentFrom, Status, WrappedKey,
};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Commit, IdemRecord, PracticeRecord, ReferralError, ReferralRecord, Store};

use crate::env::Env;
use crate::messages::{Create, Creator};
use crate::metrics::Metrics;
use crate::{ApiError, ApiResult, now_millis};

pub(crate) struct RoutingActor {
    env: Weak<Env>,
}

impl RoutingActor {
    pub(crate) fn new(env: Weak<Env>) -> Self {
        Self { env }
    }
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

/// Picks the receiver; returns it with the wrap made for it.
async fn choose(store: &dyn Store, n: &NewReferral, creator: &Creator) -> ApiResult<(PracticeRecord, WrappedKey)> {
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
            Ok((p, w.clone()))
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
            let ids: Vec<PracticeId> = candidates.iter().map(|(p, _)| p.id).collect();
            let counts = store.routing_counts(&ids, &n.routing.category, n.routing.subcategory.as_deref(), &[]).await?;
            let (best, _) =
                counts.iter().min_by_key(|(id, c)| (*c, *id)).copied().ok_or_else(|| ApiError::new(ErrorCode::Internal, "no counts"))?;
            candidates.into_iter().find(|(p, _)| p.id == best).ok_or_else(|| ApiError::new(ErrorCode::Internal, "lost the choice"))
        }
    }
}

enum Created {
    New(AckBody, Vec<handoff_store::StoredEvent>),
    Duplicate(AckBody),
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

async fn create(
    store: &dyn Store,
    clock: &crate::clock::Clock,
    metrics: &Metrics,
    creator: Creator,
    idem: IdemKey,
    hash: Vec<u8>,
    n: NewReferral,
) -> ApiResult<Created> {
    let owner = creator.owner();
    if n.content.0.len() > MAX_CONTENT {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("referral content is over {MAX_CONTENT} bytes")));
    }
    if n.attachments.len() > MAX_ATTACHMENTS || n.to_keys.len() > MAX_CANDIDATES || n.to_keys.is_empty() {
        return Err(invalid(format!("at most {MAX_ATTACHMENTS} attachments and 1 to {MAX_CANDIDATES} receiver wraps")));
    }
    let from = sender(store, clock, &creator, &n).await?;
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
    let (to, to_key) = choose(store, &n, &creator).await?;
    let from_practice = from.practice.as_ref().map(|(p, _, _)| p.id);
    if from_practice == Some(to.id) {
        return Err(invalid("a practice cannot refer to itself"));
    }
    let sent_from = match from.practice {
        Some((p, user, key)) => SentFrom::Practice { practice: p.id, user, key, on_behalf_of: from.on_behalf_of },
        None => SentFrom::Free,
    };
    let now = now_millis();
    for _ in 0..3 {
        let number = referral_number();
        let referral = Referral {
            id: n.id,
            number: number.clone(),
            from: sent_from.clone(),
            to_practice: to.id,
            routing: n.routing.clone(),
            status: Status::Sent,
            reject_reason: None,
            content: n.content.clone(),
            to_key: to_key.clone(),
            attachments: n.attachments.clone(),
            created_at: now,
            first_opened_at: None,
        };
        let ack = AckBody::ReferralSent { referral: n.id, number: number.clone(), to_practice: to.id };
        let event = serde_json::to_string(&Event::ReferralSent { referral: Box::new(referral.clone()) })
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let commit = Commit {
            insert: Some(ReferralRecord {
                id: n.id,
                number,
                from_practice,
                free_email: from.free_email.clone(),
                to_practice: to.id,
                routed_category: n.routing.category.clone(),
                routed_sub: n.routing.subcategory.clone(),
                body: serde_json::to_string(&referral).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?,
                status: Status::Sent,
                created_at: now,
                first_opened_at: None,
            }),
            events: crate::referral::referral_streams(n.id, from_practice, to.id).map(|s| (s, event.clone())).collect(),
            attach: n.attachments.iter().map(|a| (a.blob, n.id)).collect(),
            idem: Some(IdemRecord {
                user: owner,
                key: idem,
                command: hash.clone(),
                result: serde_json::to_string(&ack).unwrap_or_default(),
            }),
            now,
            ..Default::default()
        };
        match metrics.timed("commit", store.commit(commit)).await {
            Ok(events) => return Ok(Created::New(ack, events)),
            Err(ReferralError::IdempotencyKeyUsed) => {
                return Ok(Created::Duplicate(crate::replayed(store, owner, idem, &hash).await?.unwrap_or(ack)));
            }
            Err(ReferralError::ReferralExists) => {
                if store.referral(n.id).await?.is_some() {
                    return Err(ApiError::new(ErrorCode::Conflict, "a referral with this id exists; generate a new id"));
                }
                // A number collision: draw again.
            }
            Err(ReferralError::BlobUnavailable) => return Err(ApiError::not_found("blob")),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(ErrorCode::Internal, "could not allocate a referral number"))
}

impl Handler<Create> for RoutingActor {
    type Result = AtomicResponse<Self, ApiResult<(bool, AckBody)>>;

    fn handle(&mut self, msg: Create, _: &mut Self::Context) -> Self::Result {
        let Some(env) = self.env.upgrade() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down")))));
        };
        let work = async move {
            match create(&*env.store, &env.config.clock, &env.config.metrics, msg.creator, msg.idem, msg.hash, *msg.referral).await? {
                Created::New(ack, events) => {
                    // Delivered after the commit, outside the routing critical path.
                    env.deliver(events);
                    Ok((false, ack))
                }
                Created::Duplicate(ack) => Ok((true, ack)),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
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
