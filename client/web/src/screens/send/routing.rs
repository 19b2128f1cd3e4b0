//! The routing step: the practice to send from (when the user has several),
//! the specialty → category → subcategory cascade, the region and the urgency.
//! It needs the taxonomy only, not a session.

use handoff_domain::taxonomy::Lookup as _;
use std::rc::Rc;

use handoff_protocol::PracticeId;
use handoff_protocol::v1::Taxonomy;
use handoff_protocol::ws::Urgency;
use yew::prelude::*;

use super::wizard::{RoutingChoice, RoutingEdit};
use crate::state::urgency_label;
use crate::ui::select_value;

/// Props for [`RoutingStep`].
#[derive(Properties, PartialEq)]
pub struct RoutingProps {
    /// The specialties and regions to choose from.
    pub taxonomy: Rc<Taxonomy>,
    /// The practices the user may send from, by id and name; the choice is
    /// shown only when there is more than one.
    pub practices: Vec<(PracticeId, String)>,
    /// The practice chosen to send from.
    pub from: Option<PracticeId>,
    /// The routing picked so far.
    pub value: RoutingChoice,
    /// Called with every change.
    pub onedit: Callback<RoutingEdit>,
}

/// The first step of the send wizard.
#[function_component(RoutingStep)]
pub fn routing_step(p: &RoutingProps) -> Html {
    let tax = &p.taxonomy;
    let v = &p.value;
    let spec = tax.specialty(&v.specialty);
    let cat = tax.category(&v.specialty, &v.category);
    let edit = |f: fn(String) -> RoutingEdit| p.onedit.reform(move |e: Event| f(select_value(&e)));
    let from = {
        let onedit = p.onedit.clone();
        Callback::from(move |e: Event| {
            if let Ok(u) = uuid::Uuid::parse_str(&select_value(&e)) {
                onedit.emit(RoutingEdit::From(PracticeId(u)));
            }
        })
    };
    html! {
        <>
            if p.practices.len() > 1 {
                <label for="s-from">{ "Send from" }</label>
                <select id="s-from" onchange={from}>
                    { for p.practices.iter().map(|(id, name)| html! { <option value={id.to_string()} selected={p.from == Some(*id)}>{ name.clone() }</option> }) }
                </select>
            }
            <div class="grid2">
                <div>
                    <label for="s-specialty">{ "Specialty" }</label>
                    <select id="s-specialty" onchange={edit(RoutingEdit::Specialty)}>
                        <option value="" selected={v.specialty.is_empty()}>{ "Choose…" }</option>
                        { for tax.specialties.iter().map(|x| html! { <option value={x.slug.clone()} selected={v.specialty == x.slug}>{ x.name.clone() }</option> }) }
                    </select>
                </div>
                <div>
                    <label for="s-category">{ "Category" }</label>
                    <select id="s-category" disabled={spec.is_none()} onchange={edit(RoutingEdit::Category)}>
                        <option value="" selected={v.category.is_empty()}>{ "Choose…" }</option>
                        { for spec.iter().flat_map(|x| x.categories.iter()).map(|c| html! { <option value={c.slug.clone()} selected={v.category == c.slug}>{ c.name.clone() }</option> }) }
                    </select>
                </div>
                <div>
                    <label for="s-subcategory">{ "Subcategory (optional)" }</label>
                    <select id="s-subcategory" disabled={cat.is_none_or(|c| c.subcategories.is_empty())} onchange={edit(RoutingEdit::Subcategory)}>
                        <option value="" selected={v.subcategory.is_empty()}>{ "Any / not applicable" }</option>
                        { for cat.iter().flat_map(|c| c.subcategories.iter()).map(|x| html! { <option value={x.slug.clone()} selected={v.subcategory == x.slug}>{ x.name.clone() }</option> }) }
                    </select>
                </div>
                <div>
                    <label for="s-region">{ "Health region" }</label>
                    <select id="s-region" onchange={edit(RoutingEdit::Region)}>
                        <option value="" selected={v.region.is_empty()}>{ "Choose…" }</option>
                        { for tax.regions.iter().map(|r| html! { <option value={r.slug.clone()} selected={v.region == r.slug}>{ r.name.clone() }</option> }) }
                    </select>
                </div>
            </div>
            <fieldset class="radios">
                <legend>{ "Urgency" }</legend>
                { for [Urgency::Urgent, Urgency::Semi, Urgency::Routine].into_iter().map(|u| {
                    let set = p.onedit.reform(move |_: Event| RoutingEdit::Urgency(u));
                    html! { <label><input type="radio" name="urgency" checked={v.urgency == u} onchange={set} />{ format!(" {}", urgency_label(u)) }</label> }
                }) }
            </fieldset>
        </>
    }
}
