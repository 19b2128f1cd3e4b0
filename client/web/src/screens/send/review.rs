//! The review step: everything the referral will carry, at a glance, and
//! while it is being sent, what is happening and how far the upload is.

use handoff_domain::taxonomy::Lookup as _;
use std::rc::Rc;

use handoff_protocol::v1::Taxonomy;
use yew::prelude::*;

use super::wizard::RoutingChoice;
use crate::forms::attachments::PickedFile;
use crate::forms::patient::PatientDetails;
use crate::state::urgency_label;

/// Props for [`ReviewStep`].
#[derive(Properties, PartialEq)]
pub struct ReviewProps {
    /// The taxonomy, for the names of the routing's slugs.
    pub taxonomy: Rc<Taxonomy>,
    /// The routing.
    pub routing: RoutingChoice,
    /// Who receives it, in words.
    pub to: String,
    /// The patient and the clinical details.
    pub patient: PatientDetails,
    /// The files to attach.
    pub files: Rc<Vec<PickedFile>>,
    /// While sending: what is happening now.
    pub busy: Option<String>,
    /// While uploading a file: the fraction sent.
    pub progress: Option<f64>,
    /// More facts about who sends it (`<dt>`/`<dd>` pairs), shown after the rest.
    #[prop_or_default]
    pub children: Html,
}

/// The last step of the send wizard.
#[function_component(ReviewStep)]
pub fn review_step(p: &ReviewProps) -> Html {
    let s = &*p.taxonomy;
    let r = &p.routing;
    let category = s.category(&r.specialty, &r.category).map(|c| c.name.clone()).unwrap_or_default();
    let attachments =
        if p.files.is_empty() { "None".to_string() } else { p.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>().join(", ") };
    html! {
        <>
            <dl class="facts review" data-testid="review">
                <dt>{ "Specialty" }</dt><dd>{ s.specialty_name(&r.specialty) }</dd>
                <dt>{ "Category" }</dt><dd>{ category }{ if r.subcategory.is_empty() { String::new() } else { format!(" / {}", r.subcategory) } }</dd>
                <dt>{ "Region" }</dt><dd>{ s.region_name(&r.region) }</dd>
                <dt>{ "Urgency" }</dt><dd>{ urgency_label(r.urgency) }</dd>
                <dt>{ "To" }</dt><dd>{ p.to.clone() }</dd>
                <dt>{ "Patient" }</dt><dd>{ format!("{} · born {} · {}", p.patient.name, p.patient.date_of_birth, p.patient.health_number) }</dd>
                <dt>{ "Reason" }</dt><dd class="prewrap">{ p.patient.reason.clone() }</dd>
                <dt>{ "Attachments" }</dt><dd>{ attachments }</dd>
                { p.children.clone() }
            </dl>
            <SendProgress busy={p.busy.clone()} progress={p.progress} />
        </>
    }
}

/// Props for [`SendProgress`].
#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    /// What is happening now, if anything.
    pub busy: Option<String>,
    /// The fraction of the current upload sent, if one is running.
    pub progress: Option<f64>,
}

/// The send's progress: a status line, and a bar while a file uploads.
#[function_component(SendProgress)]
pub fn send_progress(p: &ProgressProps) -> Html {
    html! {
        <>
            if let Some(b) = &p.busy { <p role="status" aria-live="polite">{ b.clone() }</p> }
            if let Some(f) = p.progress { <progress max="1" value={f.to_string()} aria-label="Upload progress" /> }
        </>
    }
}
