//! Ordered, gapless delivery of one stream's events to its subscribers.
//!
//! Events reach the owning actor as `Deliver` messages after they are
//! persisted. Several writers append to a practice stream, so deliveries can
//! arrive out of order; the actor fills any gap from the store before
//! delivering (see `PracticeActor`). Each subscriber remembers the last seq it
//! was sent, so the replay at subscription and live delivery never overlap or
//! skip, and when its access was last checked, so the actor can check again
//! after access ended somewhere (`access::Revocations`).
//!
//! Seq arithmetic is checked: a seq is a `u64` a client may have chosen (its
//! `after_seq`), and none of it may overflow.

use std::collections::HashMap;

use handoff_protocol::UserId;
use handoff_protocol::ws::StreamId;
use handoff_store::StoredEvent;

use crate::conn::{Conn, Frame, Pushed};

/// A subscriber.
#[derive(Debug)]
struct Sub {
    conn: Conn,
    sent: u64,
    /// When its access was last checked, on the `Revocations` clock.
    checked: u64,
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

/// How every [`event_frame`] begins.
const EVENT_FRAME_START: &str = r#"{"type":"event","#;

/// The JSON text of an event frame, built once per event and shared by every subscriber.
pub fn event_frame(stream: StreamId, seq: u64, body: &str) -> Frame {
    format!(r#"{EVENT_FRAME_START}"stream":"{stream}","seq":{seq},"event":{body}}}"#).into()
}

/// Whether a queued frame is an [`event_frame`] (the socket counts the events it writes).
pub fn is_event_frame(frame: &str) -> bool {
    frame.starts_with(EVENT_FRAME_START)
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

    /// Adds a subscriber that has been sent everything up to `sent`, whose
    /// access was checked at `checked` (on the revocation clock).
    pub fn subscribe(&mut self, conn: Conn, sent: u64, checked: u64) {
        self.subs.insert(conn.id, Sub { conn, sent, checked });
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&mut self, conn_id: u64) {
        self.subs.remove(&conn_id);
    }

    /// The users with a subscription whose access was last checked before `revoked`, each once.
    pub fn checked_before(&self, revoked: u64) -> Vec<UserId> {
        let mut users: Vec<UserId> = self.subs.values().filter(|s| s.checked < revoked).map(|s| s.conn.user).collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Records that `user`'s access was found still valid by a check that started at `at`.
    pub fn checked(&mut self, user: UserId, at: u64) {
        for s in self.subs.values_mut().filter(|s| s.conn.user == user) {
            s.checked = s.checked.max(at);
        }
    }

    /// Cuts every subscription of a user who lost access, telling each of
    /// their connections with `notice`; answers how many were cut.
    pub fn end_user(&mut self, user: UserId, notice: &Frame) -> usize {
        let before = self.subs.len();
        self.subs.retain(|_, s| {
            if s.conn.user != user {
                return true;
            }
            let _ = s.conn.push(notice.clone());
            false
        });
        before - self.subs.len()
    }

    /// The first seq the actor still needs before it can deliver `seq`, if a gap exists.
    pub fn gap_before(&self, seq: u64) -> Option<u64> {
        let next = self.head.checked_add(1)?;
        (seq > next).then_some(next)
    }

    /// Delivers events in seq order; skips any already delivered. The caller
    /// has filled gaps, so `events` continue from `head`.
    pub fn deliver(&mut self, events: &[StoredEvent]) {
        for e in events {
            if self.head.checked_add(1) != Some(e.seq) {
                continue;
            }
            self.head = e.seq;
            if self.subs.is_empty() {
                continue;
            }
            let frame = event_frame(self.stream, e.seq, &e.body);
            self.subs.retain(|_, s| {
                // A subscriber still paging through its replay is behind: it resubscribes.
                if s.sent.checked_add(1) != Some(e.seq) {
                    return true;
                }
                s.sent = e.seq;
                s.conn.push(frame.clone()) == Pushed::Ok
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Outgoing;

    fn stream() -> StreamId {
        StreamId::Practice(handoff_protocol::PracticeId::from_bytes([1; 16]))
    }

    fn event(seq: u64) -> StoredEvent {
        StoredEvent { stream: stream(), seq, body: "{}".into() }
    }

    fn sub(f: &mut Fanout, user: u8, sent: u64, checked: u64) -> Outgoing {
        let (c, out) = Conn::new(UserId::from_bytes([user; 16]), 16);
        f.subscribe(c, sent, checked);
        out
    }

    fn seqs(out: &Outgoing) -> Vec<String> {
        std::iter::from_fn(|| out.try_recv()).map(|f| f.to_string()).collect()
    }

    #[test]
    fn event_frames_are_told_from_other_frames() {
        assert!(is_event_frame(&event_frame(stream(), 1, "{}")));
        assert!(!is_event_frame(r#"{"type":"ack","id":1}"#));
    }

    #[test]
    fn extreme_seqs_never_overflow() {
        let mut f = Fanout::new(stream(), u64::MAX);
        let out = sub(&mut f, 1, u64::MAX, 0);
        assert_eq!(f.gap_before(u64::MAX), None);
        f.deliver(&[event(u64::MAX), event(0), event(1)]);
        assert_eq!(f.head, u64::MAX);
        assert!(seqs(&out).is_empty());

        // A subscriber kept at u64::MAX (never allowed by subscribe, but harmless) is sent nothing and breaks nothing.
        let mut f = Fanout::new(stream(), 0);
        let stuck = sub(&mut f, 1, u64::MAX, 0);
        let fine = sub(&mut f, 2, 0, 0);
        assert_eq!(f.gap_before(u64::MAX), Some(1));
        f.deliver(&[event(1), event(2)]);
        assert!(seqs(&stuck).is_empty());
        assert_eq!(seqs(&fine).len(), 2);
        assert_eq!(f.head, 2);
    }

    #[test]
    fn a_user_who_lost_access_is_cut_on_every_connection_and_told() {
        let mut f = Fanout::new(stream(), 0);
        let (a1, a2, b) = (sub(&mut f, 1, 0, 5), sub(&mut f, 1, 0, 9), sub(&mut f, 2, 0, 5));
        assert_eq!(f.checked_before(6), vec![UserId::from_bytes([1; 16]), UserId::from_bytes([2; 16])]);
        assert_eq!(f.checked_before(9), f.checked_before(6));
        assert!(f.checked_before(5).is_empty());
        f.checked(UserId::from_bytes([2; 16]), 10);
        assert_eq!(f.checked_before(10), vec![UserId::from_bytes([1; 16])]);
        assert_eq!(f.end_user(UserId::from_bytes([1; 16]), &Frame::from("ended")), 2);
        f.deliver(&[event(1)]);
        assert_eq!(seqs(&a1), vec!["ended"]);
        assert_eq!(seqs(&a2), vec!["ended"]);
        assert_eq!(seqs(&b).len(), 1);
        assert_eq!(f.len(), 1);
    }
}
