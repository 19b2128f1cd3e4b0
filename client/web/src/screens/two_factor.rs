//! Settings, "Two-factor sign-in": enrollment (a QR code drawn here in the
//! browser from the otpauth URI, and the secret as text), the one code that
//! confirms it, the ten recovery codes shown once, turning it off, and, for a
//! practice's admins, requiring it of every member.
//!
//! The QR code is drawn with the `qrcode` crate as SVG, in the page: the
//! secret never goes to a third-party QR service.

use handoff_protocol::PracticeId;
use handoff_protocol::api::{ConfirmTwoFactor, DisableTwoFactor, GetTwoFactor, RequirePracticeTwoFactor, StartTwoFactor};
use handoff_protocol::two_factor::{RequireTwoFactor, SecondFactorProof, TwoFactorEnrollment, TwoFactorStatus};
use handoff_protocol::v1::Role;
use yew::prelude::*;

use crate::Ctx;
use crate::api::{self, ApiError};
use crate::ui::{ErrorBox, bind, spawn};

/// The QR code of an otpauth URI, as inline SVG markup (black on white).
fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build();
    // Inline SVG in HTML needs no XML prolog.
    Some(svg.split_once("?>").map_or(svg.clone(), |(_, rest)| rest.to_string()))
}

/// Sends the browser to the two-factor settings (a member of a practice that
/// requires two-factor sign-in, without it, is answered `two_factor_required`).
pub fn send_to_enrollment() {
    let r = crate::ui::Route::Settings;
    if crate::ui::Route::current() == r {
        return;
    }
    crate::ui::push_history(&r);
    if let Some(w) = web_sys::window()
        && let Ok(ev) = Event::new("popstate")
    {
        let _ = w.dispatch_event(&ev);
    }
}

/// A second factor as typed: six digits are a code, anything else a recovery code.
fn proof(typed: &str) -> SecondFactorProof {
    let t = typed.trim();
    let digits: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        SecondFactorProof { code: Some(digits), recovery_code: None }
    } else {
        SecondFactorProof { code: None, recovery_code: Some(t.to_string()) }
    }
}

/// Where the card is.
#[derive(Clone, PartialEq)]
enum Step {
    Loading,
    Off,
    Enrolling(TwoFactorEnrollment),
    Codes(Vec<String>),
    On(TwoFactorStatus),
}

/// The "Two-factor sign-in" card.
#[function_component(TwoFactor)]
pub fn two_factor() -> Html {
    let step = use_state(|| Step::Loading);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let load = {
        let (step, error) = (step.clone(), error.clone());
        Callback::from(move |_: ()| {
            let (step, error) = (step.clone(), error.clone());
            spawn(async move {
                match api::call::<GetTwoFactor>(&(), &()).await {
                    Ok(s) if s.enabled => step.set(Step::On(s)),
                    Ok(_) => step.set(Step::Off),
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    {
        let load = load.clone();
        use_effect_with((), move |_| load.emit(()));
    }
    let start = {
        let (step, error, busy, code) = (step.clone(), error.clone(), busy.clone(), code.clone());
        Callback::from(move |_: MouseEvent| {
            let (step, error, busy, code) = (step.clone(), error.clone(), busy.clone(), code.clone());
            busy.set(true);
            spawn(async move {
                match api::call::<StartTwoFactor>(&(), &()).await {
                    Ok(e) => {
                        code.set(String::new());
                        error.set(None);
                        step.set(Step::Enrolling(e));
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let ctx = use_context::<Ctx>().expect("context");
    let confirm = {
        let (step, error, busy, code, refresh) = (step.clone(), error.clone(), busy.clone(), code.clone(), ctx.refresh.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (step, error, busy, typed, refresh) = (step.clone(), error.clone(), busy.clone(), (*code).clone(), refresh.clone());
            busy.set(true);
            spawn(async move {
                let req = SecondFactorProof { code: Some(typed.chars().filter(|c| !c.is_whitespace()).collect()), recovery_code: None };
                match api::call::<ConfirmTwoFactor>(&(), &req).await {
                    Ok(r) => {
                        error.set(None);
                        step.set(Step::Codes(r.codes));
                        // Practices that require two-factor sign-in are reachable now: follow their streams again.
                        refresh.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let disable = {
        let (error, busy, code, load) = (error.clone(), busy.clone(), code.clone(), load.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (error, busy, code, load) = (error.clone(), busy.clone(), code.clone(), load.clone());
            let req = proof(&code);
            busy.set(true);
            spawn(async move {
                match api::call::<DisableTwoFactor>(&(), &req).await {
                    Ok(()) => {
                        error.set(None);
                        code.set(String::new());
                        load.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let body = match &*step {
        Step::Loading => html! { <p aria-busy="true">{ "Loading…" }</p> },
        Step::Off => html! {
            <>
                <p>{ "Off. Sign-in asks for your password only." }</p>
                <button class="primary" onclick={start} disabled={*busy}>{ "Turn on two-factor sign-in" }</button>
            </>
        },
        Step::Enrolling(e) => {
            let qr = qr_svg(&e.otpauth_uri).map(|svg| Html::from_html_unchecked(AttrValue::from(svg))).unwrap_or_default();
            html! {
                <form onsubmit={confirm} aria-busy={busy.to_string()}>
                    <p>{ "1. Scan this code with your authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, …)." }</p>
                    <div class="totp-qr" data-testid="totp-qr" role="img" aria-label="QR code of your two-factor secret">{ qr }</div>
                    <p>{ "Or type this secret into the app:" }</p>
                    <p><code id="totp-secret">{ e.secret.clone() }</code></p>
                    <label for="totp-code">{ "2. Enter the 6-digit code the app shows" }</label>
                    <input id="totp-code" inputmode="numeric" autocomplete="one-time-code" required=true value={(*code).clone()} oninput={bind(&code)} />
                    <button class="primary" type="submit" disabled={*busy}>{ "Turn on" }</button>
                </form>
            }
        }
        Step::Codes(codes) => {
            let done = {
                let load = load.clone();
                Callback::from(move |_: MouseEvent| load.emit(()))
            };
            html! {
                <>
                    <div class="alert ok" role="status">{ "Two-factor sign-in is on." }</div>
                    <p>{ "These ten recovery codes each sign you in once if you lose your phone. They are shown only now: print or save them somewhere safe." }</p>
                    <ol class="recovery-codes" data-testid="recovery-codes">
                        { for codes.iter().map(|c| html! { <li><code>{ c.clone() }</code></li> }) }
                    </ol>
                    <button class="primary" onclick={done}>{ "I saved my recovery codes" }</button>
                </>
            }
        }
        Step::On(s) => html! {
            <form onsubmit={disable} aria-busy={busy.to_string()}>
                <p data-testid="totp-on">{ format!("On. Sign-in asks for a code after your password. {} recovery codes left.", s.recovery_codes_left) }</p>
                <label for="totp-disable-code">{ "To turn it off, enter a code (or a recovery code)" }</label>
                <input id="totp-disable-code" autocomplete="one-time-code" required=true value={(*code).clone()} oninput={bind(&code)} />
                <button type="submit" disabled={*busy}>{ "Turn off two-factor sign-in" }</button>
            </form>
        },
    };
    html! {
        <section class="card" id="two-factor" aria-labelledby="tf-title">
            <h2 id="tf-title">{ "Two-factor sign-in" }</h2>
            <p class="muted">{ "A code from an authenticator app on your phone, asked after your password and when you reset with your Emergency Access Kit. The code secret is a sign-in secret the server keeps; it is not one of your encryption keys." }</p>
            <ErrorBox error={(*error).clone()} />
            { body }
            <RequireForPractices />
        </section>
    }
}

/// For each practice I administer: require two-factor sign-in of its members.
#[function_component(RequireForPractices)]
fn require_for_practices() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<ApiError>);
    let saved = use_state(|| None::<String>);
    let admin_of: Vec<(PracticeId, String)> =
        ctx.session.practices().into_iter().filter(|p| p.my_role == Role::Admin).map(|p| (p.id, p.name)).collect();
    if admin_of.is_empty() {
        return html! {};
    }
    let rows = admin_of.into_iter().map(|(id, name)| {
        let set = |required: bool| {
            let (error, saved, name) = (error.clone(), saved.clone(), name.clone());
            Callback::from(move |_: MouseEvent| {
                let (error, saved, name) = (error.clone(), saved.clone(), name.clone());
                spawn(async move {
                    match api::call::<RequirePracticeTwoFactor>(&id, &RequireTwoFactor { required }).await {
                        Ok(()) => {
                            error.set(None);
                            saved.set(Some(if required {
                                format!("{name} now requires two-factor sign-in of every member.")
                            } else {
                                format!("{name} no longer requires two-factor sign-in.")
                            }));
                        }
                        Err(e) => error.set(Some(e)),
                    }
                });
            })
        };
        html! {
            <div class="row" key={id.to_string()}>
                <span>{ name.clone() }</span>
                <button id={format!("require-2fa-{id}")} onclick={set(true)}>{ "Require two-factor sign-in" }</button>
                <button id={format!("unrequire-2fa-{id}")} onclick={set(false)}>{ "Stop requiring it" }</button>
            </div>
        }
    });
    html! {
        <>
            <h3>{ "Practices you administer" }</h3>
            <p class="muted">{ "Members without two-factor sign-in can still sign in, but reach the practice only after they turn it on." }</p>
            <ErrorBox error={(*error).clone()} />
            if let Some(s) = &*saved { <div class="alert ok" role="status">{ s.clone() }</div> }
            { for rows }
        </>
    }
}
