//! A live connection as actors see it: an id, a user, and a bounded outgoing
//! queue of serialized frames. Actors never block on a connection: they push
//! without waiting, and a full queue marks the connection as a slow consumer,
//! which its socket task then closes (close code 4008). Other connections are
//! unaffected.
//!
//! The queue is a `VecDeque` behind a mutex plus a `Notify`, not a tokio
//! channel: an idle connection holds an empty queue, which costs no heap,
//! where a bounded channel allocates its first 32-slot block and its channel
//! state up front (about 1.3 KiB per socket; measured with heaptrack, see
//! BENCHMARKS.md §3). Frames are [`Frame`]s, whose clones share one buffer,
//! so a frame fanned out to N sockets is serialized once and never copied.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use handoff_protocol::UserId;

/// One serialized server frame. Cloning shares the bytes.
pub type Frame = bytestring::ByteString;

/// Default outgoing frames buffered per connection before it counts as a slow consumer.
pub const OUTGOING_BUFFER: usize = 1024;

/// Default bytes of frames buffered per connection before it counts as a slow
/// consumer (8 MiB): with frames of up to 256 KiB, the frame bound alone would
/// let one stalled socket hold 256 MiB.
pub const OUTGOING_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Queue capacity kept after a burst drains (more is given back to the allocator).
const KEEP_CAPACITY: usize = 8;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// What the actors and the socket task share.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<VecDeque<Frame>>,
    /// Wakes the socket task when a frame is queued.
    ready: Notify,
    /// At most this many frames wait.
    limit: usize,
    /// At most this many bytes of frames wait (a frame larger than this on
    /// its own is still queued into an empty queue, so it can be delivered).
    byte_limit: usize,
    /// Bytes of the frames in `queue`; changed only with the queue locked.
    bytes: AtomicUsize,
    /// The socket task is gone: pushes are refused.
    closed: AtomicBool,
    /// Close code requested by an actor (0: none).
    kill_code: AtomicU16,
    /// Wakes the socket task when a close is requested.
    kill: Notify,
}

/// A handle actors keep for a subscribed connection.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Unique per process.
    pub id: u64,
    /// The signed-in user.
    pub user: UserId,
    shared: Arc<Shared>,
}

/// The socket task's end of a connection's queue. Dropping it closes the
/// connection for the actors: their next push returns [`Pushed::Gone`].
#[derive(Debug)]
pub struct Outgoing {
    shared: Arc<Shared>,
}

/// What a push attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The frame is queued for the socket.
    Ok,
    /// The connection is gone or was just marked slow; forget it.
    Gone,
}

impl Conn {
    /// A new connection buffering at most `buffer` frames, and the socket task's end of its queue.
    /// It holds at most [`OUTGOING_BUFFER_BYTES`] bytes.
    pub fn new(user: UserId, buffer: usize) -> (Self, Outgoing) {
        Self::bounded(user, buffer, OUTGOING_BUFFER_BYTES)
    }

    /// A new connection buffering at most `frames` frames and `bytes` bytes of
    /// them, and the socket task's end of its queue.
    pub fn bounded(user: UserId, frames: usize, bytes: usize) -> (Self, Outgoing) {
        let shared = Arc::new(Shared { limit: frames.max(1), byte_limit: bytes.max(1), ..Shared::default() });
        (Self { id: NEXT.fetch_add(1, Ordering::Relaxed), user, shared: shared.clone() }, Outgoing { shared })
    }

    /// Queues a frame without waiting. A full queue (in frames or in bytes)
    /// kills the connection.
    pub fn push(&self, frame: Frame) -> Pushed {
        let s = &self.shared;
        if s.closed.load(Ordering::Acquire) || s.kill_code.load(Ordering::Acquire) != 0 {
            return Pushed::Gone;
        }
        {
            let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let bytes = s.bytes.load(Ordering::Relaxed);
            if q.len() >= s.limit || (!q.is_empty() && bytes.saturating_add(frame.len()) > s.byte_limit) {
                drop(q);
                self.kill(handoff_protocol::ws::close::SLOW_CONSUMER);
                return Pushed::Gone;
            }
            s.bytes.store(bytes.saturating_add(frame.len()), Ordering::Relaxed);
            q.push_back(frame);
        }
        s.ready.notify_one();
        Pushed::Ok
    }

    /// Asks the socket task to close with `code` (the first request wins).
    pub fn kill(&self, code: u16) {
        if self.shared.kill_code.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.shared.kill.notify_one();
        }
    }

    /// The close code requested, if any.
    pub fn kill_requested(&self) -> Option<u16> {
        match self.shared.kill_code.load(Ordering::SeqCst) {
            0 => None,
            c => Some(c),
        }
    }

    /// Resolves when a close is requested.
    pub async fn killed(&self) -> u16 {
        loop {
            if let Some(c) = self.kill_requested() {
                return c;
            }
            self.shared.kill.notified().await;
        }
    }

    /// Frames waiting to be written.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Bytes of the frames waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        let _q = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

impl Outgoing {
    /// The next queued frame, waiting until there is one.
    pub async fn recv(&self) -> Frame {
        loop {
            if let Some(f) = self.try_recv() {
                return f;
            }
            // `notify_one` stores a permit when nobody waits, so a push between
            // the check above and this await is not missed.
            self.shared.ready.notified().await;
        }
    }

    /// The next queued frame, if there is one.
    pub fn try_recv(&self) -> Option<Frame> {
        let mut q = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let f = q.pop_front();
        if let Some(f) = &f {
            let left = self.shared.bytes.load(Ordering::Relaxed).saturating_sub(f.len());
            self.shared.bytes.store(left, Ordering::Relaxed);
        }
        if q.is_empty() && q.capacity() > KEEP_CAPACITY {
            q.shrink_to(KEEP_CAPACITY);
        }
        f
    }
}

impl Drop for Outgoing {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let mut q = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.clear();
        self.shared.bytes.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(limit: usize) -> (Conn, Outgoing) {
        Conn::new(UserId::from_bytes([7; 16]), limit)
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_a_waiting_receiver_wakes() {
        let (c, out) = conn(8);
        let waiter = tokio::spawn(async move {
            let a = out.recv().await;
            let b = out.recv().await;
            (a, b)
        });
        tokio::task::yield_now().await;
        assert_eq!(c.push("one".into()), Pushed::Ok);
        assert_eq!(c.push("two".into()), Pushed::Ok);
        let (a, b) = waiter.await.unwrap();
        assert_eq!((&*a, &*b), ("one", "two"));
    }

    #[test]
    fn a_full_queue_kills_the_connection_with_slow_consumer() {
        let (c, out) = conn(2);
        assert_eq!(c.push("1".into()), Pushed::Ok);
        assert_eq!(c.push("2".into()), Pushed::Ok);
        assert_eq!(c.queued(), 2);
        assert_eq!(c.push("3".into()), Pushed::Gone);
        assert_eq!(c.kill_requested(), Some(handoff_protocol::ws::close::SLOW_CONSUMER));
        // Once killed, nothing more is queued.
        assert_eq!(out.try_recv().as_deref(), Some("1"));
        assert_eq!(c.push("4".into()), Pushed::Gone);
        assert_eq!(c.queued(), 1);
    }

    #[test]
    fn a_queue_full_in_bytes_kills_the_connection_with_slow_consumer() {
        let (c, out) = Conn::bounded(UserId::from_bytes([7; 16]), 1024, 10);
        assert_eq!(c.push("12345".into()), Pushed::Ok);
        assert_eq!(c.push("6789".into()), Pushed::Ok);
        assert_eq!(c.queued_bytes(), 9);
        assert_eq!(c.push("ab".into()), Pushed::Gone, "9 + 2 bytes is over the 10-byte bound");
        assert_eq!(c.kill_requested(), Some(handoff_protocol::ws::close::SLOW_CONSUMER));
        assert_eq!(out.try_recv().as_deref(), Some("12345"));
        assert_eq!(c.queued_bytes(), 4);
    }

    #[test]
    fn one_frame_larger_than_the_byte_bound_still_goes_to_an_empty_queue() {
        let (c, out) = Conn::bounded(UserId::from_bytes([7; 16]), 1024, 4);
        assert_eq!(c.push("123456".into()), Pushed::Ok);
        assert_eq!(out.try_recv().as_deref(), Some("123456"));
        assert_eq!(c.queued_bytes(), 0);
        assert_eq!(c.kill_requested(), None);
    }

    #[test]
    fn the_first_kill_wins() {
        let (c, _out) = conn(2);
        c.kill(4001);
        c.kill(4008);
        assert_eq!(c.kill_requested(), Some(4001));
    }

    #[test]
    fn a_dropped_socket_end_makes_pushes_gone_and_frees_the_queue() {
        let (c, out) = conn(4);
        assert_eq!(c.push("a".into()), Pushed::Ok);
        drop(out);
        assert_eq!(c.queued(), 0);
        assert_eq!(c.push("b".into()), Pushed::Gone);
        assert_eq!(c.kill_requested(), None, "a closed socket is not a slow consumer");
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let (c, out) = conn(1024);
        for i in 0..500 {
            assert_eq!(c.push(i.to_string().into()), Pushed::Ok);
        }
        while out.try_recv().is_some() {}
        assert!(c.shared.queue.lock().unwrap().capacity() <= KEEP_CAPACITY);
    }

    #[tokio::test]
    async fn killed_resolves_with_the_code() {
        let (c, _out) = conn(1);
        let c2 = c.clone();
        let t = tokio::spawn(async move { c2.killed().await });
        tokio::task::yield_now().await;
        c.kill(4008);
        assert_eq!(t.await.unwrap(), 4008);
    }
}
