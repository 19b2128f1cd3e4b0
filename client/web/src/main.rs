//! The Handoff web client. Rendered client-side by Yew; every key is handled
//! here in the browser through `handoff-crypto`, and only ciphertext, public
//! keys and the password-derived auth key ever reach the server.
//!
//! - [`api`]: the HTTP API (same origin, session cookie).
//! - [`session`]: the unlocked keys and the crypto each screen needs.
//! - [`live`]: the WebSocket: subscribe, resume, reconnect, commands.
//! - [`state`]: the referrals, history, unread marks and toasts (a reducer).
//! - [`screens`]: one module per screen.

mod api;
mod forms;
mod live;
mod screens;
mod session;
mod state;
mod ui;

use std::collections::HashMap;
use std::rc::Rc;

use handoff_protocol::v1::Me;
use handoff_protocol::ws::{Event, ReferralId, StreamId};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use yew::prelude::*;

use crate::live::{Live, LiveState, Pushed};
use crate::session::Session;
use crate::state::{Action, Data};
use crate::ui::{Route, push_history, spawn};

/// What every signed-in screen gets.
#[derive(Clone)]
pub struct Ctx {
    /// The unlocked session.
    pub session: Rc<Session>,
    /// The live connection.
    pub live: Live,
    /// The tab's data.
    pub data: UseReducerHandle<Data>,
    /// Go to a screen.
    pub nav: Callback<Route>,
    /// Practices changed: reload them and follow new streams.
    pub refresh: Callback<()>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ctx")
    }
}

impl PartialEq for Ctx {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.session, &o.session) && self.live == o.live && self.data == o.data
    }
}

/// Where the tab is with signing in.
#[derive(Clone)]
enum Auth {
    Checking,
    SignedOut,
    /// The session survived a reload; the keys need the password again.
    Locked(Me),
    /// A new account: show the kit before anything else.
    Kit(Rc<Session>, Vec<String>),
    Ready(Rc<Session>),
}

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

#[function_component(App)]
fn app() -> Html {
    let auth = use_state(|| Auth::Checking);
    let route = use_state(Route::current);
    let data = use_reducer(Data::default);
    let live = use_mut_ref(|| None::<Live>);
    let numbers = use_mut_ref(HashMap::<ReferralId, String>::new);

    let nav = {
        let route = route.clone();
        Callback::from(move |r: Route| {
            push_history(&r);
            route.set(r);
            if let Some(w) = web_sys::window() {
                w.scroll_to_with_x_and_y(0.0, 0.0);
            }
        })
    };

    // Back and forward buttons.
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let cb = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| route.set(Route::current()));
            if let Some(w) = web_sys::window() {
                w.set_onpopstate(Some(cb.as_ref().unchecked_ref()));
            }
            move || drop(cb)
        });
    }

    // On load: is there a session already?
    {
        let auth = auth.clone();
        use_effect_with((), move |_| {
            spawn(async move {
                match api::me().await {
                    Ok(me) => auth.set(Auth::Locked(me)),
                    Err(_) => auth.set(Auth::SignedOut),
                }
            });
        });
    }

    let signed_in = {
        let auth = auth.clone();
        let nav = nav.clone();
        Callback::from(move |(s, kit): (Session, Option<Vec<String>>)| {
            let s = Rc::new(s);
            match kit {
                Some(words) => auth.set(Auth::Kit(s, words)),
                None => {
                    auth.set(Auth::Ready(s));
                    if matches!(Route::current(), Route::Login | Route::Register | Route::Recover) {
                        nav.emit(Route::Inbox);
                    }
                }
            }
        })
    };

    let signout = {
        let auth = auth.clone();
        let live = live.clone();
        let nav = nav.clone();
        let data = data.clone();
        Callback::from(move |call_server: bool| {
            if let Some(l) = live.borrow_mut().take() {
                l.stop();
            }
            data.dispatch(Action::Reset(None));
            auth.set(Auth::SignedOut);
            nav.emit(Route::Login);
            if call_server {
                spawn(async move {
                    let _ = api::logout().await;
                });
            }
        })
    };

    // Start the live connection once the keys are unlocked.
    let ready_session = match &*auth {
        Auth::Ready(s) => Some(s.clone()),
        _ => None,
    };
    {
        let live = live.clone();
        let data = data.clone();
        let numbers = numbers.clone();
        let signout = signout.clone();
        use_effect_with(ready_session.as_ref().map(|s| Rc::as_ptr(s) as usize), move |ptr| {
            if ptr.is_some()
                && let Some(s) = ready_session
            {
                data.dispatch(Action::Reset(Some(s.me.id)));
                let on_event = {
                    let data = data.clone();
                    let s = s.clone();
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
                            _ => None,
                        };
                        if !p.replay
                            && state::author(&p.event).is_some_and(|a| a != me)
                            && let Some(id) = state::referral_of(&p.event)
                        {
                            let n = numbers.borrow().get(&id).cloned().unwrap_or_default();
                            browser_notify(&match &p.event {
                                Event::ReferralSent { .. } => format!("New referral {n}"),
                                Event::StatusChanged { status, .. } => format!("{n}: {}", state::status_label(*status)),
                                Event::MessagePosted { .. } => format!("New message on {n}"),
                                _ => format!("{n} was updated"),
                            });
                        }
                        data.dispatch(Action::Pushed(Box::new(p), content));
                    })
                };
                let on_state = {
                    let data = data.clone();
                    let signout = signout.clone();
                    Callback::from(move |st: LiveState| {
                        data.dispatch(Action::Live(st));
                        if st == LiveState::SessionEnded {
                            signout.emit(false);
                        }
                    })
                };
                let l = Live::start(on_event, on_state);
                for p in s.practices() {
                    l.follow(StreamId::Practice(p.id));
                }
                *live.borrow_mut() = Some(l);
                // Key-group upkeep: join, catch up, add colleagues who joined
                // while we were away, remove those who left.
                let (s2, d2) = (s.clone(), data.clone());
                spawn(async move {
                    let _ = s2.maintain_all().await;
                    d2.dispatch(Action::Bump);
                });
                let (s3, d3) = (s.clone(), data.clone());
                let timer = gloo_timers::callback::Interval::new(30_000, move || {
                    let (s, d) = (s3.clone(), d3.clone());
                    spawn(async move {
                        let _ = s.maintain_all().await;
                        d.dispatch(Action::Bump);
                    });
                });
                return Box::new(move || drop(timer)) as Box<dyn FnOnce()>;
            }
            Box::new(|| ()) as Box<dyn FnOnce()>
        });
    }

    match (&*auth, &*route) {
        (Auth::Checking, _) => html! { <div class="boot" aria-busy="true"><p>{ "Loading Handoff…" }</p></div> },
        (Auth::SignedOut, r) => html! { <screens::auth::SignedOut route={r.clone()} nav={nav.clone()} signed_in={signed_in.clone()} /> },
        (Auth::Locked(me), _) => {
            html! { <screens::auth::Unlock me={me.clone()} signed_in={signed_in.clone()} signout={signout.reform(|_| true)} /> }
        }
        (Auth::Kit(s, words), _) => {
            let auth = auth.clone();
            let s2 = s.clone();
            let nav = nav.clone();
            let done = Callback::from(move |_| {
                auth.set(Auth::Ready(s2.clone()));
                nav.emit(Route::Practices);
            });
            html! { <screens::auth::KitScreen words={words.clone()} email={s.me.email.clone()} {done} /> }
        }
        (Auth::Ready(s), r) => {
            let Some(l) = live.borrow().clone() else {
                return html! { <div class="boot" aria-busy="true"><p>{ "Connecting…" }</p></div> };
            };
            let refresh = {
                let s = s.clone();
                let data = data.clone();
                let l = l.clone();
                Callback::from(move |_| {
                    let s = s.clone();
                    let data = data.clone();
                    let l = l.clone();
                    spawn(async move {
                        if s.refresh_practices().await.is_ok() {
                            for p in s.practices() {
                                l.follow(StreamId::Practice(p.id));
                            }
                        }
                        data.dispatch(Action::Bump);
                    });
                })
            };
            let ctx = Ctx { session: s.clone(), live: l, data: data.clone(), nav: nav.clone(), refresh };
            html! {
                <ContextProvider<Ctx> context={ctx}>
                    <screens::shell::Shell route={r.clone()} signout={signout.reform(|_| true)} />
                </ContextProvider<Ctx>>
            }
        }
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
