//! Telehealth rooms (issue 15), the members' side:
//!
//! - [`RoomsCard`] on the practice page: the rooms, each with its patient
//!   link (copy), its host link (the room's page here), rename, rotate the
//!   patient link (a new secret too: the old link stops working at once),
//!   delete; and the form that creates one.
//! - [`HostRoom`]: the waiting room, for any member: the decrypted check-ins
//!   in arrival order with the minutes waited (highlighted past the room's
//!   threshold), admit / return / remove / hand over, messages to the waiting
//!   room, my status, end the meeting, leave; and the arrival alerts (a
//!   browser notification without a name while the tab is in the background,
//!   and a knock every minute while someone waits unseen, mutable).
//! - [`RoomLinkPicker`]: on an accepted referral, copy a room's patient link
//!   or open a prefilled `mailto:` in the clinic's own email program.
//!
//! The room secret is opened here from its `sealed_secret` with the practice
//! key; it only ever leaves this tab inside a patient link's fragment.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use handoff_crypto::room::{Admission, CheckInContent, RoomKey, RoomSecret};
use handoff_protocol::api::{CreateRoom, DeleteRoom, ListRooms, RotateRoomLink, UpdateRoom};
use handoff_protocol::v1::{NewRoom, Room, RoomSettings, RoomUpdate, RoomVideo, RotateRoom as RotateRoomBody};
use handoff_protocol::ws::{Command, GuestState, GuestView, HostStatus, HostView, RoomEvent};
use handoff_protocol::{B64, GuestId, PracticeId, RoomId, UserId};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use yew::prelude::*;

use super::call::{CallEnd, CallRole, CallView, SignalChannel};
use crate::Ctx;
use crate::api::{self, ApiError, ApiResult};
use crate::guest::fragment_of;
use crate::live::Live;
use crate::live::RoomPush;
use crate::session::{Session, new_uuid, now_ms};
use crate::ui::{ErrorBox, Route, bind, checked, spawn};

/// The `localStorage` key of the knock's mute switch (a preference, no data).
const KNOCK_MUTED: &str = "handoff.rooms.knock_muted";
/// How often the knock repeats while someone waits unseen.
const KNOCK_EVERY_MS: u32 = 60_000;

/// Whether the knock is muted in this browser.
pub fn knock_muted() -> bool {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(KNOCK_MUTED).ok().flatten())
        .is_some_and(|v| v == "1")
}

/// Mutes or unmutes the knock in this browser.
pub fn set_knock_muted(muted: bool) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(KNOCK_MUTED, if muted { "1" } else { "0" });
    }
}

thread_local! {
    static AUDIO: RefCell<Option<web_sys::AudioContext>> = const { RefCell::new(None) };
}

/// Plays a knock: two short, low thumps made with Web Audio (no sound file).
pub fn knock() {
    AUDIO.with(|a| {
        let mut a = a.borrow_mut();
        if a.is_none() {
            *a = web_sys::AudioContext::new().ok();
        }
        let Some(ctx) = a.as_ref() else { return };
        let _ = ctx.resume();
        let now = ctx.current_time();
        for t in [0.0, 0.22] {
            let (Ok(osc), Ok(gain)) = (ctx.create_oscillator(), ctx.create_gain()) else { return };
            osc.set_type(web_sys::OscillatorType::Sine);
            osc.frequency().set_value(150.0);
            let g = gain.gain();
            let _ = g.set_value_at_time(0.0001, now + t);
            let _ = g.exponential_ramp_to_value_at_time(0.9, now + t + 0.01);
            let _ = g.exponential_ramp_to_value_at_time(0.0001, now + t + 0.14);
            let _ = osc.connect_with_audio_node(&gain);
            let _ = gain.connect_with_audio_node(&ctx.destination());
            let _ = osc.start_with_when(now + t);
            let _ = osc.stop_with_when(now + t + 0.16);
        }
    });
}

fn tab_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Hidden)
}

/// The arrival notification's text: the room's name, never the patient's.
pub fn arrival_text(room_name: &str) -> String {
    format!("A patient is waiting in {room_name}")
}

fn notify_arrival(room_name: &str) {
    if web_sys::Notification::permission() == web_sys::NotificationPermission::Granted {
        let opts = web_sys::NotificationOptions::new();
        opts.set_body(&arrival_text(room_name));
        opts.set_tag("handoff-room");
        let _ = web_sys::Notification::new_with_options("Handoff", &opts);
    }
}

/// A room's patient link: `<origin>/r/<link>#<secret>`. The secret is only in the fragment.
pub fn patient_link(link: &str, secret: &RoomSecret) -> String {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    format!("{origin}{}#{}", Route::PatientRoom(link.to_string()).path(), fragment_of(secret))
}

/// Copies text to the clipboard (best effort; the link is shown beside the button too).
pub fn copy_text(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

async fn open_link(s: &Session, r: &Room) -> ApiResult<String> {
    let secret = s.open_room_secret(r.practice, r.id, r.epoch, &r.sealed_secret).await?;
    Ok(patient_link(&r.link, &secret))
}

fn video_label(v: RoomVideo) -> &'static str {
    match v {
        RoomVideo::External => "External meeting link",
        RoomVideo::BuiltIn => "Built-in video",
    }
}

/// Props for [`RoomsCard`].
#[derive(Properties, PartialEq)]
pub struct RoomsCardProps {
    /// The practice.
    pub practice: PracticeId,
}

/// The practice page's rooms section.
#[function_component(RoomsCard)]
pub fn rooms_card(p: &RoomsCardProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let rooms = use_state(|| None::<Result<Vec<(Room, Result<String, ApiError>)>, ApiError>>);
    let reload = use_state(|| 0u32);
    let error = use_state(|| None::<ApiError>);
    {
        let (rooms, s, id) = (rooms.clone(), ctx.session.clone(), p.practice);
        use_effect_with((id, *reload), move |_| {
            spawn(async move {
                let list = api::call::<ListRooms>(&id, &()).await;
                let out = match list {
                    Ok(l) => {
                        let mut v = Vec::new();
                        for r in l.rooms {
                            let link = open_link(&s, &r).await;
                            v.push((r, link));
                        }
                        Ok(v)
                    }
                    Err(e) => Err(e),
                };
                rooms.set(Some(out));
            });
        });
    }
    let bump = {
        let reload = reload.clone();
        Callback::from(move |_| reload.set(*reload + 1))
    };
    let list = match &*rooms {
        None => html! { <p aria-busy="true">{ "Loading rooms…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(v)) if v.is_empty() => html! { <p class="muted">{ "No rooms yet." }</p> },
        Some(Ok(v)) => html! {
            <ul class="plain rooms">
                { for v.iter().map(|(r, link)| html! {
                    <RoomRow key={r.id.to_string()} room={r.clone()} link={link.clone().ok()} link_error={link.clone().err()}
                        on_changed={bump.clone()} error={error.clone()} />
                }) }
            </ul>
        },
    };
    html! {
        <section class="card" aria-labelledby="rooms-title" data-testid="rooms">
            <h2 id="rooms-title">{ "Virtual clinic rooms" }</h2>
            <p class="help">{ "Each room has one patient link that many patients share, and a host page any member of the practice can open. Patients' names are sealed in their browser: Handoff's server cannot read them." }</p>
            <ErrorBox error={(*error).clone()} />
            { list }
            <NewRoomForm practice={p.practice} on_created={bump} />
        </section>
    }
}

#[derive(Properties)]
struct RoomRowProps {
    room: Room,
    link: Option<String>,
    link_error: Option<ApiError>,
    on_changed: Callback<()>,
    error: UseStateHandle<Option<ApiError>>,
}

impl PartialEq for RoomRowProps {
    fn eq(&self, o: &Self) -> bool {
        self.room == o.room && self.link == o.link && self.link_error == o.link_error
    }
}

#[function_component(RoomRow)]
fn room_row(p: &RoomRowProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let name = use_state(|| p.room.name.clone());
    let confirm_delete = use_state(|| false);
    let copied = use_state(|| false);
    let r = p.room.clone();
    let run = |f: std::pin::Pin<Box<dyn Future<Output = ApiResult<()>>>>, error: UseStateHandle<Option<ApiError>>, done: Callback<()>| {
        spawn(async move {
            match f.await {
                Ok(()) => {
                    error.set(None);
                    done.emit(());
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let rename = {
        let (r, name, error, done) = (r.clone(), name.clone(), p.error.clone(), p.on_changed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (r, n) = (r.clone(), (*name).trim().to_string());
            run(
                Box::pin(async move {
                    api::call::<UpdateRoom>(&(r.practice, r.id), &RoomUpdate { name: Some(n), settings: None }).await.map(|_| ())
                }),
                error.clone(),
                done.clone(),
            );
        })
    };
    let rotate = {
        let (r, s, error, done) = (r.clone(), ctx.session.clone(), p.error.clone(), p.on_changed.clone());
        Callback::from(move |_| {
            let (r, s) = (r.clone(), s.clone());
            run(
                Box::pin(async move {
                    let (_, sealed, epoch) = s.new_room_secret(r.practice, r.id).await?;
                    api::call::<RotateRoomLink>(&(r.practice, r.id), &RotateRoomBody { sealed_secret: sealed, epoch }).await.map(|_| ())
                }),
                error.clone(),
                done.clone(),
            );
        })
    };
    let delete = {
        let (r, error, done, confirm) = (r.clone(), p.error.clone(), p.on_changed.clone(), confirm_delete.clone());
        Callback::from(move |_| {
            if !*confirm {
                confirm.set(true);
                return;
            }
            let r = r.clone();
            run(Box::pin(async move { api::call::<DeleteRoom>(&(r.practice, r.id), &()).await }), error.clone(), done.clone());
        })
    };
    let copy = {
        let (link, copied) = (p.link.clone(), copied.clone());
        Callback::from(move |_| {
            if let Some(l) = &link {
                copy_text(l);
                copied.set(true);
            }
        })
    };
    let open = {
        let (nav, r) = (ctx.nav.clone(), r.clone());
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            nav.emit(Route::Room(r.practice, r.id));
        })
    };
    let fid = format!("room-name-{}", r.id);
    html! {
        <li class="room" data-testid="room-row" data-room={r.id.to_string()}>
            <h3>{ r.name.clone() }</h3>
            <p class="muted">
                { video_label(r.settings.video) }
                { format!(" · alert after {} min", r.settings.wait_alert_minutes) }
                { if r.settings.ask_dob { " · asks date of birth" } else { "" } }
                { if r.settings.ask_reason { " · asks the reason" } else { "" } }
            </p>
            <p><a href={Route::Room(r.practice, r.id).path()} onclick={open} data-testid="open-room">{ "Open the waiting room (host link)" }</a></p>
            if let Some(link) = &p.link {
                <div class="row">
                    <label class="sr-only" for={format!("link-{}", r.id)}>{ "Patient link" }</label>
                    <input id={format!("link-{}", r.id)} readonly=true value={link.clone()} data-testid="patient-link" />
                    <button class="small" onclick={copy}>{ if *copied { "Copied" } else { "Copy patient link" } }</button>
                </div>
            }
            if let Some(e) = &p.link_error { <ErrorBox error={Some(e.clone())} /> }
            <form class="row" onsubmit={rename}>
                <label for={fid.clone()}>{ "Name" }</label>
                <input id={fid} value={(*name).clone()} oninput={bind(&name)} maxlength="100" />
                <button class="small" type="submit" disabled={name.trim().is_empty() || *name == r.name}>{ "Rename" }</button>
            </form>
            <div class="row">
                <button class="small" onclick={rotate} data-testid="rotate-link">{ "New patient link" }</button>
                <button class="small danger" onclick={delete}>{ if *confirm_delete { "Really delete this room?" } else { "Delete room" } }</button>
            </div>
        </li>
    }
}

#[derive(Properties, PartialEq)]
struct NewRoomProps {
    practice: PracticeId,
    on_created: Callback<()>,
}

#[function_component(NewRoomForm)]
fn new_room_form(p: &NewRoomProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let name = use_state(String::new);
    let ask_dob = use_state(|| false);
    let ask_reason = use_state(|| false);
    let minutes = use_state(|| "5".to_string());
    let built_in = use_state(|| false);
    let external = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let submit = {
        let (s, practice, done) = (ctx.session.clone(), p.practice, p.on_created.clone());
        let (name, ask_dob, ask_reason, minutes, built_in, external, error, busy) = (
            name.clone(),
            ask_dob.clone(),
            ask_reason.clone(),
            minutes.clone(),
            built_in.clone(),
            external.clone(),
            error.clone(),
            busy.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Ok(wait) = minutes.trim().parse::<u32>() else {
                error.set(Some(ApiError::local("The alert threshold is a number of minutes (1 to 120).")));
                return;
            };
            let (s, done, error, busy, name) = (s.clone(), done.clone(), error.clone(), busy.clone(), name.clone());
            let (n, dob, reason, video, ext) = (
                (*name).trim().to_string(),
                *ask_dob,
                *ask_reason,
                if *built_in { RoomVideo::BuiltIn } else { RoomVideo::External },
                (*external).trim().to_string(),
            );
            busy.set(true);
            spawn(async move {
                let res = async {
                    let id = RoomId(new_uuid()?);
                    let (secret, sealed, epoch) = s.new_room_secret(practice, id).await?;
                    let sealed_external_link =
                        if ext.is_empty() { None } else { Some(B64(secret.room_key(*id.as_bytes()).seal_external_link(&ext)?)) };
                    let settings = RoomSettings { ask_dob: dob, ask_reason: reason, wait_alert_minutes: wait, video, sealed_external_link };
                    api::call::<CreateRoom>(&practice, &NewRoom { id, name: n, sealed_secret: sealed, epoch, settings }).await
                }
                .await;
                busy.set(false);
                match res {
                    Ok(_) => {
                        error.set(None);
                        name.set(String::new());
                        done.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <form class="stack" onsubmit={submit} aria-labelledby="new-room-title">
            <h3 id="new-room-title">{ "New room" }</h3>
            <ErrorBox error={(*error).clone()} />
            <label for="room-name">{ "Room name" }</label>
            <input id="room-name" value={(*name).clone()} oninput={bind(&name)} maxlength="100" placeholder="Dr. Lee's virtual clinic" />
            <fieldset>
                <legend>{ "Ask the patient for" }</legend>
                <label><input id="room-ask-dob" type="checkbox" checked={*ask_dob} onchange={{ let s = ask_dob.clone(); Callback::from(move |e: Event| s.set(checked(&e))) }} />{ " Date of birth" }</label>
                <label><input id="room-ask-reason" type="checkbox" checked={*ask_reason} onchange={{ let s = ask_reason.clone(); Callback::from(move |e: Event| s.set(checked(&e))) }} />{ " Reason for the visit" }</label>
            </fieldset>
            <label for="room-alert">{ "Highlight a patient waiting longer than (minutes)" }</label>
            <input id="room-alert" type="number" min="1" max="120" value={(*minutes).clone()} oninput={bind(&minutes)} />
            <fieldset>
                <legend>{ "Video" }</legend>
                <label><input type="radio" name="room-video" id="room-video-external" checked={!*built_in} onchange={{ let s = built_in.clone(); Callback::from(move |_| s.set(false)) }} />{ " The clinic's own meeting link (Zoom, Doxy.me, …)" }</label>
                <label><input type="radio" name="room-video" id="room-video-built-in" checked={*built_in} onchange={{ let s = built_in.clone(); Callback::from(move |_| s.set(true)) }} />{ " Built-in video (1:1, in the browser)" }</label>
            </fieldset>
            if !*built_in {
                <label for="room-external">{ "Meeting link (sealed: only admitted patients receive it)" }</label>
                <input id="room-external" type="url" value={(*external).clone()} oninput={bind(&external)} placeholder="https://…" />
            }
            <button class="primary" type="submit" disabled={*busy || name.trim().is_empty()}>{ "Create room" }</button>
        </form>
    }
}

// ---- The host's waiting room ----

/// The host's side of the call's signalling: `room_signal` to the admitted guest.
struct HostChannel {
    live: Live,
    room: RoomId,
    guest: GuestId,
}

impl SignalChannel for HostChannel {
    fn send(&self, sealed: Vec<u8>) {
        let (live, room, guest) = (self.live.clone(), self.room, self.guest);
        spawn(async move {
            let _ = live.command(Command::RoomSignal { room, guest, sealed: B64(sealed) }).await;
        });
    }
}

/// The built-in call the host is in: the guest, the call key, the channel.
#[derive(Clone)]
struct HostCall {
    guest: GuestId,
    key: Rc<[u8; 32]>,
    channel: Rc<dyn SignalChannel>,
}

impl PartialEq for HostCall {
    fn eq(&self, o: &Self) -> bool {
        self.guest == o.guest && self.key == o.key
    }
}

/// One guest as the host sees it.
#[derive(Clone, Debug, PartialEq)]
struct GuestRow {
    guest: GuestId,
    checked_in_at: i64,
    state: GuestState,
    host: Option<UserId>,
    /// The opened check-in; `None` if it does not open under this room's key.
    content: Option<CheckInContent>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Waiting {
    guests: Vec<GuestRow>,
    hosts: Vec<HostView>,
    messages: Vec<(i64, String)>,
    ended: bool,
}

enum RoomAction {
    Joined(Vec<GuestRow>, Vec<HostView>),
    Upsert(GuestRow),
    State(GuestId, GuestState, Option<UserId>),
    Host(HostView),
    HostLeft(UserId),
    Message(i64, String),
    Ended,
}

impl Reducible for Waiting {
    type Action = RoomAction;
    fn reduce(self: Rc<Self>, a: RoomAction) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            RoomAction::Joined(g, h) => {
                s.guests = g;
                s.hosts = h;
                s.ended = false;
            }
            RoomAction::Upsert(g) => match s.guests.iter_mut().find(|x| x.guest == g.guest) {
                Some(x) => *x = g,
                None => s.guests.push(g),
            },
            RoomAction::State(id, state, host) => {
                if matches!(state, GuestState::Removed | GuestState::Left) {
                    s.guests.retain(|x| x.guest != id);
                } else if let Some(x) = s.guests.iter_mut().find(|x| x.guest == id) {
                    x.state = state;
                    x.host = host;
                }
            }
            RoomAction::Host(h) => match s.hosts.iter_mut().find(|x| x.user == h.user) {
                Some(x) => *x = h,
                None => s.hosts.push(h),
            },
            RoomAction::HostLeft(u) => s.hosts.retain(|x| x.user != u),
            RoomAction::Message(at, text) => s.messages.push((at, text)),
            RoomAction::Ended => {
                s.ended = true;
                s.guests.clear();
            }
        }
        // Arrival order: the original check-in time, kept across restarts.
        s.guests.sort_by_key(|g| (g.checked_in_at, g.guest));
        Rc::new(s)
    }
}

fn row_of(key: &RoomKey, g: GuestView) -> GuestRow {
    GuestRow {
        guest: g.guest,
        checked_in_at: g.checked_in_at,
        state: g.state,
        host: g.host,
        content: key.open_check_in(g.sealed.as_slice()).ok(),
    }
}

fn status_label(s: HostStatus) -> &'static str {
    match s {
        HostStatus::Ready => "Ready",
        HostStatus::Busy => "With another patient",
        HostStatus::Away => "Away",
    }
}

/// Props for [`HostRoom`].
#[derive(Properties, PartialEq)]
pub struct HostRoomProps {
    /// The room's practice.
    pub practice: PracticeId,
    /// The room.
    pub room: RoomId,
}

/// A room's waiting room, hosted by the signed-in member.
#[function_component(HostRoom)]
pub fn host_room(p: &HostRoomProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let room = use_state(|| None::<Result<(Room, Rc<RoomKey>), ApiError>>);
    let waiting = use_reducer(Waiting::default);
    let names = use_state(HashMap::<UserId, String>::new);
    let my_status = use_state(|| HostStatus::Ready);
    let error = use_state(|| None::<ApiError>);
    let message = use_state(String::new);
    let tick = use_state(|| 0u32);
    let muted = use_state(knock_muted);
    let left = use_state(|| false);
    let hand_to = use_state(HashMap::<GuestId, String>::new);
    let call = use_state(|| None::<HostCall>);
    let incoming = use_state(|| None::<(u64, Rc<Vec<u8>>)>);
    let call_end = use_state(|| None::<String>);
    let counter = use_mut_ref(|| 0u64);
    // The guest of the call in progress, for the event callback (state handles there are stale).
    let call_guest = use_mut_ref(|| None::<GuestId>);
    // Guests who arrived while the tab was in the background, not seen yet.
    let unseen = use_mut_ref(HashSet::<GuestId>::new);
    let known = use_mut_ref(HashSet::<GuestId>::new);

    // Load the room, open its key, then host it.
    {
        let (room, s, live, waiting, names, error) =
            (room.clone(), ctx.session.clone(), ctx.live.clone(), waiting.clone(), names.clone(), error.clone());
        let (unseen, known, rid, practice) = (unseen.clone(), known.clone(), p.room, p.practice);
        let (call, incoming, counter, call_guest) = (call.clone(), incoming.clone(), counter.clone(), call_guest.clone());
        use_effect_with((practice, rid), move |_| {
            let live2 = live.clone();
            spawn(async move {
                let res = async {
                    let list = api::call::<ListRooms>(&practice, &()).await?;
                    let r = list
                        .rooms
                        .into_iter()
                        .find(|r| r.id == rid)
                        .ok_or_else(|| ApiError::local("This room does not exist (or was deleted)."))?;
                    let secret = s.open_room_secret(r.practice, r.id, r.epoch, &r.sealed_secret).await?;
                    Ok::<_, ApiError>((r, Rc::new(secret.room_key(*rid.as_bytes()))))
                }
                .await;
                let (r, key) = match res {
                    Ok(x) => x,
                    Err(e) => {
                        room.set(Some(Err(e)));
                        return;
                    }
                };
                if let Ok(m) = api::members(practice).await {
                    names.set(m.members.into_iter().map(|m| (m.user_id, m.display_name)).collect());
                }
                let room_name = r.name.clone();
                room.set(Some(Ok((r, key.clone()))));
                let cb = Callback::from(move |push: RoomPush| match push {
                    RoomPush::Joined { room, guests, hosts } if room == rid => {
                        let rows: Vec<GuestRow> = guests.into_iter().map(|g| row_of(&key, g)).collect();
                        // Known guests stay known across reconnects: re-check-ins after a restart are no new arrivals.
                        known.borrow_mut().extend(rows.iter().map(|g| g.guest));
                        waiting.dispatch(RoomAction::Joined(rows, hosts));
                    }
                    RoomPush::Event { room, event } if room == rid => match event {
                        RoomEvent::GuestWaiting { guest, sealed, checked_in_at } => {
                            let content = key.open_check_in(sealed.as_slice()).ok();
                            // A new arrival (not a re-check-in after a reconnect): alert a host who is not looking.
                            if known.borrow_mut().insert(guest) && tab_hidden() {
                                notify_arrival(&room_name);
                                unseen.borrow_mut().insert(guest);
                                if !knock_muted() {
                                    knock();
                                }
                            }
                            waiting.dispatch(RoomAction::Upsert(GuestRow {
                                guest,
                                checked_in_at,
                                state: GuestState::Waiting,
                                host: None,
                                content,
                            }));
                        }
                        RoomEvent::GuestState { guest, state, host } => {
                            // Returned, removed or gone: their call ends.
                            if state != GuestState::Admitted && *call_guest.borrow() == Some(guest) {
                                *call_guest.borrow_mut() = None;
                                call.set(None);
                            }
                            if state != GuestState::Waiting {
                                unseen.borrow_mut().remove(&guest);
                            }
                            if matches!(state, GuestState::Removed | GuestState::Left) {
                                known.borrow_mut().remove(&guest);
                            }
                            waiting.dispatch(RoomAction::State(guest, state, host));
                        }
                        RoomEvent::HostJoined { user, status } | RoomEvent::HostStatus { user, status } => {
                            waiting.dispatch(RoomAction::Host(HostView { user, status }))
                        }
                        RoomEvent::HostLeft { user } => waiting.dispatch(RoomAction::HostLeft(user)),
                        RoomEvent::Message { sealed, at } => {
                            if let Ok(t) = key.open_message(sealed.as_slice()) {
                                waiting.dispatch(RoomAction::Message(at, t));
                            }
                        }
                        RoomEvent::Ended {} => {
                            call.set(None);
                            waiting.dispatch(RoomAction::Ended)
                        }
                        RoomEvent::Signal { guest, sealed } if *call_guest.borrow() == Some(guest) => {
                            let mut c = counter.borrow_mut();
                            *c += 1;
                            incoming.set(Some((*c, Rc::new(sealed.0))));
                        }
                        _ => {}
                    },
                    _ => {}
                });
                live.on_room(Some(cb));
                if let Err(e) = live.host_room(rid, HostStatus::Ready).await {
                    error.set(Some(e));
                }
            });
            move || {
                live2.on_room(None);
                live2.forget_room(rid);
                let live3 = live2.clone();
                spawn(async move {
                    let _ = live3.command(Command::RoomLeave { room: rid }).await;
                });
            }
        });
    }

    // The minutes waited tick; the knock repeats while someone waits unseen;
    // coming back to the tab counts as seeing them.
    {
        let (tick, unseen) = (tick.clone(), unseen.clone());
        use_effect_with((), move |_| {
            let t = tick.clone();
            let clock = gloo_timers::callback::Interval::new(15_000, move || t.set(now_ms() as u32));
            let u = unseen.clone();
            let knocker = gloo_timers::callback::Interval::new(KNOCK_EVERY_MS, move || {
                if tab_hidden() && !u.borrow().is_empty() && !knock_muted() {
                    knock();
                }
            });
            let u = unseen.clone();
            let on_visible = Closure::<dyn FnMut(Event)>::new(move |_| {
                if !tab_hidden() {
                    u.borrow_mut().clear();
                }
            });
            let doc = web_sys::window().and_then(|w| w.document());
            if let Some(d) = &doc {
                let _ = d.add_event_listener_with_callback("visibilitychange", on_visible.as_ref().unchecked_ref());
            }
            move || {
                drop(clock);
                drop(knocker);
                if let Some(d) = &doc {
                    let _ = d.remove_event_listener_with_callback("visibilitychange", on_visible.as_ref().unchecked_ref());
                }
                drop(on_visible);
            }
        });
    }
    let _ = *tick;

    let (r, key) = match &*room {
        None => return html! { <p aria-busy="true">{ "Opening the waiting room…" }</p> },
        Some(Err(e)) => return html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok((r, key))) => (r.clone(), key.clone()),
    };
    let rid = r.id;
    let me = ctx.session.me.id;
    let name_of = |u: UserId| names.get(&u).cloned().unwrap_or_else(|| "A colleague".into());
    let cmd = {
        let (live, error) = (ctx.live.clone(), error.clone());
        move |c: Command| {
            let (live, error) = (live.clone(), error.clone());
            spawn(async move {
                match live.command(c).await {
                    Ok(_) => error.set(None),
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    let threshold = i64::from(r.settings.wait_alert_minutes) * 60_000;
    let now = now_ms();
    let rows = waiting.guests.iter().map(|g| {
        let mins = ((now - g.checked_in_at).max(0)) / 60_000;
        let late = g.state == GuestState::Waiting && now - g.checked_in_at >= threshold;
        let name = g.content.as_ref().map(|c| c.name.clone()).unwrap_or_else(|| "(a check-in that does not open: wrong link?)".into());
        let admit = {
            let (cmd, r, key, g, error) = (cmd.clone(), r.clone(), key.clone(), g.clone(), error.clone());
            let (call, incoming, call_end, live, call_guest) = (call.clone(), incoming.clone(), call_end.clone(), ctx.live.clone(), call_guest.clone());
            Callback::from(move |_| {
                let Some(c) = &g.content else { return };
                let res = (|| -> ApiResult<(B64, Option<[u8; 32]>)> {
                    let (adm, call_key) = match r.settings.video {
                        RoomVideo::External => {
                            let sealed = r.settings.sealed_external_link.as_ref().ok_or_else(|| ApiError::local("This room has no meeting link: set one first."))?;
                            (Admission::External { link: key.open_external_link(sealed.as_slice())? }, None)
                        }
                        RoomVideo::BuiltIn => {
                            let (a, k) = Admission::new_call()?;
                            (a, Some(k))
                        }
                    };
                    // Sealed to the key in the guest's own sealed check-in, never one the server names.
                    Ok((B64(adm.seal_to(c.public_key.as_slice(), *rid.as_bytes(), *g.guest.as_bytes())?), call_key))
                })();
                match res {
                    Ok((sealed_admission, call_key)) => {
                        if let Some(k) = call_key {
                            incoming.set(None);
                            call_end.set(None);
                            let channel: Rc<dyn SignalChannel> = Rc::new(HostChannel { live: live.clone(), room: rid, guest: g.guest });
                            *call_guest.borrow_mut() = Some(g.guest);
                            call.set(Some(HostCall { guest: g.guest, key: Rc::new(k), channel }));
                        }
                        cmd(Command::RoomAdmit { room: rid, guest: g.guest, sealed_admission })
                    }
                    Err(e) => error.set(Some(e)),
                }
            })
        };
        let ret = { let (cmd, id) = (cmd.clone(), g.guest); Callback::from(move |_| cmd(Command::RoomReturn { room: rid, guest: id })) };
        let remove = { let (cmd, id) = (cmd.clone(), g.guest); Callback::from(move |_| cmd(Command::RoomRemove { room: rid, guest: id })) };
        let others: Vec<&HostView> = waiting.hosts.iter().filter(|h| h.user != me).collect();
        let hand_over = {
            let (cmd, id, hand_to) = (cmd.clone(), g.guest, hand_to.clone());
            let first = others.first().map(|h| h.user.to_string());
            Callback::from(move |_| {
                let to = hand_to.get(&id).cloned().or_else(|| first.clone()).and_then(|s| s.parse::<uuid::Uuid>().ok());
                if let Some(to) = to {
                    cmd(Command::RoomHandOver { room: rid, guest: id, to: UserId(to) });
                }
            })
        };
        let pick = {
            let (hand_to, id) = (hand_to.clone(), g.guest);
            Callback::from(move |e: Event| {
                let mut m = (*hand_to).clone();
                m.insert(id, crate::ui::select_value(&e));
                hand_to.set(m);
            })
        };
        let state_text = match (g.state, g.host) {
            (GuestState::Admitted, Some(h)) if h == me => "With you".to_string(),
            (GuestState::Admitted, Some(h)) => format!("With {}", name_of(h)),
            (GuestState::Admitted, None) => "Admitted".into(),
            (_, Some(h)) if h == me => "Waiting (handed to you)".into(),
            (_, Some(h)) => format!("Waiting (for {})", name_of(h)),
            _ => "Waiting".into(),
        };
        html! {
            <li key={g.guest.to_string()} class={classes!("guest", late.then_some("late"))} data-testid="guest-row" data-late={late.to_string()}>
                <strong data-testid="guest-name">{ name }</strong>
                { g.content.as_ref().and_then(|c| c.dob.clone()).map(|d| html! { <span class="muted">{ format!(" · born {d}") }</span> }).unwrap_or_default() }
                { g.content.as_ref().and_then(|c| c.reason.clone()).map(|d| html! { <span class="muted">{ format!(" · {d}") }</span> }).unwrap_or_default() }
                <span class={classes!("tag", if late { "warn" } else { "wait" })} data-testid="waited">{ format!(" waited {mins} min") }</span>
                <span class="muted" data-testid="guest-state">{ format!(" · {state_text}") }</span>
                <div class="row">
                    if g.state == GuestState::Waiting { <button class="primary small" onclick={admit} data-testid="admit" disabled={g.content.is_none()}>{ "Admit" }</button> }
                    if g.state == GuestState::Admitted { <button class="small" onclick={ret} data-testid="return">{ "Return to waiting" }</button> }
                    <button class="small danger" onclick={remove} data-testid="remove">{ "Remove" }</button>
                    if g.state == GuestState::Waiting && !others.is_empty() {
                        <select aria-label="Hand over to" onchange={pick}>
                            { for others.iter().map(|h| html! { <option value={h.user.to_string()}>{ name_of(h.user) }</option> }) }
                        </select>
                        <button class="small" onclick={hand_over}>{ "Hand over" }</button>
                    }
                </div>
            </li>
        }
    });
    let send_message = {
        let (cmd, key, message, error) = (cmd.clone(), key.clone(), message.clone(), error.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let text = (*message).trim().to_string();
            if text.is_empty() {
                return;
            }
            match key.seal_message(&text) {
                Ok(sealed) => {
                    cmd(Command::RoomMessage { room: rid, sealed: B64(sealed) });
                    message.set(String::new());
                }
                Err(e) => error.set(Some(e.into())),
            }
        })
    };
    let set_status = {
        let (live, my_status, error) = (ctx.live.clone(), my_status.clone(), error.clone());
        Callback::from(move |e: Event| {
            let status = match crate::ui::select_value(&e).as_str() {
                "busy" => HostStatus::Busy,
                "away" => HostStatus::Away,
                _ => HostStatus::Ready,
            };
            my_status.set(status);
            let (live, error) = (live.clone(), error.clone());
            spawn(async move {
                if let Err(e) = live.set_host_status(rid, status).await {
                    error.set(Some(e));
                }
            });
        })
    };
    let end = {
        let cmd = cmd.clone();
        Callback::from(move |_| cmd(Command::RoomEnd { room: rid }))
    };
    let leave = {
        let (live, nav, practice, left) = (ctx.live.clone(), ctx.nav.clone(), p.practice, left.clone());
        Callback::from(move |_| {
            let (live, nav) = (live.clone(), nav.clone());
            left.set(true);
            spawn(async move {
                let _ = live.leave_room(rid).await;
                nav.emit(Route::Practice(practice));
            });
        })
    };
    let toggle_mute = {
        let muted = muted.clone();
        Callback::from(move |e: Event| {
            let m = checked(&e);
            set_knock_muted(m);
            muted.set(m);
        })
    };
    let hosts = waiting.hosts.iter().map(|h| html! { <li key={h.user.to_string()}>{ format!("{}: {}", if h.user == me { "You".to_string() } else { name_of(h.user) }, status_label(h.status)) }</li> });
    html! {
        <>
            <p><a href={Route::Practice(p.practice).path()} onclick={{ let (nav, id) = (ctx.nav.clone(), p.practice); Callback::from(move |e: MouseEvent| { e.prevent_default(); nav.emit(Route::Practice(id)); }) }}>{ "← Practice" }</a></p>
            <h1 data-testid="room-title">{ r.name.clone() }</h1>
            <ErrorBox error={(*error).clone()} />
            if waiting.ended { <div class="alert" role="status">{ "The meeting has ended for everyone." }</div> }
            if let Some(t) = &*call_end { <div class="alert" role="status">{ t.clone() }</div> }
            if let Some(c) = &*call {
                <section class="card" aria-label="Video call">
                    <CallView role={CallRole::Host} room={rid} guest={c.guest} call_key={c.key.clone()} channel={c.channel.clone()} incoming={(*incoming).clone()}
                        on_end={{ let (call, end) = (call.clone(), call_end.clone()); Callback::from(move |e: CallEnd| { end.set(Some(e.message().to_owned())); call.set(None); }) }} />
                </section>
            }
            <section class="card" aria-labelledby="waiting-title">
                <h2 id="waiting-title">{ format!("Waiting room ({})", waiting.guests.len()) }</h2>
                if waiting.guests.is_empty() { <p class="muted">{ "No one is waiting." }</p> }
                <ol class="plain guests" data-testid="guests">{ for rows }</ol>
            </section>
            <section class="card" aria-labelledby="msg-title">
                <h2 id="msg-title">{ "Message the waiting room" }</h2>
                <form class="row" onsubmit={send_message}>
                    <label class="sr-only" for="room-message">{ "Message" }</label>
                    <input id="room-message" value={(*message).clone()} oninput={bind(&message)} maxlength="1000" placeholder="The doctor is running 10 minutes late." />
                    <button type="submit" disabled={message.trim().is_empty()}>{ "Send to everyone waiting" }</button>
                </form>
                <ul class="plain">{ for waiting.messages.iter().map(|(at, t)| html! { <li>{ format!("{} — {t}", crate::ui::when(*at)) }</li> }) }</ul>
            </section>
            <section class="card" aria-labelledby="hosts-title">
                <h2 id="hosts-title">{ "Hosts" }</h2>
                <label for="my-status">{ "My status (patients see it)" }</label>
                <select id="my-status" onchange={set_status}>
                    <option value="ready" selected={*my_status == HostStatus::Ready}>{ "Ready" }</option>
                    <option value="busy" selected={*my_status == HostStatus::Busy}>{ "With another patient" }</option>
                    <option value="away" selected={*my_status == HostStatus::Away}>{ "Away" }</option>
                </select>
                <ul class="plain">{ for hosts }</ul>
                <div class="confirm">
                    <input id="knock-muted" type="checkbox" checked={*muted} onchange={toggle_mute} />
                    <label for="knock-muted">{ "Mute the knock (a sound every minute while someone waits unseen)" }</label>
                </div>
                <div class="row">
                    <button onclick={leave} disabled={*left}>{ "Leave the room" }</button>
                    <button class="danger" onclick={end} data-testid="end-meeting">{ "End the meeting for everyone" }</button>
                </div>
            </section>
        </>
    }
}

// ---- From an accepted referral ----

/// Props for [`RoomLinkPicker`].
#[derive(Properties, PartialEq)]
pub struct RoomLinkProps {
    /// The receiving practice (mine).
    pub practice: PracticeId,
    /// The referral's number, for the email's subject.
    pub number: String,
}

/// Choose a room of the practice; copy its patient link or open a prefilled
/// email in the clinic's own email program. The patient's address is typed
/// there, never into Handoff.
#[function_component(RoomLinkPicker)]
pub fn room_link_picker(p: &RoomLinkProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let rooms = use_state(|| None::<Result<Vec<(String, String)>, ApiError>>);
    let chosen = use_state(|| 0usize);
    let copied = use_state(|| false);
    {
        let (rooms, s, id) = (rooms.clone(), ctx.session.clone(), p.practice);
        use_effect_with(id, move |_| {
            spawn(async move {
                let res = async {
                    let mut v = Vec::new();
                    for r in api::call::<ListRooms>(&id, &()).await?.rooms {
                        v.push((r.name.clone(), open_link(&s, &r).await?));
                    }
                    Ok(v)
                }
                .await;
                rooms.set(Some(res));
            });
        });
    }
    let body = match &*rooms {
        None => html! { <p aria-busy="true">{ "Loading rooms…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(v)) if v.is_empty() => {
            html! { <p class="muted">{ "This practice has no virtual clinic room yet; create one on the practice page." }</p> }
        }
        Some(Ok(v)) => {
            let (name, link) = v.get(*chosen).or(v.first()).cloned().unwrap_or_default();
            let mailto = mailto_link(&name, &link);
            let copy = {
                let (l, c) = (link.clone(), copied.clone());
                Callback::from(move |_| {
                    copy_text(&l);
                    c.set(true);
                })
            };
            let pick = {
                let c = chosen.clone();
                Callback::from(move |e: Event| c.set(crate::ui::select_value(&e).parse().unwrap_or(0)))
            };
            html! {
                <>
                    <label for="visit-room">{ "Room" }</label>
                    <select id="visit-room" onchange={pick}>
                        { for v.iter().enumerate().map(|(i, (n, _))| html! { <option value={i.to_string()} selected={i == *chosen}>{ n.clone() }</option> }) }
                    </select>
                    <div class="row">
                        <input readonly=true value={link.clone()} aria-label="Patient link" data-testid="visit-link" />
                        <button class="small" onclick={copy}>{ if *copied { "Copied" } else { "Copy patient link" } }</button>
                        <a class="button small" href={mailto} data-testid="visit-mailto">{ "Email it from my email program" }</a>
                    </div>
                    <p class="help">{ "The email opens in your own email program: you type the patient's address there, so it never passes through Handoff." }</p>
                </>
            }
        }
    };
    html! {
        <section class="card" aria-labelledby="visit-title">
            <h2 id="visit-title">{ "Virtual visit" }</h2>
            { body }
        </section>
    }
}

/// A `mailto:` with no address and a prefilled subject and body carrying the link.
pub fn mailto_link(room_name: &str, link: &str) -> String {
    let subject = format!("Your virtual visit: {room_name}");
    let body = format!(
        "Hello,\n\nAt the time of your appointment, open this link to check in to the virtual waiting room:\n\n{link}\n\nPlease keep this link to yourself.\n"
    );
    format!(
        "mailto:?subject={}&body={}",
        String::from(js_sys::encode_uri_component(&subject)),
        String::from(js_sys::encode_uri_component(&body))
    )
}
