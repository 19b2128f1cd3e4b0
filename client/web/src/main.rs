//! The Handoff web client. Rendered client-side by Yew; every key is handled
//! here in the browser through `handoff-crypto`, and only ciphertext, public
//! keys and the password-derived auth key ever reach the server.
//!
//! - [`api`]: the HTTP API (same origin, session cookie).
//! - [`call`]: the built-in video call (WebRTC, sealed signalling, the DTLS fingerprint check).
//! - [`session`]: the unlocked keys and the crypto each screen needs.
//! - [`boot`]: where the tab is with signing in, and the check on load.
//! - [`live`]: the WebSocket: subscribe, resume, reconnect, commands.
//! - [`connection`]: the live connection wired to the tab's state.
//! - [`state`]: the referrals, history, unread marks and toasts (a reducer).
//! - [`signed_in`]: the signed-in tab: its data, connection and [`Ctx`].
//! - [`idle`]: the idle timeout: the warning, then signing out.
//! - [`forms`]: forms that need no session (patient details, attachments).
//! - [`guest`]: a patient's keys in a room (no sign-in) and what the tab keeps of its check-in.
//! - [`pdf`]: a referral as a PDF, built here from the plaintext.
//! - [`screens`]: one module per screen.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod api;
mod boot;
mod call;
mod connection;
mod forms;
mod guest;
mod idle;
mod live;
mod pdf;
mod screens;
mod search_index;
mod session;
mod signed_in;
mod state;
mod ui;

use std::rc::Rc;

use yew::prelude::*;

use crate::boot::{Auth, use_auth};
use crate::live::Live;
use crate::session::Session;
use crate::signed_in::SignedIn;
use crate::state::Data;
use crate::ui::{Route, spawn, use_navigation};

/// What every signed-in screen gets.
#[derive(Clone)]
pub struct Ctx {
    /// The unlocked session.
    pub session: Rc<Session>,
    /// The live connection.
    pub live: Live,
    /// The tab's data.
    pub data: UseReducerHandle<Data>,
    /// Goes to a screen.
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

/// The whole tab: one screen for each step of signing in, then the signed-in app.
#[function_component(App)]
fn app() -> Html {
    let (route, nav) = use_navigation();
    let auth = use_auth();

    let signed_in = {
        let (auth, nav) = (auth.clone(), nav.clone());
        Callback::from(move |(s, kit): (Session, Option<Vec<String>>)| {
            let s = Rc::new(s);
            match kit {
                Some(words) => auth.set(Auth::Kit(s, words)),
                None => {
                    auth.set(Auth::Ready(s));
                    match Route::current() {
                        Route::Login | Route::Register | Route::Recover => nav.emit(Route::Inbox),
                        // A new account, just confirmed: its first step is a practice.
                        Route::Confirm(_) => nav.emit(Route::Practices),
                        _ => {}
                    }
                }
            }
        })
    };

    let signout = {
        let (auth, nav) = (auth.clone(), nav.clone());
        Callback::from(move |call_server: bool| {
            auth.set(Auth::SignedOut);
            nav.emit(Route::Login);
            if call_server {
                spawn(async move {
                    let _ = api::logout().await;
                });
            }
        })
    };

    // The idle timeout: every key goes with the session, and the server session is ended.
    let timed_out = {
        let auth = auth.clone();
        Callback::from(move |me: handoff_protocol::v1::Me| {
            auth.set(Auth::TimedOut(me));
            spawn(async move {
                let _ = api::logout().await;
            });
        })
    };

    // A referral without an account needs no sign-in, whatever the tab's state.
    if route == Route::Free {
        return html! { <screens::free::FreeReferral /> };
    }
    // A patient holding a room's link needs no sign-in either.
    if let Route::PatientRoom(link) = &route {
        return html! { <screens::rooms_patient::PatientRoom link={link.clone()} /> };
    }
    match &*auth {
        Auth::Checking => html! { <div class="boot" aria-busy="true"><p>{ "Loading Handoff…" }</p></div> },
        Auth::SignedOut => html! { <screens::auth::SignedOut {route} {nav} {signed_in} /> },
        Auth::Locked(me) => html! { <screens::auth::Unlock me={me.clone()} {signed_in} signout={signout.reform(|_| true)} /> },
        Auth::TimedOut(me) => {
            html! { <screens::auth::Unlock me={me.clone()} {signed_in} signout={signout.reform(|_| false)} timed_out=true /> }
        }
        Auth::Kit(s, words) => {
            let done = {
                let (auth, s, nav) = (auth.clone(), s.clone(), nav.clone());
                Callback::from(move |_| {
                    auth.set(Auth::Ready(s.clone()));
                    nav.emit(Route::Practices);
                })
            };
            html! { <screens::auth::KitScreen words={words.clone()} email={s.me.email.clone()} {done} /> }
        }
        Auth::Ready(s) => html! { <SignedIn session={s.clone()} {route} {nav} {signout} {timed_out} /> },
    }
}

fn main() {
    // `/call-harness` checks the built-in call on its own (no sign-in, no room).
    if web_sys::window().and_then(|w| w.location().pathname().ok()).as_deref() == Some("/call-harness") {
        yew::Renderer::<screens::call::CallHarness>::new().render();
        return;
    }
    yew::Renderer::<App>::new().render();
}
