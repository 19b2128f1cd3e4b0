//! Settings, "Sessions": the user's signed-in sessions (browser, client
//! address, started, last seen), "End" for each other one, and "End all other
//! sessions". Ending a session signs that browser out at once: the server
//! closes its live connection, and its next request is refused.

use handoff_protocol::api::{EndOtherSessions, EndSession, ListSessions};
use handoff_protocol::sessions::SessionInfo;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::ui::{ErrorBox, spawn, when};

/// Loads the session list into `list` (or the error into `error`).
fn load(list: &UseStateHandle<Option<Vec<SessionInfo>>>, error: &UseStateHandle<Option<ApiError>>) {
    let (list, error) = (list.clone(), error.clone());
    spawn(async move {
        match api::call::<ListSessions>(&(), &()).await {
            Ok(l) => list.set(Some(l.sessions)),
            Err(e) => error.set(Some(e)),
        }
    });
}

/// The sessions section of the settings screen.
#[function_component(Sessions)]
pub fn sessions() -> Html {
    let list = use_state(|| None::<Vec<SessionInfo>>);
    let error = use_state(|| None::<ApiError>);
    let done = use_state(|| None::<String>);
    {
        let (list, error) = (list.clone(), error.clone());
        use_effect_with((), move |_| load(&list, &error));
    }
    let end_one = {
        let (list, error, done) = (list.clone(), error.clone(), done.clone());
        Callback::from(move |handle: String| {
            let (list, error, done) = (list.clone(), error.clone(), done.clone());
            spawn(async move {
                match api::call::<EndSession>(&handle, &()).await {
                    Ok(()) => {
                        error.set(None);
                        done.set(Some("That session is signed out.".into()));
                    }
                    Err(e) => error.set(Some(e)),
                }
                load(&list, &error);
            });
        })
    };
    let end_others = {
        let (list, error, done) = (list.clone(), error.clone(), done.clone());
        Callback::from(move |_: MouseEvent| {
            let (list, error, done) = (list.clone(), error.clone(), done.clone());
            spawn(async move {
                match api::call::<EndOtherSessions>(&(), &()).await {
                    Ok(n) => {
                        error.set(None);
                        done.set(Some(format!("{} other session(s) signed out.", n.ended)));
                    }
                    Err(e) => error.set(Some(e)),
                }
                load(&list, &error);
            });
        })
    };
    let rows = list.as_ref().map(|sessions| {
        sessions
            .iter()
            .map(|s| {
                let action = if s.current {
                    html! { <span class="tag">{ "This session" }</span> }
                } else {
                    let (end_one, handle) = (end_one.clone(), s.handle.clone());
                    let onclick = Callback::from(move |_: MouseEvent| end_one.emit(handle.clone()));
                    html! { <button class="danger end-session" {onclick}>{ "End" }</button> }
                };
                html! {
                    <tr key={s.handle.clone()} class={classes!("session-row", s.current.then_some("current"))}>
                        <td>{ s.browser.clone() }</td>
                        <td>{ s.client_addr.clone() }</td>
                        <td>{ when(s.created_at) }</td>
                        <td>{ when(s.last_seen_at) }</td>
                        <td>{ action }</td>
                    </tr>
                }
            })
            .collect::<Html>()
    });
    let others = list.as_ref().is_some_and(|l| l.iter().any(|s| !s.current));
    html! {
        <section class="card" aria-labelledby="sessions-title" id="sessions">
            <h2 id="sessions-title">{ "Sessions" }</h2>
            <p class="muted">{ "Where you are signed in. End a session you do not recognise, or that you left open on another computer: it is signed out at once." }</p>
            <ErrorBox error={(*error).clone()} />
            if let Some(d) = &*done { <div class="alert ok" role="status">{ d.clone() }</div> }
            {
                match rows {
                    None => html! { <p aria-busy="true">{ "Loading…" }</p> },
                    Some(rows) => html! {
                        <table class="sessions">
                            <thead><tr><th>{ "Browser" }</th><th>{ "Address" }</th><th>{ "Signed in" }</th><th>{ "Last active" }</th><th></th></tr></thead>
                            <tbody>{ rows }</tbody>
                        </table>
                    },
                }
            }
            if others { <button class="danger" id="end-other-sessions" onclick={end_others}>{ "End all other sessions" }</button> }
        </section>
    }
}
