//! The Hub: the registry of live actors (a `DashMap` per kind) and the one
//! entry point the WebSocket endpoint talks to.
//!
//! Actors are activated on demand from the store and passivate themselves when
//! idle; the registry drops a stopped actor's entry, and a lookup that finds a
//! dead address starts a fresh one. All hub actors run on one dedicated arbiter
//! (thread), apart from the HTTP workers.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use handoff_protocol::ws::{AckBody, Command, IdemKey, ReferralId, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Store, StoredEvent};

use crate::conn::Conn;
use crate::mailer::{Kick, Mailer};
use crate::practice::PracticeActor;
use crate::referral::ReferralActor;
use crate::routing::{Create, RoutingActor};
use crate::{CmdError, CmdResult};

/// Tunables.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Mailbox capacity of every hub actor.
    pub mailbox: usize,
    /// An actor with no subscribers passivates after this long idle.
    pub idle: Duration,
    /// The public URL, for links in notification emails.
    pub public_url: String,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self { mailbox: 256, idle: Duration::from_secs(60), public_url: "http://localhost".into() }
    }
}

/// The registry.
pub struct Hub {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: HubConfig,
    pub(crate) mailer: Addr<Mailer>,
    arbiter: ArbiterHandle,
    practices: DashMap<PracticeId, Addr<PracticeActor>>,
    referrals: DashMap<ReferralId, Addr<ReferralActor>>,
    routing: Addr<RoutingActor>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("practices", &self.practices.len()).field("referrals", &self.referrals.len()).finish()
    }
}

/// Subscribe a connection to the owning actor's stream.
#[derive(Message)]
#[rtype(result = "CmdResult<AckBody>")]
pub(crate) struct Subscribe {
    pub conn: Conn,
    pub after_seq: u64,
}

/// Drop a connection's subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub conn_id: u64,
}

/// Persisted events to deliver live, in seq order.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deliver {
    pub events: Vec<StoredEvent>,
}

/// Drop a user's subscriptions (they lost access).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Evict {
    pub user: UserId,
}

fn mailbox_err<E: std::fmt::Display>(e: E) -> CmdError {
    CmdError::new(ErrorCode::Unavailable, format!("the server is busy or restarting ({e}); retry"))
}

impl Hub {
    /// Starts the hub and its routing actor on a dedicated arbiter.
    pub fn start(store: Arc<dyn Store>, mailer: Addr<Mailer>, config: HubConfig) -> Arc<Self> {
        let arbiter = Arbiter::new().handle();
        Arc::new_cyclic(|weak: &std::sync::Weak<Hub>| {
            let w = weak.clone();
            let mailbox = config.mailbox;
            let routing = RoutingActor::start_in_arbiter(&arbiter, move |ctx| {
                ctx.set_mailbox_capacity(mailbox);
                RoutingActor::new(w)
            });
            Hub { store, config, mailer, arbiter, practices: DashMap::new(), referrals: DashMap::new(), routing }
        })
    }

    /// Stops every hub actor and their thread (at server shutdown).
    pub fn stop(&self) {
        self.practices.clear();
        self.referrals.clear();
        self.arbiter.stop();
    }

    /// Live actor counts, for metrics and tests: (practices, referrals).
    pub fn live(&self) -> (usize, usize) {
        (self.practices.len(), self.referrals.len())
    }

    pub(crate) fn practice(self: &Arc<Self>, id: PracticeId) -> Addr<PracticeActor> {
        if let Some(a) = self.practices.get(&id)
            && a.connected()
        {
            return a.clone();
        }
        let hub = Arc::downgrade(self);
        let mailbox = self.config.mailbox;
        self.practices
            .entry(id)
            .and_modify(|a| {
                if !a.connected() {
                    let hub = hub.clone();
                    *a = PracticeActor::start_in_arbiter(&self.arbiter, move |ctx| {
                        ctx.set_mailbox_capacity(mailbox);
                        PracticeActor::new(id, hub)
                    });
                }
            })
            .or_insert_with(|| {
                PracticeActor::start_in_arbiter(&self.arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(mailbox);
                    PracticeActor::new(id, hub)
                })
            })
            .clone()
    }

    pub(crate) fn forget_practice(&self, id: PracticeId, addr: &Addr<PracticeActor>) {
        self.practices.remove_if(&id, |_, a| a == addr);
    }

    pub(crate) fn forget_referral(&self, id: ReferralId, addr: &Addr<ReferralActor>) {
        self.referrals.remove_if(&id, |_, a| a == addr);
    }

    /// The referral's actor, activated from the store; `not_found` if no such referral.
    pub(crate) async fn referral(self: &Arc<Self>, id: ReferralId) -> CmdResult<Addr<ReferralActor>> {
        if let Some(a) = self.referrals.get(&id)
            && a.connected()
        {
            return Ok(a.clone());
        }
        let rec = self.store.referral(id).await?.ok_or_else(|| CmdError::not_found("referral"))?;
        let hub = Arc::downgrade(self);
        let mailbox = self.config.mailbox;
        let start = |rec| {
            let hub = hub.clone();
            ReferralActor::start_in_arbiter(&self.arbiter, move |ctx| {
                ctx.set_mailbox_capacity(mailbox);
                ReferralActor::new(rec, hub)
            })
        };
        let mut entry = self.referrals.entry(id).or_insert_with(|| start(rec.clone()));
        if !entry.connected() {
            *entry = start(rec);
        }
        Ok(entry.clone())
    }

    /// Can `user` see `stream`? Practice streams: members. Referral streams: members of either practice.
    pub async fn may_see(&self, user: UserId, stream: StreamId) -> CmdResult<()> {
        let ok = match stream {
            StreamId::Practice(p) => self.store.role(p, user).await?.is_some(),
            StreamId::Referral(r) => match self.store.referral(r).await? {
                Some(rec) => {
                    self.store.role(rec.to_practice, user).await?.is_some() || self.store.role(rec.from_practice, user).await?.is_some()
                }
                None => false,
            },
        };
        if ok { Ok(()) } else { Err(CmdError::not_found("stream")) }
    }

    /// Subscribes a connection: replays events after `after_seq`, then live.
    pub async fn subscribe(self: &Arc<Self>, conn: Conn, stream: StreamId, after_seq: u64) -> CmdResult<AckBody> {
        self.may_see(conn.user, stream).await?;
        match stream {
            StreamId::Practice(p) => self.practice(p).send(Subscribe { conn, after_seq }).await.map_err(mailbox_err)?,
            StreamId::Referral(r) => self.referral(r).await?.send(Subscribe { conn, after_seq }).await.map_err(mailbox_err)?,
        }
    }

    /// Drops a subscription (no error if there was none).
    pub async fn unsubscribe(&self, conn_id: u64, stream: StreamId) {
        match stream {
            StreamId::Practice(p) => {
                if let Some(a) = self.practices.get(&p).map(|a| a.clone()) {
                    let _ = a.send(Unsubscribe { conn_id }).await;
                }
            }
            StreamId::Referral(r) => {
                if let Some(a) = self.referrals.get(&r).map(|a| a.clone()) {
                    let _ = a.send(Unsubscribe { conn_id }).await;
                }
            }
        }
    }

    /// Cuts a removed member's live subscriptions to the practice's inbox.
    pub async fn evict(&self, practice: PracticeId, user: UserId) {
        if let Some(a) = self.practices.get(&practice).map(|a| a.clone()) {
            let _ = a.send(Evict { user }).await;
        }
    }

    /// Runs a state-changing command for `user`.
    pub async fn execute(self: &Arc<Self>, user: UserId, idem: IdemKey, cmd: Command) -> CmdResult<(bool, AckBody)> {
        let hash = crate::command_hash(&cmd);
        if let Some(done) = crate::replayed(&*self.store, user, idem, &hash).await? {
            return Ok((true, done));
        }
        match cmd {
            Command::SendReferral { referral } => {
                self.routing.send(Create { user, idem, hash, referral: Box::new(referral) }).await.map_err(mailbox_err)?
            }
            Command::Subscribe { .. } | Command::Unsubscribe { .. } => {
                Err(CmdError::new(ErrorCode::InvalidBody, "subscribe is not a state change"))
            }
            other => {
                let id = crate::referral::target(&other).ok_or_else(|| CmdError::new(ErrorCode::UnknownCommand, "unknown command"))?;
                let addr = self.referral(id).await?;
                addr.send(crate::referral::Execute { user, idem, hash, cmd: other }).await.map_err(mailbox_err)?
            }
        }
    }

    /// Delivers persisted events to the actors that own their streams.
    pub(crate) async fn deliver(self: &Arc<Self>, events: Vec<StoredEvent>) {
        let mut by_practice: Vec<(PracticeId, Vec<StoredEvent>)> = Vec::new();
        for e in events {
            if let StreamId::Practice(p) = e.stream {
                match by_practice.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, v)) => v.push(e),
                    None => by_practice.push((p, vec![e])),
                }
            }
        }
        for (p, evs) in by_practice {
            let _ = self.practice(p).send(Deliver { events: evs }).await;
        }
    }

    pub(crate) fn kick_mailer(&self) {
        let _ = self.mailer.try_send(Kick);
    }
}
