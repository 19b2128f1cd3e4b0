//! The patient's page of a room (`/r/<link>#<secret>`, no sign-in): the
//! room's name, the check-in form, the wait ("Please wait, the host will let
//! you in soon."), the hosts' status, the waiting-room messages, and on
//! admission the meeting link (a button) or the built-in call; a polite end
//! screen when removed or when the visit ends; "the waiting room is full";
//! and a clear screen for an unknown or rotated link.
//!
//! It reconnects by itself after a drop or a server restart and checks in
//! again with the same token and the same sealed check-in (see
//! [`crate::guest`] for what the tab keeps, and where).

use std::rc::Rc;

use handoff_crypto::room::{Admission, RoomSecret};
use handoff_protocol::api::{CheckInRoom, GetRoomInfo};
use handoff_protocol::v1::{CheckIn, RoomInfo};
use handoff_protocol::ws::{GuestState, HostStatus, RoomEvent};
use handoff_protocol::{ErrorCode, GuestId};
use yew::prelude::*;

use super::call::{CallEnd, CallRole, CallView, SignalChannel};
use crate::api::{self, ApiError};
use crate::guest::{Guest, GuestLive, GuestPush, Saved, secret_from_fragment};
use crate::ui::{ErrorBox, bind, spawn};

/// Where the patient is.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Loading the room.
    Loading,
    /// The link is unknown, rotated, or has no (valid) secret.
    BadLink,
    /// The check-in form.
    Form,
    /// The waiting room is full.
    Full,
    /// Checked in, waiting (or reconnecting).
    Waiting,
    /// Admitted to the clinic's own meeting software.
    External(String),
    /// Admitted to the built-in call, with its key.
    Call(Rc<[u8; 32]>),
    /// Removed by the host, or the visit ended.
    Ended,
}

/// The guest's side of the call's signalling: `guest_signal` on its own socket.
struct GuestChannel(GuestLive);

impl SignalChannel for GuestChannel {
    fn send(&self, sealed: Vec<u8>) {
        self.0.signal(sealed);
    }
}

/// Props for [`PatientRoom`].
#[derive(Properties, PartialEq)]
pub struct PatientProps {
    /// The link's path token.
    pub link: String,
}

fn host_line(hosts: &[HostStatus]) -> &'static str {
    if hosts.contains(&HostStatus::Ready) {
        "The host is ready."
    } else if hosts.contains(&HostStatus::Busy) {
        "The host is with another patient."
    } else if hosts.contains(&HostStatus::Away) {
        "The host is away for a moment."
    } else {
        "The host has not joined yet."
    }
}

/// The patient's page.
#[function_component(PatientRoom)]
pub fn patient_room(p: &PatientProps) -> Html {
    let info = use_state(|| None::<RoomInfo>);
    let phase = use_state(|| Phase::Loading);
    let hosts = use_state(Vec::<HostStatus>::new);
    let messages = use_state(Vec::<(i64, String)>::new);
    let reconnecting = use_state(|| false);
    let error = use_state(|| None::<ApiError>);
    let name = use_state(String::new);
    let dob = use_state(String::new);
    let reason = use_state(String::new);
    let busy = use_state(|| false);
    let live = use_state(|| None::<GuestLive>);
    let me = use_state(|| None::<GuestId>);
    let incoming = use_state(|| None::<(u64, Rc<Vec<u8>>)>);
    let call_end = use_state(|| None::<String>);
    let secret =
        use_memo((), |_| web_sys::window().and_then(|w| w.location().hash().ok()).as_deref().and_then(secret_from_fragment).map(Rc::new));

    // Starts the live connection for a check-in (new, or saved by this tab).
    let start = {
        let (phase, hosts, messages, reconnecting, live, link) =
            (phase.clone(), hosts.clone(), messages.clone(), reconnecting.clone(), live.clone(), p.link.clone());
        let (me, incoming, call_end) = (me.clone(), incoming.clone(), call_end.clone());
        Rc::new(move |guest: Rc<Guest>, saved: Saved| {
            let (hosts, messages, reconnecting, link) = (hosts.clone(), messages.clone(), reconnecting.clone(), link.clone());
            let (incoming, call_end) = (incoming.clone(), call_end.clone());
            phase.set(Phase::Waiting);
            let phase = phase.clone();
            let gid: GuestId = saved.guest;
            me.set(Some(gid));
            let counter = Rc::new(std::cell::Cell::new(0u64));
            let msgs = Rc::new(std::cell::RefCell::new(Vec::<(i64, String)>::new()));
            let on_push = Callback::from(move |push: GuestPush| {
                let end = |phase: &UseStateHandle<Phase>| {
                    Saved::forget(&link);
                    phase.set(Phase::Ended);
                };
                match push {
                    GuestPush::State { state, hosts: h } | GuestPush::Event(RoomEvent::State { state, hosts: h }) => {
                        reconnecting.set(false);
                        hosts.set(h);
                        match state {
                            GuestState::Waiting => phase.set(Phase::Waiting),
                            GuestState::Removed | GuestState::Left => end(&phase),
                            GuestState::Admitted => {}
                        }
                    }
                    GuestPush::Event(RoomEvent::Message { sealed, at }) => {
                        if let Ok(t) = guest.open_message(&sealed) {
                            msgs.borrow_mut().push((at, t));
                            messages.set(msgs.borrow().clone());
                        }
                    }
                    GuestPush::Event(RoomEvent::Admitted { sealed_admission }) => match guest.open_admission(gid, &sealed_admission) {
                        Ok(Admission::External { link }) => phase.set(Phase::External(link)),
                        Ok(a @ Admission::BuiltIn { .. }) => {
                            if let Some(k) = a.call_key() {
                                call_end.set(None);
                                incoming.set(None);
                                phase.set(Phase::Call(Rc::new(k)));
                            }
                        }
                        Err(_) => {}
                    },
                    GuestPush::Event(RoomEvent::Signal { sealed, .. }) => {
                        counter.set(counter.get() + 1);
                        incoming.set(Some((counter.get(), Rc::new(sealed.0))));
                    }
                    GuestPush::Event(RoomEvent::Returned {}) => phase.set(Phase::Waiting),
                    GuestPush::Event(RoomEvent::Removed {}) | GuestPush::Event(RoomEvent::Ended {}) | GuestPush::Removed => end(&phase),
                    GuestPush::Reconnecting => reconnecting.set(true),
                    GuestPush::Event(_) => {}
                }
            });
            live.set(Some(GuestLive::start(saved.token.clone(), saved.sealed.clone(), on_push)));
        })
    };

    // Load the room; re-join if this tab already checked in.
    {
        let (info, phase, secret, start, link) = (info.clone(), phase.clone(), secret.clone(), start.clone(), p.link.clone());
        use_effect_with((), move |_| {
            spawn(async move {
                let Some(secret) = (*secret).clone() else {
                    phase.set(Phase::BadLink);
                    return;
                };
                match api::call::<GetRoomInfo>(&link, &()).await {
                    Ok(i) => {
                        let room = i.room;
                        info.set(Some(i));
                        if let Some(saved) = Saved::load(&link)
                            && let Ok(g) = Guest::new(room, &secret, Some(&saved.seed))
                        {
                            start(Rc::new(g), saved);
                        } else {
                            phase.set(Phase::Form);
                        }
                    }
                    Err(e) if e.code == Some(ErrorCode::NotFound) => phase.set(Phase::BadLink),
                    Err(_) => phase.set(Phase::BadLink),
                }
            });
        });
    }
    {
        let live = live.clone();
        use_effect_with((), move |_| {
            move || {
                if let Some(l) = &*live {
                    l.stop();
                }
            }
        });
    }

    let submit = {
        let (info, secret, name, dob, reason, busy, error, phase, start, link) = (
            info.clone(),
            secret.clone(),
            name.clone(),
            dob.clone(),
            reason.clone(),
            busy.clone(),
            error.clone(),
            phase.clone(),
            start.clone(),
            p.link.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Some(i), Some(secret)) = ((*info).clone(), (*secret).clone()) else { return };
            let n = (*name).trim().to_string();
            if n.is_empty() {
                error.set(Some(ApiError::local("Please enter your name.")));
                return;
            }
            let d = Some((*dob).trim().to_string()).filter(|s| i.ask_dob && !s.is_empty());
            let r = Some((*reason).trim().to_string()).filter(|s| i.ask_reason && !s.is_empty());
            let (busy, error, phase, start, link) = (busy.clone(), error.clone(), phase.clone(), start.clone(), link.clone());
            busy.set(true);
            spawn(async move {
                let res = async {
                    let secret: &RoomSecret = &secret;
                    let g = Guest::new(i.room, secret, None)?;
                    let sealed = g.seal_check_in(&n, d, r)?;
                    let c = api::call::<CheckInRoom>(&link, &CheckIn { sealed: sealed.clone() }).await?;
                    let saved = Saved { guest: c.guest, token: c.token, sealed, seed: g.seed() };
                    // Best effort: without session storage a reload checks in anew.
                    let _ = saved.save(&link);
                    Ok::<_, ApiError>((g, saved))
                }
                .await;
                busy.set(false);
                match res {
                    Ok((g, saved)) => {
                        error.set(None);
                        start(Rc::new(g), saved);
                    }
                    Err(e) if e.code == Some(ErrorCode::RoomFull) => phase.set(Phase::Full),
                    Err(e) if e.code == Some(ErrorCode::NotFound) => phase.set(Phase::BadLink),
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };

    let title = info.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| "Virtual waiting room".into());
    let practice = info.as_ref().map(|i| i.practice_name.clone()).unwrap_or_default();
    let body = match &*phase {
        Phase::Loading => html! { <p aria-busy="true">{ "Opening the waiting room…" }</p> },
        Phase::BadLink => html! {
            <div class="alert error" role="alert" data-testid="bad-link">
                <p><strong>{ "This link does not work." }</strong></p>
                <p>{ "It may be incomplete, or the clinic may have replaced it with a new one. Please ask the clinic for the current link." }</p>
            </div>
        },
        Phase::Full => html! {
            <div class="alert" role="alert" data-testid="room-full">
                <p><strong>{ "The waiting room is full." }</strong></p>
                <p>{ "Please try again in a few minutes, or contact the clinic." }</p>
            </div>
        },
        Phase::Form => {
            let i = info.as_ref();
            html! {
                <form class="stack" onsubmit={submit}>
                    <ErrorBox error={(*error).clone()} />
                    <label for="guest-name">{ "Your name" }</label>
                    <input id="guest-name" value={(*name).clone()} oninput={bind(&name)} maxlength="100" autocomplete="name" />
                    if i.is_some_and(|i| i.ask_dob) {
                        <label for="guest-dob">{ "Date of birth" }</label>
                        <input id="guest-dob" type="date" value={(*dob).clone()} oninput={bind(&dob)} />
                    }
                    if i.is_some_and(|i| i.ask_reason) {
                        <label for="guest-reason">{ "Reason for your visit" }</label>
                        <input id="guest-reason" value={(*reason).clone()} oninput={bind(&reason)} maxlength="500" />
                    }
                    <button class="primary" type="submit" disabled={*busy}>{ "Check in" }</button>
                    <p class="help">{ "What you type is encrypted in this browser for the clinic; Handoff's server cannot read it." }</p>
                </form>
            }
        }
        Phase::Waiting => html! {
            <div data-testid="waiting">
                <p class="lead" role="status">{ "Please wait, the host will let you in soon." }</p>
                <p data-testid="host-status">{ host_line(&hosts) }</p>
                if *reconnecting { <p class="muted" role="status">{ "Reconnecting… you keep your place." }</p> }
                <Messages messages={(*messages).clone()} />
                <button class="small" onclick={{ let (live, phase, link) = (live.clone(), phase.clone(), p.link.clone()); Callback::from(move |_| { if let Some(l) = &*live { l.leave(); } Saved::forget(&link); phase.set(Phase::Ended); }) }}>{ "Leave the waiting room" }</button>
            </div>
        },
        Phase::External(link) => html! {
            <div data-testid="admitted">
                <p class="lead">{ "The host is ready for you." }</p>
                <a class="button primary" href={link.clone()} target="_blank" rel="noopener noreferrer" data-testid="meeting-link">{ "Join the video visit" }</a>
            </div>
        },
        Phase::Call(key) => match (&*live, *me, info.as_ref()) {
            (Some(l), Some(guest), Some(i)) => {
                let channel: Rc<dyn SignalChannel> = Rc::new(GuestChannel(l.clone()));
                let on_end = {
                    let c = call_end.clone();
                    Callback::from(move |e: CallEnd| c.set(Some(e.message().to_owned())))
                };
                html! {
                    <div data-testid="admitted">
                        if let Some(t) = &*call_end { <div class="alert" role="status">{ t.clone() }</div> }
                        <CallView role={CallRole::Guest} room={i.room} {guest} call_key={key.clone()} {channel} incoming={(*incoming).clone()} {on_end} />
                    </div>
                }
            }
            _ => html! { <p aria-busy="true">{ "Starting the video call…" }</p> },
        },
        Phase::Ended => html! {
            <div data-testid="ended">
                <p class="lead">{ "Thank you. Your visit has ended." }</p>
                <p>{ "You can close this page." }</p>
            </div>
        },
    };
    html! {
        <main class="patient-room">
            <h1 data-testid="room-name">{ title }</h1>
            if !practice.is_empty() { <p class="muted">{ practice }</p> }
            { body }
        </main>
    }
}

#[derive(Properties, PartialEq)]
struct MessagesProps {
    messages: Vec<(i64, String)>,
}

#[function_component(Messages)]
fn messages(p: &MessagesProps) -> Html {
    if p.messages.is_empty() {
        return html! {};
    }
    html! {
        <section aria-label="Messages from the clinic" data-testid="room-messages">
            <ul class="plain">{ for p.messages.iter().map(|(at, t)| html! { <li>{ format!("{} — {t}", crate::ui::when(*at)) }</li> }) }</ul>
        </section>
    }
}
