//! The hub's one registry of live stream actors, of every kind, keyed by
//! [`StreamId`]. A stream id names its kind, so the address stored under it
//! always has that kind's actor type; the registry itself knows no kind.
//! Each entry also names the practices whose membership decides who may see
//! the stream, so that ending access at a practice finds every live stream it
//! reaches ([`Registry::touching`]).

use std::any::Any;

use actix::{Actor, Addr};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use handoff_protocol::PracticeId;
use handoff_protocol::ws::StreamId;

/// One live actor: its address (of its kind's actor type) and the practices its access depends on.
struct Live {
    addr: Box<dyn Any + Send + Sync>,
    practices: Vec<PracticeId>,
}

impl Live {
    fn new<A: Actor>(addr: Addr<A>, practices: Vec<PracticeId>) -> Self {
        Self { addr: Box::new(addr), practices }
    }

    fn addr<A: Actor>(&self) -> Option<&Addr<A>> {
        self.addr.downcast_ref::<Addr<A>>()
    }
}

/// Live actors by stream.
#[derive(Default)]
pub(crate) struct Registry {
    live: DashMap<StreamId, Live>,
}

impl Registry {
    /// The stream's actor if it is running.
    pub(crate) fn live<A: Actor>(&self, stream: StreamId) -> Option<Addr<A>> {
        self.live.get(&stream).and_then(|e| e.addr::<A>().filter(|a| a.connected()).cloned())
    }

    /// The stream's running actor, or the one `spawn` starts (replacing a dead
    /// entry); `practices` are those whose membership decides access to it.
    pub(crate) fn live_or_start<A: Actor>(&self, stream: StreamId, practices: Vec<PracticeId>, spawn: impl FnOnce() -> Addr<A>) -> Addr<A> {
        match self.live.entry(stream) {
            Entry::Occupied(mut o) => match o.get().addr::<A>() {
                Some(a) if a.connected() => a.clone(),
                _ => {
                    let a = spawn();
                    o.insert(Live::new(a.clone(), practices));
                    a
                }
            },
            Entry::Vacant(v) => {
                let a = spawn();
                v.insert(Live::new(a.clone(), practices));
                a
            }
        }
    }

    /// Removes a stopped actor's entry (not a newer actor's).
    pub(crate) fn forget<A: Actor>(&self, stream: StreamId, addr: &Addr<A>) {
        self.live.remove_if(&stream, |_, e| e.addr::<A>().is_some_and(|a| a == addr));
    }

    /// How many registered actors own a stream that `which` selects.
    pub(crate) fn count(&self, which: impl Fn(&StreamId) -> bool) -> usize {
        self.live.iter().filter(|e| which(e.key())).count()
    }

    /// The registered streams whose access depends on membership of `practice`.
    pub(crate) fn touching(&self, practice: PracticeId) -> Vec<StreamId> {
        self.live.iter().filter(|e| e.practices.contains(&practice)).map(|e| *e.key()).collect()
    }

    /// Forgets every actor (at shutdown).
    pub(crate) fn clear(&self) {
        self.live.clear();
    }
}
