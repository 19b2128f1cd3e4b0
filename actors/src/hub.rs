//! The Hub: the registries of live actors (one [`Registry`] per stream kind)
//! and the one entry point the WebSocket endpoint talks to.
//!
//! Actors are activated on demand from the store and passivate themselves when
//! idle; a registry drops a stopped actor's entry, and a lookup that finds a
//! dead address starts a fresh one. All hub actors run on one dedicated arbiter
//! (thread), apart from the HTTP workers. The hub names each stream kind in
//! exactly one place, [`Hub::route`].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use handoff_protocol::ws::{AckBody, Command, IdemKey, StreamId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{Store, StoredEvent};

use crate::conn::Conn;
use crate::mailer::{Kick, Mailer};
use crate::messages::{Create, Deliver, Evict, Execute, Subscribe, Unsubscribe};
use crate::practice::PracticeStream;
use crate::referral::ReferralStream;
use crate::routing::RoutingActor;
use crate::stream::{Registry, StreamActor, StreamHandle, StreamKind};
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

/// The registry of live actors.
pub struct Hub {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: HubConfig,
    pub(crate) mailer: Addr<Mailer>,
    pub(crate) arbiter: ArbiterHandle,
    pub(crate) practices: Registry<PracticeStream>,
    pub(crate) referrals: Registry<ReferralStream>,
    routing: Addr<RoutingActor>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("practices", &self.practices.len()).field("referrals", &self.referrals.len()).finish()
    }
}

/// How [`Hub::route`] reaches a stream's actor.
#[derive(Clone, Copy, Debug)]
enum Reach {
    /// Check that the user may see the stream; reach no actor.
    Authorize(UserId),
    /// Check that the user may see the stream, then activate its actor if needed.
    Open(UserId),
    /// The actor only if it is running already.
    Live,
    /// For a delivery: the running actor, or a new one if the kind wakes on
    /// delivery ([`StreamKind::WAKE_ON_DELIVER`]).
    Deliver,
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
            Hub { store, config, mailer, arbiter, practices: Registry::default(), referrals: Registry::default(), routing }
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

    /// The actor of stream `id` of kind `K`: the running one, or one activated
    /// from the store (`not_found` if there is no such stream).
    pub(crate) async fn activate<K: StreamKind>(self: &Arc<Self>, id: K::Id) -> CmdResult<Addr<StreamActor<K>>> {
        let registry = K::registry(self);
        if let Some(a) = registry.live(id) {
            return Ok(a);
        }
        let kind = K::load(self.store.clone(), id).await?;
        Ok(registry.start(self, kind))
    }

    async fn reach<K: StreamKind>(self: &Arc<Self>, id: K::Id, how: Reach) -> CmdResult<Option<StreamHandle>> {
        match how {
            Reach::Authorize(user) => K::authorize(self.store.clone(), user, id).await.map(|()| None),
            Reach::Open(user) => {
                K::authorize(self.store.clone(), user, id).await?;
                Ok(Some(StreamHandle::of(self.activate::<K>(id).await?)))
            }
            Reach::Live => Ok(K::registry(self).live(id).map(StreamHandle::of)),
            Reach::Deliver if K::WAKE_ON_DELIVER => Ok(Some(StreamHandle::of(self.activate::<K>(id).await?))),
            Reach::Deliver => Ok(K::registry(self).live(id).map(StreamHandle::of)),
        }
    }

    /// The one place a [`StreamId`] meets its kind.
    async fn route(self: &Arc<Self>, stream: StreamId, how: Reach) -> CmdResult<Option<StreamHandle>> {
        match stream {
            StreamId::Practice(id) => self.reach::<PracticeStream>(id, how).await,
            StreamId::Referral(id) => self.reach::<ReferralStream>(id, how).await,
        }
    }

    /// Can `user` see `stream`? Practice streams: members. Referral streams: members of either practice.
    pub async fn may_see(self: &Arc<Self>, user: UserId, stream: StreamId) -> CmdResult<()> {
        self.route(stream, Reach::Authorize(user)).await.map(|_| ())
    }

    /// Subscribes a connection: replays events after `after_seq`, then live.
    pub async fn subscribe(self: &Arc<Self>, conn: Conn, stream: StreamId, after_seq: u64) -> CmdResult<AckBody> {
        let actor = self.route(stream, Reach::Open(conn.user)).await?.ok_or_else(|| CmdError::not_found("stream"))?;
        actor.subscribe.send(Subscribe { conn, after_seq }).await.map_err(mailbox_err)?
    }

    /// Drops a subscription (no error if there was none).
    pub async fn unsubscribe(self: &Arc<Self>, conn_id: u64, stream: StreamId) {
        if let Ok(Some(actor)) = self.route(stream, Reach::Live).await {
            let _ = actor.unsubscribe.send(Unsubscribe { conn_id }).await;
        }
    }

    /// Cuts a removed member's live subscriptions to the practice's inbox.
    pub async fn evict(self: &Arc<Self>, practice: PracticeId, user: UserId) {
        if let Ok(Some(actor)) = self.route(StreamId::Practice(practice), Reach::Live).await {
            let _ = actor.evict.send(Evict { user }).await;
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
                let addr = self.activate::<ReferralStream>(id).await?;
                addr.send(Execute { user, idem, hash, cmd: other }).await.map_err(mailbox_err)?
            }
        }
    }

    /// Delivers persisted events to the actors that own their streams, one
    /// `Deliver` per stream (see [`StreamKind::WAKE_ON_DELIVER`] for a stream
    /// whose actor is not running).
    pub(crate) async fn deliver(self: &Arc<Self>, events: Vec<StoredEvent>) {
        let mut by_stream: Vec<(StreamId, Vec<StoredEvent>)> = Vec::new();
        for e in events {
            match by_stream.iter_mut().find(|(s, _)| *s == e.stream) {
                Some((_, v)) => v.push(e),
                None => by_stream.push((e.stream, vec![e])),
            }
        }
        for (stream, events) in by_stream {
            if let Ok(Some(actor)) = self.route(stream, Reach::Deliver).await {
                let _ = actor.deliver.send(Deliver { events }).await;
            }
        }
    }

    pub(crate) fn kick_mailer(&self) {
        let _ = self.mailer.try_send(Kick);
    }
}
