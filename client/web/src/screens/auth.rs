//! Register (with the Emergency Access Kit), sign in, reset with the kit, unlock.

use handoff_protocol::v1::{InviteInfo, Me};
use wasm_bindgen::JsCast as _;
use yew::prelude::*;

use crate::api::{self, ApiError, ApiResult};
use crate::session::{Registered, Session};
use crate::ui::{ErrorBox, Route, bind, spawn};

/// Called with the new session (and the kit words for a new account).
pub type SignedIn = Callback<(Session, Option<Vec<String>>)>;

/// Props for [`SignedOut`].
#[derive(Properties, PartialEq)]
pub struct SignedOutProps {
    /// The screen asked for (sign in, register, reset or an invite).
    pub route: Route,
    /// Goes to another screen.
    pub nav: Callback<Route>,
    /// Called with the new session when signing in succeeds.
    pub signed_in: SignedIn,
}

/// The screens before signing in.
#[function_component(SignedOut)]
pub fn signed_out(p: &SignedOutProps) -> Html {
    let go = |r: Route| {
        let nav = p.nav.clone();
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            nav.emit(r.clone());
        })
    };
    let (title, form, switch) = match &p.route {
        Route::Register => (
            "Create your account",
            html! { <Register signed_in={p.signed_in.clone()} invite={None::<String>} /> },
            html! { <p class="switch">{ "Already have an account? " }<a href="/login" onclick={go(Route::Login)}>{ "Sign in" }</a></p> },
        ),
        Route::Recover => (
            "Reset your password with your Emergency Access Kit",
            html! { <Recover signed_in={p.signed_in.clone()} /> },
            html! { <p class="switch"><a href="/login" onclick={go(Route::Login)}>{ "Back to sign in" }</a></p> },
        ),
        Route::Confirm(t) => (
            "Confirm your email address",
            html! { <Confirm token={t.clone()} signed_in={p.signed_in.clone()} /> },
            html! { <p class="switch"><a href="/register" onclick={go(Route::Register)}>{ "Register again" }</a></p> },
        ),
        Route::Invite(t) => (
            "You have been invited to Handoff",
            html! { <InviteLanding token={t.clone()} signed_in={p.signed_in.clone()} /> },
            html! { <p class="switch">{ "Already have an account? " }<a href="/login" onclick={go(Route::Login)}>{ "Sign in" }</a>{ ", then open the invite link again." }</p> },
        ),
        _ => (
            "Sign in",
            html! { <Login signed_in={p.signed_in.clone()} /> },
            html! {
                <>
                    <p class="switch"><a href="/recover" onclick={go(Route::Recover)}>{ "Forgot your password? Reset it with your Emergency Access Kit" }</a></p>
                    <p class="switch">{ "New to Handoff? " }<a href="/register" onclick={go(Route::Register)}>{ "Create an account" }</a></p>
                    <p class="switch"><a href={Route::Free.path()} id="free-link" onclick={go(Route::Free)}>{ "Send a referral without an account" }</a></p>
                </>
            },
        ),
    };
    html! {
        <div class="auth">
            <div class="auth-brand">
                <div class="logo big">{ "Handoff" }</div>
                <p>{ "Secure e-referrals and clinical messaging. Patient information is encrypted in your browser: Handoff's servers and staff cannot read it." }</p>
            </div>
            <section class="card auth-card" aria-labelledby="auth-title">
                <h1 id="auth-title">{ title }</h1>
                { form }
                { switch }
            </section>
        </div>
    }
}

/// Runs a sign-in step (login, register, reset, unlock): busy while it runs,
/// the session to `done` on success, the error on screen otherwise.
fn sign_in(
    busy: &UseStateHandle<bool>,
    error: &UseStateHandle<Option<ApiError>>,
    done: &SignedIn,
    step: impl Future<Output = ApiResult<(Session, Option<Vec<String>>)>> + 'static,
) {
    let (busy, error, done) = (busy.clone(), error.clone(), done.clone());
    busy.set(true);
    error.set(None);
    spawn(async move {
        match step.await {
            Ok(s) => done.emit(s),
            Err(e) => {
                error.set(Some(e));
                busy.set(false);
            }
        }
    });
}

/// Whether the last answer asks for a two-factor code (none given, or a wrong or used one).
fn asks_for_code(error: &Option<ApiError>) -> bool {
    use handoff_protocol::ErrorCode::{RecoveryCodeUsed, SecondFactorNeeded, TwoFactorCodeWrong};
    matches!(error.as_ref().and_then(|e| e.code), Some(SecondFactorNeeded | TwoFactorCodeWrong | RecoveryCodeUsed))
}

/// Why a chosen password (and its confirmation) cannot be used, if it cannot.
fn new_password_problem(password: &str, confirm: &str, reset: bool) -> Option<ApiError> {
    if password.chars().count() < 10 {
        let what = if reset { "a new password" } else { "a password" };
        return Some(ApiError::local(format!("Choose {what} of at least 10 characters.")));
    }
    (password != confirm).then(|| ApiError::local("The two passwords do not match."))
}

/// Props for forms that sign in.
#[derive(Properties, PartialEq)]
pub struct FormProps {
    /// Called with the new session when signing in succeeds.
    pub signed_in: SignedIn,
    /// Prefilled email.
    #[prop_or_default]
    pub email: Option<String>,
}

#[function_component(Login)]
fn login(p: &FormProps) -> Html {
    let email = use_state(|| p.email.clone().unwrap_or_default());
    let password = use_state(String::new);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (email, password, code, error, busy, done) =
            (email.clone(), password.clone(), code.clone(), error.clone(), busy.clone(), p.signed_in.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (email, password, code) = ((*email).clone(), (*password).clone(), (*code).clone());
            sign_in(&busy, &error, &done, async move {
                let code = Some(code.trim()).filter(|c| !c.is_empty());
                Session::login(email.trim(), &password, code).await.map(|s| (s, None))
            });
        })
    };
    let asks_code = asks_for_code(&error) || !code.is_empty();
    html! {
        <form {onsubmit} aria-busy={busy.to_string()}>
            <ErrorBox error={(*error).clone()} />
            <label for="login-email">{ "Email" }</label>
            <input id="login-email" type="email" autocomplete="username" required=true value={(*email).clone()} oninput={bind(&email)} />
            <label for="login-password">{ "Password" }</label>
            <input id="login-password" type="password" autocomplete="current-password" required=true value={(*password).clone()} oninput={bind(&password)} />
            if asks_code {
                <label for="login-code">{ "Code from your authenticator app" }</label>
                <input id="login-code" inputmode="numeric" autocomplete="one-time-code" required=true value={(*code).clone()} oninput={bind(&code)} />
                <p class="help">{ "Two-factor sign-in is on for this account. Lost your phone? Enter one of your recovery codes instead." }</p>
            }
            <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Signing in…" } else { "Sign in" } }</button>
        </form>
    }
}

/// Props for [`Register`].
#[derive(Properties, PartialEq)]
pub struct RegisterProps {
    /// Called with the new session when signing in succeeds.
    pub signed_in: SignedIn,
    /// An invite token to join a practice with.
    pub invite: Option<String>,
    /// Prefilled email.
    #[prop_or_default]
    pub email: Option<String>,
}

/// A registration waiting for its emailed link: the kit is shown first, then "check your email".
#[derive(Clone, PartialEq)]
struct Pending {
    email: String,
    words: Vec<String>,
    message: String,
    kit_saved: bool,
}

/// Account creation.
#[function_component(Register)]
pub fn register(p: &RegisterProps) -> Html {
    let name = use_state(String::new);
    let email = use_state(|| p.email.clone().unwrap_or_default());
    let password = use_state(String::new);
    let confirm = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let pending = use_state(|| None::<Pending>);
    let onsubmit = {
        let (name, email, password, confirm, error, busy, done, invite) = (
            name.clone(),
            email.clone(),
            password.clone(),
            confirm.clone(),
            error.clone(),
            busy.clone(),
            p.signed_in.clone(),
            p.invite.clone(),
        );
        let pending = pending.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(problem) = new_password_problem(&password, &confirm, false) {
                error.set(Some(problem));
                return;
            }
            let (name, email, password, invite) = ((*name).clone(), (*email).clone(), (*password).clone(), invite.clone());
            let (busy, error, done, pending) = (busy.clone(), error.clone(), done.clone(), pending.clone());
            busy.set(true);
            error.set(None);
            spawn(async move {
                match Session::register(email.trim(), name.trim(), &password, invite).await {
                    Ok(Registered::SignedIn(s, words)) => done.emit((*s, Some(words))),
                    Ok(Registered::CheckEmail { words, message }) => {
                        pending.set(Some(Pending { email: email.trim().to_owned(), words, message, kit_saved: false }))
                    }
                    Err(e) => {
                        error.set(Some(e));
                        busy.set(false);
                    }
                }
            });
        })
    };
    if let Some(pe) = &*pending {
        if !pe.kit_saved {
            let done = {
                let (pending, pe) = (pending.clone(), pe.clone());
                Callback::from(move |_| pending.set(Some(Pending { kit_saved: true, ..pe.clone() })))
            };
            return html! { <KitScreen words={pe.words.clone()} email={pe.email.clone()} {done} /> };
        }
        return html! {
            <div role="status" class="check-email">
                <h2>{ "Check your email" }</h2>
                <p>{ format!("We sent a link to {}. Open it to confirm your address and finish creating your account.", pe.email) }</p>
                <p class="help">{ pe.message.clone() }</p>
            </div>
        };
    }
    html! {
        <form {onsubmit} aria-busy={busy.to_string()}>
            <ErrorBox error={(*error).clone()} />
            <label for="reg-name">{ "Your name" }</label>
            <input id="reg-name" autocomplete="name" required=true value={(*name).clone()} oninput={bind(&name)} />
            <label for="reg-email">{ "Work email" }</label>
            <input id="reg-email" type="email" autocomplete="username" required=true value={(*email).clone()} oninput={bind(&email)} readonly={p.email.is_some()} />
            <label for="reg-password">{ "Password" }</label>
            <input id="reg-password" type="password" autocomplete="new-password" required=true minlength="10" value={(*password).clone()} oninput={bind(&password)} aria-describedby="pw-help" />
            <p class="help" id="pw-help">{ "At least 10 characters. Your password never leaves this browser: it unlocks your keys here." }</p>
            <label for="reg-confirm">{ "Confirm password" }</label>
            <input id="reg-confirm" type="password" autocomplete="new-password" required=true value={(*confirm).clone()} oninput={bind(&confirm)} />
            <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Creating your keys…" } else { "Create account" } }</button>
        </form>
    }
}

/// Props for [`KitScreen`].
#[derive(Properties, PartialEq)]
pub struct KitProps {
    /// The 24 words in grid order.
    pub words: Vec<String>,
    /// The account, printed on the kit.
    pub email: String,
    /// Called when the user has saved the kit and continues.
    pub done: Callback<()>,
}

fn kit_text(email: &str, words: &[String]) -> String {
    let mut t = format!(
        "HANDOFF EMERGENCY ACCESS KIT\nAccount: {email}\n\nKeep this somewhere safe and private. With these 24 words, in this order, you can reset your\npassword and keep access to your encrypted referrals. Handoff cannot reset your password by email.\n\n"
    );
    for (i, w) in words.iter().enumerate() {
        t.push_str(&format!("{:>2}. {w}\n", i + 1));
    }
    t
}

/// The Emergency Access Kit, shown once after registration.
#[function_component(KitScreen)]
pub fn kit_screen(p: &KitProps) -> Html {
    let saved = use_state(|| false);
    let print = Callback::from(|_| {
        if let Some(w) = web_sys::window() {
            let _ = w.print();
        }
    });
    let download = {
        let text = kit_text(&p.email, &p.words);
        Callback::from(move |_| save_file("handoff-emergency-access-kit.txt", "text/plain", text.as_bytes()))
    };
    let toggle = {
        let saved = saved.clone();
        Callback::from(move |e: Event| saved.set(crate::ui::checked(&e)))
    };
    let done = p.done.reform(|_: MouseEvent| ());
    html! {
        <div class="auth">
            <section class="card kit-card" aria-labelledby="kit-title">
                <h1 id="kit-title">{ "Your Emergency Access Kit" }</h1>
                <p>{ "These 24 words are the only way back into your account if you forget your password. Handoff does not keep them and cannot reset your password by email. Print or download them now and store them safely." }</p>
                <p class="kit-account">{ "Account: " }<strong>{ p.email.clone() }</strong></p>
                <ol class="kit-grid" data-testid="kit-grid">
                    { for p.words.iter().enumerate().map(|(i, w)| html! { <li><span class="n">{ i + 1 }</span><span class="w">{ w.clone() }</span></li> }) }
                </ol>
                <div class="row no-print">
                    <button onclick={print}>{ "Print" }</button>
                    <button onclick={download}>{ "Download" }</button>
                </div>
                <div class="confirm no-print">
                    <input id="kit-saved" type="checkbox" checked={*saved} onchange={toggle} />
                    <label for="kit-saved">{ "I have printed or saved my Emergency Access Kit somewhere safe." }</label>
                </div>
                <button class="primary no-print" disabled={!*saved} onclick={done}>{ "Continue to Handoff" }</button>
            </section>
        </div>
    }
}

/// Offers bytes as a file download.
pub fn save_file(name: &str, media_type: &str, bytes: &[u8]) {
    let arr = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(media_type);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&arr, &opts) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Some(doc) = web_sys::window().and_then(|w| w.document())
        && let Ok(a) = doc.create_element("a")
        && let Ok(a) = a.dyn_into::<web_sys::HtmlAnchorElement>()
    {
        a.set_href(&url);
        a.set_download(name);
        if let Some(b) = doc.body() {
            let _ = b.append_child(&a);
            a.click();
            let _ = b.remove_child(&a);
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

#[function_component(Recover)]
fn recover(p: &FormProps) -> Html {
    let email = use_state(String::new);
    let words = use_state(|| vec![String::new(); 24]);
    let password = use_state(String::new);
    let confirm = use_state(String::new);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (email, words, password, confirm, error, busy, done) =
            (email.clone(), words.clone(), password.clone(), confirm.clone(), error.clone(), busy.clone(), p.signed_in.clone());
        let code = code.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(problem) = new_password_problem(&password, &confirm, true) {
                error.set(Some(problem));
                return;
            }
            let w: Vec<String> = words.iter().map(|w| w.trim().to_lowercase()).collect();
            let (email, password, code) = ((*email).clone(), (*password).clone(), (*code).clone());
            sign_in(&busy, &error, &done, async move {
                let code = Some(code.trim()).filter(|c| !c.is_empty());
                Session::recover(email.trim(), &w, &password, code).await.map(|s| (s, None))
            });
        })
    };
    let asks_code = asks_for_code(&error) || !code.is_empty();
    let cells = (0..24).map(|i| {
        let current = words.get(i).cloned().unwrap_or_default();
        let words = words.clone();
        let oninput = Callback::from(move |e: InputEvent| {
            let mut w = (*words).clone();
            let v = crate::ui::input_value(&e);
            // Pasting the whole kit into the first box fills the grid.
            let parts: Vec<&str> = v.split_whitespace().collect();
            if parts.len() == 24 {
                w = parts.iter().map(|s| s.to_string()).collect();
            } else if let Some(slot) = w.get_mut(i) {
                *slot = v;
            }
            words.set(w);
        });
        let id = format!("kit-word-{}", i + 1);
        html! {
            <li>
                <label for={id.clone()} class="n">{ i + 1 }</label>
                <input id={id} autocomplete="off" autocapitalize="none" spellcheck="false" value={current} {oninput} aria-label={format!("Word {}", i + 1)} />
            </li>
        }
    });
    html! {
        <form {onsubmit} aria-busy={busy.to_string()}>
            <ErrorBox error={(*error).clone()} />
            <label for="rec-email">{ "Email" }</label>
            <input id="rec-email" type="email" autocomplete="username" required=true value={(*email).clone()} oninput={bind(&email)} />
            <fieldset>
                <legend>{ "Your 24 kit words, each in its numbered place" }</legend>
                <ol class="kit-grid inputs">{ for cells }</ol>
            </fieldset>
            <label for="rec-password">{ "New password" }</label>
            <input id="rec-password" type="password" autocomplete="new-password" required=true value={(*password).clone()} oninput={bind(&password)} />
            <label for="rec-confirm">{ "Confirm new password" }</label>
            <input id="rec-confirm" type="password" autocomplete="new-password" required=true value={(*confirm).clone()} oninput={bind(&confirm)} />
            if asks_code {
                <label for="rec-code">{ "Code from your authenticator app" }</label>
                <input id="rec-code" inputmode="numeric" autocomplete="one-time-code" required=true value={(*code).clone()} oninput={bind(&code)} />
                <p class="help">{ "Two-factor sign-in is on for this account, so the kit alone cannot reset it. Enter the code, or one of your recovery codes." }</p>
            }
            <p class="help">{ "Resetting keeps all your keys, so you keep access to every referral. Every other signed-in browser is signed out." }</p>
            <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Resetting…" } else { "Reset password" } }</button>
        </form>
    }
}

/// Props for [`InviteLanding`].
#[derive(Properties, PartialEq)]
pub struct InviteProps {
    /// The invite token from the link.
    pub token: String,
    /// Called with the new session when signing in succeeds.
    pub signed_in: SignedIn,
}

#[function_component(InviteLanding)]
fn invite_landing(p: &InviteProps) -> Html {
    let info = use_state(|| None::<Result<InviteInfo, ApiError>>);
    {
        let (info, token) = (info.clone(), p.token.clone());
        use_effect_with(token.clone(), move |_| {
            spawn(async move { info.set(Some(api::call::<handoff_protocol::api::GetInvite>(&token, &()).await)) });
        });
    }
    match &*info {
        None => html! { <p aria-busy="true">{ "Checking your invite…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(i)) if i.account_exists => html! {
            <p>{ format!("{} invited {} to join {}. Sign in with that account to accept.", i.invited_by, i.email, i.practice_name) }</p>
        },
        Some(Ok(i)) => html! {
            <>
                <p>{ format!("{} invited you to join {}. Create your account to accept.", i.invited_by, i.practice_name) }</p>
                <Register signed_in={p.signed_in.clone()} invite={Some(p.token.clone())} email={Some(i.email.clone())} />
            </>
        },
    }
}

/// Props for [`Confirm`].
#[derive(Properties, PartialEq)]
pub struct ConfirmProps {
    /// The token from the emailed link.
    pub token: String,
    /// Called with the new session once the user signs in.
    pub signed_in: SignedIn,
}

/// The page an emailed confirmation link opens: the password the
/// registration was made with confirms the address (creating the account)
/// and unlocks the keys in one step. The link alone confirms nothing, so an
/// owner who opens a link that a stranger's registration sent them creates
/// no account for the stranger.
#[function_component(Confirm)]
fn confirm(p: &ConfirmProps) -> Html {
    let password = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (token, password, error, busy, done) = (p.token.clone(), password.clone(), error.clone(), busy.clone(), p.signed_in.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (token, password) = (token.clone(), (*password).clone());
            sign_in(&busy, &error, &done, async move { Session::confirm(&token, &password).await.map(|s| (s, None)) });
        })
    };
    html! {
        <>
            <p>{ "Enter the password you chose when you registered. It confirms your address, creates your account and unlocks your keys." }</p>
            <p>{ "If you did not ask for a Handoff account, close this page: without that password nothing is created." }</p>
            <form {onsubmit} aria-busy={busy.to_string()}>
                <ErrorBox error={(*error).clone()} />
                <label for="confirm-password">{ "Password" }</label>
                <input id="confirm-password" type="password" autocomplete="current-password" required=true value={(*password).clone()} oninput={bind(&password)} />
                <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Confirming…" } else { "Confirm and sign in" } }</button>
            </form>
        </>
    }
}

/// Props for [`Unlock`].
#[derive(Properties)]
pub struct UnlockProps {
    /// The account whose session survived.
    pub me: Me,
    /// Called with the new session when signing in succeeds.
    pub signed_in: SignedIn,
    /// Signs out instead of unlocking.
    pub signout: Callback<()>,
    /// The tab was signed out for inactivity: the server session is ended
    /// too, so unlocking signs in again (with a code, if 2FA is on).
    #[prop_or_default]
    pub timed_out: bool,
}

impl PartialEq for UnlockProps {
    fn eq(&self, o: &Self) -> bool {
        self.me.id == o.me.id && self.signed_in == o.signed_in && self.signout == o.signout && self.timed_out == o.timed_out
    }
}

/// After a reload: the session is still valid, but keys live only in memory.
/// After the idle timeout: no key is left and the session is ended; the
/// password signs in again.
#[function_component(Unlock)]
pub fn unlock(p: &UnlockProps) -> Html {
    let password = use_state(String::new);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (me, password, code, error, busy, done) =
            (p.me.clone(), password.clone(), code.clone(), error.clone(), busy.clone(), p.signed_in.clone());
        let timed_out = p.timed_out;
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (me, password, code) = (me.clone(), (*password).clone(), (*code).clone());
            sign_in(&busy, &error, &done, async move {
                if timed_out {
                    let code = Some(code.trim()).filter(|c| !c.is_empty());
                    Session::login(&me.email, &password, code).await.map(|s| (s, None))
                } else {
                    Session::unlock(me, &password).await.map(|s| (s, None))
                }
            });
        })
    };
    let asks_code = p.timed_out && (asks_for_code(&error) || !code.is_empty());
    let signout = p.signout.reform(|_: MouseEvent| ());
    let intro = if p.timed_out {
        html! { <p id="idle-signed-out">{ "You were signed out of " }<strong>{ p.me.email.clone() }</strong>{ " for inactivity, and your keys were removed from this browser. Enter your password to sign in again." }</p> }
    } else {
        html! { <p>{ "You are still signed in as " }<strong>{ p.me.email.clone() }</strong>{ ". Your keys are never stored in the browser, so enter your password to unlock them." }</p> }
    };
    html! {
        <div class="auth">
            <section class="card auth-card" aria-labelledby="unlock-title">
                <div class="logo">{ "Handoff" }</div>
                <h1 id="unlock-title">{ "Unlock Handoff" }</h1>
                { intro }
                <form {onsubmit} aria-busy={busy.to_string()}>
                    <ErrorBox error={(*error).clone()} />
                    <label for="unlock-password">{ "Password" }</label>
                    <input id="unlock-password" type="password" autocomplete="current-password" required=true value={(*password).clone()} oninput={bind(&password)} />
                    if asks_code {
                        <label for="unlock-code">{ "Code from your authenticator app" }</label>
                        <input id="unlock-code" inputmode="numeric" autocomplete="one-time-code" required=true value={(*code).clone()} oninput={bind(&code)} />
                    }
                    <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Unlocking…" } else { "Unlock" } }</button>
                </form>
                <p class="switch"><button class="link" onclick={signout}>{ "Sign out" }</button></p>
            </section>
        </div>
    }
}
