//! PracticeActor: owns one practice's inbox stream.

use std::sync::Weak;
use std::time::Instant;

use actix::prelude::*;

use handoff_protocol::PracticeId;
use handoff_protocol::ws::{AckBody, MAX_REPLAY, StreamId};

use crate::fanout::{Fanout, event_frame};
use crate::hub::{Deliver, Evict, Hub, Subscribe, Unsubscribe};
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
        let idle = hub.config.idle;
        ctx.run_interval(idle / 2, move |act, ctx| {
            if act.fanout.is_empty() && act.last_active.elapsed() >= idle {
                ctx.stop();
            }
        });
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
            let head = f.head.max(sent);
            f.subscribe(msg.conn, sent);
            Ok(AckBody::Subscribed { stream, head_seq: head, more })
        },
    )))
}

impl Handler<Subscribe> for PracticeActor {
    type Result = AtomicResponse<Self, CmdResult<AckBody>>;
    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        let hub = self.hub.clone();
        let stream = self.fanout.stream;
        subscribe_with_replay(self, &hub, stream, msg, |a: &mut Self| &mut a.fanout)
    }
}

impl Handler<Unsubscribe> for PracticeActor {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) {
        self.fanout.unsubscribe(msg.conn_id);
    }
}

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

impl Handler<Deliver> for PracticeActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) -> Self::Result {
        self.last_active = Instant::now();
        if !self.ready {
            // Not yet activated: the head read will include these events.
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let hub = self.hub.clone();
        deliver_in_order(self, &hub, msg, |a: &mut Self| &mut a.fanout)
    }
}
