//! The idle timeout in the tab (issue 14, "Sessions").
//!
//! The server ends a session after `idle_timeout_secs` without a request
//! (it tells the client the figure in [`Me`](handoff_protocol::v1::Me)). The
//! tab counts the user's own input (keys, pointer presses, the wheel, touch;
//! not pointer moves, not the live connection, not background requests) and:
//!
//! - tells the server the user is active, at most once per
//!   [`touch_every_ms`], by a `GET /me`: background requests alone must not
//!   keep a session alive, so the server cannot tell input from them;
//! - at [`warn_after_secs`] of no input (25 minutes of 30), shows a warning
//!   with a countdown and a "Stay signed in" button (input too);
//! - at the timeout, drops the unlocked session (every key goes with it),
//!   ends the server session, and shows the password screen.

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::Closure;
use yew::prelude::*;

use crate::api;
use crate::ui::spawn;

/// The input events that count as the user's activity.
pub const ACTIVITY_EVENTS: [&str; 4] = ["keydown", "pointerdown", "wheel", "touchstart"];

/// When the warning shows: five minutes before the timeout, or at 5/6 of a
/// short one (at 25 minutes of 30 either way).
pub fn warn_after_secs(timeout_secs: u64) -> u64 {
    timeout_secs.saturating_sub(300).max(timeout_secs * 5 / 6)
}

/// How often, at most, input is reported to the server: every minute, or a
/// sixth of a short timeout.
pub fn touch_every_ms(timeout_secs: u64) -> f64 {
    (timeout_secs as f64 * 1000.0 / 6.0).min(60_000.0)
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// What [`use_idle`] answers.
#[derive(Clone, PartialEq)]
pub struct Idle {
    /// Seconds left before the timeout, while the warning shows.
    pub warning: Option<u64>,
    /// Counts as activity (the warning's "Stay signed in").
    pub stay: Callback<()>,
}

/// Tracks the user's input; `on_timeout` is called once, after
/// `timeout_secs` without any. A timeout of 0 (an old server) tracks nothing.
#[hook]
pub fn use_idle(timeout_secs: u64, on_timeout: Callback<()>) -> Idle {
    let last_input = use_mut_ref(now_ms);
    let last_touch = use_mut_ref(now_ms);
    let warning = use_state_eq(|| None::<u64>);
    let stay = {
        let last_input = last_input.clone();
        Callback::from(move |()| *last_input.borrow_mut() = now_ms())
    };
    {
        let (last_input, last_touch, warning) = (last_input.clone(), last_touch.clone(), warning.clone());
        use_effect_with(timeout_secs, move |&timeout_secs| {
            let window = web_sys::window();
            let listener = {
                let last_input = last_input.clone();
                Closure::<dyn Fn(Event)>::new(move |_| *last_input.borrow_mut() = now_ms())
            };
            if let Some(w) = &window {
                for ev in ACTIVITY_EVENTS {
                    let _ = w.add_event_listener_with_callback_and_bool(ev, listener.as_ref().unchecked_ref(), true);
                }
            }
            let fired = Rc::new(Cell::new(false));
            let timer = (timeout_secs > 0).then(|| {
                let (timeout_ms, warn_ms, touch_ms) =
                    (timeout_secs as f64 * 1000.0, warn_after_secs(timeout_secs) as f64 * 1000.0, touch_every_ms(timeout_secs));
                gloo_timers::callback::Interval::new(500, move || {
                    if fired.get() {
                        return;
                    }
                    let (now, input) = (now_ms(), *last_input.borrow());
                    let idle = now - input;
                    if idle >= timeout_ms {
                        fired.set(true);
                        warning.set(None);
                        // After this callback returns: the timeout unmounts the
                        // signed-in tab, which drops this very interval.
                        let on_timeout = on_timeout.clone();
                        spawn(async move { on_timeout.emit(()) });
                        return;
                    }
                    warning.set((idle >= warn_ms).then(|| ((timeout_ms - idle) / 1000.0).ceil() as u64));
                    // Input since the last report, and the last report is old enough: tell the server.
                    let touched = *last_touch.borrow();
                    if input > touched && now - touched >= touch_ms {
                        *last_touch.borrow_mut() = now;
                        spawn(async move {
                            let _ = api::me().await;
                        });
                    }
                })
            });
            move || {
                drop(timer);
                if let Some(w) = &window {
                    for ev in ACTIVITY_EVENTS {
                        let _ = w.remove_event_listener_with_callback_and_bool(ev, listener.as_ref().unchecked_ref(), true);
                    }
                }
                drop(listener);
            }
        });
    }
    Idle { warning: *warning, stay }
}

/// "m:ss" for a countdown.
pub fn countdown(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Props for [`IdleWarning`].
#[derive(Properties, PartialEq)]
pub struct IdleWarningProps {
    /// Seconds left.
    pub left: u64,
    /// "Stay signed in".
    pub stay: Callback<()>,
}

/// The warning before the idle timeout.
#[function_component(IdleWarning)]
pub fn idle_warning(p: &IdleWarningProps) -> Html {
    let stay = p.stay.reform(|_: MouseEvent| ());
    html! {
        <div class="idle-warning card" role="alertdialog" aria-labelledby="idle-title" aria-live="assertive">
            <h2 id="idle-title">{ "Are you still there?" }</h2>
            <p>{ format!("You will be signed out in {} for inactivity. Your keys are then removed from this browser and you sign in again with your password.", countdown(p.left)) }</p>
            <button class="primary" onclick={stay}>{ "Stay signed in" }</button>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_five_minutes_early_or_at_five_sixths() {
        assert_eq!(warn_after_secs(1800), 1500, "25 minutes of 30");
        assert_eq!(warn_after_secs(3600), 3300, "five minutes before a long timeout");
        assert_eq!(warn_after_secs(12), 10, "5/6 of a short one");
        assert_eq!(countdown(299), "4:59");
        assert_eq!(touch_every_ms(1800), 60_000.0);
        assert_eq!(touch_every_ms(12), 2_000.0);
    }
}
