//! A live connection as actors see it: an id, a user, and a bounded outgoing
//! queue of serialized frames. Actors never block on a connection: they
//! `try_send`, and a full queue marks the connection as a slow consumer, which
//! its socket task then closes (close code 4008). Other connections are
//! unaffected.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use tokio::sync::{Notify, mpsc};

use handoff_protocol::UserId;

/// Default outgoing frames buffered per connection before it counts as a slow consumer.
pub const OUTGOING_BUFFER: usize = 1024;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Why a connection must close; shared between actors and its socket task.
#[derive(Debug, Default)]
pub struct Kill {
    code: AtomicU16,
    notify: Notify,
}

impl Kill {
    /// Asks the socket task to close with `code` (the first request wins).
    pub fn kill(&self, code: u16) {
        if self.code.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.notify.notify_one();
        }
    }
    /// The close code requested, if any.
    pub fn requested(&self) -> Option<u16> {
        match self.code.load(Ordering::SeqCst) {
            0 => None,
            c => Some(c),
        }
    }
    /// Resolves when a close is requested.
    pub async fn wait(&self) {
        loop {
            if self.requested().is_some() {
                return;
            }
            self.notify.notified().await;
        }
    }
}

/// A handle actors keep for a subscribed connection.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Unique per process.
    pub id: u64,
    /// The signed-in user.
    pub user: UserId,
    tx: mpsc::Sender<Arc<str>>,
    /// Close requests.
    pub kill: Arc<Kill>,
}

/// What a push attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Ok,
    /// The connection is gone or was just marked slow; forget it.
    Gone,
}

impl Conn {
    /// A new connection buffering at most `buffer` frames, and the receiving end of its queue.
    pub fn new(user: UserId, buffer: usize) -> (Self, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (Self { id: NEXT.fetch_add(1, Ordering::Relaxed), user, tx, kill: Arc::new(Kill::default()) }, rx)
    }

    /// Queues a frame without waiting. A full queue kills the connection.
    pub fn push(&self, frame: Arc<str>) -> Pushed {
        match self.tx.try_send(frame) {
            Ok(()) => Pushed::Ok,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.kill(handoff_protocol::ws::close::SLOW_CONSUMER);
                Pushed::Gone
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Gone,
        }
    }
}
