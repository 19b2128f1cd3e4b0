//! A referral sent without an account (`/free`): the sender says who they
//! are, proves their email address with an emailed code, gives the
//! referring provider and the clinic, fills in the same referral form account
//! holders use ([`ReferralWizard`] with a [`SenderContext::Free`]), reviews
//! and sends it, then downloads the only copy they will ever have as a PDF.
//!
//! The browser makes `R`, seals the content (the sender's details included,
//! in `free_sender`) and wraps `R` to the receiving practice, or each
//! choose-for-me candidate, only: once this page is closed nothing on the
//! sender's side can open it again. The server learns the email address and
//! nothing else about the sender.

use std::cell::RefCell;
use std::rc::Rc;

use handoff_crypto::referral::{FreeSender, SenderRole};
use handoff_domain::sender::msp_number;
use handoff_protocol::ErrorCode;
use handoff_protocol::api::{ResendFreeCode, StartFreeDraft, VerifyFreeCode};
use handoff_protocol::free::{CODE_DIGITS, CODE_TRIES, CodeSent, DraftId, StartDraft, VerifyCode};
use handoff_protocol::v1::Taxonomy;
use handoff_protocol::ws::{IdemKey, Status};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;
use yew::prelude::*;

use super::send::ReferralWizard;
use super::send::sender::{FreeContext, Receipt, SenderContext, Sent};
use crate::api::{self, ApiError};
use crate::pdf::{ReferralFacts, download_referral_pdf};
use crate::session::{new_uuid, now_ms};
use crate::ui::{ErrorBox, Route, input_value, select_value, spawn, when};

/// The wizard's steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeStep {
    /// Role, name, email (and a provider's MSP number).
    You,
    /// The emailed code.
    EmailCheck,
    /// The referring provider (for an MOA) and the clinic.
    Clinic,
    /// The shared referral form, its review and the send.
    Referral,
    /// The number, and the PDF: the only copy.
    Download,
}

impl FreeStep {
    /// Every step, in order.
    pub const ALL: [FreeStep; 5] = [FreeStep::You, FreeStep::EmailCheck, FreeStep::Clinic, FreeStep::Referral, FreeStep::Download];

    /// The step's name, in the stepper and as its heading (distinct from the
    /// referral form's own step names).
    pub fn title(self) -> &'static str {
        match self {
            FreeStep::You => "About you",
            FreeStep::EmailCheck => "Check your email",
            FreeStep::Clinic => "Provider and clinic",
            FreeStep::Referral => "Referral",
            FreeStep::Download => "Download your referral",
        }
    }
}

/// What the sender types about themselves, the provider and the clinic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderDetails {
    /// MOA/admin, or the provider.
    pub role: SenderRole,
    /// The sender's name.
    pub name: String,
    /// Where the code and the updates go.
    pub email: String,
    /// A provider's own MSP practitioner number.
    pub msp: String,
    /// The provider's name (an MOA's provider).
    pub provider_name: String,
    /// The provider's MSP number (an MOA's provider).
    pub provider_msp: String,
    /// The clinic's name (optional).
    pub clinic_name: String,
    /// The clinic's phone number.
    pub clinic_phone: String,
    /// The clinic's address.
    pub clinic_address: String,
}

/// One field of [`SenderDetails`] the forms edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailField {
    /// [`SenderDetails::name`].
    Name,
    /// [`SenderDetails::email`].
    Email,
    /// [`SenderDetails::msp`].
    Msp,
    /// [`SenderDetails::provider_name`].
    ProviderName,
    /// [`SenderDetails::provider_msp`].
    ProviderMsp,
    /// [`SenderDetails::clinic_name`].
    ClinicName,
    /// [`SenderDetails::clinic_phone`].
    ClinicPhone,
    /// [`SenderDetails::clinic_address`].
    ClinicAddress,
}

impl SenderDetails {
    /// Sets one field to the text typed.
    pub fn set(&mut self, field: DetailField, value: String) {
        let slot = match field {
            DetailField::Name => &mut self.name,
            DetailField::Email => &mut self.email,
            DetailField::Msp => &mut self.msp,
            DetailField::ProviderName => &mut self.provider_name,
            DetailField::ProviderMsp => &mut self.provider_msp,
            DetailField::ClinicName => &mut self.clinic_name,
            DetailField::ClinicPhone => &mut self.clinic_phone,
            DetailField::ClinicAddress => &mut self.clinic_address,
        };
        *slot = value;
    }

    /// The email address as it is sent (trimmed).
    pub fn email(&self) -> String {
        self.email.trim().to_string()
    }

    /// Why the first step cannot be left, in words for the sender, if it cannot.
    pub fn you_problem(&self) -> Option<String> {
        let email = self.email();
        if self.name.trim().is_empty() {
            return Some("Enter your name.".into());
        }
        if !plausible_email(&email) {
            return Some("Enter the email address updates should go to (for example name@clinic.ca).".into());
        }
        match self.role {
            SenderRole::Provider => msp_number(&self.msp).err().map(|e| e.to_string()),
            SenderRole::Moa => None,
        }
    }

    /// Why the provider-and-clinic step cannot be left, if it cannot.
    pub fn clinic_problem(&self) -> Option<String> {
        if self.role == SenderRole::Moa {
            if self.provider_name.trim().is_empty() {
                return Some("Enter the referring provider's name.".into());
            }
            if let Err(e) = msp_number(&self.provider_msp) {
                return Some(e.to_string());
            }
        }
        if self.clinic_phone.trim().is_empty() {
            return Some("Enter the clinic's phone number.".into());
        }
        if self.clinic_address.trim().is_empty() {
            return Some("Enter the clinic's address.".into());
        }
        None
    }

    /// The details sealed in the referral: a provider is their own referring provider.
    pub fn free_sender(&self) -> FreeSender {
        let msp = |s: &str| msp_number(s).unwrap_or_else(|_| s.trim().to_string());
        let (provider_name, provider_msp) = match self.role {
            SenderRole::Provider => (self.name.trim().to_string(), msp(&self.msp)),
            SenderRole::Moa => (self.provider_name.trim().to_string(), msp(&self.provider_msp)),
        };
        FreeSender {
            role: self.role,
            name: self.name.trim().into(),
            email: self.email(),
            provider_name,
            provider_msp,
            clinic_name: self.clinic_name.trim().into(),
            clinic_phone: self.clinic_phone.trim().into(),
            clinic_address: self.clinic_address.trim().into(),
        }
    }
}

/// Whether `email` looks like an address (one `@`, something before it, a
/// dot after it); the server checks it properly.
fn plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.contains('@') && !email.contains(char::is_whitespace),
        None => false,
    }
}

/// Where the email check is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeCheck {
    /// The draft the code was sent for.
    pub draft: DraftId,
    /// The address it was sent to.
    pub email: String,
    /// How many more codes the draft may ask for.
    pub resends_left: u32,
    /// Tries left on the current code, as counted here.
    pub tries_left: u32,
    /// Whether the right code was typed.
    pub verified: bool,
}

impl CodeCheck {
    /// A code was just sent.
    pub fn sent(email: String, c: &CodeSent) -> Self {
        Self { draft: c.draft, email, resends_left: c.resends_left, tries_left: CODE_TRIES, verified: false }
    }

    /// A new code replaced the old one: its tries start again.
    pub fn resent(&mut self, c: &CodeSent) {
        self.resends_left = c.resends_left;
        self.tries_left = CODE_TRIES;
    }

    /// What a refused code means for the tries left.
    pub fn refused(&mut self, code: Option<ErrorCode>) {
        match code {
            Some(ErrorCode::CodeWrong) => self.tries_left = self.tries_left.saturating_sub(1),
            Some(ErrorCode::CodeTriesExhausted | ErrorCode::CodeExpired) => self.tries_left = 0,
            _ => {}
        }
    }
}

/// The code as typed, digits only, if it has the right number of them.
pub fn typed_code(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == CODE_DIGITS && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// The free-referral page.
#[function_component(FreeReferral)]
pub fn free_referral() -> Html {
    let step = use_state(|| FreeStep::You);
    let details = use_state(SenderDetails::default);
    let check = use_state(|| None::<CodeCheck>);
    let code = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let notice = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let taxonomy = use_state(|| None::<Rc<Taxonomy>>);
    let idem = use_state(|| new_uuid().ok().map(IdemKey));
    let sent = use_state(|| None::<Rc<Sent>>);
    let downloaded = use_state(|| false);
    {
        let (taxonomy, error) = (taxonomy.clone(), error.clone());
        use_effect_with((), move |_| {
            spawn(async move {
                match api::taxonomy().await {
                    Ok(t) => taxonomy.set(Some(Rc::new(t))),
                    Err(e) => error.set(Some(e)),
                }
            })
        });
    }
    // Leaving the page before the PDF was downloaded asks first.
    use_before_unload(sent.is_some() && !*downloaded);

    let go = |to: FreeStep| {
        let (step, error) = (step.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            step.set(to);
        })
    };
    let edit = |field: DetailField| {
        let details = details.clone();
        Callback::from(move |e: InputEvent| {
            let mut d = (*details).clone();
            d.set(field, input_value(&e));
            details.set(d);
        })
    };

    let body = match *step {
        FreeStep::You => {
            let role = {
                let details = details.clone();
                Callback::from(move |e: Event| {
                    let mut d = (*details).clone();
                    d.role = if select_value(&e) == "provider" { SenderRole::Provider } else { SenderRole::Moa };
                    details.set(d);
                })
            };
            let onsubmit = {
                let (details, check, step, error, busy, code) =
                    (details.clone(), check.clone(), step.clone(), error.clone(), busy.clone(), code.clone());
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    if let Some(p) = details.you_problem() {
                        error.set(Some(ApiError::local(p)));
                        return;
                    }
                    let email = details.email();
                    // The same address, checked or with a code still worth typing: carry on from there.
                    if let Some(c) = check.as_ref().filter(|c| c.email == email && (c.verified || c.tries_left > 0 || c.resends_left > 0)) {
                        error.set(None);
                        step.set(if c.verified { FreeStep::Clinic } else { FreeStep::EmailCheck });
                        return;
                    }
                    let (check, step, error, busy, code) = (check.clone(), step.clone(), error.clone(), busy.clone(), code.clone());
                    busy.set(true);
                    error.set(None);
                    spawn(async move {
                        match api::call::<StartFreeDraft>(&(), &StartDraft { email: email.clone() }).await {
                            Ok(c) => {
                                check.set(Some(CodeCheck::sent(email, &c)));
                                code.set(String::new());
                                step.set(FreeStep::EmailCheck);
                            }
                            Err(e) => error.set(Some(e)),
                        }
                        busy.set(false);
                    });
                })
            };
            let provider = details.role == SenderRole::Provider;
            html! {
                <form class="card wizard" {onsubmit} aria-busy={busy.to_string()}>
                    <h2 id="free-step-you">{ FreeStep::You.title() }</h2>
                    <ErrorBox error={(*error).clone()} />
                    <label for="free-role">{ "I am" }</label>
                    <select id="free-role" onchange={role}>
                        <option value="moa" selected={!provider}>{ "An MOA or administrator, for a referring provider" }</option>
                        <option value="provider" selected={provider}>{ "The referring provider" }</option>
                    </select>
                    <label for="free-name">{ "Your name" }</label>
                    <input id="free-name" autocomplete="name" value={details.name.clone()} oninput={edit(DetailField::Name)} />
                    <label for="free-email">{ "Your email address" }</label>
                    <input id="free-email" type="email" autocomplete="email" value={details.email.clone()} oninput={edit(DetailField::Email)} />
                    <small class="muted block">{ "We email a code to this address now, and the specialist's answer (accepted or declined) later. It is the only thing Handoff keeps about you." }</small>
                    if provider {
                        <label for="free-msp">{ "Your MSP practitioner number" }</label>
                        <input id="free-msp" inputmode="numeric" autocomplete="off" maxlength="7" value={details.msp.clone()} oninput={edit(DetailField::Msp)} />
                    }
                    <div class="row end"><button class="primary" type="submit" id="free-you-continue" disabled={*busy}>{ if *busy { "Sending a code…" } else { "Continue" } }</button></div>
                </form>
            }
        }
        FreeStep::EmailCheck => {
            let Some(c) = (*check).clone() else {
                return html! { <div class="notice"><p>{ "Start with your email address." }</p><button type="button" onclick={go(FreeStep::You)}>{ "Back" }</button></div> };
            };
            let onsubmit = {
                let (check, code, step, error, busy, notice) =
                    (check.clone(), code.clone(), step.clone(), error.clone(), busy.clone(), notice.clone());
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    notice.set(None);
                    let Some(c) = (*check).clone() else { return };
                    let Some(typed) = typed_code(&code) else {
                        error.set(Some(ApiError::local(format!("Type the {CODE_DIGITS} digits from the email."))));
                        return;
                    };
                    let (check, step, error, busy) = (check.clone(), step.clone(), error.clone(), busy.clone());
                    busy.set(true);
                    error.set(None);
                    spawn(async move {
                        match api::call::<VerifyFreeCode>(&c.draft, &VerifyCode { code: typed }).await {
                            Ok(_) => {
                                check.set(Some(CodeCheck { verified: true, ..c }));
                                step.set(FreeStep::Clinic);
                            }
                            Err(e) => {
                                let mut c = c;
                                c.refused(e.code);
                                check.set(Some(c));
                                error.set(Some(e));
                            }
                        }
                        busy.set(false);
                    });
                })
            };
            let resend = {
                let (check, code, error, busy, notice) = (check.clone(), code.clone(), error.clone(), busy.clone(), notice.clone());
                Callback::from(move |_: MouseEvent| {
                    let Some(c) = (*check).clone() else { return };
                    let (check, code, error, busy, notice) = (check.clone(), code.clone(), error.clone(), busy.clone(), notice.clone());
                    busy.set(true);
                    error.set(None);
                    notice.set(None);
                    spawn(async move {
                        match api::call::<ResendFreeCode>(&c.draft, &()).await {
                            Ok(sent) => {
                                let mut c = c;
                                c.resent(&sent);
                                check.set(Some(c));
                                code.set(String::new());
                                notice.set(Some("A new code is on its way. The earlier one no longer works.".into()));
                            }
                            Err(e) => error.set(Some(e)),
                        }
                        busy.set(false);
                    });
                })
            };
            let oninput = {
                let code = code.clone();
                Callback::from(move |e: InputEvent| code.set(input_value(&e)))
            };
            html! {
                <form class="card wizard" {onsubmit} aria-busy={busy.to_string()}>
                    <h2 id="free-step-email">{ FreeStep::EmailCheck.title() }</h2>
                    <p>{ format!("We sent a {CODE_DIGITS}-digit code to ") }<strong>{ c.email.clone() }</strong>{ ". It works for 10 minutes." }</p>
                    <ErrorBox error={(*error).clone()} />
                    if let Some(n) = &*notice { <div class="alert ok" role="status">{ n.clone() }</div> }
                    if c.tries_left == 0 && c.resends_left == 0 {
                        <div class="alert warn" role="alert">{ "No more codes can be sent for this check. Go back and press Continue to start again." }</div>
                    }
                    <label for="free-code">{ "Code" }</label>
                    <input id="free-code" inputmode="numeric" autocomplete="one-time-code" maxlength="8" value={(*code).clone()} {oninput} />
                    <p class="muted" data-testid="free-tries-left">{ format!("Tries left on this code: {}", c.tries_left) }</p>
                    <div class="row end">
                        <button type="button" onclick={go(FreeStep::You)}>{ "Back" }</button>
                        <button type="button" id="free-resend" onclick={resend} disabled={*busy || c.resends_left == 0}>{ format!("Send a new code ({} left)", c.resends_left) }</button>
                        <button class="primary" type="submit" id="free-verify" disabled={*busy}>{ if *busy { "Checking…" } else { "Continue" } }</button>
                    </div>
                </form>
            }
        }
        FreeStep::Clinic => {
            let onsubmit = {
                let (details, step, error) = (details.clone(), step.clone(), error.clone());
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    match details.clinic_problem() {
                        Some(p) => error.set(Some(ApiError::local(p))),
                        None => {
                            error.set(None);
                            step.set(FreeStep::Referral);
                        }
                    }
                })
            };
            let moa = details.role == SenderRole::Moa;
            html! {
                <form class="card wizard" {onsubmit}>
                    <h2 id="free-step-clinic">{ FreeStep::Clinic.title() }</h2>
                    <ErrorBox error={(*error).clone()} />
                    if moa {
                        <fieldset>
                            <legend>{ "Referring provider" }</legend>
                            <label for="free-provider-name">{ "Provider's name" }</label>
                            <input id="free-provider-name" autocomplete="off" value={details.provider_name.clone()} oninput={edit(DetailField::ProviderName)} />
                            <label for="free-provider-msp">{ "Provider's MSP practitioner number" }</label>
                            <input id="free-provider-msp" inputmode="numeric" autocomplete="off" maxlength="7" value={details.provider_msp.clone()} oninput={edit(DetailField::ProviderMsp)} />
                        </fieldset>
                    } else {
                        <p class="muted">{ format!("Referring provider: {} (MSP {})", details.name.trim(), details.msp.trim()) }</p>
                    }
                    <fieldset>
                        <legend>{ "Clinic" }</legend>
                        <label for="free-clinic-name">{ "Clinic name (optional)" }</label>
                        <input id="free-clinic-name" autocomplete="organization" value={details.clinic_name.clone()} oninput={edit(DetailField::ClinicName)} />
                        <label for="free-clinic-phone">{ "Clinic phone" }</label>
                        <input id="free-clinic-phone" type="tel" autocomplete="tel" value={details.clinic_phone.clone()} oninput={edit(DetailField::ClinicPhone)} />
                        <label for="free-clinic-address">{ "Clinic address" }</label>
                        <input id="free-clinic-address" autocomplete="street-address" value={details.clinic_address.clone()} oninput={edit(DetailField::ClinicAddress)} />
                    </fieldset>
                    <div class="row end">
                        <button type="button" onclick={go(FreeStep::You)}>{ "Back" }</button>
                        <button class="primary" type="submit" id="free-clinic-continue">{ "Continue" }</button>
                    </div>
                </form>
            }
        }
        FreeStep::Referral => html! {},
        FreeStep::Download => match (*sent).clone() {
            Some(s) => {
                let on_download = {
                    let (s, error, downloaded, taxonomy) = (s.clone(), error.clone(), downloaded.clone(), taxonomy.clone());
                    Callback::from(move |_: MouseEvent| {
                        let Receipt::Free(f) = &s.receipt else { return };
                        let Some(tax) = (*taxonomy).clone() else { return };
                        let facts = ReferralFacts {
                            number: f.number.clone(),
                            sent_at: f.sent_at,
                            status: Status::Sent,
                            to_practice: f.to_practice_name.clone(),
                            from_practice: None,
                            routing: s.routing.clone(),
                            content: s.content.clone(),
                            attachments: s.attachments.clone(),
                        };
                        match download_referral_pdf(&tax, &facts) {
                            Ok(()) => {
                                error.set(None);
                                downloaded.set(true);
                            }
                            Err(e) => error.set(Some(e)),
                        }
                    })
                };
                let (number, to, at) = match &s.receipt {
                    Receipt::Free(f) => (f.number.clone(), f.to_practice_name.clone(), f.sent_at),
                    Receipt::Member(id) => (id.to_string(), String::new(), now_ms()),
                };
                html! {
                    <section class="card wizard" aria-labelledby="free-step-download">
                        <h2 id="free-step-download">{ FreeStep::Download.title() }</h2>
                        <div class="alert warn" role="alert">
                            <strong>{ "This is your only chance to keep a copy of this referral." }</strong>
                            { " Once you leave this page, nobody can show it to you again: not you, and not Handoff's staff, because it is encrypted for the receiving practice only. Download the PDF now and file it in the patient's chart." }
                        </div>
                        <p>{ "Referral number, for the patient's file (the emails about this referral quote it):" }</p>
                        <p class="referral-number" data-testid="free-number">{ number }</p>
                        <dl class="facts">
                            <dt>{ "Sent to" }</dt><dd data-testid="free-to">{ to }</dd>
                            <dt>{ "Sent" }</dt><dd>{ when(at) }</dd>
                        </dl>
                        <ErrorBox error={(*error).clone()} />
                        <div class="row">
                            <button class="primary" id="download-pdf" type="button" onclick={on_download}>{ "Download PDF" }</button>
                            if *downloaded { <span role="status" data-testid="free-downloaded">{ "Downloaded. Keep it with the patient's file." }</span> }
                        </div>
                        <p class="muted">{ "The specialist's practice accepts or declines the referral in Handoff; you will get one email when they do, with the number and, for a decline, the reason. With an account you could also follow it, message the specialist and add attachments later." }</p>
                    </section>
                }
            }
            None => html! {},
        },
    };

    // The referral form stays mounted once reached, so going back to the
    // clinic keeps what was typed in it.
    let free_ctx = use_free_context((*taxonomy).clone(), details.free_sender(), *idem);
    let form = match &*free_ctx {
        Some(ctx) if check.as_ref().is_some_and(|c| c.verified) && *step != FreeStep::Download => {
            let ctx = ctx.clone();
            let onsent = {
                let (sent, step, error) = (sent.clone(), step.clone(), error.clone());
                Callback::from(move |s: Sent| {
                    sent.set(Some(Rc::new(s)));
                    error.set(None);
                    step.set(FreeStep::Download);
                })
            };
            let onback = {
                let step = step.clone();
                Callback::from(move |()| step.set(FreeStep::Clinic))
            };
            let f = details.free_sender();
            html! {
                <div hidden={*step != FreeStep::Referral}>
                    <ReferralWizard sender={SenderContext::Free(ctx)} {onsent} onback={Some(onback)}>
                        <dt>{ "Sent by" }</dt><dd data-testid="review-sender">{ format!("{} ({})", f.name, f.email) }</dd>
                        <dt>{ "Referring provider" }</dt><dd>{ format!("{} · MSP {}", f.provider_name, f.provider_msp) }</dd>
                        <dt>{ "Clinic" }</dt><dd>{ [f.clinic_name.as_str(), f.clinic_phone.as_str(), f.clinic_address.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" · ") }</dd>
                    </ReferralWizard>
                </div>
            }
        }
        None if idem.is_none() => {
            html! { <ErrorBox error={Some(ApiError::local("This browser cannot make the random numbers encryption needs."))} /> }
        }
        None if *step == FreeStep::Referral => html! { <p aria-busy="true">{ "Loading…" }</p> },
        Some(_) | None => html! {},
    };

    html! {
        <div class="free">
            <header class="row">
                <div class="logo">{ "Handoff" }</div>
                <a href={Route::Login.path()}>{ "Sign in" }</a>
            </header>
            <h1>{ "Send a referral without an account" }</h1>
            <FreeStepper step={*step} />
            { body }
            { form }
        </div>
    }
}

/// The free sender's context, made again only when what it holds changes
/// (so the sealed referral it remembers for a retry survives re-renders).
/// `None` until the taxonomy is loaded (or without an idempotency key).
#[hook]
fn use_free_context(taxonomy: Option<Rc<Taxonomy>>, sender: FreeSender, idem: Option<IdemKey>) -> Rc<Option<Rc<FreeContext>>> {
    use_memo((taxonomy, sender, idem), |(taxonomy, sender, idem)| {
        taxonomy
            .clone()
            .zip(*idem)
            .map(|(taxonomy, idem)| Rc::new(FreeContext { taxonomy, sender: sender.clone(), idem, sealed: RefCell::new(None) }))
    })
}

/// While `active`, leaving or reloading the page asks for confirmation
/// (the browser shows its own words).
#[hook]
fn use_before_unload(active: bool) {
    use_effect_with(active, |active| {
        let listener = active.then(|| {
            Closure::<dyn Fn(Event)>::new(|e: Event| {
                e.prevent_default();
                let _ = js_sys::Reflect::set(&e, &"returnValue".into(), &"".into());
            })
        });
        if let (Some(l), Some(w)) = (&listener, web_sys::window()) {
            let _ = w.add_event_listener_with_callback("beforeunload", l.as_ref().unchecked_ref());
        }
        move || {
            if let (Some(l), Some(w)) = (listener, web_sys::window()) {
                let _ = w.remove_event_listener_with_callback("beforeunload", l.as_ref().unchecked_ref());
            }
        }
    });
}

/// Props for [`FreeStepper`].
#[derive(Properties, PartialEq)]
struct FreeStepperProps {
    /// The step on screen.
    step: FreeStep,
}

/// The numbered list of the free wizard's steps, the current one marked.
#[function_component(FreeStepper)]
fn free_stepper(p: &FreeStepperProps) -> Html {
    let current = FreeStep::ALL.iter().position(|s| *s == p.step).unwrap_or_default();
    html! {
        <ol class="stepper" aria-label="Steps">
            { for FreeStep::ALL.iter().enumerate().map(|(i, s)| html! {
                <li class={classes!((i == current).then_some("current"), (i < current).then_some("done"))} aria-current={(i == current).then_some("step")}>
                    <span class="n">{ i + 1 }</span>{ s.title() }
                </li>
            }) }
        </ol>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(role: SenderRole) -> SenderDetails {
        SenderDetails {
            role,
            name: " Dana Reyes ".into(),
            email: " dana@clinic.example ".into(),
            msp: "12 345".into(),
            provider_name: "Dr. Amir Haddad".into(),
            provider_msp: "54321".into(),
            clinic_name: String::new(),
            clinic_phone: "604-555-0100".into(),
            clinic_address: "1 Main St, Surrey".into(),
        }
    }

    #[test]
    fn a_provider_gives_their_msp_number_first_and_is_their_own_referring_provider() {
        let mut d = filled(SenderRole::Provider);
        assert_eq!(d.you_problem(), None);
        d.msp = "1234".into();
        assert_eq!(d.you_problem().as_deref(), Some("An MSP practitioner number has 5 digits."));
        d.msp = "12345".into();
        // A provider is not asked for a provider again.
        d.provider_name.clear();
        d.provider_msp.clear();
        assert_eq!(d.clinic_problem(), None);
        let f = d.free_sender();
        assert_eq!((f.name.as_str(), f.provider_name.as_str(), f.provider_msp.as_str()), ("Dana Reyes", "Dana Reyes", "12345"));
        assert_eq!(f.email, "dana@clinic.example");
        assert_eq!(f.role, SenderRole::Provider);
    }

    #[test]
    fn an_moa_names_the_provider_with_a_valid_msp_number_and_the_clinic_needs_phone_and_address() {
        let mut d = filled(SenderRole::Moa);
        d.msp = "not asked".into();
        assert_eq!(d.you_problem(), None, "an MOA gives no MSP number of their own");
        assert_eq!(d.clinic_problem(), None, "the clinic's name is optional");
        d.provider_msp = "5432a".into();
        assert_eq!(d.clinic_problem().as_deref(), Some("An MSP practitioner number has digits only."));
        d.provider_msp = "54321".into();
        d.provider_name = "  ".into();
        assert_eq!(d.clinic_problem().as_deref(), Some("Enter the referring provider's name."));
        d.provider_name = "Dr. Amir Haddad".into();
        d.clinic_phone.clear();
        assert_eq!(d.clinic_problem().as_deref(), Some("Enter the clinic's phone number."));
        d.clinic_phone = "604-555-0100".into();
        d.clinic_address.clear();
        assert_eq!(d.clinic_problem().as_deref(), Some("Enter the clinic's address."));
        d.clinic_address = "1 Main St".into();
        let f = d.free_sender();
        assert_eq!((f.provider_name.as_str(), f.provider_msp.as_str()), ("Dr. Amir Haddad", "54321"));
    }

    #[test]
    fn the_first_step_needs_a_name_and_an_address_that_looks_like_one() {
        let mut d = filled(SenderRole::Moa);
        for bad in ["", "dana", "dana@", "@clinic.ca", "dana@clinic", "da na@clinic.ca", "a@b@c.ca"] {
            d.email = bad.into();
            assert!(d.you_problem().is_some(), "{bad:?} was taken as an address");
        }
        d.email = "dana@clinic.ca".into();
        d.name = " ".into();
        assert_eq!(d.you_problem().as_deref(), Some("Enter your name."));
    }

    #[test]
    fn a_wrong_code_costs_one_try_a_dead_code_leaves_none_and_a_new_code_starts_again() {
        let sent = CodeSent { draft: DraftId::from_bytes([3; 16]), expires_at: 0, resends_left: 3 };
        let mut c = CodeCheck::sent("dana@clinic.ca".into(), &sent);
        assert_eq!(c.tries_left, CODE_TRIES);
        c.refused(Some(ErrorCode::CodeWrong));
        c.refused(Some(ErrorCode::CodeWrong));
        assert_eq!(c.tries_left, CODE_TRIES - 2);
        c.refused(Some(ErrorCode::RateLimited));
        assert_eq!(c.tries_left, CODE_TRIES - 2, "a refusal that is not about the code costs no try");
        c.refused(Some(ErrorCode::CodeTriesExhausted));
        assert_eq!(c.tries_left, 0);
        c.refused(Some(ErrorCode::CodeWrong));
        assert_eq!(c.tries_left, 0);
        c.resent(&CodeSent { resends_left: 2, ..sent });
        assert_eq!((c.tries_left, c.resends_left), (CODE_TRIES, 2));
    }

    #[test]
    fn a_code_is_six_digits_and_spaces_are_ignored() {
        assert_eq!(typed_code("123456").as_deref(), Some("123456"));
        assert_eq!(typed_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(typed_code("12345"), None);
        assert_eq!(typed_code("1234567"), None);
        assert_eq!(typed_code("12345a"), None);
    }

    #[test]
    fn the_free_steps_have_titles_distinct_from_the_referral_forms() {
        let mine: Vec<_> = FreeStep::ALL.iter().map(|s| s.title()).collect();
        let form = ["Routing", "Specialist", "Patient", "Attachments", "Review"];
        for t in &mine {
            assert!(!form.contains(t), "{t} is also a step of the referral form");
        }
        let mut unique = mine.clone();
        unique.dedup();
        assert_eq!(unique.len(), mine.len());
    }
}
