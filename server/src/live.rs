//! `GET /ws`: the live endpoint (protocol in `handoff_protocol::ws`).
//!
//! One task per socket reads frames, runs each command as its own local task
//! (at most [`IN_FLIGHT`] at once; beyond that the socket is not read, which
//! pushes back on the client through TCP), and writes queued frames. Writes
//! that stall for [`WRITE_TIMEOUT`], or an outgoing queue that fills, close the
//! socket as a slow consumer; a peer that misses pongs for [`PONG_TIMEOUT`] is
//! closed as dead; an expired session is closed with 4001.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
use serde::Deserialize;

use handoff_actors::conn::{Conn, Frame, Outgoing};
use handoff_actors::hub::Hub;
use handoff_protocol::ErrorCode;
use handoff_protocol::ws::{AckBody, Command, MAX_FRAME, PROTOCOL_VERSION, ServerFrame, StreamId, close};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now};
use handoff_store::Store;

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

/// Query of `GET /ws`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// Protocol version the client speaks.
    v: Option<u32>,
}

/// A browser's `Origin` must be this server's own (cross-site WebSocket
/// hijacking defence, on top of SameSite=Strict cookies). Native clients send
/// no `Origin` and are allowed.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get("origin").and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = req.connection_info().host().to_string();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The upgrade. Unauthenticated requests get 401 before any upgrade; a
/// browser on another origin gets 403.
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    who: Authed,
    q: web::Query<WsQuery>,
) -> ApiResult<HttpResponse> {
    if !same_origin(&req) {
        return Err(ApiError::forbidden("WebSocket connections must come from this server's own pages"));
    }
    if let Some(v) = q.v
        && v != PROTOCOL_VERSION
    {
        return Err(ApiError::new(ErrorCode::UnsupportedVersion, format!("this server speaks protocol {PROTOCOL_VERSION}")));
    }
    let (resp, session, stream) = actix_ws::handle(&req, body).map_err(|e| ApiError::new(ErrorCode::InvalidBody, e.to_string()))?;
    let stream = stream.max_frame_size(MAX_FRAME);
    let (conn, out) = Conn::new(who.user.id, state.config.ws_outgoing_buffer);
    // The task keeps only what it uses: every byte it holds is held per open socket.
    actix_web::rt::spawn(run(state.hub.clone(), state.store.clone(), who.token_hash, conn, out, session, stream));
    Ok(resp)
}

fn json(frame: &ServerFrame) -> Frame {
    serde_json::to_string(frame).unwrap_or_else(|_| r#"{"type":"error","id":null,"error":"internal","message":"encoding"}"#.into()).into()
}

fn error_frame(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Frame {
    json(&ServerFrame::Error { id, error: code, message: message.into() })
}

async fn handle_text(hub: Arc<Hub>, conn: Conn, subs: Rc<RefCell<HashSet<StreamId>>>, text: String) {
    let frame = match handoff_protocol::ws::parse_client_frame(&text) {
        Ok(f) => f,
        Err((id, code, msg)) => {
            conn.push(error_frame(id, code, msg));
            return;
        }
    };
    let id = frame.id;
    let result = match frame.cmd {
        Command::Subscribe { stream, after_seq } => {
            let r = hub.subscribe(conn.clone(), stream, after_seq).await;
            if r.is_ok() {
                subs.borrow_mut().insert(stream);
            }
            r.map(|b| (false, b))
        }
        Command::Unsubscribe { stream } => {
            hub.unsubscribe(conn.id, stream).await;
            subs.borrow_mut().remove(&stream);
            Ok((false, AckBody::Unsubscribed { stream }))
        }
        cmd => match frame.idem {
            None => Err(handoff_actors::CmdError::new(ErrorCode::MissingIdempotencyKey, "commands that change state need an idem key")),
            Some(key) => hub.execute(conn.user, key, cmd).await,
        },
    };
    let out = match result {
        Ok((duplicate, body)) => json(&ServerFrame::Ack { id, duplicate, body }),
        Err(e) => error_frame(Some(id), e.code, e.message),
    };
    conn.push(out);
}

async fn close_with(session: actix_ws::Session, code: u16, why: &str) {
    let reason = CloseReason { code: CloseCode::from(code), description: Some(why.into()) };
    let _ = tokio::time::timeout(Duration::from_secs(1), session.close(Some(reason))).await;
}

async fn run(
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    token_hash: Vec<u8>,
    conn: Conn,
    out: Outgoing,
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
) {
    let opened = Instant::now();
    let subs: Rc<RefCell<HashSet<StreamId>>> = Rc::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut last_pong = Instant::now();
    let mut last_session_check = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    conn.push(json(&ServerFrame::Hello { protocol: PROTOCOL_VERSION, user: conn.user }));
    let ended = loop {
        tokio::select! {
            biased;
            code = conn.killed() => {
                break Some((code, "slow consumer: the outgoing buffer filled; reconnect and resume"));
            }
            frame = out.recv() => match tokio::time::timeout(WRITE_TIMEOUT, session.text(frame)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break None,
                Err(_) => break Some((close::SLOW_CONSUMER, "slow consumer: a write stalled")),
            },
            msg = stream.recv() => match msg {
                None => break None,
                Some(Ok(Message::Text(text))) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { break None };
                    let (hub, conn, subs) = (hub.clone(), conn.clone(), subs.clone());
                    actix_web::rt::spawn(async move {
                        handle_text(hub, conn, subs, text.to_string()).await;
                        drop(permit);
                    });
                }
                Some(Ok(Message::Binary(_))) | Some(Ok(Message::Continuation(_))) => {
                    conn.push(error_frame(None, ErrorCode::MalformedJson, "send JSON text frames, whole, not binary or fragmented ones"));
                }
                Some(Ok(Message::Ping(p))) => {
                    if session.pong(&p).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                Some(Ok(Message::Close(_))) => break Some((close::NORMAL, "bye")),
                Some(Ok(Message::Nop)) => {}
                Some(Err(ProtocolError::Overflow)) => break Some((close::TOO_BIG, "frame over 256 KiB")),
                Some(Err(_)) => break Some((1002, "protocol error")),
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
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    // Not in the access log (a socket's line would be held for its whole life), so logged here.
    tracing::info!("GET /ws closed {} after {} s", ended.map_or(0, |(code, _)| code), opened.elapsed().as_secs());
    if let Some((code, why)) = ended {
        close_with(session, code, why).await;
    }
    let streams: Vec<StreamId> = subs.borrow().iter().copied().collect();
    for s in streams {
        hub.unsubscribe(conn.id, s).await;
    }
}
