//! The signed-in tab: the tab's data, the live connection, and the [`Ctx`]
//! every signed-in screen reads, around the [`Shell`] (header, navigation,
//! toasts and the current screen).

use std::rc::Rc;

use yew::prelude::*;

use crate::Ctx;
use crate::connection::use_connection;
use crate::idle::{IdleWarning, use_idle};
use crate::screens::shell::Shell;
use crate::session::Session;
use crate::state::{Action, Data};
use crate::ui::{Route, spawn};

/// Props for [`SignedIn`].
#[derive(Properties)]
pub struct SignedInProps {
    /// The unlocked session.
    pub session: Rc<Session>,
    /// The screen to show.
    pub route: Route,
    /// Goes to a screen.
    pub nav: Callback<Route>,
    /// Signs out: `true` when the user asked (the server is told), `false`
    /// when the server already ended the session.
    pub signout: Callback<bool>,
    /// The idle timeout passed: drop the session (and every key) and end it on the server.
    pub timed_out: Callback<handoff_protocol::v1::Me>,
}

impl PartialEq for SignedInProps {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.session, &o.session)
            && self.route == o.route
            && self.nav == o.nav
            && self.signout == o.signout
            && self.timed_out == o.timed_out
    }
}

/// A tab whose keys are unlocked.
#[function_component(SignedIn)]
pub fn signed_in(p: &SignedInProps) -> Html {
    let data = use_reducer(Data::default);
    // The idle timeout, in this tab or (first, if it was) on the server: the same password screen.
    let on_idle = {
        let (me, timed_out) = (p.session.me.clone(), p.timed_out.clone());
        Callback::from(move |()| timed_out.emit(me.clone()))
    };
    let live = use_connection(&p.session, &data, &p.signout, &on_idle);
    let idle = use_idle(p.session.me.idle_timeout_secs, on_idle);
    let Some(live) = live else {
        return html! { <div class="boot" aria-busy="true"><p>{ "Connecting…" }</p></div> };
    };
    // Practices changed: reload them and follow new streams.
    let refresh = {
        let (s, data, live) = (p.session.clone(), data.clone(), live.clone());
        Callback::from(move |_| {
            let (s, data, live) = (s.clone(), data.clone(), live.clone());
            spawn(async move {
                if s.refresh_practices().await.is_ok() {
                    for p in s.practices() {
                        crate::connection::load_inbox(&s, &data, &live, p.id);
                    }
                }
                data.dispatch(Action::Bump);
            });
        })
    };
    // Signing out closes the connection before the server is told.
    let signout = {
        let (live, signout) = (live.clone(), p.signout.clone());
        Callback::from(move |()| {
            live.stop();
            signout.emit(true);
        })
    };
    let ctx = Ctx { session: p.session.clone(), live, data, nav: p.nav.clone(), refresh };
    html! {
        <ContextProvider<Ctx> context={ctx}>
            <Shell route={p.route.clone()} {signout} />
            if let Some(left) = idle.warning { <IdleWarning {left} stay={idle.stay.clone()} /> }
        </ContextProvider<Ctx>>
    }
}
