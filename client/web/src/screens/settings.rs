//! Settings: two-factor sign-in ([`super::two_factor`]), the signed-in
//! sessions ([`super::sessions`]), then notifications:
//! status emails per practice (opt-in, they carry no patient data), and
//! browser notifications while Handoff is in a background tab.

use handoff_protocol::v1::{MemberList, NotificationSettings};
use yew::prelude::*;

use crate::Ctx;
use crate::api::{self, ApiError};
use crate::ui::{ErrorBox, spawn};

/// The settings screen.
#[function_component(Settings)]
pub fn settings() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let prefs = use_state(|| None::<Vec<(handoff_protocol::PracticeId, String, bool)>>);
    let error = use_state(|| None::<ApiError>);
    let saved = use_state(|| None::<String>);
    let permission = use_state(web_sys::Notification::permission);
    let knock_muted = use_state(super::rooms::knock_muted);
    {
        let (prefs, error, s) = (prefs.clone(), error.clone(), ctx.session.clone());
        use_effect_with((), move |_| {
            spawn(async move {
                let mut out = Vec::new();
                for p in s.practices() {
                    match api::members(p.id).await {
                        Ok(MemberList { members, .. }) => {
                            let on = members.iter().find(|m| m.user_id == s.me.id).is_some_and(|m| m.email_on_status);
                            out.push((p.id, p.name.clone(), on));
                        }
                        Err(e) => error.set(Some(e)),
                    }
                }
                prefs.set(Some(out));
            });
        });
    }
    let ask = {
        let permission = permission.clone();
        Callback::from(move |_| {
            let permission = permission.clone();
            if let Ok(p) = web_sys::Notification::request_permission() {
                spawn(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
                    permission.set(web_sys::Notification::permission());
                });
            }
        })
    };
    let rows = prefs.as_ref().map(|list| {
        list.iter()
            .map(|(id, name, on)| {
                let (id, prefs, error, saved, name2) = (*id, prefs.clone(), error.clone(), saved.clone(), name.clone());
                let onchange = Callback::from(move |e: Event| {
                    let want = crate::ui::checked(&e);
                    let (prefs, error, saved, name) = (prefs.clone(), error.clone(), saved.clone(), name2.clone());
                    spawn(async move {
                        match api::call::<handoff_protocol::api::SetNotifications>(&id, &NotificationSettings { email_on_status: want })
                            .await
                        {
                            Ok(s) => {
                                if let Some(mut v) = (*prefs).clone() {
                                    for x in v.iter_mut().filter(|x| x.0 == id) {
                                        x.2 = s.email_on_status;
                                    }
                                    prefs.set(Some(v));
                                }
                                error.set(None);
                                saved.set(Some(format!("Saved for {name}.")));
                            }
                            Err(e) => error.set(Some(e)),
                        }
                    });
                });
                let fid = format!("email-{id}");
                html! {
                    <div class="confirm" key={id.to_string()}>
                        <input id={fid.clone()} type="checkbox" checked={*on} {onchange} />
                        <label for={fid}>{ format!("Email me when a referral from {name} is accepted or declined") }</label>
                    </div>
                }
            })
            .collect::<Html>()
    });
    let perm_text = match *permission {
        web_sys::NotificationPermission::Granted => "On: Handoff notifies you when the tab is in the background.",
        web_sys::NotificationPermission::Denied => "Blocked in this browser's site settings.",
        _ => "Off.",
    };
    html! {
        <>
            <h1>{ "Security" }</h1>
            <super::two_factor::TwoFactor />
            <super::sessions::Sessions />
            <h1>{ "Notifications" }</h1>
            <section class="card" aria-labelledby="n-browser">
                <h2 id="n-browser">{ "In this browser" }</h2>
                <p>{ "While Handoff is open, changes appear at once and a message shows in the corner. When the tab is in the background, the browser can notify you too. Notifications show the referral number and what happened, never patient details." }</p>
                <p><strong>{ "Browser notifications: " }</strong>{ perm_text }</p>
                if *permission == web_sys::NotificationPermission::Default { <button class="primary" onclick={ask}>{ "Turn on browser notifications" }</button> }
                <div class="confirm">
                    <input id="knock-muted-setting" type="checkbox" checked={*knock_muted} onchange={{
                        let k = knock_muted.clone();
                        Callback::from(move |e: Event| { let m = crate::ui::checked(&e); super::rooms::set_knock_muted(m); k.set(m); })
                    }} />
                    <label for="knock-muted-setting">{ "Mute the waiting room's knock (it sounds every minute while a patient waits unseen)" }</label>
                </div>
            </section>
            <section class="card" aria-labelledby="n-email">
                <h2 id="n-email">{ "By email" }</h2>
                <p class="muted">{ "Emails carry only the referral number, its new status and a link: never patient information." }</p>
                <ErrorBox error={(*error).clone()} />
                if let Some(s) = &*saved { <div class="alert ok" role="status">{ s.clone() }</div> }
                { rows.unwrap_or_else(|| html! { <p aria-busy="true">{ "Loading…" }</p> }) }
            </section>
        </>
    }
}
