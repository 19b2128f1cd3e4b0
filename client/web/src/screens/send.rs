//! Sending a referral: a cascade (specialty, category, subcategory, region),
//! a specialist or "choose for me", urgency, the patient, clinical details,
//! attachments with upload progress, and a review step. Everything about the
//! patient is encrypted here before it is sent.
//!
//! [`SendReferral`] holds the wizard's state ([`wizard::Wizard`], a reducer)
//! and puts one step on screen: [`routing::RoutingStep`],
//! [`recipient::RecipientStep`], the patient form and attachment picker of
//! [`crate::forms`], and [`review::ReviewStep`]; [`submit::send`] sends it.

mod recipient;
mod review;
mod routing;
mod submit;
mod wizard;

use std::rc::Rc;

use handoff_protocol::v1::PracticeKind;
use yew::prelude::*;

use self::recipient::RecipientStep;
use self::review::ReviewStep;
use self::routing::RoutingStep;
use self::wizard::{Lookup, Recipient, Step, Wizard, WizardAction};
use crate::Ctx;
use crate::api::{self, ApiError};
use crate::forms::attachments::AttachmentPicker;
use crate::forms::patient::PatientForm;
use crate::ui::{ErrorBox, Route, spawn};

/// The send-referral wizard.
#[function_component(SendReferral)]
pub fn send_referral() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let s = &ctx.session;
    let mine: Vec<_> = s.practices().into_iter().filter(|p| s.has_key(p.id)).collect();
    let wizard = {
        let from = mine.iter().find(|p| p.kind == PracticeKind::Referring).or(mine.first()).map(|p| p.id);
        use_reducer(move || Wizard::new(from))
    };
    let taxonomy = use_memo(Rc::as_ptr(s) as usize, |_| s.taxonomy.clone());

    if mine.is_empty() {
        return html! {
            <>
                <h1>{ "New referral" }</h1>
                <div class="notice"><p>{ "You need to belong to a practice (and hold its key) before you can send a referral." }</p>
                <button class="primary" onclick={{ let nav = ctx.nav.clone(); Callback::from(move |_| nav.emit(Route::Practices)) }}>{ "Go to practices" }</button></div>
            </>
        };
    }

    let step = wizard.step;
    let candidates = Rc::new(wizard.candidates());
    let dispatch = wizard.dispatcher();
    let next = {
        let wizard = wizard.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(p) = wizard.problem() {
                wizard.dispatch(WizardAction::Error(Some(ApiError::local(p))));
                return;
            }
            wizard.dispatch(WizardAction::Error(None));
            if wizard.step == Step::Routing {
                let (d, sp, rg) = (wizard.dispatcher(), wizard.routing.specialty.clone(), wizard.routing.region.clone());
                d.dispatch(WizardAction::Directory(Lookup::Pending));
                spawn(async move {
                    let found = api::directory(&sp, &rg).await;
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
            let practices = mine.iter().map(|p| (p.id, p.name.clone())).collect::<Vec<_>>();
            html! { <RoutingStep taxonomy={taxonomy.clone()} {practices} from={wizard.from} value={wizard.routing.clone()} onedit={dispatch.to_callback().reform(WizardAction::Routing)} /> }
        }
        Step::Specialist => html! {
            <RecipientStep directory={wizard.directory.clone()} candidates={candidates.clone()} value={wizard.recipient} onchoose={dispatch.to_callback().reform(WizardAction::Recipient)} />
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
                <ReviewStep routing={wizard.routing.clone()} {to} patient={wizard.patient.clone()} files={wizard.files.clone()} busy={wizard.busy.clone()} progress={wizard.progress} />
            }
        }
    };
    let back = match step.back() {
        Some(prev) => {
            html! { <button type="button" onclick={dispatch.to_callback().reform(move |_: MouseEvent| WizardAction::Go(prev))}>{ "Back" }</button> }
        }
        None => html! {},
    };
    let actions = if step == Step::Review {
        let send = {
            let (ctx, wizard) = (ctx.clone(), wizard.clone());
            Callback::from(move |_: MouseEvent| submit::send(&ctx, &wizard, wizard.dispatcher()))
        };
        html! { <div class="row end">{ back }<button class="primary" type="button" onclick={send} disabled={wizard.busy.is_some()}>{ "Send referral" }</button></div> }
    } else {
        html! { <div class="row end">{ back }<button class="primary" type="submit">{ "Continue" }</button></div> }
    };
    html! {
        <>
            <h1>{ "New referral" }</h1>
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
