//! The native client's live connection: `GET /ws` over tokio-tungstenite,
//! request/answer matching by request id, and a channel of pushed events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use handoff_protocol::api::{Endpoint as _, OpenLive};
use handoff_protocol::ws::{AckBody, ClientFrame, Command, Event, IdemKey, PROTOCOL_VERSION, RoomEvent, ServerFrame, StreamId, WsQuery};
use handoff_protocol::{ErrorBody, GuestId, RoomId, UserId};

use crate::{ClientError, Result};

/// A pushed event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The stream the event came on.
    pub stream: StreamId,
    /// The event's sequence number in its stream.
    pub seq: u64,
    /// What happened.
    pub event: Event,
}

type Answer = std::result::Result<(bool, AckBody), ErrorBody>;

/// Who the server's first frame says the socket is.
enum Hello {
    /// A signed-in user (`hello`).
    User(UserId),
    /// A waiting-room guest (`guest_hello`).
    Guest(RoomId, GuestId),
}
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// One live socket.
#[derive(Debug)]
pub struct Live {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    events: mpsc::UnboundedReceiver<Pushed>,
    errors: mpsc::UnboundedReceiver<ErrorBody>,
    next: AtomicU64,
    /// The user the server says this socket is signed in as ([`UserId::NIL`] on a guest socket).
    pub user: UserId,
    /// On a guest socket: the room and the guest the server says it is.
    pub guest: Option<(RoomId, GuestId)>,
    rooms: mpsc::UnboundedReceiver<(RoomId, RoomEvent)>,
    closed: watch::Receiver<Option<(u16, String)>>,
}

impl Live {
    /// Connects to `ws://…/ws?v=1` with a bearer token and waits for `hello`.
    pub async fn connect(http_base: &str, token: &str) -> Result<Self> {
        Self::open(http_base, Some(token), None).await
    }

    /// Connects as a waiting-room guest (`/ws?v=1&guest=<token>`, no session)
    /// and waits for `guest_hello`.
    pub async fn connect_guest(http_base: &str, guest_token: &str) -> Result<Self> {
        Self::open(http_base, None, Some(guest_token)).await
    }

    async fn open(http_base: &str, bearer: Option<&str>, guest: Option<&str>) -> Result<Self> {
        let query = WsQuery { v: Some(PROTOCOL_VERSION), guest: guest.map(str::to_owned) };
        let ws = OpenLive::request(&(), &query).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let url = format!("{}{}", http_base.replacen("http", "ws", 1), ws.path);
        let mut req = url.into_client_request().map_err(|e| ClientError::Protocol(e.to_string()))?;
        if let Some(token) = bearer {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().map_err(|_| ClientError::Protocol("token is not a header value".into()))?,
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| ClientError::Protocol(format!("websocket: {e}")))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (ev_tx, events) = mpsc::unbounded_channel();
        let (room_tx, rooms) = mpsc::unbounded_channel();
        let (err_tx, errors) = mpsc::unbounded_channel();
        let (closed_tx, closed) = watch::channel(None);
        let (hello_tx, hello_rx) = oneshot::channel();
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let p = pending.clone();
        tokio::spawn(async move {
            let mut hello_tx = Some(hello_tx);
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => match serde_json::from_str::<ServerFrame>(&t) {
                        Ok(ServerFrame::Hello { user, .. }) => {
                            if let Some(h) = hello_tx.take() {
                                let _ = h.send(Hello::User(user));
                            }
                        }
                        Ok(ServerFrame::GuestHello { room, guest, .. }) => {
                            if let Some(h) = hello_tx.take() {
                                let _ = h.send(Hello::Guest(room, guest));
                            }
                        }
                        Ok(ServerFrame::Room { room, event }) => {
                            let _ = room_tx.send((room, event));
                        }
                        Ok(ServerFrame::Ack { id, duplicate, body }) => {
                            if let Some(tx) = p.lock().ok().and_then(|mut m| m.remove(&id)) {
                                let _ = tx.send(Ok((duplicate, body)));
                            }
                        }
                        Ok(ServerFrame::Error { id, error, message }) => {
                            let body = ErrorBody { error, message };
                            match id.and_then(|id| p.lock().ok().and_then(|mut m| m.remove(&id))) {
                                Some(tx) => {
                                    let _ = tx.send(Err(body));
                                }
                                None => {
                                    let _ = err_tx.send(body);
                                }
                            }
                        }
                        Ok(ServerFrame::Event { stream, seq, event }) => {
                            let _ = ev_tx.send(Pushed { stream, seq, event });
                        }
                        Err(e) => {
                            let _ = err_tx.send(ErrorBody {
                                error: handoff_protocol::ErrorCode::Internal,
                                message: format!("unparseable frame: {e}"),
                            });
                        }
                    },
                    Ok(Message::Close(frame)) => {
                        let _ =
                            closed_tx.send(Some(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()))));
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = closed_tx.send(Some((1006, e.to_string())));
                        break;
                    }
                }
            }
            if closed_tx.borrow().is_none() {
                let _ = closed_tx.send(Some((1006, "connection dropped".into())));
            }
            // Fail every waiting request.
            if let Ok(mut m) = p.lock() {
                m.clear();
            }
        });
        let hello = tokio::time::timeout(Duration::from_secs(10), hello_rx)
            .await
            .map_err(|_| ClientError::Protocol("no hello from the server".into()))?
            .map_err(|_| ClientError::Protocol("socket closed before hello".into()))?;
        let (user, guest) = match hello {
            Hello::User(user) => (user, None),
            Hello::Guest(room, guest) => (UserId::NIL, Some((room, guest))),
        };
        Ok(Self { out, pending, events, errors, next: AtomicU64::new(1), user, guest, rooms, closed })
    }

    /// Sends a frame and waits for its answer.
    pub async fn request(&self, idem: Option<IdemKey>, cmd: Command) -> Result<(bool, AckBody)> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().map_err(|_| ClientError::Protocol("poisoned".into()))?.insert(id, tx);
        let text = serde_json::to_string(&ClientFrame { id, idem, cmd }).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.out.send(Message::Text(text.into())).map_err(|_| ClientError::Protocol("socket closed".into()))?;
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(Ok(ok))) => Ok(ok),
            Ok(Ok(Err(body))) => Err(ClientError::Api { status: 0, body }),
            Ok(Err(_)) => Err(ClientError::Protocol(format!("socket closed before the answer ({:?})", self.close_info()))),
            Err(_) => Err(ClientError::Protocol("no answer within 60 s".into())),
        }
    }

    /// Sends a state-changing command with a fresh idempotency key.
    pub async fn command(&self, cmd: Command) -> Result<AckBody> {
        Ok(self.request(Some(IdemKey(uuid::Uuid::new_v4())), cmd).await?.1)
    }

    /// Subscribes, paging through a long replay; returns the head seq after
    /// which events come live.
    pub async fn subscribe(&self, stream: StreamId, after_seq: u64) -> Result<u64> {
        let mut after = after_seq;
        loop {
            match self.request(None, Command::Subscribe { stream, after_seq: after }).await?.1 {
                AckBody::Subscribed { head_seq, more: false, .. } => return Ok(head_seq),
                AckBody::Subscribed { head_seq, more: true, .. } => after = head_seq,
                other => return Err(ClientError::Protocol(format!("unexpected answer {other:?}"))),
            }
        }
    }

    /// The next pushed event, waiting at most `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Pushed> {
        tokio::time::timeout(wait, self.events.recv()).await.ok().flatten()
    }

    /// Waits for the next event on `stream` that `pred` accepts, skipping others.
    pub async fn wait_for(&mut self, stream: StreamId, wait: Duration, pred: impl Fn(&Event) -> bool) -> Option<Pushed> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next_event(left).await?;
            if e.stream == stream && pred(&e.event) {
                return Some(e);
            }
        }
    }

    /// The next waiting-room event, waiting at most `wait`.
    pub async fn next_room_event(&mut self, wait: Duration) -> Option<(RoomId, RoomEvent)> {
        tokio::time::timeout(wait, self.rooms.recv()).await.ok().flatten()
    }

    /// Waits for the next waiting-room event that `pred` accepts, skipping others.
    pub async fn wait_room(&mut self, wait: Duration, pred: impl Fn(&RoomEvent) -> bool) -> Option<RoomEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (_, e) = self.next_room_event(left).await?;
            if pred(&e) {
                return Some(e);
            }
        }
    }

    /// Sends a command without an idempotency key (room and guest commands need none).
    pub async fn live_command(&self, cmd: Command) -> Result<AckBody> {
        Ok(self.request(None, cmd).await?.1)
    }

    /// Errors that answered no request (e.g. to an unparseable frame).
    pub async fn next_error(&mut self, wait: Duration) -> Option<ErrorBody> {
        tokio::time::timeout(wait, self.errors.recv()).await.ok().flatten()
    }

    /// Sends raw text, for tests of malformed input.
    pub fn send_raw(&self, m: Message) -> Result<()> {
        self.out.send(m).map_err(|_| ClientError::Protocol("socket closed".into()))
    }

    /// The close code and reason, once the socket has closed.
    pub fn close_info(&self) -> Option<(u16, String)> {
        self.closed.borrow().clone()
    }

    /// Waits until the socket closes; returns the close code and reason.
    pub async fn closed(&mut self, wait: Duration) -> Option<(u16, String)> {
        let mut c = self.closed.clone();
        let _ = tokio::time::timeout(wait, c.wait_for(|v| v.is_some())).await;
        self.close_info()
    }
}
