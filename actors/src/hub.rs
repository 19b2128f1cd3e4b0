//! The Hub: the one entry point the WebSocket endpoint talks to, and the one
//! place a stream id meets its kind ([`Hub::route`]).
//!
//! Actors are activated on demand from the store and passivate themselves when
//! idle; the registry drops a stopped actor's entry, and a lookup that finds a
//! dead address starts a fresh one. All hub actors run on one dedicated arbiter
//! (thread), apart from the HTTP workers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;

use handoff_protocol::free::DraftId;
use handoff_protocol::ws::{AckBody, Command, IdemKey, NewReferral, StreamId};
use handoff_protocol::{ErrorCode, GuestId, PracticeId, RoomId, UnixMillis, UserId};
use handoff_store::{Store, StoredEvent};

use crate::conn::Conn;
pub use crate::env::HubConfig;
use crate::env::{Env, Router};
use crate::mailer::Mailer;
use crate::messages::{Create, Creator, Deliver, EndAccess, Execute, Subscribe, Unsubscribe};
use crate::practice::PracticeStream;
use crate::referral::ReferralStream;
use crate::registry::Registry;
use crate::room::{Disconnected, EndRoom, GuestCommand, HostCommand, RoomRegistry};
use crate::routing::RoutingActor;
use crate::stream::{self, StreamKind, StreamMessage};
use crate::{ApiError, ApiResult};

/// The hub: what every actor shares, and the routing actor.
pub struct Hub {
    env: Arc<Env>,
    routing: Addr<RoutingActor>,
    /// The live waiting rooms' actors (rooms are not streams: their own registry).
    rooms: Arc<RoomRegistry>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, r) = self.live();
        f.debug_struct("Hub").field("practices", &p).field("referrals", &r).finish()
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

/// What [`Hub::route`] answers: the stream's actor as a recipient of `M`, if reached.
type Routed<'a, M> = Pin<Box<dyn Future<Output = ApiResult<Option<Recipient<M>>>> + Send + 'a>>;

fn mailbox_err<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, format!("the server is busy or restarting ({e}); retry"))
}

impl Router for Hub {
    fn deliver(self: Arc<Self>, events: Vec<StoredEvent>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { Hub::deliver(&self, events).await })
    }
}

impl Hub {
    /// Starts the hub and its routing actor on a dedicated arbiter.
    pub fn start(store: Arc<dyn Store>, mailer: Addr<Mailer>, config: HubConfig) -> Arc<Self> {
        let arbiter = Arbiter::new().handle();
        Arc::new_cyclic(|hub: &std::sync::Weak<Hub>| {
            let router: std::sync::Weak<dyn Router> = hub.clone();
            let mailbox = config.mailbox;
            let env = Arc::new(Env {
                store,
                config,
                mailer,
                arbiter: arbiter.clone(),
                registry: Registry::default(),
                revocations: Default::default(),
                router,
            });
            let weak = Arc::downgrade(&env);
            let routing = RoutingActor::start_in_arbiter(&arbiter, move |ctx| {
                ctx.set_mailbox_capacity(mailbox);
                RoutingActor::new(weak)
            });
            Hub { env, routing, rooms: Arc::default() }
        })
    }

    /// What every actor shares.
    pub(crate) fn env(&self) -> &Arc<Env> {
        &self.env
    }

    /// Stops every hub actor and their thread (at server shutdown).
    pub fn stop(&self) {
        self.env.registry.clear();
        self.rooms.clear();
        self.env.arbiter.stop();
    }

    /// Live actor counts, for metrics and tests: (practices, referrals).
    pub fn live(&self) -> (usize, usize) {
        let r = &self.env.registry;
        (r.count(|s| matches!(s, StreamId::Practice(_))), r.count(|s| matches!(s, StreamId::Referral(_))))
    }

    /// How many waiting rooms have a live actor.
    pub fn live_rooms(&self) -> usize {
        self.rooms.count()
    }

    /// Runs a host command ([`Command::room`]) for a member socket: the room
    /// must exist and the user hold [`handoff_domain::rights::Right::Post`]
    /// in its practice (else `not_found`, as for a room that does not exist).
    /// `room_host` activates the room's actor; the other commands need the
    /// socket to host the room already.
    pub async fn room_command(&self, conn: Conn, cmd: Command) -> ApiResult<AckBody> {
        let room = cmd.room().ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "not a host command"))?;
        let env = &self.env;
        let rec = env.store.room(room).await?.ok_or_else(|| ApiError::not_found("room"))?;
        match crate::access::require(&*env.store, &env.config.clock, rec.practice, conn.user, handoff_domain::rights::Right::Post).await {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::NotFound => return Err(ApiError::not_found("room")),
            Err(e) => return Err(e),
        }
        let actor = if matches!(cmd, Command::RoomHost { .. }) {
            self.rooms.live_or_start(room, env.store.clone(), &env.arbiter)
        } else {
            self.rooms.live(room).ok_or_else(|| ApiError::new(ErrorCode::Conflict, "host the room first (room_host)"))?
        };
        actor.send(HostCommand { conn, cmd }).await.map_err(mailbox_err)?
    }

    /// Runs a guest command for the guest socket of `guest` in `room`
    /// (checked in at `checked_in_at`). Any other command is `forbidden`.
    pub async fn guest_command(
        &self,
        conn: Conn,
        room: RoomId,
        guest: GuestId,
        checked_in_at: UnixMillis,
        cmd: Command,
    ) -> ApiResult<AckBody> {
        if !cmd.is_guest() {
            return Err(ApiError::new(ErrorCode::Forbidden, "a guest socket accepts only guest commands"));
        }
        let actor = if matches!(cmd, Command::GuestCheckIn { .. }) {
            self.rooms.live_or_start(room, self.env.store.clone(), &self.env.arbiter)
        } else {
            self.rooms.live(room).ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "check in first (guest_check_in)"))?
        };
        actor.send(GuestCommand { conn, guest, checked_in_at, cmd }).await.map_err(mailbox_err)?
    }

    /// A socket closed: it no longer hosts `rooms` (or, for a guest socket, its guest has left).
    pub async fn room_disconnected(&self, conn_id: u64, rooms: Vec<RoomId>) {
        for room in rooms {
            if let Some(actor) = self.rooms.live(room) {
                let _ = actor.send(Disconnected { conn_id }).await;
            }
        }
    }

    /// The room was deleted: its live sockets are told it ended.
    pub async fn end_room(&self, room: RoomId) {
        if let Some(actor) = self.rooms.live(room) {
            let _ = actor.send(EndRoom).await;
        }
    }

    async fn reach<K: StreamKind, M: StreamMessage>(&self, id: K::Id, how: Reach) -> ApiResult<Option<Recipient<M>>> {
        let env = &self.env;
        match how {
            Reach::Authorize(user) => K::authorize(env.store.clone(), env.config.clock.clone(), user, id).await.map(|()| None),
            Reach::Open(user) => {
                K::authorize(env.store.clone(), env.config.clock.clone(), user, id).await?;
                Ok(Some(M::recipient(stream::activate::<K>(env, id).await?)))
            }
            Reach::Deliver if K::WAKE_ON_DELIVER => Ok(Some(M::recipient(stream::activate::<K>(env, id).await?))),
            Reach::Live | Reach::Deliver => Ok(stream::live::<K>(env, id).map(M::recipient)),
        }
    }

    /// The one place a [`StreamId`] meets its kind.
    ///
    /// Boxed: the future covers every kind's loading and access check, so a
    /// caller that awaited it inline would carry all of that in its own state.
    /// The socket task awaits `unsubscribe` at its end, and its future lives as
    /// long as the socket: inlined, this cost every idle socket about 2.3 KB.
    fn route<M: StreamMessage>(&self, stream: StreamId, how: Reach) -> Routed<'_, M> {
        Box::pin(async move {
            match stream {
                StreamId::Practice(id) => self.reach::<PracticeStream, M>(id, how).await,
                StreamId::Referral(id) => self.reach::<ReferralStream, M>(id, how).await,
            }
        })
    }

    /// Can `user` see `stream`? Practice streams: members. Referral streams: members of either practice.
    pub async fn may_see(&self, user: UserId, stream: StreamId) -> ApiResult<()> {
        // Authorize reaches no actor, so the message type does not matter.
        self.route::<Subscribe>(stream, Reach::Authorize(user)).await.map(|_| ())
    }

    /// Subscribes a connection: replays events after `after_seq`, then live.
    pub async fn subscribe(&self, conn: Conn, stream: StreamId, after_seq: u64) -> ApiResult<AckBody> {
        let actor = self.route::<Subscribe>(stream, Reach::Open(conn.user)).await?.ok_or_else(|| ApiError::not_found("stream"))?;
        actor.send(Subscribe { conn, after_seq }).await.map_err(mailbox_err)?
    }

    /// Drops a subscription (no error if there was none).
    pub async fn unsubscribe(&self, conn_id: u64, stream: StreamId) {
        if let Ok(Some(actor)) = self.route::<Unsubscribe>(stream, Reach::Live).await {
            let _ = actor.send(Unsubscribe { conn_id }).await;
        }
    }

    /// Ends access at `practice` for whoever lost it there: a removed member,
    /// every member of a deleted practice, and any future end of access (a
    /// member's end date, a locum's last day). Call it after the store change
    /// that ends the access.
    ///
    /// Every live stream whose access depends on the practice (its inbox, and
    /// every referral it sent or received) checks its subscribers again by
    /// its one access rule and cuts, with an `access_ended` frame, each who
    /// may no longer see it; this returns once all of them have. A
    /// subscription made from now on is checked against the changed store,
    /// and a delivery re-checks any subscriber last checked before now.
    pub async fn end_access(&self, practice: PracticeId) {
        self.env.revocations.record(practice);
        for stream in self.env.registry.touching(practice) {
            if let Ok(Some(actor)) = self.route::<EndAccess>(stream, Reach::Live).await {
                let _ = actor.send(EndAccess).await;
            }
        }
    }

    /// Runs a state-changing command for `user`. With `audit_from` (the
    /// client address), a referral action ([`crate::audit::action_of`]) is
    /// recorded in the audit log in the action's own commit.
    pub async fn execute(&self, user: UserId, idem: IdemKey, cmd: Command, audit_from: Option<String>) -> ApiResult<(bool, AckBody)> {
        let hash = crate::command_hash(&cmd);
        if let Some(done) = crate::replayed(&*self.env.store, user, idem, &hash).await? {
            return Ok((true, done));
        }
        match cmd {
            Command::SendReferral { referral } => self.create(Creator::Member(user), idem, hash, referral, audit_from).await,
            Command::Subscribe { .. } | Command::Unsubscribe { .. } => {
                Err(ApiError::new(ErrorCode::InvalidBody, "subscribe is not a state change"))
            }
            other => {
                let id = crate::referral::target(&other).ok_or_else(|| ApiError::new(ErrorCode::UnknownCommand, "unknown command"))?;
                let addr = stream::activate::<ReferralStream>(&self.env, id).await?;
                addr.send(Execute { user, idem, hash, cmd: other, redo: 0, audit_from }).await.map_err(mailbox_err)?
            }
        }
    }

    /// Sends a free referral for a verified draft: the same routing, checks
    /// and commit as a member's, with the draft as the idempotency owner.
    pub async fn send_free(&self, draft: DraftId, email: String, idem: IdemKey, referral: NewReferral) -> ApiResult<(bool, AckBody)> {
        let creator = Creator::Free { draft, email };
        let hash = crate::command_hash(&Command::SendReferral { referral: referral.clone() });
        if let Some(done) = crate::replayed(&*self.env.store, creator.owner(), idem, &hash).await? {
            return Ok((true, done));
        }
        self.create(creator, idem, hash, referral, None).await
    }

    async fn create(
        &self,
        creator: Creator,
        idem: IdemKey,
        hash: Vec<u8>,
        referral: NewReferral,
        audit_from: Option<String>,
    ) -> ApiResult<(bool, AckBody)> {
        self.routing.send(Create { creator, idem, hash, referral: Box::new(referral), redo: 0, audit_from }).await.map_err(mailbox_err)?
    }

    /// Delivers persisted events to the actors that own their streams, one
    /// `Deliver` per stream (see [`StreamKind::WAKE_ON_DELIVER`] for a stream
    /// whose actor is not running).
    async fn deliver(&self, events: Vec<StoredEvent>) {
        let mut by_stream: Vec<(StreamId, Vec<StoredEvent>)> = Vec::new();
        for e in events {
            match by_stream.iter_mut().find(|(s, _)| *s == e.stream) {
                Some((_, v)) => v.push(e),
                None => by_stream.push((e.stream, vec![e])),
            }
        }
        for (stream, events) in by_stream {
            if let Ok(Some(actor)) = self.route::<Deliver>(stream, Reach::Deliver).await {
                let _ = actor.send(Deliver { events }).await;
            }
        }
    }
}
