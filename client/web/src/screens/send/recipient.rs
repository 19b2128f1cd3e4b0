//! The recipient step: "Choose for me" (the default) or one named specialist
//! practice among those in the directory that take the referral.

use std::rc::Rc;

use handoff_domain::taxonomy::Lookup as _;
use handoff_protocol::v1::{DirectoryEntry, Taxonomy};
use yew::prelude::*;

use super::wizard::{Lookup, Recipient};
use crate::ui::ErrorBox;

/// Props for [`RecipientStep`].
#[derive(Properties)]
pub struct RecipientProps {
    /// The taxonomy, for the regions' names.
    pub taxonomy: Rc<Taxonomy>,
    /// The directory's answer.
    pub directory: Lookup,
    /// The practices in it that take this referral.
    pub candidates: Rc<Vec<DirectoryEntry>>,
    /// The current choice.
    pub value: Recipient,
    /// Called with a new choice.
    pub onchoose: Callback<Recipient>,
}

impl PartialEq for RecipientProps {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.taxonomy, &o.taxonomy)
            && self.directory == o.directory
            && Rc::ptr_eq(&self.candidates, &o.candidates)
            && self.value == o.value
            && self.onchoose == o.onchoose
    }
}

/// The second step of the send wizard.
#[function_component(RecipientStep)]
pub fn recipient_step(p: &RecipientProps) -> Html {
    match &p.directory {
        Lookup::Pending => html! { <p aria-busy="true">{ "Finding specialists…" }</p> },
        Lookup::Failed(e) => html! { <ErrorBox error={Some(e.clone())} /> },
        Lookup::Found(_) if p.candidates.is_empty() => html! {
            <div class="alert warn" role="alert">{ "No verified specialist practice in this region accepts this category right now. Go back and choose another region or category." }</div>
        },
        Lookup::Found(_) => {
            let set = |r: Recipient| p.onchoose.reform(move |_: Event| r);
            html! {
                <fieldset class="radios choices">
                    <legend>{ "Who should receive it?" }</legend>
                    <label class="choice">
                        <input type="radio" name="target" checked={p.value == Recipient::ChooseForMe} onchange={set(Recipient::ChooseForMe)} />
                        <span><strong>{ "Choose for me" }</strong><small class="block muted">{ format!("Handoff sends it to the practice with the fewest referrals in this category among {} that accept it. The shortest wait, not a favourite.", p.candidates.len()) }</small></span>
                    </label>
                    { for p.candidates.iter().map(|e| html! {
                        <label class="choice">
                            <input type="radio" name="target" checked={p.value == Recipient::Practice(e.id)} onchange={set(Recipient::Practice(e.id))} />
                            <span><strong>{ e.name.clone() }</strong><small class="block muted">{ p.taxonomy.region_name(&e.region) }</small></span>
                        </label>
                    }) }
                </fieldset>
            }
        }
    }
}
