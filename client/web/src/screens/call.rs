//! The built-in call's screen: the two videos, mute, camera off and hang up.
//! The room screens render it once an admission opens in built-in mode
//! (guest) or right after admitting in built-in mode (host), pass each
//! arriving `signal` event down as `incoming`, and send what it seals through
//! their [`SignalChannel`].

use std::rc::Rc;

use handoff_protocol::{GuestId, RoomId};
use web_sys::{HtmlMediaElement, MediaStream};
use yew::prelude::*;

use crate::call::{Call, CallEvent, Phase};
pub use crate::call::{CallEnd, CallRole, SignalChannel};

/// What the room screen gives the call.
#[derive(Properties, Clone)]
pub struct CallProps {
    /// Which side this browser is.
    pub role: CallRole,
    /// The room of the call.
    pub room: RoomId,
    /// The admitted guest.
    pub guest: GuestId,
    /// The call key the host made at admission (sealed to the guest by HPKE).
    pub call_key: Rc<[u8; 32]>,
    /// Sends one sealed signal (`room_signal` / `guest_signal`).
    pub channel: Rc<dyn SignalChannel>,
    /// The latest sealed signal from the other side, with a counter that
    /// changes for every message.
    pub incoming: Option<(u64, Rc<Vec<u8>>)>,
    /// The call is over: hung up, refused (with the reason), or failed.
    pub on_end: Callback<CallEnd>,
}

impl PartialEq for CallProps {
    fn eq(&self, o: &Self) -> bool {
        self.role == o.role
            && self.room == o.room
            && self.guest == o.guest
            && self.call_key == o.call_key
            && Rc::ptr_eq(&self.channel, &o.channel)
            && self.incoming.as_ref().map(|i| i.0) == o.incoming.as_ref().map(|i| i.0)
            && self.on_end == o.on_end
    }
}

#[derive(Clone, PartialEq, Default)]
struct View {
    phase: Option<Phase>,
    local: Option<MediaStream>,
    remote: Option<MediaStream>,
    peer_audio: bool,
    peer_video: bool,
    ended: Option<CallEnd>,
}

impl Reducible for View {
    type Action = CallEvent;
    fn reduce(self: Rc<Self>, e: CallEvent) -> Rc<Self> {
        let mut v = (*self).clone();
        match e {
            CallEvent::Local(s) => v.local = Some(s),
            CallEvent::Remote(s) => v.remote = Some(s),
            CallEvent::Phase(p) => v.phase = Some(p),
            CallEvent::PeerMedia { audio, video } => (v.peer_audio, v.peer_video) = (audio, video),
            CallEvent::End(how) => v.ended = Some(how),
        }
        Rc::new(v)
    }
}

fn attach(node: &NodeRef, stream: Option<&MediaStream>) {
    if let Some(el) = node.cast::<HtmlMediaElement>() {
        el.set_src_object(stream);
    }
}

/// The call: this side's camera small, the other side's large, and controls.
#[function_component(CallView)]
pub fn call_view(p: &CallProps) -> Html {
    let view = use_reducer(|| View { peer_audio: true, peer_video: true, ..View::default() });
    let call = use_mut_ref(|| None::<Call>);
    let mic = use_state(|| true);
    let cam = use_state(|| true);
    let (local_ref, remote_ref) = (use_node_ref(), use_node_ref());

    // The latest `on_end` and channel the screen passed: a screen that makes
    // them anew on each render is still heard.
    let on_end_now = use_mut_ref(|| p.on_end.clone());
    *on_end_now.borrow_mut() = p.on_end.clone();
    if let Some(c) = call.borrow().as_ref() {
        c.set_channel(p.channel.clone());
    }
    {
        let (call, view, on_end) = (call.clone(), view.dispatcher(), on_end_now.clone());
        let (role, room, guest, key, channel) = (p.role, p.room, p.guest, p.call_key.clone(), p.channel.clone());
        use_effect_with((role, room, guest), move |_| {
            let notify = Rc::new(move |e: CallEvent| {
                if let CallEvent::End(how) = &e {
                    let on_end = on_end.borrow().clone();
                    on_end.emit(how.clone());
                }
                view.dispatch(e);
            });
            *call.borrow_mut() = Some(Call::start(role, room, guest, &key, channel, notify));
            move || {
                if let Some(c) = call.borrow_mut().take() {
                    c.close();
                }
            }
        });
    }
    {
        let call = call.clone();
        use_effect_with(p.incoming.clone(), move |incoming| {
            if let (Some((_, bytes)), Some(c)) = (incoming, call.borrow().as_ref()) {
                c.receive(bytes);
            }
        });
    }
    {
        let (local_ref, remote_ref) = (local_ref.clone(), remote_ref.clone());
        use_effect_with((view.local.clone(), view.remote.clone()), move |(local, remote)| {
            attach(&local_ref, local.as_ref());
            attach(&remote_ref, remote.as_ref());
        });
    }

    let toggle = |which_mic: bool| {
        let (call, mic, cam) = (call.clone(), mic.clone(), cam.clone());
        Callback::from(move |_: MouseEvent| {
            let (a, v) = if which_mic { (!*mic, *cam) } else { (*mic, !*cam) };
            mic.set(a);
            cam.set(v);
            if let Some(c) = call.borrow().as_ref() {
                c.set_media(a, v);
            }
        })
    };
    let hang_up = {
        let call = call.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(c) = call.borrow().as_ref() {
                c.hang_up();
            }
        })
    };

    if let Some(how) = &view.ended {
        let class = if matches!(how, CallEnd::Refused { .. }) { "notice call-ended call-refused" } else { "notice call-ended" };
        return html! { <div class={class} role="alert"><p>{ how.message() }</p></div> };
    }
    let status = match view.phase {
        None | Some(Phase::Starting) => "Starting your camera…",
        Some(Phase::Connecting) => match p.role {
            CallRole::Host => "Connecting to the patient…",
            CallRole::Guest => "Connecting to your clinician…",
        },
        Some(Phase::Verified) => "Connected. The call is end-to-end encrypted and its security check passed.",
    };
    let verified = view.phase == Some(Phase::Verified);
    html! {
        <section class="call" data-phase={if verified { "verified" } else { "connecting" }}>
            <p class="call-status muted">{ status }</p>
            <div class="call-videos">
                <video class="call-remote" ref={remote_ref} autoplay=true playsinline=true />
                <video class="call-local" ref={local_ref} autoplay=true playsinline=true muted=true />
            </div>
            if !view.peer_audio { <p class="muted call-peer-muted">{ "The other side muted their microphone." }</p> }
            if !view.peer_video { <p class="muted call-peer-camera">{ "The other side turned their camera off." }</p> }
            <div class="actions call-controls">
                <button class="call-mute" onclick={toggle(true)}>{ if *mic { "Mute" } else { "Unmute" } }</button>
                <button class="call-camera" onclick={toggle(false)}>{ if *cam { "Camera off" } else { "Camera on" } }</button>
                <button class="danger call-hang-up" onclick={hang_up}>{ "Hang up" }</button>
            </div>
        </section>
    }
}

/// One side's end of the harness's in-page relay.
struct LocalRelay {
    /// `"host-to-guest"` or `"guest-to-host"`, as the relay hook is told.
    direction: &'static str,
    deliver: Callback<Vec<u8>>,
}

impl SignalChannel for LocalRelay {
    fn send(&self, sealed: Vec<u8>) {
        let (direction, deliver) = (self.direction, self.deliver.clone());
        // Each message is delivered in its own task, as socket frames are, so
        // the other side renders once per message.
        crate::ui::spawn(async move {
            gloo_timers::future::TimeoutFuture::new(0).await;
            deliver.emit(relay_hook(direction, sealed));
        });
    }
}

/// `window.__handoffCallRelay(direction, bytes)`, when the page defines it,
/// sees every sealed signal and returns what to deliver instead: the browser
/// tests' man in the middle.
fn relay_hook(direction: &str, sealed: Vec<u8>) -> Vec<u8> {
    use wasm_bindgen::JsCast as _;
    let Some(hook) = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"__handoffCallRelay".into()).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return sealed;
    };
    let bytes = js_sys::Uint8Array::from(sealed.as_slice());
    match hook.call2(&wasm_bindgen::JsValue::NULL, &direction.into(), &bytes) {
        Ok(out) => out.dyn_into::<js_sys::Uint8Array>().map(|a| a.to_vec()).unwrap_or(sealed),
        Err(_) => sealed,
    }
}

/// `/call-harness`: both sides of a built-in call in one page, over an
/// in-page relay instead of the room socket, with the same [`CallView`].
/// It checks a device's camera and the deployment's ICE settings without a
/// room, and the browser tests drive it (with `__handoffCallRelay` as the
/// man in the middle). It holds no account data and needs no sign-in.
#[function_component(CallHarness)]
pub fn call_harness() -> Html {
    let setup = use_memo((), |_| {
        let key = handoff_crypto::random_array::<32>().unwrap_or([7; 32]);
        let ids = handoff_crypto::random_array::<32>().unwrap_or([9; 32]);
        let (room, guest) = ids.split_at(16);
        let id = |b: &[u8]| <[u8; 16]>::try_from(b).unwrap_or([0; 16]);
        (Rc::new(key), RoomId::from_bytes(id(room)), GuestId::from_bytes(id(guest)))
    });
    let (key, room, guest) = (setup.0.clone(), setup.1, setup.2);
    let to_host = use_state(|| None::<(u64, Rc<Vec<u8>>)>);
    let to_guest = use_state(|| None::<(u64, Rc<Vec<u8>>)>);
    let started = use_state(|| false);
    let channels = {
        let (to_host, to_guest) = (to_host.setter(), to_guest.setter());
        use_memo((), move |_| {
            let counter = Rc::new(std::cell::Cell::new(0u64));
            let next = move || {
                counter.set(counter.get() + 1);
                counter.get()
            };
            let next2 = next.clone();
            let host: Rc<dyn SignalChannel> = Rc::new(LocalRelay {
                direction: "host-to-guest",
                deliver: Callback::from(move |b: Vec<u8>| to_guest.set(Some((next(), Rc::new(b))))),
            });
            let guest: Rc<dyn SignalChannel> = Rc::new(LocalRelay {
                direction: "guest-to-host",
                deliver: Callback::from(move |b: Vec<u8>| to_host.set(Some((next2(), Rc::new(b))))),
            });
            (host, guest)
        })
    };
    let start = {
        let started = started.clone();
        Callback::from(move |_: MouseEvent| started.set(true))
    };
    html! {
        <main class="page call-harness">
            <h1>{ "Call check" }</h1>
            <p class="muted">{ "Both sides of a built-in call in this one page, to check the camera and the connection." }</p>
            if !*started {
                <button class="primary harness-start" onclick={start}>{ "Start" }</button>
            } else {
                <div class="harness-host"><h2>{ "Host" }</h2>
                    <CallView role={CallRole::Host} {room} {guest} call_key={key.clone()} channel={channels.0.clone()}
                        incoming={(*to_host).clone()} on_end={Callback::noop()} /></div>
                <div class="harness-guest"><h2>{ "Guest" }</h2>
                    <CallView role={CallRole::Guest} {room} {guest} call_key={key} channel={channels.1.clone()}
                        incoming={(*to_guest).clone()} on_end={Callback::noop()} /></div>
            }
        </main>
    }
}
