//! The live connection of a signed-in tab and its wiring into the tab's
//! state: start it once the keys are unlocked, follow every practice stream,
//! decrypt new referrals as they arrive, notify the browser when the tab is
//! in the background, end the session when the server does, and keep the
//! practices' key groups up to date.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use handoff_protocol::ws::{Event, ReferralId, StreamId};
use yew::prelude::*;

use crate::live::{Live, LiveState, Pushed};
use crate::session::Session;
use crate::state::{self, Action, Data};
use crate::ui::spawn;

/// How often the key groups are swept for colleagues who joined or left.
const UPKEEP_MS: u32 = 30_000;

/// Shows a browser notification, only while the tab is in the background
/// and only if the user allowed them.
fn browser_notify(text: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if doc.visibility_state() != web_sys::VisibilityState::Hidden {
        return;
    }
    if web_sys::Notification::permission() == web_sys::NotificationPermission::Granted {
        let opts = web_sys::NotificationOptions::new();
        opts.set_body(text);
        opts.set_tag("handoff");
        let _ = web_sys::Notification::new_with_options("Handoff", &opts);
    }
}

/// The browser notification's text for someone else's event on referral `n`
/// (a number and what happened, never patient data).
fn notification_text(e: &Event, n: &str) -> String {
    match e {
        Event::ReferralSent { .. } => format!("New referral {n}"),
        Event::StatusChanged { status, .. } => format!("{n}: {}", state::status_label(*status)),
        Event::MessagePosted { .. } => format!("New message on {n}"),
        Event::Opened { .. }
        | Event::CategoryChanged { .. }
        | Event::UrgencyChanged { .. }
        | Event::AttachmentAdded { .. }
        | Event::EpochAdvanced { .. } => format!("{n} was updated"),
    }
}

/// What to do with each pushed event: decrypt a new referral (loading its
/// practice key first if need be), follow a key group's new epoch, notify
/// the browser of others' changes, and hand the event to the tab's state.
fn on_pushed(s: &Rc<Session>, data: &UseReducerHandle<Data>) -> Callback<Pushed> {
    let (s, data) = (s.clone(), data.clone());
    // Referral numbers by id, for notifications about later events.
    let numbers = RefCell::new(HashMap::<ReferralId, String>::new());
    Callback::from(move |p: Pushed| {
        let me = s.me.id;
        let content = match &p.event {
            Event::ReferralSent { referral } => {
                numbers.borrow_mut().insert(referral.id, referral.number.clone());
                let now = s.open_content(referral).map_err(|e| e.message);
                if now.is_err() {
                    // The practice key of its epoch is not loaded yet: fetch it, then decrypt.
                    let (s, data, r) = (s.clone(), data.clone(), referral.clone());
                    spawn(async move {
                        let c = s.load_content(&r).await.map_err(|e| e.message);
                        data.dispatch(Action::Decrypted(r.id, c));
                    });
                }
                Some(now)
            }
            Event::EpochAdvanced { practice, .. } => {
                // A colleague (or another tab of ours) changed the key group.
                let (s, data, practice) = (s.clone(), data.clone(), *practice);
                spawn(async move {
                    let _ = s.maintain(practice).await;
                    let _ = s.refresh_practices().await;
                    data.dispatch(Action::Bump);
                });
                None
            }
            Event::Opened { .. }
            | Event::StatusChanged { .. }
            | Event::CategoryChanged { .. }
            | Event::UrgencyChanged { .. }
            | Event::AttachmentAdded { .. }
            | Event::MessagePosted { .. } => None,
        };
        if !p.replay
            && state::author(&p.event).is_some_and(|a| a != me)
            && let Some(id) = state::referral_of(&p.event)
        {
            let n = numbers.borrow().get(&id).cloned().unwrap_or_default();
            browser_notify(&notification_text(&p.event, &n));
        }
        data.dispatch(Action::Pushed(Box::new(p), content));
    })
}

/// Runs key-group upkeep for every practice (join, catch up, add colleagues
/// who joined while we were away, remove those who left), then re-renders.
fn upkeep(s: &Rc<Session>, data: &UseReducerHandle<Data>) {
    let (s, data) = (s.clone(), data.clone());
    spawn(async move {
        let _ = s.maintain_all().await;
        data.dispatch(Action::Bump);
    });
}

/// The live connection of `session`'s tab, once it has started. It starts
/// when the component using this hook mounts with a session, and stops when
/// it unmounts; `signout` is called (without a server call) when the server
/// ends the session, and `idle` when it ends it after its idle timeout.
#[hook]
pub fn use_connection(session: &Rc<Session>, data: &UseReducerHandle<Data>, signout: &Callback<bool>, idle: &Callback<()>) -> Option<Live> {
    let live = use_state(|| None::<Live>);
    {
        let (s, data, signout, idle, live) = (session.clone(), data.clone(), signout.clone(), idle.clone(), live.clone());
        use_effect_with(Rc::as_ptr(session) as usize, move |_| {
            data.dispatch(Action::Reset(Some(s.me.id)));
            let on_state = {
                let data = data.clone();
                Callback::from(move |st: LiveState| {
                    data.dispatch(Action::Live(st));
                    if st == LiveState::SessionEnded {
                        signout.emit(false);
                    }
                    if st == LiveState::SessionIdle {
                        idle.emit(());
                    }
                })
            };
            let l = Live::start(on_pushed(&s, &data), on_state);
            for p in s.practices() {
                l.follow(StreamId::Practice(p.id));
            }
            live.set(Some(l.clone()));
            upkeep(&s, &data);
            let timer = gloo_timers::callback::Interval::new(UPKEEP_MS, move || upkeep(&s, &data));
            move || {
                drop(timer);
                l.stop();
            }
        });
    }
    (*live).clone()
}
