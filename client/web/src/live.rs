//! The live connection: one WebSocket per tab to `/ws?v=1`, authenticated by
//! the session cookie. It subscribes to every stream the tab follows, resumes
//! each from the last seq it saw after a drop (so nothing is missed and
//! nothing repeats), re-sends unanswered commands with their original
//! idempotency keys (so nothing is done twice), and reconnects by itself with
//! backoff. The UI shows its state.
//!
//! Rooms (issue 15): a room's waiting-room screen hosts the room through
//! [`Live::host_room`]; the connection remembers each hosted room with the
//! host's status and hosts it again after every reconnect (a server restart
//! loses the live waiting list; the hosts' and guests' clients rebuild it),
//! handing the fresh `room_joined` list and every room event to
//! [`Live::on_room`]'s callback.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use handoff_protocol::RoomId;
use handoff_protocol::ws::{
    AckBody, ClientFrame, Command, Event, GuestView, HostStatus, HostView, IdemKey, RoomEvent, ServerFrame, StreamId, close,
};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};
use yew::Callback;

use crate::api::{ApiError, ApiResult};

/// Whether the tab is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    /// First connection in progress.
    Connecting,
    /// Connected and subscribed.
    Live,
    /// Dropped; trying again.
    Reconnecting {
        /// How many tries so far.
        attempt: u32,
    },
    /// The server ended the session (expired or signed out elsewhere).
    SessionEnded,
    /// The server ended the session after its idle timeout.
    SessionIdle,
}

/// An event pushed on a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Pushed {
    /// The stream it came on.
    pub stream: StreamId,
    /// Its seq within that stream.
    pub seq: u64,
    /// The event.
    pub event: Event,
    /// True while catching up (replayed from the store), false when live.
    pub replay: bool,
}

/// What the connection hands a room's screen.
#[derive(Clone, Debug, PartialEq)]
pub enum RoomPush {
    /// Hosting (again, after a reconnect): the whole live list as the server has it.
    Joined {
        /// The room.
        room: RoomId,
        /// The guests, waiting or admitted.
        guests: Vec<GuestView>,
        /// The hosts present.
        hosts: Vec<HostView>,
    },
    /// A room event.
    Event {
        /// The room.
        room: RoomId,
        /// The event.
        event: RoomEvent,
    },
}

struct Pending {
    frame: String,
    tx: futures_channel::oneshot::Sender<ApiResult<AckBody>>,
}

#[derive(Default)]
struct StreamState {
    last: u64,
    replaying: bool,
}

struct Inner {
    ws: Option<WebSocket>,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    subs: HashMap<u64, StreamId>,
    streams: BTreeMap<StreamId, StreamState>,
    loading: std::collections::HashSet<StreamId>,
    on_event: Callback<Pushed>,
    on_state: Callback<LiveState>,
    attempt: u32,
    ready: bool,
    stopped: bool,
    rooms: BTreeMap<RoomId, HostStatus>,
    on_room: Option<Callback<RoomPush>>,
}

/// The tab's live connection. Cheap to clone.
#[derive(Clone)]
pub struct Live(Rc<RefCell<Inner>>);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl PartialEq for Live {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// A socket's event handler, kept alive as long as its socket.
pub(crate) type Handler = Closure<dyn FnMut(JsValue)>;

/// Opens a WebSocket at `url` whose text frames go to `on_frame` and whose
/// close (its code; 1006 when the browser gives none) goes to `on_closed`;
/// the handlers must be kept as long as the socket. `None` when the browser
/// refuses the URL. The member socket and the patient's guest socket
/// (`guest.rs`) both open theirs here.
pub(crate) fn open_socket(
    url: &str,
    on_frame: impl Fn(&str) + 'static,
    on_closed: impl Fn(u16) + 'static,
) -> Option<(WebSocket, Vec<Handler>)> {
    let ws = WebSocket::new(url).ok()?;
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if let Some(text) = e.dyn_ref::<MessageEvent>().and_then(|m| m.data().as_string()) {
            on_frame(&text);
        }
    });
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        on_closed(e.dyn_ref::<CloseEvent>().map(CloseEvent::code).unwrap_or(1006));
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    Some((ws, vec![on_message, on_close]))
}

/// The socket's URL on this page's host (`wss:` under https).
pub(crate) fn ws_url() -> String {
    let loc = web_sys::window().map(|w| w.location());
    let host = loc.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
    let secure = loc.and_then(|l| l.protocol().ok()).is_some_and(|p| p == "https:");
    format!("{}://{host}/ws?v=1", if secure { "wss" } else { "ws" })
}

impl Live {
    /// Starts connecting. Events and state changes go to the callbacks.
    pub fn start(on_event: Callback<Pushed>, on_state: Callback<LiveState>) -> Live {
        let live = Live(Rc::new(RefCell::new(Inner {
            ws: None,
            handlers: Vec::new(),
            next_id: 1,
            pending: BTreeMap::new(),
            subs: HashMap::new(),
            streams: BTreeMap::new(),
            loading: std::collections::HashSet::new(),
            on_event,
            on_state,
            attempt: 0,
            ready: false,
            stopped: false,
            rooms: BTreeMap::new(),
            on_room: None,
        })));
        live.connect();
        live
    }

    /// Closes for good (sign-out).
    pub fn stop(&self) {
        let mut i = self.0.borrow_mut();
        i.stopped = true;
        if let Some(ws) = i.ws.take() {
            let _ = ws.close();
        }
        i.handlers.clear();
    }

    fn connect(&self) {
        let (me, again) = (self.clone(), self.clone());
        let Some((ws, handlers)) = open_socket(&ws_url(), move |text| me.on_frame(text), move |code| again.on_closed(code)) else {
            self.schedule_reconnect();
            return;
        };
        let mut i = self.0.borrow_mut();
        i.ws = Some(ws);
        i.handlers = handlers;
    }

    fn on_closed(&self, code: u16) {
        let (stopped, state) = {
            let mut i = self.0.borrow_mut();
            i.ws = None;
            i.ready = false;
            (i.stopped, i.on_state.clone())
        };
        if stopped {
            return;
        }
        if code == close::SESSION_ENDED || code == close::SESSION_IDLE {
            self.0.borrow_mut().stopped = true;
            state.emit(if code == close::SESSION_IDLE { LiveState::SessionIdle } else { LiveState::SessionEnded });
            return;
        }
        self.schedule_reconnect();
    }

    fn schedule_reconnect(&self) {
        let (attempt, state) = {
            let mut i = self.0.borrow_mut();
            i.attempt += 1;
            (i.attempt, i.on_state.clone())
        };
        state.emit(LiveState::Reconnecting { attempt });
        // 0.5 s, 1 s, 2 s ... capped at 15 s, with jitter so a server restart
        // is not met by every tab at the same instant.
        let base = (500u32 << attempt.min(5)).min(15_000);
        let jitter = (js_sys::Math::random() * f64::from(base) * 0.3) as u32;
        let me = self.clone();
        gloo_timers::callback::Timeout::new(base + jitter, move || {
            if !me.0.borrow().stopped {
                // A probe: if the session is gone the upgrade fails with 401,
                // which a browser reports only as a close; /me tells us plainly.
                let me2 = me.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = crate::api::me().await
                        && e.session_ended()
                    {
                        me2.0.borrow_mut().stopped = true;
                        let s = me2.0.borrow().on_state.clone();
                        let idle = e.code == Some(handoff_protocol::ErrorCode::SessionIdle);
                        s.emit(if idle { LiveState::SessionIdle } else { LiveState::SessionEnded });
                        return;
                    }
                    me2.connect();
                });
            }
        })
        .forget();
    }

    fn send_raw(&self, text: &str) {
        if let Some(ws) = &self.0.borrow().ws {
            let _ = ws.send_with_str(text);
        }
    }

    fn send_subscribe(&self, stream: StreamId, after_seq: u64) {
        let text = {
            let mut i = self.0.borrow_mut();
            if !i.ready {
                return;
            }
            let id = i.next_id;
            i.next_id += 1;
            i.subs.insert(id, stream);
            if let Some(s) = i.streams.get_mut(&stream) {
                s.replaying = true;
            }
            serde_json::to_string(&ClientFrame { id, idem: None, cmd: Command::Subscribe { stream, after_seq } }).unwrap_or_default()
        };
        self.send_raw(&text);
    }

    fn on_frame(&self, text: &str) {
        let Ok(frame) = serde_json::from_str::<ServerFrame>(text) else { return };
        match frame {
            ServerFrame::Hello { .. } => {
                let (streams, frames, rooms, state) = {
                    let mut i = self.0.borrow_mut();
                    i.ready = true;
                    i.attempt = 0;
                    i.subs.clear();
                    let streams: Vec<(StreamId, u64)> = i.streams.iter().map(|(s, st)| (*s, st.last)).collect();
                    let frames: Vec<String> = i.pending.values().map(|p| p.frame.clone()).collect();
                    let rooms: Vec<(RoomId, HostStatus)> = i.rooms.iter().map(|(r, s)| (*r, *s)).collect();
                    (streams, frames, rooms, i.on_state.clone())
                };
                state.emit(LiveState::Live);
                for (s, last) in streams {
                    self.send_subscribe(s, last);
                }
                // Unanswered commands go again with the same idempotency key:
                // the server answers a repeat with the first result.
                for f in frames {
                    self.send_raw(&f);
                }
                // The live waiting lists are rebuilt by hosting each room again.
                for (room, status) in rooms {
                    let me = self.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = me.join_room(room, status).await;
                    });
                }
            }
            // A member socket is never a guest's.
            ServerFrame::GuestHello { .. } => {}
            ServerFrame::Room { room, event } => {
                let cb = self.0.borrow().on_room.clone();
                if let Some(cb) = cb {
                    cb.emit(RoomPush::Event { room, event });
                }
            }
            ServerFrame::Ack { id, body, .. } => {
                let sub = self.0.borrow_mut().subs.remove(&id);
                if let Some(stream) = sub {
                    match body {
                        AckBody::Subscribed { head_seq, more, .. } => {
                            if more {
                                self.send_subscribe(stream, head_seq);
                            } else if let Some(s) = self.0.borrow_mut().streams.get_mut(&stream) {
                                s.replaying = false;
                            }
                        }
                        // A subscribe is answered with `subscribed` only; anything else changes nothing.
                        AckBody::Unsubscribed { .. }
                        | AckBody::ReferralSent { .. }
                        | AckBody::Done { .. }
                        | AckBody::RoomJoined { .. }
                        | AckBody::GuestState { .. }
                        | AckBody::RoomDone { .. } => {}
                    }
                    return;
                }
                let p = self.0.borrow_mut().pending.remove(&id);
                if let Some(p) = p {
                    let _ = p.tx.send(Ok(body));
                }
            }
            ServerFrame::Error { id: Some(id), error, message } => {
                let sub = self.0.borrow_mut().subs.remove(&id);
                if let Some(stream) = sub {
                    // Not (or no longer) allowed to follow it: stop asking.
                    self.0.borrow_mut().streams.remove(&stream);
                    return;
                }
                let p = self.0.borrow_mut().pending.remove(&id);
                if let Some(p) = p {
                    let _ = p.tx.send(Err(ApiError::from_body(handoff_protocol::ErrorBody { error, message })));
                }
            }
            ServerFrame::Error { id: None, .. } => {}
            ServerFrame::Event { stream, seq, event } => {
                let (emit, replay) = {
                    let mut i = self.0.borrow_mut();
                    let emit = i.on_event.clone();
                    let Some(s) = i.streams.get_mut(&stream) else { return };
                    if seq <= s.last {
                        return;
                    }
                    s.last = seq;
                    (emit, s.replaying)
                };
                emit.emit(Pushed { stream, seq, event, replay });
            }
        }
    }

    /// Follows a stream from the start (or from where this tab left it).
    pub fn follow(&self, stream: StreamId) {
        self.follow_from(stream, 0);
    }

    /// Whether the connection was closed for good (sign-out, session ended).
    pub fn stopped(&self) -> bool {
        self.0.borrow().stopped
    }

    /// Whether the tab follows `stream` already.
    pub fn follows(&self, stream: StreamId) -> bool {
        self.0.borrow().streams.contains_key(&stream)
    }

    /// Marks `stream` as being loaded (its inbox snapshot is on its way);
    /// false if it is followed or being loaded already, so only one loader
    /// runs per stream. [`Live::follow_from`] or [`Live::loaded`] ends it.
    pub fn begin_load(&self, stream: StreamId) -> bool {
        let mut i = self.0.borrow_mut();
        !i.streams.contains_key(&stream) && i.loading.insert(stream)
    }

    /// The load of `stream` ended without following it (it failed).
    pub fn loaded(&self, stream: StreamId) {
        self.0.borrow_mut().loading.remove(&stream);
    }

    /// Follows a stream from `after_seq` (the head of a snapshot the tab
    /// already holds), unless it follows it already.
    pub fn follow_from(&self, stream: StreamId, after_seq: u64) {
        let fresh = {
            let mut i = self.0.borrow_mut();
            match i.streams.entry(stream) {
                std::collections::btree_map::Entry::Occupied(_) => false,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(StreamState { last: after_seq, replaying: false });
                    true
                }
            }
        };
        self.0.borrow_mut().loading.remove(&stream);
        if fresh {
            self.send_subscribe(stream, after_seq);
        }
    }

    /// Where room pushes go (the open waiting-room screen), or nowhere.
    pub fn on_room(&self, cb: Option<Callback<RoomPush>>) {
        self.0.borrow_mut().on_room = cb;
    }

    async fn join_room(&self, room: RoomId, status: HostStatus) -> ApiResult<()> {
        match self.command(Command::RoomHost { room, status }).await? {
            AckBody::RoomJoined { room, guests, hosts } => {
                let cb = self.0.borrow().on_room.clone();
                if let Some(cb) = cb {
                    cb.emit(RoomPush::Joined { room, guests, hosts });
                }
                Ok(())
            }
            _ => Err(ApiError::local("The server answered hosting a room with something else.")),
        }
    }

    /// Hosts a room with `status`, now and after every reconnect, until [`Live::leave_room`].
    pub async fn host_room(&self, room: RoomId, status: HostStatus) -> ApiResult<()> {
        self.0.borrow_mut().rooms.insert(room, status);
        let out = self.join_room(room, status).await;
        if out.is_err() {
            self.0.borrow_mut().rooms.remove(&room);
        }
        out
    }

    /// Sets my status in a hosted room (kept for reconnects).
    pub async fn set_host_status(&self, room: RoomId, status: HostStatus) -> ApiResult<()> {
        if let Some(s) = self.0.borrow_mut().rooms.get_mut(&room) {
            *s = status;
        }
        self.command(Command::RoomHostStatus { room, status }).await.map(|_| ())
    }

    /// Stops hosting a room.
    pub async fn leave_room(&self, room: RoomId) -> ApiResult<()> {
        self.0.borrow_mut().rooms.remove(&room);
        self.command(Command::RoomLeave { room }).await.map(|_| ())
    }

    /// Forgets a room without telling the server (it ended, or was deleted).
    pub fn forget_room(&self, room: RoomId) {
        self.0.borrow_mut().rooms.remove(&room);
    }

    /// Sends a command and waits for its answer. Commands that change state
    /// carry a fresh idempotency key, kept across reconnects.
    pub async fn command(&self, cmd: Command) -> ApiResult<AckBody> {
        let idem = if cmd.mutates() { Some(IdemKey(crate::session::new_uuid()?)) } else { None };
        let (tx, rx) = futures_channel::oneshot::channel();
        let (frame, ready) = {
            let mut i = self.0.borrow_mut();
            if i.stopped {
                return Err(ApiError::local("Your session has ended. Please sign in again."));
            }
            let id = i.next_id;
            i.next_id += 1;
            let frame = serde_json::to_string(&ClientFrame { id, idem, cmd }).map_err(|e| ApiError::local(e.to_string()))?;
            i.pending.insert(id, Pending { frame: frame.clone(), tx });
            (frame, i.ready)
        };
        if ready {
            self.send_raw(&frame);
        }
        rx.await.map_err(|_| ApiError::local("The connection closed before Handoff answered."))?
    }
}
