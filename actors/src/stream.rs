//! One generic actor for every kind of live stream, and one registry type.
//!
//! A stream is a numbered sequence of persisted events (`practice:<id>`,
//! `referral:<id>`, ...). [`StreamActor<K>`] owns one stream of kind `K`: it
//! activates from the store (reading how far the stream has got before it
//! handles anything), keeps the stream's subscriptions, replays missed events
//! to a new subscriber, delivers live events in order without gaps, cuts a
//! user who lost access, and passivates after `HubConfig::idle` without
//! subscribers or work. What differs between kinds — how the actor's state is
//! loaded, who may see the stream, which commands the actor runs — is the
//! [`StreamKind`] impl and the kind's own message handlers, in the kind's own
//! file (`practice.rs`, `referral.rs`).
//!
//! **Ending access cuts every stream it reached.** Each kind has one access
//! rule ([`StreamKind::sees`]); the actor asks it when it registers a
//! subscriber, and again for every subscriber it last checked before access
//! ended at one of the stream's practices (`Hub::end_access` records that and
//! tells the stream at once; a delivery checks for it too, before it sends
//! anything). A subscriber who may no longer see the stream is cut and told
//! with an `access_ended` error frame.
//!
//! Every actor sits in the one [`Registry`](crate::registry::Registry) under
//! its stream id: [`activate`] finds a live actor or starts one (replacing a
//! dead entry), and a stopped actor removes itself.

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Instant;

use actix::prelude::*;

use handoff_domain::replay::replay;
use handoff_protocol::ws::{AckBody, MAX_REPLAY, ServerFrame, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Store, StoredEvent};

use crate::clock::Clock;
use crate::conn::Frame;
use crate::env::Env;
use crate::fanout::{Fanout, event_frame};
use crate::messages::{Deliver, EndAccess, Subscribe, Unsubscribe};
use crate::{ApiError, ApiResult};

/// What one kind of stream adds to the generic [`StreamActor`]: its id type,
/// its state at activation and its one access rule.
pub(crate) trait StreamKind: Sized + Unpin + Send + 'static {
    /// The id of one stream of this kind.
    type Id: Copy + Eq + Hash + Send + Sync + std::fmt::Debug + 'static;

    /// Whether a delivery wakes this kind's actor when it is not running.
    /// Practice inboxes are woken, so the actor is warm for the next
    /// subscriber; a referral's actor is started only by its own commands and
    /// subscriptions (a sleeping actor has no subscribers, and reads the
    /// stream's head when it starts, so either way nothing is missed).
    const WAKE_ON_DELIVER: bool;

    /// The wire name of this kind's stream `id`.
    fn stream(id: Self::Id) -> StreamId;

    /// The id of the stream this state belongs to.
    fn id(&self) -> Self::Id;

    /// The actor's state at activation, read from the store; `not_found` if
    /// there is no such stream.
    fn load(store: Arc<dyn Store>, id: Self::Id) -> impl Future<Output = ApiResult<Self>> + Send;

    /// What the access rule needs to know about one stream, copied out of the
    /// actor's state (a practice's id; a referral's two parties).
    type Scope: Copy + Send + Sync + 'static;

    /// This stream's scope.
    fn scope(&self) -> Self::Scope;

    /// The practices whose membership decides who may see a stream of this
    /// scope: ending access at any of them re-checks the stream's subscribers.
    fn practices(scope: Self::Scope) -> Vec<PracticeId>;

    /// Whether `user` may see a stream of this scope: the kind's one access
    /// rule, asked before a subscription, when the actor registers it, and
    /// again after access ended at one of [`StreamKind::practices`].
    fn sees(store: Arc<dyn Store>, clock: Clock, user: UserId, scope: Self::Scope) -> impl Future<Output = ApiResult<bool>> + Send;

    /// Whether the kind has work in flight (commits not yet answered): the
    /// actor does not passivate while it has.
    fn busy(&self) -> bool {
        false
    }

    /// `Ok` if `user` may see the stream (by [`StreamKind::sees`]), `not_found`
    /// (worded the same for absent and foreign streams) if not.
    fn authorize(store: Arc<dyn Store>, clock: Clock, user: UserId, id: Self::Id) -> impl Future<Output = ApiResult<()>> + Send;
}

/// Subscribers whose access must be checked again: their users, and the
/// revocation clock read before the check starts.
struct Stale {
    users: Vec<UserId>,
    at: u64,
}

/// What a re-check found: the clock it started at, and each user with whether they may still see the stream.
type Verdicts = (u64, Vec<(UserId, bool)>);

/// Checks each stale user again by the kind's rule. A check that fails counts
/// as no access: the connection is cut and told, and may subscribe again.
async fn recheck<K: StreamKind>(store: Arc<dyn Store>, clock: Clock, scope: K::Scope, stale: Stale) -> Verdicts {
    let mut verdicts = Vec::with_capacity(stale.users.len());
    for user in stale.users {
        let may = K::sees(store.clone(), clock.clone(), user, scope).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "access re-check failed; cutting the subscription");
            false
        });
        verdicts.push((user, may));
    }
    (stale.at, verdicts)
}

/// The frame that tells a connection its subscription to `stream` was cut.
fn access_ended(stream: StreamId) -> Frame {
    let frame = ServerFrame::Error {
        id: None,
        error: ErrorCode::AccessEnded,
        message: format!(
            "your access to {stream} ended (you are no longer a member of a practice it belongs to); nothing more will arrive on it"
        ),
    };
    serde_json::to_string(&frame).unwrap_or_default().into()
}

/// The live actor of one stream of kind `K`.
pub(crate) struct StreamActor<K: StreamKind> {
    /// The kind's own state (a referral's record, say).
    pub(crate) kind: K,
    pub(crate) env: Weak<Env>,
    pub(crate) fanout: Fanout,
    /// The practices whose membership decides who may see the stream.
    practices: Vec<PracticeId>,
    /// Set once the stream's head has been read at activation.
    ready: bool,
    last_active: Instant,
}

impl<K: StreamKind> StreamActor<K> {
    fn new(kind: K, env: Weak<Env>) -> Self {
        let stream = K::stream(kind.id());
        let practices = K::practices(kind.scope());
        Self { kind, env, fanout: Fanout::new(stream, 0), practices, ready: false, last_active: Instant::now() }
    }

    /// The subscribers last checked before access ended at one of the
    /// stream's practices, if any: a comparison per subscriber, no I/O.
    fn stale(&self) -> Option<Stale> {
        let env = self.env.upgrade()?;
        let revoked = env.revocations.latest(&self.practices);
        if revoked == 0 {
            return None;
        }
        let users = self.fanout.checked_before(revoked);
        (!users.is_empty()).then(|| Stale { users, at: env.revocations.now() })
    }

    /// Applies a re-check: cuts (and tells) every connection of a user who may
    /// no longer see the stream, and stamps the others as checked.
    fn apply(&mut self, (at, verdicts): Verdicts) {
        let stream = self.fanout.stream;
        let mut notice = None;
        for (user, may) in verdicts {
            if may {
                self.fanout.checked(user, at);
            } else {
                let cut = self.fanout.end_user(user, notice.get_or_insert_with(|| access_ended(stream)));
                tracing::info!(%stream, %user, cut, "access ended: subscriptions cut");
            }
        }
    }

    /// Records activity: an actor passivates only after `idle` without any.
    pub(crate) fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// The store, while the hub is alive.
    pub(crate) fn store(&self) -> Option<Arc<dyn Store>> {
        self.env.upgrade().map(|e| e.store.clone())
    }

    /// The clock membership dates are read against.
    fn clock(&self) -> Clock {
        self.env.upgrade().map(|e| e.config.clock.clone()).unwrap_or_default()
    }

    /// Publishes events this actor has just committed: those of its own
    /// stream are delivered here at once, the others through the hub to the
    /// actors that own their streams.
    pub(crate) fn publish(&mut self, ctx: &mut Context<Self>, events: Vec<StoredEvent>) {
        let (mine, others): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| e.stream == self.fanout.stream);
        if self.ready {
            if self.stale().is_some() {
                // Someone's access may have ended: `Deliver` checks them before sending.
                ctx.notify(Deliver { events: mine });
            } else {
                self.fanout.deliver(&mine);
                if self.fanout.head < mine.last().map(|e| e.seq).unwrap_or(0) {
                    // A gap (should not happen: this actor is its stream's only writer); resync via Deliver.
                    ctx.notify(Deliver { events: mine });
                }
            }
        }
        if let Some(env) = self.env.upgrade() {
            env.deliver(others);
        }
    }
}

impl<K: StreamKind> Actor for StreamActor<K> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(env) = self.env.upgrade() else {
            ctx.stop();
            return;
        };
        // Activation: learn how far the stream has got before handling anything.
        let store = env.store.clone();
        let stream = self.fanout.stream;
        ctx.wait(async move { store.stream_head(stream).await }.into_actor(self).map(move |head, act, ctx| match head {
            Ok(h) => {
                act.fanout.head = h;
                act.ready = true;
            }
            Err(e) => {
                tracing::error!(error = %e, %stream, "stream unreadable at activation");
                ctx.stop();
            }
        }));
        let idle = env.config.idle;
        ctx.run_interval(idle / 2, move |act, ctx| {
            if act.fanout.is_empty() && act.last_active.elapsed() >= idle && !act.kind.busy() {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(env) = self.env.upgrade() {
            env.registry.forget(self.fanout.stream, &ctx.address());
        }
    }
}

impl<K: StreamKind> Handler<Subscribe> for StreamActor<K> {
    type Result = AtomicResponse<Self, ApiResult<AckBody>>;

    /// Checks the subscriber's access (the kind's rule, against the store as it
    /// is now), refuses an `after_seq` past the head (`seq_ahead`), replays
    /// `(after_seq, head]` from the store a page at a time, then registers it.
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(env) = self.env.upgrade() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down")))));
        };
        let store = env.store.clone();
        let clock = env.config.clock.clone();
        // Read before the check: an end of access recorded after it makes this subscriber stale.
        let at = env.revocations.now();
        let stream = self.fanout.stream;
        let (scope, user, after, known) = (self.kind.scope(), msg.conn.user, msg.after_seq, self.fanout.head);
        let work = async move {
            if !K::sees(store.clone(), clock, user, scope).await? {
                return Err(ApiError::not_found("stream"));
            }
            // The head this actor has delivered; the store may be a little ahead while a delivery is on its way.
            let head = if after > known { store.stream_head(stream).await?.max(known) } else { known };
            let page = replay(head, after, MAX_REPLAY).map_err(|e| ApiError::new(ErrorCode::SeqAhead, e.to_string()))?;
            let events = if page.count == 0 { Vec::new() } else { store.events_after(stream, page.after, page.count).await? };
            Ok((page, events))
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(move |res: ApiResult<_>, act, _| {
            let (page, events) = res?;
            let mut sent = page.after;
            for e in &events {
                if msg.conn.push(event_frame(stream, e.seq, &e.body)) != crate::conn::Pushed::Ok {
                    return Err(ApiError::new(ErrorCode::Unavailable, "connection closed during replay"));
                }
                sent = e.seq;
            }
            let head = if page.more { sent } else { act.fanout.head.max(sent) };
            act.fanout.subscribe(msg.conn, sent, at);
            Ok(AckBody::Subscribed { stream, head_seq: head, more: page.more })
        })))
    }
}

impl<K: StreamKind> Handler<Unsubscribe> for StreamActor<K> {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        self.fanout.unsubscribe(msg.conn_id);
    }
}

impl<K: StreamKind> Handler<EndAccess> for StreamActor<K> {
    type Result = AtomicResponse<Self, ()>;

    /// Checks every stale subscriber again and cuts those who lost access, before handling anything else.
    fn handle(&mut self, _: EndAccess, _: &mut Self::Context) -> Self::Result {
        let (Some(stale), Some(store)) = (self.stale(), self.store()) else {
            return AtomicResponse::new(Box::pin(fut::ready(())));
        };
        let (scope, clock) = (self.kind.scope(), self.clock());
        AtomicResponse::new(Box::pin(recheck::<K>(store, clock, scope, stale).into_actor(self).map(|verdicts, act, _| act.apply(verdicts))))
    }
}

impl<K: StreamKind> Handler<Deliver> for StreamActor<K> {
    type Result = AtomicResponse<Self, ()>;

    /// Delivers in order. First, while the actor handles nothing else, any
    /// subscriber whose access may have ended is checked again (and cut if it
    /// did), and a gap (another writer's event not yet delivered) is filled
    /// from the store.
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.ready {
            // Not yet activated: the head read will include these events.
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let mut events = msg.events;
        events.sort_by_key(|e| e.seq);
        let gap = events.first().and_then(|e| self.fanout.gap_before(e.seq).map(|from| (from, e.seq)));
        let stale = self.stale();
        let stream = self.fanout.stream;
        let scope = self.kind.scope();
        let clock = self.clock();
        match self.store() {
            Some(store) if gap.is_some() || stale.is_some() => {
                let work = async move {
                    let verdicts = match stale {
                        Some(stale) => Some(recheck::<K>(store.clone(), clock, scope, stale).await),
                        None => None,
                    };
                    let filled = match gap {
                        Some((from, upto)) => {
                            let missing = u32::try_from(upto.saturating_sub(from)).unwrap_or(u32::MAX);
                            Some(store.events_after(stream, from.saturating_sub(1), missing).await)
                        }
                        None => None,
                    };
                    (verdicts, filled)
                };
                AtomicResponse::new(Box::pin(work.into_actor(self).map(move |(verdicts, filled), act, _| {
                    if let Some(v) = verdicts {
                        act.apply(v);
                    }
                    match filled {
                        None => act.fanout.deliver(&events),
                        Some(Ok(mut fill)) => {
                            fill.extend(events);
                            act.fanout.deliver(&fill);
                        }
                        Some(Err(e)) => tracing::error!(error = %e, %stream, "could not fill a stream gap"),
                    }
                })))
            }
            _ => {
                self.fanout.deliver(&events);
                AtomicResponse::new(Box::pin(fut::ready(())))
            }
        }
    }
}

/// The actor of stream `id` of kind `K`: the running one, or one activated
/// from the store (`not_found` if there is no such stream).
pub(crate) async fn activate<K: StreamKind>(env: &Arc<Env>, id: K::Id) -> ApiResult<Addr<StreamActor<K>>> {
    let stream = K::stream(id);
    if let Some(a) = env.registry.live(stream) {
        return Ok(a);
    }
    let kind = K::load(env.store.clone(), id).await?;
    let practices = K::practices(kind.scope());
    Ok(env.registry.live_or_start(stream, practices, || {
        let weak = Arc::downgrade(env);
        let mailbox = env.config.mailbox;
        StreamActor::start_in_arbiter(&env.arbiter, move |ctx| {
            ctx.set_mailbox_capacity(mailbox);
            StreamActor::new(kind, weak)
        })
    }))
}

/// The actor of stream `id` of kind `K` if it is running.
pub(crate) fn live<K: StreamKind>(env: &Env, id: K::Id) -> Option<Addr<StreamActor<K>>> {
    env.registry.live(K::stream(id))
}

/// A message every stream actor handles, whatever its kind; the hub reaches
/// the actor through the one recipient the message needs.
pub(crate) trait StreamMessage: Message<Result: Send> + Send + Sized + 'static {
    /// The recipient of this message at one stream actor.
    fn recipient<K: StreamKind>(addr: Addr<StreamActor<K>>) -> Recipient<Self>;
}

macro_rules! stream_messages {
    ($($m:ty),*) => {$(
        impl StreamMessage for $m {
            fn recipient<K: StreamKind>(addr: Addr<StreamActor<K>>) -> Recipient<Self> {
                addr.recipient()
            }
        }
    )*};
}

stream_messages!(Subscribe, Unsubscribe, Deliver, EndAccess);
