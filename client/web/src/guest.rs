//! The patient's side of a room: no account and no session. The room secret
//! comes from the patient link's URL fragment (`/r/<link>#<secret>`), which
//! the browser never sends to the server; from it the tab derives the room
//! key, makes the guest's ephemeral X25519 key pair, seals the check-in, and
//! opens the waiting-room messages and its own admission.
//!
//! **Where the keys live.** Nothing is written to `localStorage` or
//! IndexedDB. The tab keeps one [`Saved`] record in its own `sessionStorage`
//! (per tab, gone when the tab closes): the guest token, the guest id, the
//! sealed check-in and the key pair's seed. That is what lets a reload or a
//! server restart re-join with the same token and the same sealed check-in,
//! so the patient keeps their place and the host's admission still opens.
//! The room secret itself is not stored: it stays in the address bar's
//! fragment, where the patient already holds it.

use std::cell::RefCell;
use std::rc::Rc;

use handoff_crypto::room::{Admission, CheckInContent, GuestKeyPair, RoomKey, RoomSecret};
use handoff_protocol::ws::{AckBody, ClientFrame, Command, GuestState, HostStatus, IdemKey, RoomEvent, ServerFrame, close};
use handoff_protocol::{B64, GuestId, RoomId};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::WebSocket;
use yew::Callback;

use crate::api::{ApiError, ApiResult};

/// A patient's keys for one room.
#[derive(Debug)]
pub struct Guest {
    key: RoomKey,
    pair: GuestKeyPair,
}

/// The secret in a patient link's fragment (`#<unpadded base64url>`), if it is one.
pub fn secret_from_fragment(hash: &str) -> Option<RoomSecret> {
    let b = B64::decode(hash.trim_start_matches('#'))?;
    RoomSecret::from_bytes(b.as_slice()).ok()
}

/// The fragment that carries `secret` in a patient link.
pub fn fragment_of(secret: &RoomSecret) -> String {
    B64(secret.fragment_bytes().to_vec()).encode()
}

impl Guest {
    /// A new guest of `room`: a fresh ephemeral key pair, or the one this tab saved.
    pub fn new(room: RoomId, secret: &RoomSecret, saved_seed: Option<&B64>) -> ApiResult<Self> {
        let pair = match saved_seed {
            Some(seed) => GuestKeyPair::from_seed(seed.as_slice())?,
            None => GuestKeyPair::generate()?,
        };
        Ok(Self { key: secret.room_key(*room.as_bytes()), pair })
    }

    /// The key pair's seed, for this tab's `sessionStorage`.
    pub fn seed(&self) -> B64 {
        B64(self.pair.seed().to_vec())
    }

    /// Seals the check-in: the name, what the room asks, and the public key.
    pub fn seal_check_in(&self, name: &str, dob: Option<String>, reason: Option<String>) -> ApiResult<B64> {
        let content = CheckInContent { name: name.into(), dob, reason, public_key: B64(self.pair.public().to_vec()) };
        Ok(B64(self.key.seal_check_in(&content)?))
    }

    /// Opens a host's message to the waiting room.
    pub fn open_message(&self, sealed: &B64) -> ApiResult<String> {
        Ok(self.key.open_message(sealed.as_slice())?)
    }

    /// Opens this guest's admission (the external link, or the call key).
    pub fn open_admission(&self, guest: GuestId, sealed: &B64) -> ApiResult<Admission> {
        Ok(self.pair.open_admission(self.key.room(), *guest.as_bytes(), sealed.as_slice())?)
    }
}

/// What the tab remembers of its check-in, in `sessionStorage` only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The guest id the server gave.
    pub guest: GuestId,
    /// The guest token (grants this guest in this room only).
    pub token: String,
    /// The sealed check-in, sent again on every reconnect.
    pub sealed: B64,
    /// The ephemeral key pair's seed.
    pub seed: B64,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

fn storage_key(link: &str) -> String {
    format!("handoff.guest.{link}")
}

impl Saved {
    /// The check-in this tab made through `link`, if any.
    pub fn load(link: &str) -> Option<Saved> {
        let s = storage()?.get_item(&storage_key(link)).ok().flatten()?;
        serde_json::from_str(&s).ok()
    }

    /// Remembers the check-in for a reload of this tab.
    pub fn save(&self, link: &str) -> ApiResult<()> {
        let s = storage().ok_or_else(|| ApiError::local("This browser keeps no session storage."))?;
        let json = serde_json::to_string(self).map_err(|_| ApiError::local("Could not remember the check-in."))?;
        s.set_item(&storage_key(link), &json).map_err(|_| ApiError::local("Could not remember the check-in."))
    }

    /// Forgets it (removed, the visit ended, or the patient left).
    pub fn forget(link: &str) {
        if let Some(s) = storage() {
            let _ = s.remove_item(&storage_key(link));
        }
    }
}

/// What the guest socket hands the patient's page.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestPush {
    /// Connected (again) and checked in: my state and the hosts' statuses.
    State {
        /// Waiting, admitted, ...
        state: GuestState,
        /// The statuses of the hosts present.
        hosts: Vec<HostStatus>,
    },
    /// A room event for this guest.
    Event(RoomEvent),
    /// The connection dropped; trying again.
    Reconnecting,
    /// The server removed this guest (close code `GUEST_REMOVED`): the token is dead.
    Removed,
}

struct LiveInner {
    ws: Option<WebSocket>,
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    token: String,
    sealed: B64,
    next_id: u64,
    attempt: u32,
    stopped: bool,
    on_push: Callback<GuestPush>,
}

/// A patient's live connection: `/ws?v=1&guest=<token>`. On every
/// `guest_hello` (the first connection, and each reconnect after a drop or a
/// server restart) it sends the same sealed check-in again; the server orders
/// the waiting list by the token's stored check-in time, so the patient keeps
/// their place. Cheap to clone.
#[derive(Clone)]
pub struct GuestLive(Rc<RefCell<LiveInner>>);

impl PartialEq for GuestLive {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.0, &o.0)
    }
}

impl std::fmt::Debug for GuestLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestLive")
    }
}

fn guest_ws_url(token: &str) -> String {
    let token = String::from(js_sys::encode_uri_component(token));
    format!("{}&guest={token}", crate::live::ws_url())
}

impl GuestLive {
    /// Connects with the token and checks in with `sealed`.
    pub fn start(token: String, sealed: B64, on_push: Callback<GuestPush>) -> GuestLive {
        let live = GuestLive(Rc::new(RefCell::new(LiveInner {
            ws: None,
            handlers: Vec::new(),
            token,
            sealed,
            next_id: 1,
            attempt: 0,
            stopped: false,
            on_push,
        })));
        live.connect();
        live
    }

    /// Closes for good (left, removed, or the visit ended).
    pub fn stop(&self) {
        let mut i = self.0.borrow_mut();
        i.stopped = true;
        if let Some(ws) = i.ws.take() {
            let _ = ws.close();
        }
        i.handlers.clear();
    }

    fn connect(&self) {
        let url = guest_ws_url(&self.0.borrow().token);
        let (me, again) = (self.clone(), self.clone());
        let Some((ws, handlers)) = crate::live::open_socket(&url, move |text| me.on_frame(text), move |code| again.on_closed(code)) else {
            self.schedule_reconnect();
            return;
        };
        let mut i = self.0.borrow_mut();
        i.ws = Some(ws);
        i.handlers = handlers;
    }

    fn on_closed(&self, code: u16) {
        let (stopped, push) = {
            let mut i = self.0.borrow_mut();
            i.ws = None;
            (i.stopped, i.on_push.clone())
        };
        if stopped {
            return;
        }
        if code == close::GUEST_REMOVED {
            self.0.borrow_mut().stopped = true;
            push.emit(GuestPush::Removed);
            return;
        }
        push.emit(GuestPush::Reconnecting);
        self.schedule_reconnect();
    }

    fn schedule_reconnect(&self) {
        let attempt = {
            let mut i = self.0.borrow_mut();
            i.attempt += 1;
            i.attempt
        };
        // 0.5 s, 1 s, 2 s ... capped at 10 s, with jitter (a restart is not met by every guest at once).
        let base = (500u32 << attempt.min(5)).min(10_000);
        let jitter = (js_sys::Math::random() * f64::from(base) * 0.3) as u32;
        let me = self.clone();
        gloo_timers::callback::Timeout::new(base + jitter, move || {
            if !me.0.borrow().stopped {
                me.connect();
            }
        })
        .forget();
    }

    fn send(&self, cmd: Command) {
        let text = {
            let mut i = self.0.borrow_mut();
            let id = i.next_id;
            i.next_id += 1;
            let idem = if cmd.mutates() { crate::session::new_uuid().ok().map(IdemKey) } else { None };
            serde_json::to_string(&ClientFrame { id, idem, cmd }).unwrap_or_default()
        };
        if let Some(ws) = &self.0.borrow().ws {
            let _ = ws.send_with_str(&text);
        }
    }

    fn on_frame(&self, text: &str) {
        let Ok(frame) = serde_json::from_str::<ServerFrame>(text) else { return };
        let push = self.0.borrow().on_push.clone();
        match frame {
            ServerFrame::GuestHello { .. } => {
                self.0.borrow_mut().attempt = 0;
                let sealed = self.0.borrow().sealed.clone();
                self.send(Command::GuestCheckIn { sealed });
            }
            ServerFrame::Ack { body: AckBody::GuestState { state, hosts }, .. } => push.emit(GuestPush::State { state, hosts }),
            ServerFrame::Room { event, .. } => push.emit(GuestPush::Event(event)),
            _ => {}
        }
    }

    /// Sends a sealed signalling message to the admitting host (built-in call).
    pub fn signal(&self, sealed: Vec<u8>) {
        self.send(Command::GuestSignal { sealed: B64(sealed) });
    }

    /// Leaves the waiting room for good.
    pub fn leave(&self) {
        self.send(Command::GuestLeave {});
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_carries_the_room_secret_and_nothing_else_reads_as_one() {
        let secret = RoomSecret::generate().unwrap();
        let frag = fragment_of(&secret);
        assert_eq!(secret_from_fragment(&format!("#{frag}")), Some(secret.clone()));
        assert_eq!(secret_from_fragment(&frag), Some(secret));
        // A cut-off or mangled fragment is no secret (the page says the link does not work).
        assert_eq!(secret_from_fragment(&frag[..frag.len() - 2]), None);
        assert_eq!(secret_from_fragment("#not base64!"), None);
        assert_eq!(secret_from_fragment(""), None);
    }

    #[test]
    fn a_guest_reloaded_from_its_seed_opens_its_admission() {
        let (room, gid) = (RoomId::from_bytes([1; 16]), GuestId::from_bytes([2; 16]));
        let secret = RoomSecret::generate().unwrap();
        let g = Guest::new(room, &secret, None).unwrap();
        let sealed = g.seal_check_in("Ada", None, None).unwrap();
        // The host opens the check-in under the room key and seals to the key inside it.
        let content = secret.room_key(*room.as_bytes()).open_check_in(sealed.as_slice()).unwrap();
        let adm = Admission::External { link: "https://meet.example/x".into() };
        let boxed = B64(adm.seal_to(content.public_key.as_slice(), *room.as_bytes(), *gid.as_bytes()).unwrap());
        let reloaded = Guest::new(room, &secret, Some(&g.seed())).unwrap();
        assert_eq!(reloaded.open_admission(gid, &boxed).unwrap(), adm);
        assert!(Guest::new(room, &secret, None).unwrap().open_admission(gid, &boxed).is_err());
    }
}
