//! Ordered, gapless delivery of one stream's events to its subscribers.
//!
//! Events reach the owning actor as `Deliver` messages after they are
//! persisted. Several writers append to a practice stream, so deliveries can
//! arrive out of order; the actor fills any gap from the store before
//! delivering (see `PracticeActor`). Each subscriber remembers the last seq it
//! was sent, so the replay at subscription and live delivery never overlap or
//! skip.

use std::collections::HashMap;

use handoff_protocol::ws::StreamId;
use handoff_store::StoredEvent;

use crate::conn::{Conn, Frame, Pushed};

/// A subscriber.
#[derive(Debug)]
struct Sub {
    conn: Conn,
    sent: u64,
}

/// The subscribers of one stream and how far delivery has got.
#[derive(Debug)]
pub struct Fanout {
    /// The stream.
    pub stream: StreamId,
    /// Highest seq delivered live (all lower seqs were too, in order).
    pub head: u64,
    subs: HashMap<u64, Sub>,
}

/// The JSON text of an event frame, built once per event and shared by every subscriber.
pub fn event_frame(stream: StreamId, seq: u64, body: &str) -> Frame {
    format!(r#"{{"type":"event","stream":"{stream}","seq":{seq},"event":{body}}}"#).into()
}

impl Fanout {
    /// A stream whose delivered head is `head`.
    pub fn new(stream: StreamId, head: u64) -> Self {
        Self { stream, head, subs: HashMap::new() }
    }

    /// Whether anyone listens.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Adds a subscriber that has been sent everything up to `sent`.
    pub fn subscribe(&mut self, conn: Conn, sent: u64) {
        self.subs.insert(conn.id, Sub { conn, sent });
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&mut self, conn_id: u64) {
        self.subs.remove(&conn_id);
    }

    /// Removes every subscription of a user (after they lose access).
    pub fn evict_user(&mut self, user: handoff_protocol::UserId) {
        self.subs.retain(|_, s| s.conn.user != user);
    }

    /// The first seq the actor still needs before it can deliver `seq`, if a gap exists.
    pub fn gap_before(&self, seq: u64) -> Option<u64> {
        (seq > self.head + 1).then_some(self.head + 1)
    }

    /// Delivers events in seq order; skips any already delivered. The caller
    /// has filled gaps, so `events` continue from `head`.
    pub fn deliver(&mut self, events: &[StoredEvent]) {
        for e in events {
            if e.seq != self.head + 1 {
                continue;
            }
            self.head = e.seq;
            if self.subs.is_empty() {
                continue;
            }
            let frame = event_frame(self.stream, e.seq, &e.body);
            self.subs.retain(|_, s| {
                // A subscriber still paging through its replay is behind: it resubscribes.
                if e.seq != s.sent + 1 {
                    return true;
                }
                s.sent = e.seq;
                s.conn.push(frame.clone()) == Pushed::Ok
            });
        }
    }
}
