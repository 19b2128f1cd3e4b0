//! Fixed-window attempt counters, in memory. Keys are `"ip:<addr>"`,
//! `"acct:<email>"` and so on. A restart forgets them, which only ever errs on
//! the side of the user; the windows are short.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// The limiter.
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    map: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    /// A limiter with one window length for every key.
    pub fn new(window: Duration) -> Self {
        Self { window, map: Mutex::new(HashMap::new()) }
    }

    /// Fails with the seconds to wait if `key` already has `limit` hits in
    /// the current window.
    pub fn check(&self, key: &str, limit: u32) -> Result<(), u64> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match map.get(key) {
            Some(w) if now.duration_since(w.started) < self.window && w.count >= limit => {
                Err((self.window - now.duration_since(w.started)).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one hit for `key`.
    pub fn hit(&self, key: &str) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() > 100_000 {
            let window = self.window;
            map.retain(|_, w| now.duration_since(w.started) < window);
        }
        let w = map.entry(key.to_owned()).or_insert(Window { started: now, count: 0 });
        if now.duration_since(w.started) >= self.window {
            *w = Window { started: now, count: 0 };
        }
        w.count += 1;
    }

    /// Forgets `key` (after a successful login).
    pub fn clear(&self, key: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}
