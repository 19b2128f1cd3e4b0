//! The sign-in, kit-check and registration rate limits (ARCHITECTURE.md,
//! "Privacy model as built", point 6).
//!
//! - **Counted before the work.** [`Counters::begin`] checks every limit an
//!   attempt is subject to and takes one slot in each, atomically under one
//!   lock, before any password hash or store read; an attempt that would pass a
//!   limit is refused at once. After the outcome, [`Counters::succeeded`] gives
//!   back what a success should not cost and [`Counters::kept`] keeps it. An
//!   attempt dropped without an outcome (a store error, a cancelled request)
//!   keeps its slots, so disconnecting early saves an attacker nothing.
//! - **Keys.** A failed sign-in locks the account *for that address* only
//!   ([`Scope::LoginAtAddress`], [`Scope::KitAtAddress`]), so a stranger
//!   cannot lock the owner out. Attempts per address across accounts
//!   ([`Scope::Address`]) stop password spraying, and a high ceiling of
//!   failures per account from every address ([`Scope::LoginAccount`],
//!   [`Scope::KitAccount`]) stops a guesser spread over many addresses.
//! - **Addresses.** [`client_ip`] takes the client's address a configured
//!   number of trusted proxy hops from the right of `X-Forwarded-For`, so
//!   values a client writes itself are never trusted; [`limit_prefix`] keys an
//!   IPv6 client by its /64, which one subscriber usually holds whole.
//! - **Memory.** Counters live in two generations of one window each: a
//!   counter not touched for a whole generation is dropped with it, in one
//!   swap, outside the lock. So memory holds at most the keys of the last two
//!   windows, no request ever sweeps the map, and [`MAX_KEYS`] caps it.
//! - **Persistence.** A counter that reaches its limit is written through to
//!   the store ([`handoff_store::LimitStore`]) and loaded again at start, so a
//!   restart lifts no lock-out; counters below their limit live in memory only,
//!   so a successful request never writes to the store. Keys are an HMAC of
//!   scope, account and address under a server secret: no email or address is
//!   stored in the clear.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use handoff_store::{LimitError, Lockout, Store};

use crate::config::Config;
use crate::state::now;

/// The most counters one generation holds (so at most twice this in memory,
/// about 40 bytes each). When it is full, an attempt that needs a new counter
/// is refused until the generation turns: the limits fail closed.
pub const MAX_KEYS: usize = 250_000;

/// What a counter counts, and so which part of the key it is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    /// Sign-in and kit attempts from one address, whatever the account or outcome.
    Address = 1,
    /// Failed sign-ins to one account from one address.
    LoginAtAddress = 2,
    /// Failed kit checks for one account from one address.
    KitAtAddress = 3,
    /// Failed sign-ins to one account from every address.
    LoginAccount = 4,
    /// Failed kit checks for one account from every address.
    KitAccount = 5,
    /// Registrations from one address.
    Registration = 6,
    /// Free referral codes emailed for requests from one address (per hour).
    FreeCodeAddress = 7,
    /// Free referral codes emailed to one email address (per hour).
    FreeCodeEmail = 8,
    /// Free referrals sent from one address (per day).
    FreeSendAddress = 9,
    /// Free referrals sent by one email address (per day).
    FreeSendEmail = 10,
    /// Failed two-factor codes for one account from one address.
    SecondFactorAtAddress = 11,
    /// Failed two-factor codes for one account from every address.
    SecondFactorAccount = 12,
    /// Waiting-room check-ins from one address, over every room (per minute).
    RoomCheckInAddress = 13,
}

/// A counter's key: 16 bytes of an HMAC over its scope, account and address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LimitKey([u8; 16]);

impl LimitKey {
    /// The key as stored.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn from_stored(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Self)
    }
}

/// What a success does to a slot it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSuccess {
    /// The attempt counts anyway (attempts per address, registrations).
    Keep,
    /// The counter is forgotten (failures of this account at this address).
    Forget,
    /// Only this attempt's slot is given back (failures of this account from everywhere).
    GiveBack,
}

/// One limit an attempt is subject to.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The counter.
    pub key: LimitKey,
    /// The hits it allows per window.
    pub limit: u32,
    /// What a success does to it.
    pub on_success: OnSuccess,
}

/// The slots an attempt took; settle it with [`Counters::succeeded`] or
/// [`Counters::kept`] (dropping it keeps its slots in memory).
#[derive(Debug)]
#[must_use = "settle the attempt, or its lock-outs are not written through"]
pub struct Attempt {
    slots: Vec<Slot>,
}

/// What settling an attempt asks of the store.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Counters that reached their limit: key, count and the time left in their window.
    pub lock: Vec<(LimitKey, u32, Duration)>,
    /// Stored lock-outs to delete (their counters were forgotten).
    pub unlock: Vec<LimitKey>,
}

#[derive(Debug)]
struct Entry {
    ends: Instant,
    count: u32,
    persisted: bool,
}

#[derive(Debug)]
struct Generations {
    current: HashMap<LimitKey, Entry>,
    previous: HashMap<LimitKey, Entry>,
    started: Instant,
}

impl Generations {
    /// The counter under `key` if its window is still open, moved into the
    /// current generation.
    fn live(&mut self, key: &LimitKey, now: Instant) -> Option<&mut Entry> {
        if let Some(e) = self.previous.remove(key)
            && e.ends > now
        {
            self.current.insert(*key, e);
        }
        if self.current.get(key).is_some_and(|e| e.ends <= now) {
            self.current.remove(key);
        }
        self.current.get_mut(key)
    }
}

/// Fixed-window counters per key, with the two-generation expiry described in
/// the module documentation. Pure and synchronous; time is passed in.
#[derive(Debug)]
pub struct Counters {
    window: Duration,
    max_keys: usize,
    inner: Mutex<Generations>,
}

/// Whole seconds to wait, rounded up, at least 1 (for `Retry-After`).
fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1).try_into().unwrap_or(u64::MAX)
}

impl Counters {
    /// Counters with one window length for every key, holding at most
    /// `max_keys` counters per generation.
    pub fn new(window: Duration, max_keys: usize, now: Instant) -> Self {
        let window = window.max(Duration::from_secs(1));
        Self { window, max_keys, inner: Mutex::new(Generations { current: HashMap::new(), previous: HashMap::new(), started: now }) }
    }

    /// Runs `f` under the lock after turning the generations as due; a
    /// generation that fell out is dropped after the lock is released.
    fn locked<R>(&self, now: Instant, f: impl FnOnce(&mut Generations) -> R) -> R {
        let mut stale = Vec::new();
        let r = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let elapsed = now.saturating_duration_since(g.started);
            if elapsed >= self.window * 2 {
                stale.push(std::mem::take(&mut g.previous));
                stale.push(std::mem::take(&mut g.current));
                g.started = now;
            } else if elapsed >= self.window {
                let current = std::mem::take(&mut g.current);
                stale.push(std::mem::replace(&mut g.previous, current));
                g.started += self.window;
            }
            f(&mut g)
        };
        drop(stale);
        r
    }

    /// Takes one slot in every limit of `slots`, or none: fails with the
    /// seconds to wait if any counter is at its limit (or a new counter is
    /// needed and the generation is full).
    pub fn begin(&self, slots: Vec<Slot>, now: Instant) -> Result<Attempt, u64> {
        let window = self.window;
        self.locked(now, |g| {
            let mut wait: Option<Duration> = None;
            let mut new_keys = 0usize;
            for s in &slots {
                match g.live(&s.key, now) {
                    Some(e) if e.count >= s.limit => wait = wait.max(Some(e.ends.saturating_duration_since(now))),
                    Some(_) => {}
                    None if s.limit == 0 => wait = wait.max(Some(window)),
                    None => new_keys += 1,
                }
            }
            if wait.is_none() && new_keys > 0 && g.current.len() + new_keys > self.max_keys {
                wait = Some((g.started + window).saturating_duration_since(now));
            }
            if let Some(w) = wait {
                return Err(secs(w));
            }
            for s in &slots {
                let e = g.current.entry(s.key).or_insert(Entry { ends: now + window, count: 0, persisted: false });
                e.count = e.count.saturating_add(1);
            }
            Ok(Attempt { slots })
        })
    }

    /// Settles a successful attempt: each slot as its [`OnSuccess`] says.
    pub fn succeeded(&self, attempt: Attempt, now: Instant) -> Writes {
        self.locked(now, |g| {
            let mut w = Writes::default();
            for s in &attempt.slots {
                match s.on_success {
                    OnSuccess::Keep => lock_if_full(g, s, now, &mut w),
                    OnSuccess::Forget => {
                        g.previous.remove(&s.key);
                        if g.current.remove(&s.key).is_some_and(|e| e.persisted) {
                            w.unlock.push(s.key);
                        }
                    }
                    OnSuccess::GiveBack => {
                        if let Some(e) = g.live(&s.key, now) {
                            e.count = e.count.saturating_sub(1);
                        }
                    }
                }
            }
            w
        })
    }

    /// Settles an attempt that counts (a failure, or a registration): every
    /// slot stays taken; counters now at their limit are to be written through.
    pub fn kept(&self, attempt: Attempt, now: Instant) -> Writes {
        self.locked(now, |g| {
            let mut w = Writes::default();
            for s in &attempt.slots {
                lock_if_full(g, s, now, &mut w);
            }
            w
        })
    }

    /// Forgets the counter under `key`; true if its lock-out was stored.
    pub fn forget(&self, key: LimitKey, now: Instant) -> bool {
        self.locked(now, |g| {
            g.previous.remove(&key);
            g.current.remove(&key).is_some_and(|e| e.persisted)
        })
    }

    /// Puts back a stored lock-out with `left` of its window to run (at most
    /// one window). Skipped when the generation is full.
    pub fn restore(&self, key: LimitKey, count: u32, left: Duration, now: Instant) {
        let window = self.window;
        self.locked(now, |g| {
            if g.current.len() < self.max_keys && !left.is_zero() {
                g.current.insert(key, Entry { ends: now + left.min(window), count, persisted: true });
            }
        });
    }

    /// How many counters are in memory, both generations together.
    pub fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.current.len() + g.previous.len()
    }

    /// Whether no counter is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock_if_full(g: &mut Generations, s: &Slot, now: Instant, w: &mut Writes) {
    if let Some(e) = g.live(&s.key, now)
        && e.count >= s.limit
        && !e.persisted
    {
        e.persisted = true;
        w.lock.push((s.key, e.count, e.ends.saturating_duration_since(now)));
    }
}

/// The client's address: the entry `trusted_hops` places left of the TCP
/// peer in the chain `X-Forwarded-For values…, peer`, where `forwarded_for`
/// holds the header's lines in order. With 0 hops that is the peer itself;
/// the values right of the client were appended by the trusted proxies, and
/// whatever a client writes itself sits further left, where it is never read.
/// A chain shorter than the hops yields its leftmost entry; an entry that is
/// not an address yields the peer (so those clients share the proxy's limits).
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: &[String], trusted_hops: u8) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    if trusted_hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for.iter().flat_map(|line| line.split(',')).map(str::trim).collect();
    let chosen = match entries.len().checked_sub(usize::from(trusted_hops)) {
        Some(i) => entries.get(i),
        None => entries.first(),
    };
    chosen.and_then(|e| parse_forwarded(e)).unwrap_or(peer)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port, IPv6 optionally in brackets.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).and_then(|e| e.parse().ok()))
}

/// The part of an address the limits key on: an IPv4 address whole (also
/// when written IPv4-mapped), an IPv6 address by its /64.
pub fn limit_prefix(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
    }
}

/// The limits the server enforces, from [`Config`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Sign-in and kit attempts per address per window, across accounts.
    pub per_address: u32,
    /// Failures per account and address per window before that address is locked out of it.
    pub per_account_at_address: u32,
    /// Failures per account per window from every address together.
    pub per_account: u32,
    /// Registrations per address per window.
    pub registrations_per_address: u32,
    /// Free referral codes per address per hour.
    pub free_codes_per_address: u32,
    /// Free referral codes per email address per hour.
    pub free_codes_per_email: u32,
    /// Free referrals per address per day.
    pub free_sends_per_address: u32,
    /// Free referrals per email address per day.
    pub free_sends_per_email: u32,
    /// Wrong second factors per account per window from every address together.
    pub second_factor_per_account: u32,
    /// Waiting-room check-ins per address per minute.
    pub room_checkins_per_address: u32,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &Config) -> Self {
        Self {
            per_address: config.auth_attempts_per_ip,
            per_account_at_address: config.auth_failures_per_account,
            per_account: config.auth_failures_per_account_total,
            registrations_per_address: config.registrations_per_ip,
            free_codes_per_address: config.free_codes_per_address_per_hour,
            free_codes_per_email: config.free_codes_per_email_per_hour,
            free_sends_per_address: config.free_referrals_per_address_per_day,
            free_sends_per_email: config.free_referrals_per_email_per_day,
            second_factor_per_account: config.second_factor_failures_per_account_total,
            room_checkins_per_address: config.room_checkins_per_minute_per_address,
        }
    }
}

/// Which secret an attempt tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A password sign-in.
    Login,
    /// An Emergency Access Kit check.
    Kit,
    /// A two-factor code or recovery code (the account is the user id): the
    /// password's limits per address, and a lower ceiling per account from
    /// every address ([`Limits::second_factor_per_account`]).
    SecondFactor,
}

/// The window of the free referral code limits.
pub const FREE_CODE_WINDOW: Duration = Duration::from_secs(3600);
/// The window of the free referral send limits.
pub const FREE_SEND_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The window of the waiting-room check-in limit.
pub const ROOM_CHECK_IN_WINDOW: Duration = Duration::from_secs(60);

/// Which free referral limits an attempt is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeLimit {
    /// An emailed code (a draft's first, or a resend): per hour.
    Code,
    /// A sent free referral: per day.
    Send,
}

/// The server's limiter: [`Counters`] keyed by HMAC, with lock-outs written
/// through to the store. The free referral limits are counters of the same
/// kind with windows of their own (an hour for codes, a day for sends).
pub struct RateLimiter {
    counters: Counters,
    free_codes: Counters,
    free_sends: Counters,
    room_checkins: Counters,
    limits: Limits,
    secret: Vec<u8>,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("limits", &self.limits).field("counters", &self.counters.len()).finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter over `store`, keyed under `secret`, with the lock-outs still
    /// in force loaded (and the lifted ones purged).
    pub async fn load(store: Arc<dyn Store>, secret: Vec<u8>, window: Duration, limits: Limits) -> Result<Self, LimitError> {
        let t = now();
        store.purge_lockouts(t).await?;
        let stored = store.lockouts(t).await?;
        let mono = Instant::now();
        let counters = Counters::new(window, MAX_KEYS, mono);
        let free_codes = Counters::new(FREE_CODE_WINDOW, MAX_KEYS, mono);
        let free_sends = Counters::new(FREE_SEND_WINDOW, MAX_KEYS, mono);
        let room_checkins = Counters::new(ROOM_CHECK_IN_WINDOW, MAX_KEYS, mono);
        for l in &stored {
            if let Some(key) = LimitKey::from_stored(&l.key) {
                let left = Duration::from_millis(u64::try_from(l.until.saturating_sub(t)).unwrap_or(0));
                // A key's scope is inside its HMAC, so it is restored where it
                // was counted; in the other counters nobody ever asks for it.
                for c in [&counters, &free_codes, &free_sends, &room_checkins] {
                    c.restore(key, l.count, left, mono);
                }
            }
        }
        if !stored.is_empty() {
            tracing::info!(lockouts = stored.len(), "rate-limit lock-outs restored");
        }
        Ok(Self { counters, free_codes, free_sends, room_checkins, limits, secret, store })
    }

    /// The key of `scope` for `account` (empty when none) at `addr` (none when the scope has no address).
    pub fn key(&self, scope: Scope, account: &str, addr: Option<IpAddr>) -> LimitKey {
        let mut out = [0u8; 16];
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret) {
            mac.update(&[scope as u8]);
            mac.update(&(account.len() as u64).to_be_bytes());
            mac.update(account.as_bytes());
            match addr.map(limit_prefix) {
                Some(IpAddr::V4(a)) => mac.update(&a.octets()),
                Some(IpAddr::V6(a)) => mac.update(&a.octets()),
                None => {}
            }
            for (o, b) in out.iter_mut().zip(mac.finalize().into_bytes()) {
                *o = b;
            }
        }
        LimitKey(out)
    }

    /// Starts a sign-in or kit attempt on `email` from `addr`: one slot in the
    /// address's attempts, the account's failures at that address and the
    /// account's failures from everywhere. Fails with the seconds to wait.
    pub fn begin_check(&self, check: Check, email: &str, addr: IpAddr) -> Result<Attempt, u64> {
        let l = self.limits;
        let (at_address, anywhere, per_account) = match check {
            Check::Login => (Scope::LoginAtAddress, Scope::LoginAccount, l.per_account),
            Check::Kit => (Scope::KitAtAddress, Scope::KitAccount, l.per_account),
            Check::SecondFactor => (Scope::SecondFactorAtAddress, Scope::SecondFactorAccount, l.second_factor_per_account),
        };
        self.counters.begin(
            vec![
                Slot { key: self.key(Scope::Address, "", Some(addr)), limit: l.per_address, on_success: OnSuccess::Keep },
                Slot { key: self.key(at_address, email, Some(addr)), limit: l.per_account_at_address, on_success: OnSuccess::Forget },
                Slot { key: self.key(anywhere, email, None), limit: per_account, on_success: OnSuccess::GiveBack },
            ],
            Instant::now(),
        )
    }

    /// Starts a registration from `addr`. Fails with the seconds to wait.
    pub fn begin_registration(&self, addr: IpAddr) -> Result<Attempt, u64> {
        let slot = Slot {
            key: self.key(Scope::Registration, "", Some(addr)),
            limit: self.limits.registrations_per_address,
            on_success: OnSuccess::Keep,
        };
        self.counters.begin(vec![slot], Instant::now())
    }

    /// Counts a free referral code emailed to `email` (normalised) or a free
    /// referral sent by it, from `addr`, before the work: one slot in the
    /// address's and one in the email's counter. The attempt counts whatever
    /// its outcome: it is settled at once. Fails with the seconds to wait.
    pub async fn count_free(&self, limit: FreeLimit, email: &str, addr: IpAddr) -> Result<(), u64> {
        let l = self.limits;
        let (counters, (at_address, per_address), (of_email, per_email)) = match limit {
            FreeLimit::Code => {
                (&self.free_codes, (Scope::FreeCodeAddress, l.free_codes_per_address), (Scope::FreeCodeEmail, l.free_codes_per_email))
            }
            FreeLimit::Send => {
                (&self.free_sends, (Scope::FreeSendAddress, l.free_sends_per_address), (Scope::FreeSendEmail, l.free_sends_per_email))
            }
        };
        let now = Instant::now();
        let attempt = counters.begin(
            vec![
                Slot { key: self.key(at_address, "", Some(addr)), limit: per_address, on_success: OnSuccess::Keep },
                Slot { key: self.key(of_email, email, None), limit: per_email, on_success: OnSuccess::Keep },
            ],
            now,
        )?;
        self.write(counters.kept(attempt, now)).await;
        Ok(())
    }

    /// Counts a waiting-room check-in from `addr` before the work, whatever
    /// its outcome ([`Scope::RoomCheckInAddress`], per minute). Fails with the
    /// seconds to wait.
    pub async fn count_room_check_in(&self, addr: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let slot = Slot {
            key: self.key(Scope::RoomCheckInAddress, "", Some(addr)),
            limit: self.limits.room_checkins_per_address,
            on_success: OnSuccess::Keep,
        };
        let attempt = self.room_checkins.begin(vec![slot], now)?;
        self.write(self.room_checkins.kept(attempt, now)).await;
        Ok(())
    }

    /// Settles a successful attempt (see [`Counters::succeeded`]).
    pub async fn succeeded(&self, attempt: Attempt) {
        self.write(self.counters.succeeded(attempt, Instant::now())).await;
    }

    /// Settles an attempt that counts: a failure, or a registration (see [`Counters::kept`]).
    pub async fn kept(&self, attempt: Attempt) {
        self.write(self.counters.kept(attempt, Instant::now())).await;
    }

    /// Forgets `email`'s failed sign-ins from `addr` (after a reset with the kit).
    pub async fn forget_login_failures(&self, email: &str, addr: IpAddr) {
        let key = self.key(Scope::LoginAtAddress, email, Some(addr));
        if self.counters.forget(key, Instant::now()) {
            self.write(Writes { lock: Vec::new(), unlock: vec![key] }).await;
        }
    }

    /// Writes lock-outs through. A store failure is logged, not answered: the
    /// limit still holds in memory, and only a restart before the store
    /// recovers would lift it.
    async fn write(&self, w: Writes) {
        if !w.lock.is_empty() {
            let t = now();
            let lockouts = w
                .lock
                .iter()
                .map(|(k, count, left)| Lockout {
                    key: k.as_bytes().to_vec(),
                    count: *count,
                    until: t.saturating_add(i64::try_from(left.as_millis()).unwrap_or(i64::MAX)),
                })
                .collect();
            if let Err(e) = self.store.put_lockouts(lockouts).await {
                tracing::warn!(error = %e, "rate-limit lock-out not written through");
            }
        }
        if !w.unlock.is_empty() {
            let keys = w.unlock.iter().map(|k| k.as_bytes().to_vec()).collect();
            if let Err(e) = self.store.delete_lockouts(keys).await {
                tracing::warn!(error = %e, "rate-limit lock-out not deleted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;

    const W: Duration = Duration::from_secs(60);

    fn k(n: u8) -> LimitKey {
        LimitKey([n; 16])
    }

    fn slot(n: u8, limit: u32, on_success: OnSuccess) -> Slot {
        Slot { key: k(n), limit, on_success }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_trusted_hops_the_peer_is_the_client() {
        let peer = Some(ip("192.0.2.1"));
        assert_eq!(client_ip(peer, &lines(&["10.0.0.1"]), 0), ip("192.0.2.1"));
        assert_eq!(client_ip(None, &[], 0), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn the_client_is_counted_from_the_right_past_the_trusted_hops() {
        let peer = Some(ip("10.9.9.9"));
        // One proxy: it appended the address it saw; what the client wrote is left of it.
        assert_eq!(client_ip(peer, &lines(&["1.1.1.1, 2.2.2.2, 198.51.100.9"]), 1), ip("198.51.100.9"));
        // Two proxies: the outer one's peer is the client.
        assert_eq!(client_ip(peer, &lines(&["1.1.1.1, 198.51.100.9, 10.0.0.2"]), 2), ip("198.51.100.9"));
        // Header lines count as one list, in order.
        assert_eq!(client_ip(peer, &lines(&["1.1.1.1", "2.2.2.2", "198.51.100.9"]), 1), ip("198.51.100.9"));
        // No header: the peer itself (a request from the proxy's own host).
        assert_eq!(client_ip(peer, &[], 1), ip("10.9.9.9"));
        // Fewer entries than hops: the leftmost.
        assert_eq!(client_ip(peer, &lines(&["198.51.100.9"]), 3), ip("198.51.100.9"));
    }

    #[test]
    fn forwarded_entries_with_ports_brackets_or_garbage() {
        let peer = Some(ip("10.9.9.9"));
        assert_eq!(client_ip(peer, &lines(&["203.0.113.5:4711"]), 1), ip("203.0.113.5"));
        assert_eq!(client_ip(peer, &lines(&["[2001:db8::7]:443"]), 1), ip("2001:db8::7"));
        assert_eq!(client_ip(peer, &lines(&["[2001:db8::7]"]), 1), ip("2001:db8::7"));
        assert_eq!(client_ip(peer, &lines(&[" 2001:db8::7 "]), 1), ip("2001:db8::7"));
        // Not an address: the proxy's own limits apply, never a forged neighbour's.
        assert_eq!(client_ip(peer, &lines(&["1.1.1.1, unknown"]), 1), ip("10.9.9.9"));
        assert_eq!(client_ip(peer, &lines(&[""]), 1), ip("10.9.9.9"));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_ipv4_whole() {
        assert_eq!(limit_prefix(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(limit_prefix(ip("2001:db8:1:2::1")), limit_prefix(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(limit_prefix(ip("2001:db8:1:2::1")), limit_prefix(ip("2001:db8:1:3::1")));
        assert_eq!(limit_prefix(ip("198.51.100.9")), ip("198.51.100.9"));
        assert_ne!(limit_prefix(ip("198.51.100.9")), limit_prefix(ip("198.51.100.10")));
        // IPv4-mapped IPv6 is the IPv4 address, not one /64 for all of IPv4.
        assert_eq!(limit_prefix(ip("::ffff:198.51.100.9")), ip("198.51.100.9"));
        assert_eq!(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)).ip(), limit_prefix(ip("127.0.0.1")));
    }

    #[test]
    fn a_slot_is_taken_before_the_work_and_the_limit_holds_for_attempts_in_flight() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        let held: Vec<Attempt> = (0..3).map(|_| c.begin(vec![slot(1, 3, OnSuccess::Forget)], t).unwrap()).collect();
        assert_eq!(c.begin(vec![slot(1, 3, OnSuccess::Forget)], t).unwrap_err(), 60, "three in flight fill a limit of three");
        for a in held {
            assert!(c.kept(a, t).lock.len() <= 1);
        }
        assert!(c.begin(vec![slot(1, 3, OnSuccess::Forget)], t).is_err());
    }

    #[test]
    fn a_refused_attempt_takes_no_slot_anywhere() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        let a = c.begin(vec![slot(2, 1, OnSuccess::Keep)], t).unwrap();
        let _ = c.kept(a, t);
        // Key 1 has room, key 2 is full: refused, and key 1 keeps its room.
        assert!(c.begin(vec![slot(1, 1, OnSuccess::Keep), slot(2, 1, OnSuccess::Keep)], t).is_err());
        assert!(c.begin(vec![slot(1, 1, OnSuccess::Keep)], t).is_ok());
    }

    #[test]
    fn success_forgets_gives_back_or_keeps_as_each_slot_says() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        let slots = || vec![slot(1, 2, OnSuccess::Keep), slot(2, 2, OnSuccess::Forget), slot(3, 2, OnSuccess::GiveBack)];
        let failed = c.begin(slots(), t).unwrap();
        let _ = c.kept(failed, t);
        let ok = c.begin(slots(), t).unwrap();
        let w = c.succeeded(ok, t);
        assert_eq!(w.lock, vec![(k(1), 2, W)], "the kept counter reached its limit and is written through");
        // Key 1 (kept) is full; key 2 was forgotten; key 3 holds only the one failure.
        assert!(c.begin(vec![slot(1, 2, OnSuccess::Keep)], t).is_err());
        let a = c.begin(vec![slot(2, 1, OnSuccess::Keep)], t).unwrap();
        let _ = c.kept(a, t);
        let a = c.begin(vec![slot(3, 2, OnSuccess::Keep)], t).unwrap();
        let _ = c.kept(a, t);
        assert!(c.begin(vec![slot(3, 2, OnSuccess::Keep)], t).is_err());
    }

    #[test]
    fn a_lockout_is_written_once_and_unlocked_when_forgotten() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        let a = c.begin(vec![slot(1, 1, OnSuccess::Forget)], t).unwrap();
        let w = c.kept(a, t + Duration::from_secs(10));
        assert_eq!(w.lock, vec![(k(1), 1, Duration::from_secs(50))]);
        assert!(c.forget(k(1), t), "it was stored, so the store must forget it too");
        assert!(!c.forget(k(1), t));
    }

    #[test]
    fn counters_expire_with_their_window_and_memory_with_two_generations() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        for n in 0..10 {
            let a = c.begin(vec![slot(n, 1, OnSuccess::Keep)], t).unwrap();
            let _ = c.kept(a, t);
        }
        assert!(c.begin(vec![slot(0, 1, OnSuccess::Keep)], t + W - Duration::from_secs(1)).is_err());
        // Its window is over: counted afresh.
        let a = c.begin(vec![slot(0, 1, OnSuccess::Keep)], t + W).unwrap();
        let _ = c.kept(a, t + W);
        assert_eq!(c.len(), 10, "the untouched nine moved to the previous generation");
        // Two windows on, every untouched counter is gone without any sweep.
        let _ = c.begin(vec![slot(50, 1, OnSuccess::Keep)], t + W * 2);
        assert_eq!(c.len(), 2, "key 0 (touched at one window) and key 50");
        let _ = c.begin(vec![slot(51, 1, OnSuccess::Keep)], t + W * 10);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_generation_refuses_new_keys_until_it_turns() {
        let t = Instant::now();
        let c = Counters::new(W, 3, t);
        for n in 0..3 {
            let _ = c.begin(vec![slot(n, 5, OnSuccess::Keep)], t).unwrap();
        }
        assert_eq!(c.begin(vec![slot(9, 5, OnSuccess::Keep)], t).unwrap_err(), 60, "fails closed");
        assert!(c.begin(vec![slot(1, 5, OnSuccess::Keep)], t).is_ok(), "known keys still count");
        assert!(c.begin(vec![slot(9, 5, OnSuccess::Keep)], t + W).is_ok(), "a new generation has room");
    }

    #[test]
    fn a_restored_lockout_holds_for_what_was_left_of_its_window() {
        let t = Instant::now();
        let c = Counters::new(W, 100, t);
        c.restore(k(1), 5, Duration::from_secs(30), t);
        assert_eq!(c.begin(vec![slot(1, 5, OnSuccess::Forget)], t).unwrap_err(), 30);
        assert!(c.begin(vec![slot(1, 5, OnSuccess::Forget)], t + Duration::from_secs(30)).is_ok());
        // Never longer than one window, whatever was stored.
        c.restore(k(2), 5, W * 100, t);
        assert!(c.begin(vec![slot(2, 5, OnSuccess::Forget)], t + W).is_ok());
    }
}
