//! The wall clock, as the wire counts time, and the [`Clock`] that decides
//! whether a membership's dates are in force.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use handoff_protocol::UnixMillis;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The clock membership dates are read against: the wall clock plus an
/// offset that only tests move ([`Clock::advance`]), so a test passes a
/// member's end date without sleeping. Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Now, by this clock.
    pub fn now(&self) -> UnixMillis {
        now_millis().saturating_add(self.offset.load(Ordering::SeqCst))
    }

    /// Moves this clock (and every clone of it) forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset.fetch_add(ms, Ordering::SeqCst);
    }
}
