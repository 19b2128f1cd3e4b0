//! The RoomActor: one actor per live waiting room (issue 15).
//!
//! It is activated on demand (a host's `room_host`, a guest's
//! `guest_check_in`) and passivates itself as soon as no host and no guest is
//! connected. Its state is live only: the waiting list, each guest's state and
//! its sealed check-in, the hosts and their statuses. What must outlive it is
//! in the store (the room, and per guest its check-in time and removal), so
//! after a restart the clients check in again and the list is ordered by the
//! stored check-in times, not by who reconnected first.
//!
//! Fan-out: host events go to every host socket of the room, guest events
//! only to that guest's own socket. A waiting guest never receives an
//! admission or a signal, and the server sees only ids, sizes and times: every
//! payload is sealed by the clients and relayed unread.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use dashmap::DashMap;

use handoff_protocol::ws::{
    AckBody, Command, GuestState, GuestView, HostStatus, HostView, MAX_ADMISSION, MAX_CHECK_IN, MAX_ROOM_MESSAGE, MAX_SIGNAL, RoomEvent,
    ServerFrame, close,
};
use handoff_protocol::{B64, ErrorCode, GuestId, RoomId, UnixMillis, UserId};
use handoff_store::Store;

use crate::conn::{Conn, Frame};
use crate::{ApiError, ApiResult, now_millis};

/// The live room actors, by room.
#[derive(Default)]
pub(crate) struct RoomRegistry {
    live: DashMap<RoomId, Addr<RoomActor>>,
}

impl RoomRegistry {
    /// The room's actor if it is running.
    pub(crate) fn live(&self, room: RoomId) -> Option<Addr<RoomActor>> {
        self.live.get(&room).map(|a| a.clone()).filter(Addr::connected)
    }

    /// The room's running actor, or a new one started on `arbiter`.
    pub(crate) fn live_or_start(self: &Arc<Self>, room: RoomId, store: Arc<dyn Store>, arbiter: &ArbiterHandle) -> Addr<RoomActor> {
        let mut entry = self.live.entry(room).or_insert_with(|| start(room, store.clone(), self.clone(), arbiter));
        if !entry.connected() {
            *entry = start(room, store, self.clone(), arbiter);
        }
        entry.clone()
    }

    /// How many rooms are live.
    pub(crate) fn count(&self) -> usize {
        self.live.len()
    }

    fn forget(&self, room: RoomId, addr: &Addr<RoomActor>) {
        self.live.remove_if(&room, |_, a| a == addr);
    }

    /// Forgets every actor (at shutdown).
    pub(crate) fn clear(&self) {
        self.live.clear();
    }
}

fn start(room: RoomId, store: Arc<dyn Store>, registry: Arc<RoomRegistry>, arbiter: &ArbiterHandle) -> Addr<RoomActor> {
    RoomActor::start_in_arbiter(arbiter, move |_| RoomActor {
        room,
        store,
        registry,
        hosts: Vec::new(),
        guests: BTreeMap::new(),
        removed: Vec::new(),
    })
}

/// A host socket.
struct Host {
    conn: Conn,
    status: HostStatus,
}

/// A guest present in the room.
struct Guest {
    conn: Conn,
    sealed: B64,
    checked_in_at: UnixMillis,
    state: GuestState,
    host: Option<UserId>,
}

/// One live room.
pub(crate) struct RoomActor {
    room: RoomId,
    store: Arc<dyn Store>,
    registry: Arc<RoomRegistry>,
    hosts: Vec<Host>,
    guests: BTreeMap<GuestId, Guest>,
    /// Guests removed while this actor ran (their tokens are dead in the store too).
    removed: Vec<GuestId>,
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registry.forget(self.room, &ctx.address());
    }
}

/// A host command from a member socket whose access the hub has checked.
#[derive(Message)]
#[rtype(result = "ApiResult<AckBody>")]
pub(crate) struct HostCommand {
    pub conn: Conn,
    pub cmd: Command,
}

/// A guest command from the guest's own socket.
#[derive(Message)]
#[rtype(result = "ApiResult<AckBody>")]
pub(crate) struct GuestCommand {
    pub conn: Conn,
    pub guest: GuestId,
    pub checked_in_at: UnixMillis,
    pub cmd: Command,
}

/// A socket closed: it hosts no more, or its guest has left.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Disconnected {
    pub conn_id: u64,
}

/// The room was deleted: everyone is told it ended.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EndRoom;

fn frame(room: RoomId, event: RoomEvent) -> Frame {
    serde_json::to_string(&ServerFrame::Room { room, event })
        .unwrap_or_else(|_| r#"{"type":"error","id":null,"error":"internal","message":"encoding"}"#.into())
        .into()
}

fn too_big(what: &str, len: usize, max: usize) -> ApiResult<()> {
    if len > max {
        Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("the sealed {what} is {len} bytes; at most {max}")))
    } else {
        Ok(())
    }
}

fn gone() -> ApiError {
    ApiError::new(ErrorCode::GuestGone, "that guest has left the room")
}

impl RoomActor {
    fn to_hosts(&self, event: RoomEvent) {
        let f = frame(self.room, event);
        for h in &self.hosts {
            h.conn.push(f.clone());
        }
    }

    fn to_guest(&self, guest: GuestId, event: RoomEvent) {
        if let Some(g) = self.guests.get(&guest) {
            g.conn.push(frame(self.room, event));
        }
    }

    fn statuses(&self) -> Vec<HostStatus> {
        let mut seen: Vec<UserId> = Vec::new();
        let mut out = Vec::new();
        for h in &self.hosts {
            if !seen.contains(&h.conn.user) {
                seen.push(h.conn.user);
                out.push(h.status);
            }
        }
        out
    }

    fn host_views(&self) -> Vec<HostView> {
        let mut out: Vec<HostView> = Vec::new();
        for h in &self.hosts {
            if !out.iter().any(|v| v.user == h.conn.user) {
                out.push(HostView { user: h.conn.user, status: h.status });
            }
        }
        out
    }

    /// The guests present, in check-in order.
    fn guest_views(&self) -> Vec<GuestView> {
        let mut v: Vec<GuestView> = self
            .guests
            .iter()
            .map(|(id, g)| GuestView { guest: *id, sealed: g.sealed.clone(), checked_in_at: g.checked_in_at, state: g.state, host: g.host })
            .collect();
        v.sort_by_key(|g| (g.checked_in_at, g.guest));
        v
    }

    /// Tells every guest its state and the hosts' statuses.
    fn tell_states(&self) {
        let hosts = self.statuses();
        for (id, g) in &self.guests {
            self.to_guest(*id, RoomEvent::State { state: g.state, hosts: hosts.clone() });
        }
    }

    fn is_host(&self, user: UserId) -> bool {
        self.hosts.iter().any(|h| h.conn.user == user)
    }

    /// A guest present and not gone, for a host command.
    fn present(&self, guest: GuestId) -> ApiResult<&Guest> {
        self.guests.get(&guest).filter(|g| matches!(g.state, GuestState::Waiting | GuestState::Admitted)).ok_or_else(gone)
    }

    fn set_state(&mut self, guest: GuestId, state: GuestState, host: Option<UserId>) {
        if let Some(g) = self.guests.get_mut(&guest) {
            g.state = state;
            g.host = host;
        }
        self.to_hosts(RoomEvent::GuestState { guest, state, host });
    }

    /// A host socket goes: when the last host has gone, the admitted guests' visits end.
    fn drop_host(&mut self, conn_id: u64) {
        let Some(i) = self.hosts.iter().position(|h| h.conn.id == conn_id) else { return };
        let user = self.hosts.remove(i).conn.user;
        if !self.is_host(user) {
            self.to_hosts(RoomEvent::HostLeft { user });
        }
        if self.hosts.is_empty() {
            let admitted: Vec<GuestId> = self.guests.iter().filter(|(_, g)| g.state == GuestState::Admitted).map(|(id, _)| *id).collect();
            for id in admitted {
                self.to_guest(id, RoomEvent::Ended {});
                self.guests.remove(&id);
            }
        }
        self.tell_states();
    }

    /// A guest leaves the live list (its socket closed, or it left).
    fn drop_guest(&mut self, guest: GuestId) {
        if self.guests.remove(&guest).is_some() {
            self.to_hosts(RoomEvent::GuestState { guest, state: GuestState::Left, host: None });
        }
    }

    fn passivate_if_empty(&self, ctx: &mut Context<Self>) {
        if self.hosts.is_empty() && self.guests.is_empty() {
            ctx.stop();
        }
    }

    fn host_command(&mut self, conn: Conn, cmd: Command) -> ApiResult<AckBody> {
        let room = self.room;
        let user = conn.user;
        let done = Ok(AckBody::RoomDone { room });
        let hosting = self.hosts.iter().any(|h| h.conn.id == conn.id);
        if !hosting && !matches!(cmd, Command::RoomHost { .. }) {
            return Err(ApiError::new(ErrorCode::Conflict, "host the room first (room_host)"));
        }
        match cmd {
            Command::RoomHost { status, .. } => {
                let first_of_user = !self.is_host(user);
                match self.hosts.iter_mut().find(|h| h.conn.id == conn.id) {
                    Some(h) => h.status = status,
                    None => self.hosts.push(Host { conn, status }),
                }
                if first_of_user {
                    self.to_hosts(RoomEvent::HostJoined { user, status });
                }
                self.tell_states();
                Ok(AckBody::RoomJoined { room, guests: self.guest_views(), hosts: self.host_views() })
            }
            Command::RoomHostStatus { status, .. } => {
                for h in self.hosts.iter_mut().filter(|h| h.conn.user == user) {
                    h.status = status;
                }
                self.to_hosts(RoomEvent::HostStatus { user, status });
                self.tell_states();
                done
            }
            Command::RoomLeave { .. } => {
                self.drop_host(conn.id);
                done
            }
            Command::RoomAdmit { guest, sealed_admission, .. } => {
                too_big("admission", sealed_admission.0.len(), MAX_ADMISSION)?;
                if self.present(guest)?.state != GuestState::Waiting {
                    return Err(ApiError::new(ErrorCode::Conflict, "that guest is admitted already"));
                }
                self.to_guest(guest, RoomEvent::Admitted { sealed_admission });
                self.set_state(guest, GuestState::Admitted, Some(user));
                done
            }
            Command::RoomReturn { guest, .. } => {
                if self.present(guest)?.state != GuestState::Admitted {
                    return Err(ApiError::new(ErrorCode::Conflict, "that guest is waiting already"));
                }
                self.to_guest(guest, RoomEvent::Returned {});
                self.set_state(guest, GuestState::Waiting, None);
                done
            }
            Command::RoomRemove { guest, .. } => {
                self.present(guest)?;
                if let Some(g) = self.guests.remove(&guest) {
                    g.conn.push(frame(room, RoomEvent::Removed {}));
                    g.conn.kill(close::GUEST_REMOVED);
                }
                self.to_hosts(RoomEvent::GuestState { guest, state: GuestState::Removed, host: None });
                done
            }
            Command::RoomHandOver { guest, to, .. } => {
                let state = self.present(guest)?.state;
                if !self.is_host(to) {
                    return Err(ApiError::new(ErrorCode::NotFound, "that user is not hosting this room"));
                }
                self.set_state(guest, state, Some(to));
                done
            }
            Command::RoomMessage { sealed, .. } => {
                too_big("message", sealed.0.len(), MAX_ROOM_MESSAGE)?;
                let at = now_millis();
                let f = frame(room, RoomEvent::Message { sealed, at });
                for h in &self.hosts {
                    h.conn.push(f.clone());
                }
                for g in self.guests.values().filter(|g| g.state == GuestState::Waiting) {
                    g.conn.push(f.clone());
                }
                done
            }
            Command::RoomEnd { .. } => {
                self.end();
                done
            }
            Command::RoomSignal { guest, sealed, .. } => {
                too_big("signal", sealed.0.len(), MAX_SIGNAL)?;
                let g = self.present(guest)?;
                if g.state != GuestState::Admitted || g.host != Some(user) {
                    return Err(ApiError::new(ErrorCode::Forbidden, "signal only a guest you admitted"));
                }
                self.to_guest(guest, RoomEvent::Signal { guest, sealed });
                done
            }
            _ => Err(ApiError::new(ErrorCode::Forbidden, "not a host command")),
        }
    }

    fn guest_command(&mut self, conn: Conn, guest: GuestId, checked_in_at: UnixMillis, cmd: Command) -> ApiResult<AckBody> {
        let room = self.room;
        match cmd {
            Command::GuestCheckIn { sealed } => {
                too_big("check-in", sealed.0.len(), MAX_CHECK_IN)?;
                let state = match self.guests.get_mut(&guest) {
                    Some(g) => {
                        g.conn = conn;
                        g.sealed = sealed.clone();
                        g.state
                    }
                    None => {
                        self.guests
                            .insert(guest, Guest { conn, sealed: sealed.clone(), checked_in_at, state: GuestState::Waiting, host: None });
                        GuestState::Waiting
                    }
                };
                self.to_hosts(RoomEvent::GuestWaiting { guest, sealed, checked_in_at });
                Ok(AckBody::GuestState { state, hosts: self.statuses() })
            }
            Command::GuestSignal { sealed } => {
                too_big("signal", sealed.0.len(), MAX_SIGNAL)?;
                let g = self
                    .guests
                    .get(&guest)
                    .filter(|g| g.conn.id == conn.id)
                    .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "check in first"))?;
                let host = match (g.state, g.host) {
                    (GuestState::Admitted, Some(host)) => host,
                    _ => return Err(ApiError::new(ErrorCode::Forbidden, "only an admitted guest signals")),
                };
                let f = frame(room, RoomEvent::Signal { guest, sealed });
                for h in self.hosts.iter().filter(|h| h.conn.user == host) {
                    h.conn.push(f.clone());
                }
                Ok(AckBody::RoomDone { room })
            }
            Command::GuestLeave {} => {
                self.drop_guest(guest);
                Ok(AckBody::RoomDone { room })
            }
            _ => Err(ApiError::new(ErrorCode::Forbidden, "a guest socket accepts only guest commands")),
        }
    }

    /// Ends the meeting for everyone: every guest and host is told, and the room empties.
    fn end(&mut self) {
        for g in self.guests.values() {
            g.conn.push(frame(self.room, RoomEvent::Ended {}));
        }
        self.to_hosts(RoomEvent::Ended {});
        self.guests.clear();
        self.hosts.clear();
    }
}

/// Persists a guest's end (removed, or left: its token dies), then answers:
/// the change is on disk before it is acknowledged.
fn persist_then(store: Arc<dyn Store>, dead: Option<GuestId>, r: ApiResult<AckBody>) -> ResponseFuture<ApiResult<AckBody>> {
    Box::pin(async move {
        if let (Some(guest), Ok(_)) = (dead, &r) {
            store.remove_guest(guest).await?;
        }
        r
    })
}

impl Handler<HostCommand> for RoomActor {
    type Result = ResponseFuture<ApiResult<AckBody>>;

    fn handle(&mut self, m: HostCommand, ctx: &mut Self::Context) -> Self::Result {
        let dead = match m.cmd {
            Command::RoomRemove { guest, .. } => Some(guest),
            _ => None,
        };
        if let Some(guest) = dead {
            self.removed.push(guest);
        }
        let r = self.host_command(m.conn, m.cmd);
        self.passivate_if_empty(ctx);
        persist_then(self.store.clone(), dead, r)
    }
}

impl Handler<GuestCommand> for RoomActor {
    type Result = ResponseFuture<ApiResult<AckBody>>;

    fn handle(&mut self, m: GuestCommand, ctx: &mut Self::Context) -> Self::Result {
        // A guest who leaves is gone for good: its token dies too.
        let dead = matches!(m.cmd, Command::GuestLeave {}).then_some(m.guest);
        let r = if self.removed.contains(&m.guest) {
            Err(ApiError::new(ErrorCode::GuestRemoved, "a host removed you from this waiting room"))
        } else {
            self.guest_command(m.conn, m.guest, m.checked_in_at, m.cmd)
        };
        self.passivate_if_empty(ctx);
        persist_then(self.store.clone(), dead, r)
    }
}

impl Handler<Disconnected> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Disconnected, ctx: &mut Self::Context) {
        self.drop_host(m.conn_id);
        let left: Vec<GuestId> = self.guests.iter().filter(|(_, g)| g.conn.id == m.conn_id).map(|(id, _)| *id).collect();
        for g in left {
            self.drop_guest(g);
        }
        self.passivate_if_empty(ctx);
    }
}

impl Handler<EndRoom> for RoomActor {
    type Result = ();

    fn handle(&mut self, _: EndRoom, ctx: &mut Self::Context) {
        self.end();
        ctx.stop();
    }
}
