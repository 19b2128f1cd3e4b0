//! Small shared pieces: input helpers, the error box, routes and navigation.

use std::cell::RefCell;
use std::collections::HashMap;

use handoff_protocol::ws::ReferralId;
use handoff_protocol::{PracticeId, RoomId};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::api::ApiError;

/// Every screen, and its address.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// `/login`
    Login,
    /// `/register`
    Register,
    /// `/recover`
    Recover,
    /// `/invite/<token>`
    Invite(String),
    /// `/confirm/<token>`: the link that confirms a registration's email address.
    Confirm(String),
    /// `/inbox`: received referrals.
    Inbox,
    /// `/sent`
    Sent,
    /// `/send`
    Send,
    /// `/referrals/<id>`
    Referral(ReferralId),
    /// `/practices`
    Practices,
    /// `/practices/<id>`
    Practice(PracticeId),
    /// `/admin`
    Admin,
    /// `/settings`
    Settings,
    /// `/free`: a referral sent without an account (no sign-in).
    Free,
    /// `/practices/<id>/audit`: the practice's audit log (its admins).
    PracticeAudit(PracticeId),
    /// `/practices/<id>/rooms/<room>`: a room's waiting room, hosted by any
    /// member (the room's static host link).
    Room(PracticeId, RoomId),
    /// `/r/<link>`: the patient's page of a room (no sign-in). The room
    /// secret rides in the fragment (`#...`), never in this path.
    PatientRoom(String),
}

impl Route {
    /// Parses a path.
    pub fn parse(path: &str) -> Route {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let uuid = |s: &str| uuid::Uuid::parse_str(s).ok();
        match parts.as_slice() {
            ["login"] => Route::Login,
            ["register"] => Route::Register,
            ["recover"] => Route::Recover,
            ["invite", t] => Route::Invite((*t).to_string()),
            ["confirm", t] => Route::Confirm((*t).to_string()),
            ["sent"] => Route::Sent,
            ["send"] => Route::Send,
            ["referrals", id] => uuid(id).map(|u| Route::Referral(ReferralId(u))).unwrap_or(Route::Inbox),
            ["practices"] => Route::Practices,
            ["practices", id] => uuid(id).map(|u| Route::Practice(PracticeId(u))).unwrap_or(Route::Practices),
            ["admin"] => Route::Admin,
            ["settings"] => Route::Settings,
            ["free"] => Route::Free,
            ["practices", id, "audit"] => uuid(id).map(|u| Route::PracticeAudit(PracticeId(u))).unwrap_or(Route::Practices),
            ["practices", id, "rooms", room] => match (uuid(id), uuid(room)) {
                (Some(p), Some(r)) => Route::Room(PracticeId(p), RoomId(r)),
                _ => Route::Practices,
            },
            ["r", link] => Route::PatientRoom((*link).to_string()),
            _ => Route::Inbox,
        }
    }

    /// The path.
    pub fn path(&self) -> String {
        match self {
            Route::Login => "/login".into(),
            Route::Register => "/register".into(),
            Route::Recover => "/recover".into(),
            Route::Invite(t) => format!("/invite/{t}"),
            Route::Confirm(t) => format!("/confirm/{t}"),
            Route::Inbox => "/inbox".into(),
            Route::Sent => "/sent".into(),
            Route::Send => "/send".into(),
            Route::Referral(id) => format!("/referrals/{id}"),
            Route::Practices => "/practices".into(),
            Route::Practice(id) => format!("/practices/{id}"),
            Route::Admin => "/admin".into(),
            Route::Settings => "/settings".into(),
            Route::Free => "/free".into(),
            Route::PracticeAudit(id) => format!("/practices/{id}/audit"),
            Route::Room(p, r) => format!("/practices/{p}/rooms/{r}"),
            Route::PatientRoom(link) => format!("/r/{link}"),
        }
    }

    /// The current address.
    pub fn current() -> Route {
        Route::parse(&web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_default())
    }
}

/// Pushes a route onto the browser history.
pub fn push_history(r: &Route) {
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok())
        && Route::current() != *r
    {
        let _ = h.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&r.path()));
    }
}

/// The current screen and a callback to go to another: it pushes the
/// address onto the history and scrolls to the top. The back and forward
/// buttons change the screen too.
#[hook]
pub fn use_navigation() -> (Route, Callback<Route>) {
    let route = use_state(Route::current);
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
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let cb = Closure::<dyn FnMut(wasm_bindgen::JsValue)>::new(move |_: wasm_bindgen::JsValue| route.set(Route::current()));
            if let Some(w) = web_sys::window() {
                w.set_onpopstate(Some(cb.as_ref().unchecked_ref()));
            }
            move || drop(cb)
        });
    }
    ((*route).clone(), nav)
}

/// The value of an `<input>` from its event.
pub fn input_value(e: &InputEvent) -> String {
    e.target_unchecked_into::<HtmlInputElement>().value()
}

/// The value of a `<textarea>` from its event.
pub fn textarea_value(e: &InputEvent) -> String {
    e.target_unchecked_into::<HtmlTextAreaElement>().value()
}

/// The value of a `<select>` from its change event.
pub fn select_value(e: &Event) -> String {
    e.target_unchecked_into::<HtmlSelectElement>().value()
}

/// Whether a checkbox is checked, from its change event.
pub fn checked(e: &Event) -> bool {
    e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()).is_some_and(|i| i.checked())
}

/// A string state setter from an `<input>`.
pub fn bind(s: &UseStateHandle<String>) -> Callback<InputEvent> {
    let s = s.clone();
    Callback::from(move |e: InputEvent| s.set(input_value(&e)))
}

/// A string state setter from a `<textarea>`.
pub fn bind_area(s: &UseStateHandle<String>) -> Callback<InputEvent> {
    let s = s.clone();
    Callback::from(move |e: InputEvent| s.set(textarea_value(&e)))
}

/// A string state setter from a `<select>`.
pub fn bind_select(s: &UseStateHandle<String>) -> Callback<Event> {
    let s = s.clone();
    Callback::from(move |e: Event| s.set(select_value(&e)))
}

/// Props for [`ErrorBox`].
#[derive(Properties, PartialEq)]
pub struct ErrorProps {
    /// The error, if any.
    pub error: Option<ApiError>,
}

/// A clear error message where it happened, announced to screen readers.
#[function_component(ErrorBox)]
pub fn error_box(p: &ErrorProps) -> Html {
    match &p.error {
        Some(e) => html! { <div class="alert error" role="alert">{ e.message.clone() }</div> },
        None => html! {},
    }
}

thread_local! {
    /// Timestamps formatted already: formatting is slow (`toLocaleString`
    /// was 16% of a 20,000-row inbox's load in the profile when every render
    /// formatted every shown row again), and a timestamp reads the same each time.
    static WHEN: RefCell<HashMap<i64, String>> = RefCell::new(HashMap::new());
    /// One `Intl.DateTimeFormat` for every timestamp (`toLocaleString` with
    /// options builds a new one on each call), its `format` function.
    static WHEN_FORMAT: js_sys::Function = {
        let opts = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&opts, &"dateStyle".into(), &"medium".into());
        let _ = js_sys::Reflect::set(&opts, &"timeStyle".into(), &"short".into());
        js_sys::Intl::DateTimeFormat::new(&js_sys::Array::of1(&"en-CA".into()), &opts).format()
    };
}

/// How many formatted timestamps [`when`] keeps before it starts afresh.
const WHEN_KEPT: usize = 100_000;

/// Formats a timestamp in the browser's zone (Canadian English, medium date
/// and short time), once per timestamp: later calls return the same text.
pub fn when(ms: i64) -> String {
    if let Some(s) = WHEN.with(|w| w.borrow().get(&ms).cloned()) {
        return s;
    }
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let s = WHEN_FORMAT.with(|f| f.call1(&wasm_bindgen::JsValue::NULL, &d)).ok().and_then(|v| v.as_string()).unwrap_or_default();
    WHEN.with(|w| {
        let mut w = w.borrow_mut();
        if w.len() >= WHEN_KEPT {
            w.clear();
        }
        w.insert(ms, s.clone());
    });
    s
}

/// Runs a future on the browser's event loop.
pub fn spawn(f: impl Future<Output = ()> + 'static) {
    wasm_bindgen_futures::spawn_local(f);
}

#[cfg(test)]
mod tests {
    use super::Route;
    use handoff_protocol::ws::ReferralId;
    use handoff_protocol::{PracticeId, RoomId};

    #[test]
    fn every_route_round_trips_through_its_path() {
        let routes = [
            Route::Login,
            Route::Register,
            Route::Recover,
            Route::Invite("tok_123".into()),
            Route::Confirm("tok_456".into()),
            Route::Inbox,
            Route::Sent,
            Route::Send,
            Route::Referral(ReferralId::from_bytes([1; 16])),
            Route::Practices,
            Route::Practice(PracticeId::from_bytes([2; 16])),
            Route::Admin,
            Route::Settings,
            Route::Free,
            Route::Room(PracticeId::from_bytes([2; 16]), RoomId::from_bytes([3; 16])),
            Route::PatientRoom("AbC-_12".into()),
        ];
        for r in routes {
            assert_eq!(Route::parse(&r.path()), r, "{}", r.path());
        }
        // Unknown or malformed paths land somewhere safe.
        assert_eq!(Route::parse("/referrals/not-a-uuid"), Route::Inbox);
        assert_eq!(Route::parse("/nowhere"), Route::Inbox);
    }
}
