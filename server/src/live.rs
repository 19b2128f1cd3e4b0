//! `GET /ws`: the live endpoint (protocol in `handoff_protocol::ws`).
//!
//! **The upgrade.** actix-http hands every `Connection: Upgrade` request,
//! with its TCP socket, to [`upgrade`] (registered in `app.rs`), not to the
//! App. [`upgrade`] authenticates the request, checks its origin and protocol
//! version, answers `101` itself, and runs the socket with tokio-tungstenite
//! inside the connection's own task. The HTTP/1 dispatcher, with its 8 KiB read
//! and 8 KiB write buffers, is gone once the socket is upgraded, and there is
//! no second task or channel per socket (BENCHMARKS.md §3 has the figures).
//! Refusals are the same JSON errors as anywhere else (401, 403, 400, 404, 422).
//! A plain `GET /ws` without the upgrade headers reaches the App's [`ws`],
//! which makes the same checks and answers 422 `invalid_body`.
//!
//! **The socket.** One loop per socket reads frames, runs each command as its
//! own local task (room commands, and every command of a guest socket, run in
//! arrival order on one queue instead; at most [`IN_FLIGHT`] at once; beyond that the socket is not
//! read, which pushes back on the client through TCP), and writes queued
//! frames. Writes that stall for [`WRITE_TIMEOUT`], or an outgoing queue that
//! fills, close the socket as a slow consumer; a peer that misses pongs for
//! [`PONG_TIMEOUT`] is closed as dead; an expired session is closed with 4001.
//!
//! **Sessions.** Each socket is registered under its session
//! ([`crate::sessions::Sessions::register`]): ending the session kills the
//! connection, and the loop closes it with 4001 at once. The loop also sleeps
//! until its session's idle deadline and, if no activity moved it, ends the
//! session and closes with 4002. A command other than `subscribe`/`unsubscribe` is
//! activity; the upgrade, pings and resumes are not.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_codec::Framed;
use actix_http::{Request, h1};
use actix_web::http::header::HeaderMap;
use actix_web::rt::net::TcpStream;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _, web};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes, handshake::derive_accept_key};

use handoff_actors::conn::{Conn, Frame, Outgoing};
use handoff_actors::fanout::is_event_frame;
use handoff_actors::hub::Hub;
use handoff_actors::metrics::Metrics;
use handoff_protocol::api::WS_PATH;
use handoff_protocol::ws::{AckBody, Command, MAX_FRAME, PROTOCOL_VERSION, ServerFrame, StreamId, WsQuery, close};
use handoff_protocol::{ErrorBody, ErrorCode, GuestId, RoomId, UnixMillis, UserId};
use handoff_store::Store;

use crate::auth::{self, Authed};
use crate::error::{ApiError, ApiResult};
use crate::origin;
use crate::sessions::Sessions;
use crate::state::{AppState, now};

/// Commands running at once per socket.
pub const IN_FLIGHT: usize = 64;
/// A write that takes longer than this marks a slow consumer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ping interval.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// No pong for this long closes the socket.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(45);
/// How often an open socket re-checks that its session is still valid.
pub const SESSION_CHECK: Duration = Duration::from_secs(60);
/// Bytes read from a socket per system call. The read buffer starts at this
/// size and grows only for a frame that needs more (up to [`MAX_FRAME`]).
pub const READ_BUFFER: usize = 4096;

/// How many WebSockets each user has open, so that no user opens more than
/// `ws_sockets_per_user` (each costs a task, buffers and an outgoing queue).
#[derive(Debug, Default)]
pub struct Sockets {
    open: Mutex<HashMap<UserId, usize>>,
}

/// One open socket's place in [`Sockets`]; dropping it frees the place.
#[derive(Debug)]
pub struct SocketSlot {
    sockets: Arc<Sockets>,
    user: UserId,
}

impl Sockets {
    /// A place for one more socket of `user`, or `None` if they have `cap` open.
    pub fn take(self: &Arc<Self>, user: UserId, cap: usize) -> Option<SocketSlot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(user).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(SocketSlot { sockets: self.clone(), user })
    }

    /// Sockets `user` has open.
    pub fn open(&self, user: UserId) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&user).copied().unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = self.sockets.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// The checks every `GET /ws` passes after authentication: origin, then query and version.
/// The origin rule is [`origin::same_origin`], the one every state-changing
/// HTTP request passes too.
fn check(headers: &HeaderMap, public_url: &str, query: &str) -> ApiResult<()> {
    if !origin::same_origin(headers, public_url) {
        return Err(ApiError::forbidden("WebSocket connections must come from this server's own pages"));
    }
    let q = web::Query::<WsQuery>::from_query(query).map_err(ApiError::invalid_query)?;
    if let Some(v) = q.v
        && v != PROTOCOL_VERSION
    {
        return Err(ApiError::new(ErrorCode::UnsupportedVersion, format!("this server speaks protocol {PROTOCOL_VERSION}")));
    }
    Ok(())
}

/// `GET /ws` that reached the App: it is not an upgrade (the upgrades go to
/// [`upgrade`]). After the same checks, 422 `invalid_body`.
pub async fn ws(state: web::Data<AppState>, req: HttpRequest, _who: Authed) -> ApiResult<HttpResponse> {
    check(req.headers(), &state.config.public_url(), req.query_string())?;
    Err(ApiError::new(ErrorCode::InvalidBody, "GET /ws must be a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)"))
}

/// The WebSocket handshake fields of an upgrade request: its `Sec-WebSocket-Key`.
fn handshake_key(req: &Request) -> ApiResult<String> {
    let h = req.headers();
    let has = |name: &str, token: &str| {
        h.get_all(name).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let bad = |why: &str| Err(ApiError::new(ErrorCode::InvalidBody, format!("not a WebSocket handshake: {why}")));
    if req.method() != actix_web::http::Method::GET {
        return bad("the method must be GET");
    }
    if !has("upgrade", "websocket") {
        return bad("Upgrade must be websocket");
    }
    if !has("sec-websocket-version", "13") {
        return bad("Sec-WebSocket-Version must be 13");
    }
    match h.get("sec-websocket-key").and_then(|k| k.to_str().ok()) {
        Some(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
        _ => bad("Sec-WebSocket-Key is missing"),
    }
}

async fn accept(state: &AppState, req: &Request) -> ApiResult<(Authed, String, SocketSlot)> {
    if req.path() != WS_PATH {
        return Err(ApiError::no_route());
    }
    let who = auth::authenticate(state, &auth::token_from(req.headers())?).await?;
    check(req.headers(), &state.config.public_url(), req.uri().query().unwrap_or(""))?;
    let key = handshake_key(req)?;
    let cap = state.config.ws_sockets_per_user;
    let slot = state.sockets.take(who.user.id, cap).ok_or_else(|| {
        ApiError::new(ErrorCode::TooManySockets, format!("you have {cap} live connections open, the most one account may; close one first"))
    })?;
    Ok((who, key, slot))
}

/// Writes a refusal as the usual JSON error and closes the connection.
async fn refuse(io: &mut TcpStream, e: ApiError) {
    let status = e.status_code();
    let body = serde_json::to_vec(&ErrorBody { error: e.code, message: e.message }).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncache-control: no-store\r\n\
         x-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(&body).await?;
        io.shutdown().await
    })
    .await;
}

/// The socket's limits: whole messages and frames up to [`MAX_FRAME`], and no
/// write buffering inside tungstenite (each frame goes to the socket as it is
/// fed; the socket loop flushes once per batch, under the write timeout).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// The upgrade service: every `Connection: Upgrade` request comes here with
/// its socket (see the module docs). Runs the socket to its end.
///
/// This future lives as long as the socket, inside the connection's task, so
/// it keeps only what the socket loop uses: the handshake runs in its own
/// boxed future, freed when it is done, and the user's record is dropped once
/// its id is known.
pub async fn upgrade(state: AppState, req: Request, framed: Framed<TcpStream, h1::Codec>) -> Result<(), actix_web::Error> {
    let Some((conn, out, peer, ws, slot)) = Box::pin(handshake(&state, req, framed)).await else {
        return Ok(());
    };
    let (hub, metrics) = (state.hub.clone(), state.metrics.clone());
    let registered = match &peer {
        Peer::Member(session) => Some(state.sessions.register(&session.token_hash, conn.clone())),
        Peer::Guest(_) => None,
    };
    drop(state);
    let open = metrics.socket_opened();
    match peer {
        Peer::Member(session) => run(hub, &metrics, Rc::new(session), conn, out, ws).await,
        Peer::Guest(guest) => run_guest(hub, &metrics, guest, conn, out, ws).await,
    }
    drop((open, slot, registered));
    Ok(())
}

/// Who a socket is: a signed-in member's session, or a waiting-room guest.
enum Peer {
    /// A session's socket: streams and host commands.
    Member(SocketSession),
    /// A guest token's socket: that guest's room, guest commands only.
    Guest(GuestPeer),
}

/// A guest socket's token and what the store holds for it.
struct GuestPeer {
    store: Arc<dyn Store>,
    token_hash: [u8; 32],
    guest: handoff_store::GuestRecord,
}

/// The guest behind a `?guest=` token: `unauthenticated` for an unknown or
/// expired token (or a deleted room), `guest_removed` for a removed guest.
async fn guest_of(store: &dyn Store, token: &str) -> ApiResult<([u8; 32], handoff_store::GuestRecord)> {
    let hash: [u8; 32] = crate::state::sha256(token.as_bytes()).try_into().map_err(|_| ApiError::internal("sha-256 is 32 bytes"))?;
    let unknown = || ApiError::new(ErrorCode::Unauthenticated, "this guest link has expired or is unknown; check in again");
    let g = store.guest_by_token(hash).await?.ok_or_else(unknown)?;
    if g.removed {
        return Err(ApiError::new(ErrorCode::GuestRemoved, "a host removed you from this waiting room"));
    }
    if g.expires_at <= now() {
        return Err(unknown());
    }
    Ok((hash, g))
}

/// The guest token of an upgrade's query, if it has one.
fn guest_token(req: &Request) -> Option<String> {
    web::Query::<WsQuery>::from_query(req.uri().query().unwrap_or("")).ok().and_then(|q| q.into_inner().guest)
}

async fn accept_guest(state: &AppState, req: &Request, token: &str) -> ApiResult<(GuestPeer, String)> {
    if req.path() != WS_PATH {
        return Err(ApiError::no_route());
    }
    let (token_hash, guest) = guest_of(&*state.store, token).await?;
    check(req.headers(), &state.config.public_url(), req.uri().query().unwrap_or(""))?;
    let key = handshake_key(req)?;
    Ok((GuestPeer { store: state.store.clone(), token_hash, guest }, key))
}

/// The session a socket is signed in with, and what the socket needs to keep track of its activity.
struct SocketSession {
    store: Arc<dyn Store>,
    sessions: Arc<Sessions>,
    token_hash: Vec<u8>,
    /// `last_seen_at` as stored when the socket opened.
    stored_seen: UnixMillis,
    /// The client address the audit log records for this socket's first opens (as the rate limits see it).
    address: Arc<str>,
}

impl SocketSession {
    /// Records a command as activity, writing it through when due.
    async fn activity(&self) {
        if let Some(at) = self.sessions.touch(&self.token_hash, self.stored_seen, now())
            && let Err(e) = self.store.touch_session(&self.token_hash, at).await
        {
            tracing::warn!(error = %e, "recording a session's activity failed");
        }
    }

    /// When the session goes idle, as far as this process knows.
    fn idle_at(&self) -> UnixMillis {
        self.sessions.idle_at(&self.token_hash, self.stored_seen)
    }
}

/// The instant `at` (Unix milliseconds) falls on, or now if it has passed.
fn instant_of(at: UnixMillis) -> tokio::time::Instant {
    let wait = u64::try_from(at.saturating_sub(now())).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(wait)
}

/// Accepts or refuses the upgrade; on success, the socket's queue and stream.
async fn handshake(
    state: &AppState,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Option<(Conn, Outgoing, Peer, Ws, Option<SocketSlot>)> {
    let parts = framed.into_parts();
    let mut io = parts.io;
    // Whatever the client sent after the request head (nothing, from a client
    // that waits for 101 as it must). The HTTP/1 buffers go now.
    let early = parts.read_buf.to_vec();
    drop((parts.read_buf, parts.write_buf));
    // A guest token makes the socket that guest's, whatever session comes with it.
    if let Some(token) = guest_token(&req) {
        let (guest, key) = match accept_guest(state, &req, &token).await {
            Ok(ok) => ok,
            Err(e) => {
                refuse(&mut io, e).await;
                return None;
            }
        };
        drop(req);
        let ws = switch(io, early, &key).await?;
        let (conn, out) = Conn::bounded(UserId::NIL, state.config.ws_outgoing_buffer, state.config.ws_outgoing_bytes);
        return Some((conn, out, Peer::Guest(guest), ws, None));
    }
    let (Authed { user, token_hash, last_seen_at }, key, slot) = match accept(state, &req).await {
        Ok(ok) => ok,
        Err(e) => {
            refuse(&mut io, e).await;
            return None;
        }
    };
    // The client address the audit log records for this socket's first opens (as the rate limits see it).
    let forwarded: Vec<String> =
        req.headers().get_all("x-forwarded-for").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let address: Arc<str> =
        crate::ratelimit::client_ip(req.peer_addr().map(|a| a.ip()), &forwarded, state.config.trusted_proxy_hops).to_string().into();
    drop(req);
    let ws = switch(io, early, &key).await?;
    let (conn, out) = Conn::bounded(user.id, state.config.ws_outgoing_buffer, state.config.ws_outgoing_bytes);
    let session =
        SocketSession { store: state.store.clone(), sessions: state.sessions.clone(), token_hash, stored_seen: last_seen_at, address };
    Some((conn, out, Peer::Member(session), ws, Some(slot)))
}

/// Answers 101 and turns the connection into a WebSocket.
async fn switch(mut io: TcpStream, early: Vec<u8>, key: &str) -> Option<Ws> {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if !matches!(tokio::time::timeout(WRITE_TIMEOUT, io.write_all(head.as_bytes())).await, Ok(Ok(()))) {
        return None;
    }
    Some(WebSocketStream::from_partially_read(io, early, Role::Server, Some(ws_config())).await)
}

fn json(frame: &ServerFrame) -> Frame {
    serde_json::to_string(frame).unwrap_or_else(|_| r#"{"type":"error","id":null,"error":"internal","message":"encoding"}"#.into()).into()
}

fn error_frame(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Frame {
    json(&ServerFrame::Error { id, error: code, message: message.into() })
}

async fn handle_text(
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    session: Rc<SocketSession>,
    conn: Conn,
    subs: Rc<RefCell<HashSet<StreamId>>>,
    rooms: Rc<RefCell<HashSet<RoomId>>>,
    text: Utf8Bytes,
) {
    let frame = match handoff_protocol::ws::parse_client_frame(text.as_str()) {
        Ok(f) => f,
        Err((id, code, msg)) => {
            metrics.command(crate::metrics::undecoded_command_label(text.as_str()), code.as_str());
            conn.push(error_frame(id, code, msg));
            return;
        }
    };
    let id = frame.id;
    let command = crate::metrics::command_label(&frame.cmd);
    let result = match frame.cmd {
        Command::Subscribe { stream, after_seq } => {
            let r = hub.subscribe(conn.clone(), stream, after_seq).await;
            if r.is_ok() {
                subs.borrow_mut().insert(stream);
                if let StreamId::Referral(referral) = stream {
                    first_open(&*session.store, &session.address, conn.user, referral).await;
                }
            }
            r.map(|b| (false, b))
        }
        Command::Unsubscribe { stream } => {
            hub.unsubscribe(conn.id, stream).await;
            subs.borrow_mut().remove(&stream);
            Ok((false, AckBody::Unsubscribed { stream }))
        }
        cmd if cmd.is_guest() => Err(ApiError::forbidden("guest commands come from a guest socket (/ws?guest=)")),
        cmd if let Some(room) = cmd.room() => {
            let hosting = matches!(cmd, Command::RoomHost { .. });
            let r = hub.room_command(conn.clone(), cmd).await;
            if hosting && r.is_ok() {
                rooms.borrow_mut().insert(room);
            }
            r.map(|b| (false, b))
        }
        cmd => match frame.idem {
            None => Err(ApiError::new(ErrorCode::MissingIdempotencyKey, "commands that change state need an idem key")),
            Some(key) => {
                // A command is the user's activity; subscribing (a resume) is not.
                session.activity().await;
                let opened = match &cmd {
                    Command::MarkOpened { referral } => Some(*referral),
                    _ => None,
                };
                // A referral action (`handoff_actors::audit::action_of`) is recorded in the audit log in its own commit.
                let r = hub.execute(conn.user, key, cmd, Some(session.address.to_string())).await;
                // A receiver's client marks the referral opened when it first shows it: a first open too.
                // A repeat (the same idem key) did nothing new: nothing more to record.
                if let (Ok((false, _)), Some(referral)) = (&r, opened) {
                    first_open(&*session.store, &session.address, conn.user, referral).await;
                }
                r
            }
        },
    };
    metrics.command(command, result.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"));
    let out = match result {
        Ok((duplicate, body)) => json(&ServerFrame::Ack { id, duplicate, body }),
        Err(e) => error_frame(Some(id), e.code, e.message),
    };
    conn.push(out);
}

/// Records a member's first open of a referral (`audit::record_first_open`)
/// after a subscription to its stream or a `mark_opened` the hub allowed. The
/// command stands either way; a failure to record is logged as an error.
async fn first_open(store: &dyn Store, address: &str, user: UserId, referral: handoff_protocol::ws::ReferralId) {
    let recorded = async {
        match store.referral(referral).await? {
            Some(rec) => crate::audit::record_first_open(store, Some(address.to_string()), user, &rec).await,
            None => Ok(()),
        }
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e.message, "could not record a referral's first open in the audit log");
    }
}

type Ws = WebSocketStream<TcpStream>;

/// A text message sharing the frame's bytes (the frame is UTF-8 by construction; checking is cheap).
fn text(frame: Frame) -> Message {
    Message::Text(Utf8Bytes::try_from(frame.into_bytes()).unwrap_or_else(|_| Utf8Bytes::from_static("")))
}

/// Feeds one frame to the socket, counting it if it is a stream event.
async fn feed(sink: &mut futures_util::stream::SplitSink<Ws, Message>, metrics: &Metrics, frame: Frame) -> Result<(), WsError> {
    let event = is_event_frame(&frame);
    sink.feed(text(frame)).await?;
    if event {
        metrics.events_pushed(1);
    }
    Ok(())
}

/// Whether a client frame is a room command, which a member socket runs in
/// arrival order on one queue (other commands run concurrently): the built-in
/// call's signals carry counters, and a reordered one is dropped by the peer.
/// A frame that does not parse is not a room frame (its error is answered as usual).
fn is_room_frame(text: &str) -> bool {
    handoff_protocol::ws::parse_client_frame(text).is_ok_and(|f| f.cmd.room().is_some())
}

/// A socket's text frames that must run one after another, each holding its
/// in-flight permit until it is done.
type InOrder = tokio::sync::mpsc::UnboundedSender<(Utf8Bytes, tokio::sync::OwnedSemaphorePermit)>;

/// Starts the local task that runs a socket's ordered frames with `run`, in
/// arrival order; it ends when the socket drops the sender.
fn in_order<F, Fut>(run: F) -> InOrder
where
    F: Fn(Utf8Bytes) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Utf8Bytes, tokio::sync::OwnedSemaphorePermit)>();
    actix_web::rt::spawn(async move {
        while let Some((text, permit)) = rx.recv().await {
            run(text).await;
            drop(permit);
        }
    });
    tx
}

/// Why a socket's loop stops: the close code and reason to send, or `None`
/// when the peer is already gone.
type Ended = Option<(u16, &'static str)>;

/// Writes `first` and everything queued by now behind it, then flushes once:
/// fewer wake-ups and one flush per batch when events arrive faster than one
/// at a time. A write that stalls for [`WRITE_TIMEOUT`] closes the socket as
/// a slow consumer.
async fn write_batch(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    metrics: &Metrics,
    out: &Outgoing,
    first: Frame,
) -> Result<(), Ended> {
    let write = async {
        feed(sink, metrics, first).await?;
        while let Some(f) = out.try_recv() {
            feed(sink, metrics, f).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some((close::SLOW_CONSUMER, "slow consumer: a write stalled"))),
    }
}

/// What one read from a socket means to its loop.
enum Read {
    /// A text frame: a command to run.
    Text(Utf8Bytes),
    /// The peer answered a ping.
    Pong,
    /// Nothing to do (a ping: tungstenite queues the pong and writes it with
    /// the next read or write; a binary frame, answered with an error frame).
    Other,
    /// The loop ends.
    Ended(Ended),
}

/// Reads one message the same way on every socket.
fn read(msg: Option<Result<Message, WsError>>, conn: &Conn) -> Read {
    match msg {
        None => Read::Ended(None),
        Some(Ok(Message::Text(text))) => Read::Text(text),
        Some(Ok(Message::Binary(_))) => {
            conn.push(error_frame(None, ErrorCode::MalformedJson, "send JSON text frames, not binary ones"));
            Read::Other
        }
        Some(Ok(Message::Ping(_))) | Some(Ok(Message::Frame(_))) => Read::Other,
        Some(Ok(Message::Pong(_))) => Read::Pong,
        Some(Ok(Message::Close(_))) => Read::Ended(Some((close::NORMAL, "bye"))),
        Some(Err(WsError::Capacity(_))) => Read::Ended(Some((close::TOO_BIG, "frame over 256 KiB"))),
        Some(Err(WsError::Protocol(_) | WsError::Utf8(_))) => Read::Ended(Some((1002, "protocol error"))),
        Some(Err(_)) => Read::Ended(None),
    }
}

/// Sends the close frame, then gives the peer a moment to answer it, so the
/// close reaches it before the connection goes.
async fn close_with(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    stream: &mut futures_util::stream::SplitStream<Ws>,
    ended: Ended,
) {
    if let Some((code, why)) = ended {
        let frame = CloseFrame { code: CloseCode::from(code), reason: why.into() };
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if sink.send(Message::Close(Some(frame))).await.is_ok() {
                while let Some(Ok(_)) = stream.next().await {}
            }
        })
        .await;
    }
}

/// Why a socket closes when its connection was killed with `code`.
fn kill_reason(code: u16) -> &'static str {
    match code {
        close::SESSION_ENDED => "session ended; sign in again",
        close::SESSION_IDLE => "signed out after inactivity; sign in again",
        close::GUEST_REMOVED => "the host removed you from the waiting room",
        _ => "slow consumer: the outgoing buffer filled; reconnect and resume",
    }
}

async fn run(hub: Arc<Hub>, metrics: &Arc<Metrics>, session: Rc<SocketSession>, conn: Conn, out: Outgoing, ws: Ws) {
    let (store, token_hash) = (session.store.clone(), session.token_hash.clone());
    let idle = tokio::time::sleep_until(instant_of(session.idle_at()));
    tokio::pin!(idle);
    let opened = Instant::now();
    let (mut sink, mut stream) = ws.split();
    let subs: Rc<RefCell<HashSet<StreamId>>> = Rc::default();
    let rooms: Rc<RefCell<HashSet<RoomId>>> = Rc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let room_tx = {
        let (hub, metrics, session, conn, subs, rooms) =
            (hub.clone(), metrics.clone(), session.clone(), conn.clone(), subs.clone(), rooms.clone());
        in_order(move |text| handle_text(hub.clone(), metrics.clone(), session.clone(), conn.clone(), subs.clone(), rooms.clone(), text))
    };
    let mut last_pong = Instant::now();
    let mut last_session_check = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    conn.push(json(&ServerFrame::Hello { protocol: PROTOCOL_VERSION, user: conn.user }));
    let ended = loop {
        tokio::select! {
            biased;
            code = conn.killed() => {
                break Some((code, kill_reason(code)));
            }
            () = &mut idle => {
                // Activity (here or over HTTP) may have moved the deadline since.
                let at = session.idle_at();
                if now() < at {
                    idle.as_mut().reset(instant_of(at));
                    continue;
                }
                if let Err(e) = crate::sessions::end_in(&*store, &session.sessions, &token_hash, close::SESSION_IDLE).await {
                    tracing::warn!(error = %e, "ending an idle session failed");
                }
                break Some((close::SESSION_IDLE, kill_reason(close::SESSION_IDLE)));
            }
            frame = out.recv() => {
                if let Err(ended) = write_batch(&mut sink, metrics, &out, frame).await {
                    break ended;
                }
            }
            msg = stream.next() => match read(msg, &conn) {
                Read::Text(text) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { break None };
                    if is_room_frame(text.as_str()) {
                        // Room commands keep their order (a call's signals are counted).
                        let _ = room_tx.send((text, permit));
                        continue;
                    }
                    let (hub, metrics, session, conn, subs) = (hub.clone(), metrics.clone(), session.clone(), conn.clone(), subs.clone());
                    let rooms = rooms.clone();
                    actix_web::rt::spawn(async move {
                        handle_text(hub, metrics, session, conn, subs, rooms, text).await;
                        drop(permit);
                    });
                }
                Read::Pong => last_pong = Instant::now(),
                Read::Other => {}
                Read::Ended(ended) => break ended,
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT {
                    break Some((close::PING_TIMEOUT, "no pong"));
                }
                if last_session_check.elapsed() >= SESSION_CHECK {
                    last_session_check = Instant::now();
                    match store.session(&token_hash).await {
                        Ok(Some(s)) if s.expires_at > now() => {}
                        Ok(_) => break Some((close::SESSION_ENDED, "session ended; sign in again")),
                        Err(_) => {}
                    }
                }
                if !matches!(tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Bytes::new()))).await, Ok(Ok(()))) {
                    break None;
                }
            }
        }
    };
    tracing::info!("GET /ws closed {} after {} s", ended.map_or(0, |(code, _)| code), opened.elapsed().as_secs());
    if matches!(ended, Some((close::SLOW_CONSUMER, _))) {
        metrics.slow_consumer_closed();
    }
    close_with(&mut sink, &mut stream, ended).await;
    drop(out);
    let streams: Vec<StreamId> = subs.borrow().iter().copied().collect();
    for s in streams {
        hub.unsubscribe(conn.id, s).await;
    }
    let hosted: Vec<RoomId> = rooms.borrow().iter().copied().collect();
    hub.room_disconnected(conn.id, hosted).await;
}

/// A guest socket's loop: `guest_hello`, then guest commands only, room
/// events out, pings; it ends when the token expires, the guest is removed
/// (close code [`close::GUEST_REMOVED`], after the `removed` event), or the
/// peer goes. Its guest then leaves the live list.
async fn run_guest(hub: Arc<Hub>, metrics: &Arc<Metrics>, peer: GuestPeer, conn: Conn, out: Outgoing, ws: Ws) {
    let (room, guest, checked_in_at) = (peer.guest.room, peer.guest.id, peer.guest.checked_in_at);
    let expiry = tokio::time::sleep_until(instant_of(peer.guest.expires_at));
    tokio::pin!(expiry);
    let (mut sink, mut stream) = ws.split();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let guest_tx = {
        let (hub, metrics, conn) = (hub.clone(), metrics.clone(), conn.clone());
        in_order(move |text| guest_text(hub.clone(), metrics.clone(), conn.clone(), room, guest, checked_in_at, text))
    };
    let mut last_pong = Instant::now();
    let mut last_check = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    conn.push(json(&ServerFrame::GuestHello { protocol: PROTOCOL_VERSION, room, guest }));
    let ended = loop {
        tokio::select! {
            biased;
            code = conn.killed() => {
                // The `removed` event was queued before the kill: deliver it first.
                while let Some(f) = out.try_recv() {
                    if feed(&mut sink, metrics, f).await.is_err() {
                        break;
                    }
                }
                let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await;
                break Some((code, kill_reason(code)));
            }
            () = &mut expiry => break Some((close::SESSION_ENDED, "the guest link expired; check in again")),
            frame = out.recv() => {
                if let Err(ended) = write_batch(&mut sink, metrics, &out, frame).await {
                    break ended;
                }
            }
            msg = stream.next() => match read(msg, &conn) {
                Read::Text(text) => {
                    // A guest's commands are all the room's: one ordered queue.
                    let Ok(permit) = slots.clone().acquire_owned().await else { break None };
                    let _ = guest_tx.send((text, permit));
                }
                Read::Pong => last_pong = Instant::now(),
                Read::Other => {}
                Read::Ended(ended) => break ended,
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > PONG_TIMEOUT {
                    break Some((close::PING_TIMEOUT, "no pong"));
                }
                if last_check.elapsed() >= SESSION_CHECK {
                    last_check = Instant::now();
                    if let Ok(g) = peer.store.guest_by_token(peer.token_hash).await
                        && g.is_none_or(|g| g.removed)
                    {
                        break Some((close::GUEST_REMOVED, kill_reason(close::GUEST_REMOVED)));
                    }
                }
                if !matches!(tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Bytes::new()))).await, Ok(Ok(()))) {
                    break None;
                }
            }
        }
    };
    close_with(&mut sink, &mut stream, ended).await;
    drop(out);
    hub.room_disconnected(conn.id, vec![room]).await;
}

/// One text frame from a guest socket: only guest commands are run.
async fn guest_text(
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    conn: Conn,
    room: RoomId,
    guest: GuestId,
    checked_in_at: UnixMillis,
    text: Utf8Bytes,
) {
    let frame = match handoff_protocol::ws::parse_client_frame(text.as_str()) {
        Ok(f) => f,
        Err((id, code, msg)) => {
            metrics.command(crate::metrics::undecoded_command_label(text.as_str()), code.as_str());
            conn.push(error_frame(id, code, msg));
            return;
        }
    };
    let (id, command) = (frame.id, crate::metrics::command_label(&frame.cmd));
    let result = hub.guest_command(conn.clone(), room, guest, checked_in_at, frame.cmd).await;
    metrics.command(command, result.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok"));
    conn.push(match result {
        Ok(body) => json(&ServerFrame::Ack { id, duplicate: false, body }),
        Err(e) => error_frame(Some(id), e.code, e.message),
    });
}
