//! The hub's one registry of live stream actors, of every kind, keyed by
//! [`StreamId`]. A stream id names its kind, so the address stored under it
//! always has that kind's actor type; the registry itself knows no kind.

use std::any::Any;

use actix::{Actor, Addr};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use handoff_protocol::ws::StreamId;

/// Live actors by stream.
#[derive(Default)]
pub(crate) struct Registry {
    live: DashMap<StreamId, Box<dyn Any + Send + Sync>>,
}

impl Registry {
    /// The stream's actor if it is running.
    pub(crate) fn live<A: Actor>(&self, stream: StreamId) -> Option<Addr<A>> {
        self.live.get(&stream).and_then(|e| e.downcast_ref::<Addr<A>>().filter(|a| a.connected()).cloned())
    }

    /// The stream's running actor, or the one `spawn` starts (replacing a dead entry).
    pub(crate) fn live_or_start<A: Actor>(&self, stream: StreamId, spawn: impl FnOnce() -> Addr<A>) -> Addr<A> {
        match self.live.entry(stream) {
            Entry::Occupied(mut o) => match o.get().downcast_ref::<Addr<A>>() {
                Some(a) if a.connected() => a.clone(),
                _ => {
                    let a = spawn();
                    o.insert(Box::new(a.clone()));
                    a
                }
            },
            Entry::Vacant(v) => {
                let a = spawn();
                v.insert(Box::new(a.clone()));
                a
            }
        }
    }

    /// Removes a stopped actor's entry (not a newer actor's).
    pub(crate) fn forget<A: Actor>(&self, stream: StreamId, addr: &Addr<A>) {
        self.live.remove_if(&stream, |_, e| e.downcast_ref::<Addr<A>>().is_some_and(|a| a == addr));
    }

    /// How many registered actors own a stream that `which` selects.
    pub(crate) fn count(&self, which: impl Fn(&StreamId) -> bool) -> usize {
        self.live.iter().filter(|e| which(e.key())).count()
    }

    /// Forgets every actor (at shutdown).
    pub(crate) fn clear(&self) {
        self.live.clear();
    }
}
