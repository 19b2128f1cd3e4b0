//! PracticeActor: owns one practice's inbox stream.

use std::sync::Weak;
use std::time::Instant;

use actix::prelude::*;

use handoff_protocol::PracticeId;
use handoff_protocol::ws::{AckBody, MAX_REPLAY, StreamId};

use crate::fanout::{Fanout, event_frame};
use crate::hub::{Deliver, Evict, Hub, Subscribe};
use crate::{CmdError, CmdResult};

pub(crate) struct PracticeActor {
    id: PracticeId,
    hub: Weak<Hub>,
    fanout: Fanout,
    ready: bool,
    last_active: Instant,
}

impl PracticeActor {
    pub(crate) fn new(id: PracticeId, hub: Weak<Hub>) -> Self {
        Self { id, hub, fanout: Fanout::new(StreamId::Practice(id), 0), ready: false, last_active: Instant::now() }
    }
}

impl PracticeActor {
    /// The store, while the hub is alive.
    pub(crate) fn store(&self) -> Option<std::sync::Arc<dyn handoff_store::Store>> {
        self.hub.upgrade().map(|h| h.store.clone())
    }
}

impl Actor for PracticeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Activation: learn how far the stream has got before handling anything.
        let Some(hub) = self.hub.upgrade() else {
            ctx.stop();
            return;
        };
        let store = hub.store.clone();
        let stream = self.fanout.stream;
        ctx.wait(async move { store.stream_head(stream).await }.into_actor(self).map(|head, act, ctx| match head {
            Ok(h) => {
                act.fanout.head = h;
                act.ready = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "practice stream unreadable");
                ctx.stop();
            }
        }));
        passivate_when_idle(ctx, hub.config.idle);
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if let Some(hub) = self.hub.upgrade() {
            hub.forget_practice(self.id, &ctx.address());
        }
    }
}

/// Replays `(after, head]` from the store to a new subscriber, then registers it.
pub(crate) fn subscribe_with_replay<A>(
    act: &mut A,
    hub: &Weak<Hub>,
    stream: StreamId,
    msg: Subscribe,
    fanout: fn(&mut A) -> &mut Fanout,
) -> AtomicResponse<A, CmdResult<AckBody>>
where
    A: Actor<Context = Context<A>>,
{
    let Some(hub) = hub.upgrade() else {
        return AtomicResponse::new(Box::pin(fut::ready(Err(CmdError::new(handoff_protocol::ErrorCode::Unavailable, "shutting down")))));
    };
    let store = hub.store.clone();
    let after = msg.after_seq;
    AtomicResponse::new(Box::pin(async move { store.events_after(stream, after, MAX_REPLAY).await }.into_actor(act).map(
        move |events, act, _| {
            let events = events?;
            let more = events.len() as u32 >= MAX_REPLAY;
            let f = fanout(act);
            let mut sent = after;
            for e in &events {
                if msg.conn.push(event_frame(stream, e.seq, &e.body)) != crate::conn::Pushed::Ok {
                    return Err(CmdError::new(handoff_protocol::ErrorCode::Unavailable, "connection closed during replay"));
                }
                sent = e.seq;
            }
            let head = if more { sent } else { f.head.max(sent) };
            f.subscribe(msg.conn, sent);
            Ok(AckBody::Subscribed { stream, head_seq: head, more })
        },
    )))
}

crate::stream_handlers!(PracticeActor);

impl Handler<Evict> for PracticeActor {
    type Result = ();
    fn handle(&mut self, msg: Evict, _: &mut Self::Context) {
        self.fanout.evict_user(msg.user);
    }
}

/// Delivers in order; a gap (another writer's event not yet delivered) is
/// filled from the store first, while the actor handles nothing else.
pub(crate) fn deliver_in_order<A>(act: &mut A, hub: &Weak<Hub>, msg: Deliver, fanout: fn(&mut A) -> &mut Fanout) -> AtomicResponse<A, ()>
where
    A: Actor<Context = Context<A>>,
{
    let mut events = msg.events;
    events.sort_by_key(|e| e.seq);
    let f = fanout(act);
    let gap = events.first().and_then(|e| f.gap_before(e.seq).map(|from| (from, e.seq)));
    let stream = f.stream;
    match (gap, hub.upgrade()) {
        (Some((from, upto)), Some(hub)) => {
            let store = hub.store.clone();
            AtomicResponse::new(Box::pin(
                async move { store.events_after(stream, from - 1, (upto - from) as u32).await }.into_actor(act).map(
                    move |filled, act, _| {
                        let f = fanout(act);
                        match filled {
                            Ok(mut fill) => {
                                fill.extend(events);
                                f.deliver(&fill);
                            }
                            Err(e) => tracing::error!(error = %e, "could not fill a stream gap"),
                        }
                    },
                ),
            ))
        }
        _ => {
            f.deliver(&events);
            AtomicResponse::new(Box::pin(fut::ready(())))
        }
    }
}

/// What the stream-owning actors share, so one set of handlers serves both.
pub(crate) trait StreamOwner: Actor<Context = Context<Self>> {
    fn parts(&mut self) -> (&mut Fanout, &Weak<Hub>);
    fn touch(&mut self);
    fn ready(&self) -> bool;
    /// When the actor last did anything, if nobody is subscribed now.
    fn idle_since(&self) -> Option<Instant>;
}

/// Stops the actor once it has had no subscribers and no work for `idle`.
pub(crate) fn passivate_when_idle<A: StreamOwner>(ctx: &mut Context<A>, idle: std::time::Duration) {
    ctx.run_interval(idle / 2, move |act, ctx| {
        if act.idle_since().is_some_and(|t| t.elapsed() >= idle) {
            ctx.stop();
        }
    });
}

/// Implements [`StreamOwner`] (from the actor's `fanout`, `hub`, `last_active` and `ready` fields) and `Subscribe`, `Unsubscribe` and `Deliver`.
#[macro_export]
#[doc(hidden)]
macro_rules! stream_handlers {
    ($actor:ty) => {
        // Every stream actor keeps `fanout`, `hub`, `last_active` and `ready`.
        impl $crate::practice::StreamOwner for $actor {
            fn parts(&mut self) -> (&mut $crate::fanout::Fanout, &std::sync::Weak<$crate::hub::Hub>) {
                (&mut self.fanout, &self.hub)
            }
            fn idle_since(&self) -> Option<std::time::Instant> {
                self.fanout.is_empty().then_some(self.last_active)
            }
            fn touch(&mut self) {
                self.last_active = std::time::Instant::now();
            }
            fn ready(&self) -> bool {
                self.ready
            }
        }

        impl Handler<$crate::hub::Subscribe> for $actor {
            type Result = AtomicResponse<Self, $crate::CmdResult<handoff_protocol::ws::AckBody>>;
            fn handle(&mut self, msg: $crate::hub::Subscribe, _: &mut Self::Context) -> Self::Result {
                use $crate::practice::StreamOwner as _;
                self.touch();
                let (f, hub) = self.parts();
                let (stream, hub) = (f.stream, hub.clone());
                $crate::practice::subscribe_with_replay(self, &hub, stream, msg, |a: &mut Self| a.parts().0)
            }
        }

        impl Handler<$crate::hub::Unsubscribe> for $actor {
            type Result = ();
            fn handle(&mut self, msg: $crate::hub::Unsubscribe, _: &mut Self::Context) {
                use $crate::practice::StreamOwner as _;
                self.parts().0.unsubscribe(msg.conn_id);
            }
        }

        impl Handler<$crate::hub::Deliver> for $actor {
            type Result = AtomicResponse<Self, ()>;
            fn handle(&mut self, msg: $crate::hub::Deliver, _: &mut Self::Context) -> Self::Result {
                use $crate::practice::StreamOwner as _;
                self.touch();
                if !self.ready() {
                    // Not yet activated: the head read will include these events.
                    return AtomicResponse::new(Box::pin(actix::fut::ready(())));
                }
                let hub = self.parts().1.clone();
                $crate::practice::deliver_in_order(self, &hub, msg, |a: &mut Self| a.parts().0)
            }
        }
    };
}
