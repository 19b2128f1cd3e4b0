//! Sending a referral: a cascade (specialty, category, subcategory, region),
//! a specialist or "choose for me", urgency, the patient, clinical details,
//! attachments with upload progress, and a review step. Everything about the
//! patient is encrypted here before it is sent.
//!
//! [`ReferralWizard`] is the one form every sender uses: it holds the
//! wizard's state ([`wizard::Wizard`], a reducer) and puts one step on
//! screen: [`routing::RoutingStep`], [`recipient::RecipientStep`], the
//! patient form and attachment picker of [`crate::forms`], and
//! [`review::ReviewStep`]; [`submit::send`] sends it. What differs between
//! senders (a signed-in member, or a free sender without an account) is a
//! [`sender::SenderContext`]. [`SendReferral`] is the signed-in screen.

mod recipient;
mod review;
mod routing;
pub mod sender;
mod submit;
mod wizard;

use std::rc::Rc;

use handoff_protocol::PracticeId;
use handoff_protocol::v1::PracticeKind;
use yew::prelude::*;

use self::recipient::RecipientStep;
use self::review::ReviewStep;
use self::routing::RoutingStep;
use self::sender::{SenderContext, Sent};
use self::wizard::{Lookup, Recipient, Step, Wizard, WizardAction};
use crate::Ctx;
use crate::api::ApiError;
use crate::forms::attachments::AttachmentPicker;
use crate::forms::patient::PatientForm;
use crate::ui::{ErrorBox, Route, spawn};

/// The send-referral screen of a signed-in member: [`ReferralWizard`] with
/// the member's [`SenderContext`], opening the referral once it is sent.
#[function_component(SendReferral)]
pub fn send_referral() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let s = &ctx.session;
    let mine: Vec<_> = s.practices().into_iter().filter(|p| s.has_key(p.id)).collect();
    if mine.is_empty() {
        return html! {
            <>
                <h1>{ "New referral" }</h1>
                <div class="notice"><p>{ "You need to belong to a practice (and hold its key) before you can send a referral." }</p>
                <button class="primary" onclick={{ let nav = ctx.nav.clone(); Callback::from(move |_| nav.emit(Route::Practices)) }}>{ "Go to practices" }</button></div>
            </>
        };
    }
    let from = mine.iter().find(|p| p.kind == PracticeKind::Referring).or(mine.first()).map(|p| p.id);
    let onsent = {
        let nav = ctx.nav.clone();
        Callback::from(move |sent: Sent| nav.emit(Route::Referral(sent.receipt.referral())))
    };
    html! {
        <>
            <h1>{ "New referral" }</h1>
            <ReferralWizard sender={SenderContext::Member(ctx.clone())} {from} {onsent} />
        </>
    }
}

/// Props for [`ReferralWizard`].
#[derive(Properties, PartialEq)]
pub struct ReferralWizardProps {
    /// Who sends, and through what.
    pub sender: SenderContext,
    /// The practice to send from at first (a member's), if any.
    #[prop_or_default]
    pub from: Option<PracticeId>,
    /// Called once the referral is sent.
    pub onsent: Callback<Sent>,
    /// Called by "Back" on the first step; without it the first step has no "Back".
    #[prop_or_default]
    pub onback: Option<Callback<()>>,
    /// Facts about the sender for the review (`<dt>`/`<dd>` pairs).
    #[prop_or_default]
    pub children: Html,
}

/// The referral form every sender uses: the routing cascade, the recipient
/// (a named specialist or "Choose for me"), the patient, the attachments and
/// the review, then the send through [`SenderContext`]. It holds the state
/// ([`wizard::Wizard`], a reducer) and puts one step on screen.
#[function_component(ReferralWizard)]
pub fn referral_wizard(p: &ReferralWizardProps) -> Html {
    let wizard = {
        let from = p.from;
        use_reducer(move || Wizard::new(from))
    };
    let taxonomy = {
        let sender = p.sender.clone();
        use_memo((), move |_| sender.taxonomy())
    };
    let taxonomy: Rc<_> = (*taxonomy).clone();
    let step = wizard.step;
    let candidates = Rc::new(wizard.candidates());
    let dispatch = wizard.dispatcher();
    let next = {
        let (wizard, sender) = (wizard.clone(), p.sender.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(p) = wizard.problem() {
                wizard.dispatch(WizardAction::Error(Some(ApiError::local(p))));
                return;
            }
            wizard.dispatch(WizardAction::Error(None));
            if wizard.step == Step::Routing {
                let (d, sp, rg, sender) =
                    (wizard.dispatcher(), wizard.routing.specialty.clone(), wizard.routing.region.clone(), sender.clone());
                d.dispatch(WizardAction::Directory(Lookup::Pending));
                spawn(async move {
                    let found = sender.directory(&sp, &rg).await;
                    d.dispatch(WizardAction::Directory(match found {
                        Ok(list) => Lookup::Found(Rc::new(list)),
                        Err(e) => Lookup::Failed(e),
                    }))
                });
            }
            wizard.dispatch(WizardAction::Go(wizard.step.next()));
        })
    };
    let body = match step {
        Step::Routing => {
            let practices = p.sender.practices();
            html! { <RoutingStep taxonomy={taxonomy.clone()} {practices} from={wizard.from} value={wizard.routing.clone()} onedit={dispatch.to_callback().reform(WizardAction::Routing)} /> }
        }
        Step::Specialist => html! {
            <RecipientStep taxonomy={taxonomy.clone()} directory={wizard.directory.clone()} candidates={candidates.clone()} value={wizard.recipient} onchoose={dispatch.to_callback().reform(WizardAction::Recipient)} />
        },
        Step::Patient => {
            html! { <PatientForm value={wizard.patient.clone()} onedit={dispatch.to_callback().reform(WizardAction::Patient)} /> }
        }
        Step::Attachments => html! {
            <AttachmentPicker
                files={wizard.files.clone()}
                onpick={dispatch.to_callback().reform(WizardAction::AddFiles)}
                onremove={dispatch.to_callback().reform(WizardAction::RemoveFile)}
                onerror={dispatch.to_callback().reform(|e: ApiError| WizardAction::Error(Some(e)))}
            />
        },
        Step::Review => {
            let to = match wizard.recipient {
                Recipient::ChooseForMe => format!("Choose for me (among {} practices)", candidates.len()),
                Recipient::Practice(id) => candidates.iter().find(|e| e.id == id).map(|e| e.name.clone()).unwrap_or_default(),
            };
            html! {
                <ReviewStep taxonomy={taxonomy.clone()} routing={wizard.routing.clone()} {to} patient={wizard.patient.clone()} files={wizard.files.clone()} busy={wizard.busy.clone()} progress={wizard.progress}>
                    { p.children.clone() }
                </ReviewStep>
            }
        }
    };
    let back = match (step.back(), &p.onback) {
        (Some(prev), _) => {
            html! { <button type="button" onclick={dispatch.to_callback().reform(move |_: MouseEvent| WizardAction::Go(prev))}>{ "Back" }</button> }
        }
        (None, Some(onback)) => html! { <button type="button" onclick={onback.reform(|_: MouseEvent| ())}>{ "Back" }</button> },
        (None, None) => html! {},
    };
    let actions = if step == Step::Review {
        let send = {
            let (sender, wizard, onsent) = (p.sender.clone(), wizard.clone(), p.onsent.clone());
            Callback::from(move |_: MouseEvent| submit::send(&sender, &wizard, wizard.dispatcher(), onsent.clone()))
        };
        html! { <div class="row end">{ back }<button class="primary" id="send-referral" type="button" onclick={send} disabled={wizard.busy.is_some()}>{ p.sender.send_label() }</button></div> }
    } else {
        html! { <div class="row end">{ back }<button class="primary" type="submit">{ "Continue" }</button></div> }
    };
    html! {
        <>
            <Stepper {step} />
            <form class="card wizard" onsubmit={next}>
                <h2>{ step.title() }</h2>
                <ErrorBox error={wizard.error.clone()} />
                { body }
                { actions }
            </form>
        </>
    }
}

/// Props for [`Stepper`].
#[derive(Properties, PartialEq)]
struct StepperProps {
    /// The step on screen.
    step: Step,
}

/// The numbered list of steps, the current one marked.
#[function_component(Stepper)]
fn stepper(p: &StepperProps) -> Html {
    let current = Step::ALL.iter().position(|s| *s == p.step).unwrap_or_default();
    html! {
        <ol class="stepper" aria-label="Steps">
            { for Step::ALL.iter().enumerate().map(|(i, s)| html! {
                <li class={classes!((i == current).then_some("current"), (i < current).then_some("done"))} aria-current={(i == current).then_some("step")}>
                    <span class="n">{ i + 1 }</span>{ s.title() }
                </li>
            }) }
        </ol>
    }
}
