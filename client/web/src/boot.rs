//! Where the tab is with signing in, and the check on load for a session
//! that survived a reload.

use std::rc::Rc;

use handoff_protocol::v1::Me;
use yew::prelude::*;

use crate::api;
use crate::session::Session;
use crate::ui::spawn;

/// Where the tab is with signing in.
#[derive(Clone)]
pub enum Auth {
    /// Asking the server whether a session survived a reload.
    Checking,
    /// No session: the sign-in, registration and reset screens.
    SignedOut,
    /// The session survived a reload; the keys need the password again.
    Locked(Me),
    /// Signed out for inactivity: no key is left and the server session is
    /// ended; the password signs in again.
    TimedOut(Me),
    /// A new account: show the kit before anything else.
    Kit(Rc<Session>, Vec<String>),
    /// The keys are unlocked.
    Ready(Rc<Session>),
}

/// The tab's sign-in state, starting with [`Auth::Checking`] while the
/// server is asked (once, on load) whether the session cookie is still valid.
#[hook]
pub fn use_auth() -> UseStateHandle<Auth> {
    let auth = use_state(|| Auth::Checking);
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
    auth
}
