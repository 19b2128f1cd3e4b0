//! The built-in 1:1 video call: one `RTCPeerConnection` whose signalling
//! travels sealed through the room's socket.
//!
//! - The host offers, the guest answers, and both trickle ICE candidates.
//!   Every signal is a [`Signal`] sealed with [`CallSeal`] under the call key
//!   the host made at admission; the server relays bytes it can neither read
//!   nor alter. A signal that fails to authenticate (changed bytes, another
//!   room, guest or direction, a plaintext injected by the relay) ends the
//!   call as refused; a replayed or late one (counter not above the last) is
//!   dropped unobeyed.
//! - **Fingerprint binding.** Each side keeps the `a=fingerprint` of the
//!   peer's *authenticated* SDP. Once the connection is up it reads the DTLS
//!   certificate actually negotiated (`getStats()`: the transport's
//!   `remoteCertificateId`, then that certificate's `fingerprint`) and ends
//!   the call as refused unless the two match.
//! - Media flows peer to peer over DTLS-SRTP; the ICE servers come from the
//!   server's `ice_servers` setting (none by default: loopback and LANs need
//!   no STUN).
//!
//! Test hooks (for the browser tests only; page script can do all of this
//! anyway): each live connection is added to `window.__handoffCallPeers`,
//! and `window.__handoffTestExpectFingerprint`, when set to a string, replaces
//! the fingerprint taken from the peer's SDP, simulating a swapped DTLS
//! certificate.

use std::cell::RefCell;
use std::rc::Rc;

use handoff_crypto::call::{CallError, CallKey, CallSeal, Direction, Signal, fingerprint_matches, sdp_fingerprints};
use handoff_protocol::{GuestId, RoomId};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamConstraints, MediaStreamTrack, RtcConfiguration, RtcIceCandidateInit, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

use crate::ui::spawn;

/// What the user is told when a signal fails to open or the negotiated
/// certificate is not the one the authenticated SDP declared.
pub const SECURITY_REFUSAL: &str = "The call was refused: its security check failed — the connection may have been tampered with.";

/// How the room screen sends one sealed signal: `room_signal` on the host's
/// socket, `guest_signal` on the guest's.
pub trait SignalChannel {
    /// Sends one sealed signalling message to the other side.
    fn send(&self, sealed: Vec<u8>);
}

/// Which side of the call this browser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRole {
    /// The practice member who admitted the guest: makes the offer.
    Host,
    /// The admitted patient: answers.
    Guest,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEnd {
    /// This side hung up.
    HungUp,
    /// The other side hung up.
    PeerHungUp,
    /// The call was refused by a security check; `reason` is shown to the user.
    Refused {
        /// What to tell the user.
        reason: String,
    },
    /// The call could not be set up or dropped; `reason` is shown to the user.
    Failed {
        /// What to tell the user.
        reason: String,
    },
}

impl CallEnd {
    /// The sentence shown to the user.
    pub fn message(&self) -> &str {
        match self {
            CallEnd::HungUp => "You left the call.",
            CallEnd::PeerHungUp => "The other side left the call.",
            CallEnd::Refused { reason } | CallEnd::Failed { reason } => reason,
        }
    }
}

/// Where the call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Asking for the camera and microphone.
    Starting,
    /// Waiting for the other side, or connecting.
    Connecting,
    /// Connected, and the peer's certificate matches its authenticated SDP.
    Verified,
}

/// What the engine tells the screen.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// This side's camera stream.
    Local(MediaStream),
    /// The other side's stream.
    Remote(MediaStream),
    /// The call moved on.
    Phase(Phase),
    /// The other side's microphone and camera state.
    PeerMedia {
        /// Their microphone is on.
        audio: bool,
        /// Their camera is on.
        video: bool,
    },
    /// The call is over.
    End(CallEnd),
}

type Notify = Rc<dyn Fn(CallEvent)>;

struct Inner {
    role: CallRole,
    seal: CallSeal,
    channel: Rc<dyn SignalChannel>,
    notify: Notify,
    pc: Option<RtcPeerConnection>,
    local: Option<MediaStream>,
    /// Opened signals that arrived before the connection was set up.
    backlog: Vec<Signal>,
    /// Candidates that arrived before the remote description.
    pending: Vec<RtcIceCandidateInit>,
    remote_set: bool,
    offered: bool,
    /// The fingerprints the peer's authenticated SDP declared.
    expected: Vec<(String, String)>,
    verifying: bool,
    ended: bool,
    /// The event handlers, kept alive as long as the connection.
    closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// One call. Cloning shares it.
#[derive(Clone)]
pub struct Call(Rc<RefCell<Inner>>);

impl Call {
    /// Starts the call: asks for the camera and microphone, sets up the
    /// connection, and (guest) tells the host it is ready for the offer.
    pub fn start(role: CallRole, room: RoomId, guest: GuestId, key: &[u8; 32], channel: Rc<dyn SignalChannel>, notify: Notify) -> Call {
        let sends = match role {
            CallRole::Host => Direction::HostToGuest,
            CallRole::Guest => Direction::GuestToHost,
        };
        let seal = CallSeal::new(CallKey::from_bytes(*key), *room.as_bytes(), *guest.as_bytes(), sends);
        let call = Call(Rc::new(RefCell::new(Inner {
            role,
            seal,
            channel,
            notify,
            pc: None,
            local: None,
            backlog: Vec::new(),
            pending: Vec::new(),
            remote_set: false,
            offered: false,
            expected: Vec::new(),
            verifying: false,
            ended: false,
            closures: Vec::new(),
        })));
        let c = call.clone();
        spawn(async move {
            if let Err(e) = c.setup().await {
                c.end(CallEnd::Failed { reason: format!("The call could not start: {}", describe(&e)) }, false);
            }
        });
        call
    }

    fn emit(&self, e: CallEvent) {
        let notify = self.0.borrow().notify.clone();
        notify(e);
    }

    fn send(&self, signal: &Signal) {
        let (sealed, channel) = {
            let mut inner = self.0.borrow_mut();
            (inner.seal.seal_signal(signal), inner.channel.clone())
        };
        match sealed {
            Ok(bytes) => channel.send(bytes),
            Err(_) => self.end(CallEnd::Failed { reason: "The call could not seal its signalling.".into() }, false),
        }
    }

    async fn setup(&self) -> Result<(), JsValue> {
        self.emit(CallEvent::Phase(Phase::Starting));
        let window = web_sys::window().ok_or("no window")?;
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio_bool(true);
        constraints.set_video_bool(true);
        let media = window.navigator().media_devices()?.get_user_media_with_constraints(&constraints)?;
        let local: MediaStream = JsFuture::from(media).await?.dyn_into()?;
        if self.0.borrow().ended {
            stop_tracks(&local);
            return Ok(());
        }
        self.emit(CallEvent::Local(local.clone()));

        let config = RtcConfiguration::new();
        config.set_ice_servers(&ice_servers().await);
        let pc = RtcPeerConnection::new_with_configuration(&config)?;
        for track in local.get_tracks().iter() {
            let track: MediaStreamTrack = track.dyn_into()?;
            pc.add_track(&track, &local, &js_sys::Array::new());
        }
        publish_peer(&window, &pc);

        let this = self.clone();
        let on_candidate = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<RtcPeerConnectionIceEvent>() else { return };
            // A null candidate marks the end of gathering: nothing to send.
            if let Some(c) = e.candidate() {
                this.send(&Signal::Candidate { candidate: c.candidate(), sdp_mid: c.sdp_mid(), sdp_m_line_index: c.sdp_m_line_index() });
            }
        });
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));

        let this = self.clone();
        let on_track = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<RtcTrackEvent>() else { return };
            if let Ok(stream) = e.streams().get(0).dyn_into::<MediaStream>() {
                this.emit(CallEvent::Remote(stream));
            }
        });
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));

        let this = self.clone();
        let on_state = Closure::<dyn FnMut(JsValue)>::new(move |_| this.connection_changed());
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));

        let backlog = {
            let mut inner = self.0.borrow_mut();
            inner.closures.extend([on_candidate, on_track, on_state]);
            inner.pc = Some(pc);
            inner.local = Some(local);
            std::mem::take(&mut inner.backlog)
        };
        self.emit(CallEvent::Phase(Phase::Connecting));
        if self.0.borrow().role == CallRole::Guest {
            self.send(&Signal::Ready);
        }
        for s in backlog {
            self.handle(s).await?;
        }
        Ok(())
    }

    /// Replaces the channel signals are sent on (the screen's latest).
    pub fn set_channel(&self, channel: Rc<dyn SignalChannel>) {
        if let Ok(mut inner) = self.0.try_borrow_mut() {
            inner.channel = channel;
        }
    }

    /// Takes one sealed signal from the other side. One that does not open
    /// ends the call as refused.
    pub fn receive(&self, sealed: &[u8]) {
        if self.0.borrow().ended {
            return;
        }
        let opened = self.0.borrow_mut().seal.open_signal(sealed);
        let signal = match opened {
            Ok(s) => s,
            // A replayed or late signal is dropped, not obeyed: the relay could
            // have dropped it anyway, so it says nothing about tampering.
            Err(CallError::Replayed { counter, last }) => {
                web_sys::console::warn_1(&format!("call: dropped signal {counter} (last accepted {last})").into());
                return;
            }
            Err(e) => {
                web_sys::console::warn_1(&format!("call: refused a signal: {e}").into());
                return self.end(CallEnd::Refused { reason: SECURITY_REFUSAL.into() }, true);
            }
        };
        if self.0.borrow().pc.is_none() {
            self.0.borrow_mut().backlog.push(signal);
            return;
        }
        let this = self.clone();
        spawn(async move {
            if let Err(e) = this.handle(signal).await {
                this.end(CallEnd::Failed { reason: format!("The call failed: {}", describe(&e)) }, true);
            }
        });
    }

    async fn handle(&self, signal: Signal) -> Result<(), JsValue> {
        let (pc, role) = {
            let inner = self.0.borrow();
            if inner.ended {
                return Ok(());
            }
            (inner.pc.clone().ok_or("no connection")?, inner.role)
        };
        match (signal, role) {
            (Signal::Ready, CallRole::Host) => {
                if std::mem::replace(&mut self.0.borrow_mut().offered, true) {
                    return Ok(());
                }
                let offer = JsFuture::from(pc.create_offer()).await?;
                let sdp = sdp_of(&offer)?;
                let init = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
                init.set_sdp(&sdp);
                JsFuture::from(pc.set_local_description(&init)).await?;
                self.send(&Signal::Offer { sdp });
            }
            (Signal::Offer { sdp }, CallRole::Guest) => {
                if !self.expect(&sdp) {
                    return Ok(());
                }
                self.set_remote(&pc, RtcSdpType::Offer, &sdp).await?;
                let answer = JsFuture::from(pc.create_answer()).await?;
                let sdp = sdp_of(&answer)?;
                let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
                init.set_sdp(&sdp);
                JsFuture::from(pc.set_local_description(&init)).await?;
                self.send(&Signal::Answer { sdp });
            }
            (Signal::Answer { sdp }, CallRole::Host) => {
                if !self.expect(&sdp) {
                    return Ok(());
                }
                self.set_remote(&pc, RtcSdpType::Answer, &sdp).await?;
            }
            (Signal::Candidate { candidate, sdp_mid, sdp_m_line_index }, _) => {
                let init = RtcIceCandidateInit::new(&candidate);
                init.set_sdp_mid(sdp_mid.as_deref());
                init.set_sdp_m_line_index(sdp_m_line_index);
                if self.0.borrow().remote_set {
                    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await?;
                } else {
                    self.0.borrow_mut().pending.push(init);
                }
            }
            (Signal::Media { audio, video }, _) => self.emit(CallEvent::PeerMedia { audio, video }),
            (Signal::Hangup, _) => self.end(CallEnd::PeerHungUp, false),
            (Signal::Refused, _) => self.end(CallEnd::Refused { reason: SECURITY_REFUSAL.into() }, false),
            // A signal meant for the other role (an offer sent to the host, ...):
            // only a holder of the call key could send it, so it is a bug, not
            // an attack; it is ignored.
            _ => {}
        }
        Ok(())
    }

    /// Records the fingerprints the peer's authenticated SDP declares (or the
    /// test hook's), refusing an SDP without one.
    fn expect(&self, sdp: &str) -> bool {
        let mut declared = sdp_fingerprints(sdp);
        if let Some(fp) = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w, &"__handoffTestExpectFingerprint".into()).ok())
            .and_then(|v| v.as_string())
        {
            declared = vec![("sha-256".to_string(), fp)];
        }
        if declared.is_empty() {
            self.end(CallEnd::Refused { reason: SECURITY_REFUSAL.into() }, true);
            return false;
        }
        self.0.borrow_mut().expected = declared;
        true
    }

    async fn set_remote(&self, pc: &RtcPeerConnection, kind: RtcSdpType, sdp: &str) -> Result<(), JsValue> {
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(sdp);
        JsFuture::from(pc.set_remote_description(&init)).await?;
        let pending = {
            let mut inner = self.0.borrow_mut();
            inner.remote_set = true;
            std::mem::take(&mut inner.pending)
        };
        for c in pending {
            JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&c))).await?;
        }
        Ok(())
    }

    fn connection_changed(&self) {
        let Some(pc) = self.0.borrow().pc.clone() else { return };
        let state = js_sys::Reflect::get(&pc, &"connectionState".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        match state.as_str() {
            "connected" => {
                if std::mem::replace(&mut self.0.borrow_mut().verifying, true) {
                    return;
                }
                let this = self.clone();
                spawn(async move { this.verify(pc).await });
            }
            "failed" => self.end(CallEnd::Failed { reason: "The call could not connect, or the connection was lost.".into() }, false),
            _ => {}
        }
    }

    /// The fingerprint binding: the certificate the DTLS handshake negotiated
    /// must be one the peer's authenticated SDP declared.
    async fn verify(&self, pc: RtcPeerConnection) {
        let negotiated = match JsFuture::from(pc.get_stats()).await {
            Ok(report) => negotiated_fingerprint(&report),
            Err(_) => None,
        };
        let ok = negotiated.is_some_and(|(alg, fp)| fingerprint_matches(&self.0.borrow().expected, &alg, &fp));
        if ok {
            self.emit(CallEvent::Phase(Phase::Verified));
        } else {
            self.end(CallEnd::Refused { reason: SECURITY_REFUSAL.into() }, true);
        }
    }

    /// Turns this side's microphone and camera on or off and tells the peer.
    pub fn set_media(&self, audio: bool, video: bool) {
        if let Some(local) = self.0.borrow().local.clone() {
            for t in local.get_audio_tracks().iter().filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok()) {
                t.set_enabled(audio);
            }
            for t in local.get_video_tracks().iter().filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok()) {
                t.set_enabled(video);
            }
        }
        if self.0.borrow().pc.is_some() {
            self.send(&Signal::Media { audio, video });
        }
    }

    /// Hangs up: tells the peer, closes the connection.
    pub fn hang_up(&self) {
        if self.0.borrow().ended {
            return;
        }
        self.send(&Signal::Hangup);
        self.end(CallEnd::HungUp, false);
    }

    /// Closes the connection and the camera without telling anyone (the
    /// screen went away: returned to the waiting room, removed, ended).
    pub fn close(&self) {
        let mut inner = self.0.borrow_mut();
        inner.ended = true;
        if let Some(pc) = inner.pc.take() {
            pc.set_onicecandidate(None);
            pc.set_ontrack(None);
            pc.set_onconnectionstatechange(None);
            pc.close();
        }
        if let Some(local) = inner.local.take() {
            stop_tracks(&local);
        }
        inner.closures.clear();
        inner.backlog.clear();
        inner.pending.clear();
    }

    /// Ends the call once: closes it and reports how. A refusal also tells the
    /// peer (sealed, so a relay cannot forge one), so both sides stop and show
    /// why (`tell_peer`).
    fn end(&self, how: CallEnd, tell_peer: bool) {
        if self.0.borrow().ended {
            return;
        }
        if tell_peer {
            let signal = if matches!(how, CallEnd::Refused { .. }) { Signal::Refused } else { Signal::Hangup };
            self.send(&signal);
            if self.0.borrow().ended {
                return;
            }
        }
        self.close();
        self.emit(CallEvent::End(how));
    }
}

/// Adds the connection to `window.__handoffCallPeers` (the browser tests read
/// its `getStats()`).
fn publish_peer(window: &web_sys::Window, pc: &RtcPeerConnection) {
    let key: JsValue = "__handoffCallPeers".into();
    let list = match js_sys::Reflect::get(window, &key).ok().and_then(|v| v.dyn_into::<js_sys::Array>().ok()) {
        Some(list) => list,
        None => {
            let list = js_sys::Array::new();
            let _ = js_sys::Reflect::set(window, &key, &list);
            list
        }
    };
    list.push(pc);
}

fn stop_tracks(stream: &MediaStream) {
    for t in stream.get_tracks().iter().filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok()) {
        t.stop();
    }
}

fn sdp_of(desc: &JsValue) -> Result<String, JsValue> {
    js_sys::Reflect::get(desc, &"sdp".into())?.as_string().ok_or_else(|| "no SDP".into())
}

fn describe(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| "unknown error".into())
}

/// The `(algorithm, fingerprint)` of the remote certificate in a `getStats()`
/// report: the transport's `remoteCertificateId` names a `certificate` entry.
fn negotiated_fingerprint(report: &JsValue) -> Option<(String, String)> {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &k.into()).ok().and_then(|v| v.as_string());
    let stats: Vec<JsValue> =
        js_sys::try_iter(report).ok()??.filter_map(Result::ok).filter_map(|entry| js_sys::Reflect::get(&entry, &1.into()).ok()).collect();
    let cert_id = stats.iter().filter(|s| get(s, "type").as_deref() == Some("transport")).find_map(|s| get(s, "remoteCertificateId"))?;
    let cert = stats.iter().find(|s| get(s, "id").as_deref() == Some(cert_id.as_str()))?;
    Some((get(cert, "fingerprintAlgorithm")?, get(cert, "fingerprint")?))
}

/// The ICE servers the deployment configured (`HANDOFF_ICE_SERVERS`), as the
/// JSON list `RTCConfiguration.iceServers` takes; none if unset or unreachable.
async fn ice_servers() -> JsValue {
    let servers = crate::api::call::<handoff_protocol::api::GetIceServers>(&(), &()).await.map(|r| r.ice_servers).unwrap_or_default();
    serde_json::to_string(&servers).ok().and_then(|json| js_sys::JSON::parse(&json).ok()).unwrap_or_else(|| js_sys::Array::new().into())
}
