//! One generic actor for every kind of live stream, and one registry type.
//!
//! A stream is a numbered sequence of persisted events (`practice:<id>`,
//! `referral:<id>`, ...). [`StreamActor<K>`] owns one stream of kind `K`: it
//! activates from the store (reading how far the stream has got before it
//! handles anything), keeps the stream's subscriptions, replays missed events
//! to a new subscriber, delivers live events in order without gaps, evicts a
//! user who lost access, and passivates after `HubConfig::idle` without
//! subscribers or work. What differs between kinds — how the actor's state is
//! loaded, who may see the stream, which commands the actor runs — is the
//! [`StreamKind`] impl and the kind's own message handlers, in the kind's own
//! file (`practice.rs`, `referral.rs`).
//!
//! Every actor sits in the one [`Registry`](crate::registry::Registry) under
//! its stream id: [`activate`] finds a live actor or starts one (replacing a
//! dead entry), and a stopped actor removes itself.

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Instant;

use actix::prelude::*;

use handoff_protocol::ws::{AckBody, MAX_REPLAY, StreamId};
use handoff_protocol::{ErrorCode, UserId};
use handoff_store::{Store, StoredEvent};

use crate::env::Env;
use crate::fanout::{Fanout, event_frame};
use crate::messages::{Deliver, Evict, Subscribe, Unsubscribe};
use crate::{ApiError, ApiResult};

/// What one kind of stream adds to the generic [`StreamActor`]: its id type,
/// its state at activation and its access rule.
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

    /// `Ok` if `user` may see the stream, `not_found` (worded the same for
    /// absent and foreign streams) if not.
    fn authorize(store: Arc<dyn Store>, user: UserId, id: Self::Id) -> impl Future<Output = ApiResult<()>> + Send;
}

/// The live actor of one stream of kind `K`.
pub(crate) struct StreamActor<K: StreamKind> {
    /// The kind's own state (a referral's record, say).
    pub(crate) kind: K,
    pub(crate) env: Weak<Env>,
    pub(crate) fanout: Fanout,
    /// Set once the stream's head has been read at activation.
    ready: bool,
    last_active: Instant,
}

impl<K: StreamKind> StreamActor<K> {
    fn new(kind: K, env: Weak<Env>) -> Self {
        let stream = K::stream(kind.id());
        Self { kind, env, fanout: Fanout::new(stream, 0), ready: false, last_active: Instant::now() }
    }

    /// Records activity: an actor passivates only after `idle` without any.
    pub(crate) fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// The store, while the hub is alive.
    pub(crate) fn store(&self) -> Option<Arc<dyn Store>> {
        self.env.upgrade().map(|e| e.store.clone())
    }

    /// Publishes events this actor has just committed: those of its own
    /// stream are delivered here at once, the others through the hub to the
    /// actors that own their streams.
    pub(crate) fn publish(&mut self, ctx: &mut Context<Self>, events: Vec<StoredEvent>) {
        let (mine, others): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| e.stream == self.fanout.stream);
        if self.ready {
            self.fanout.deliver(&mine);
            if self.fanout.head < mine.last().map(|e| e.seq).unwrap_or(0) {
                // A gap (should not happen: this actor is its stream's only writer); resync via Deliver.
                ctx.notify(Deliver { events: mine });
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
            if act.fanout.is_empty() && act.last_active.elapsed() >= idle {
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

    /// Replays `(after_seq, head]` from the store to the new subscriber, then registers it.
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let Some(store) = self.store() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ApiError::new(ErrorCode::Unavailable, "shutting down")))));
        };
        let stream = self.fanout.stream;
        let after = msg.after_seq;
        AtomicResponse::new(Box::pin(async move { store.events_after(stream, after, MAX_REPLAY).await }.into_actor(self).map(
            move |events, act, _| {
                let events = events?;
                let more = events.len() as u32 >= MAX_REPLAY;
                let mut sent = after;
                for e in &events {
                    if msg.conn.push(event_frame(stream, e.seq, &e.body)) != crate::conn::Pushed::Ok {
                        return Err(ApiError::new(ErrorCode::Unavailable, "connection closed during replay"));
                    }
                    sent = e.seq;
                }
                let head = if more { sent } else { act.fanout.head.max(sent) };
                act.fanout.subscribe(msg.conn, sent);
                Ok(AckBody::Subscribed { stream, head_seq: head, more })
            },
        )))
    }
}

impl<K: StreamKind> Handler<Unsubscribe> for StreamActor<K> {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        self.fanout.unsubscribe(msg.conn_id);
    }
}

impl<K: StreamKind> Handler<Evict> for StreamActor<K> {
    type Result = ();

    fn handle(&mut self, msg: Evict, _: &mut Self::Context) {
        self.fanout.evict_user(msg.user);
    }
}

impl<K: StreamKind> Handler<Deliver> for StreamActor<K> {
    type Result = AtomicResponse<Self, ()>;

    /// Delivers in order; a gap (another writer's event not yet delivered) is
    /// filled from the store first, while the actor handles nothing else.
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.ready {
            // Not yet activated: the head read will include these events.
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let mut events = msg.events;
        events.sort_by_key(|e| e.seq);
        let gap = events.first().and_then(|e| self.fanout.gap_before(e.seq).map(|from| (from, e.seq)));
        let stream = self.fanout.stream;
        match (gap, self.store()) {
            (Some((from, upto)), Some(store)) => AtomicResponse::new(Box::pin(
                async move { store.events_after(stream, from - 1, (upto - from) as u32).await }.into_actor(self).map(
                    move |filled, act, _| match filled {
                        Ok(mut fill) => {
                            fill.extend(events);
                            act.fanout.deliver(&fill);
                        }
                        Err(e) => tracing::error!(error = %e, %stream, "could not fill a stream gap"),
                    },
                ),
            )),
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
    Ok(env.registry.live_or_start(stream, || {
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

stream_messages!(Subscribe, Unsubscribe, Deliver, Evict);
