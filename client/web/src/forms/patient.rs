//! The patient and clinical details of a referral, as the person sending it
//! types them, and the form that edits them.

use handoff_crypto::ReferralContent;
use handoff_crypto::referral::Demographics;
use yew::prelude::*;

use crate::ui::{input_value, select_value, textarea_value};

/// The choices of the "Sex" list; the empty one means not chosen yet.
const SEXES: [&str; 5] = ["", "Female", "Male", "Intersex", "Unknown"];

/// What the sender has typed about the patient and why they are referred.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatientDetails {
    /// The patient's full name.
    pub name: String,
    /// The date of birth as the date input gives it (`YYYY-MM-DD`), or empty.
    pub date_of_birth: String,
    /// One of the "Sex" choices, or empty.
    pub sex: String,
    /// The personal health number.
    pub health_number: String,
    /// The patient's phone number.
    pub phone: String,
    /// The patient's address.
    pub address: String,
    /// The reason for referral.
    pub reason: String,
    /// History, medications and investigations.
    pub clinical_details: String,
}

/// One field of [`PatientDetails`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatientField {
    /// [`PatientDetails::name`].
    Name,
    /// [`PatientDetails::date_of_birth`].
    DateOfBirth,
    /// [`PatientDetails::sex`].
    Sex,
    /// [`PatientDetails::health_number`].
    HealthNumber,
    /// [`PatientDetails::phone`].
    Phone,
    /// [`PatientDetails::address`].
    Address,
    /// [`PatientDetails::reason`].
    Reason,
    /// [`PatientDetails::clinical_details`].
    ClinicalDetails,
}

/// A change the form reports: one field now holds this text. Edits name a
/// single field, so two quick edits never undo each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientEdit {
    /// The field that changed.
    pub field: PatientField,
    /// Its new text, as typed.
    pub value: String,
}

impl PatientDetails {
    /// Applies one edit from [`PatientForm`].
    pub fn apply(&mut self, edit: PatientEdit) {
        let PatientEdit { field, value } = edit;
        let slot = match field {
            PatientField::Name => &mut self.name,
            PatientField::DateOfBirth => &mut self.date_of_birth,
            PatientField::Sex => &mut self.sex,
            PatientField::HealthNumber => &mut self.health_number,
            PatientField::Phone => &mut self.phone,
            PatientField::Address => &mut self.address,
            PatientField::Reason => &mut self.reason,
            PatientField::ClinicalDetails => &mut self.clinical_details,
        };
        *slot = value;
    }

    /// Why these details cannot be sent yet, in words for the sender, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.name.trim().is_empty() {
            Some("Enter the patient's name.")
        } else if self.reason.trim().is_empty() {
            Some("Enter the reason for referral.")
        } else {
            None
        }
    }

    /// The content to encrypt: the typed text, with the free-text fields trimmed.
    pub fn content(&self) -> ReferralContent {
        ReferralContent {
            patient: Demographics {
                name: self.name.trim().into(),
                date_of_birth: self.date_of_birth.clone(),
                sex: self.sex.clone(),
                health_number: self.health_number.trim().into(),
                phone: self.phone.trim().into(),
                address: self.address.trim().into(),
            },
            reason: self.reason.trim().into(),
            clinical_details: self.clinical_details.trim().into(),
            free_sender: None,
        }
    }
}

/// Props for [`PatientForm`].
#[derive(Properties, PartialEq)]
pub struct PatientFormProps {
    /// The details to show.
    pub value: PatientDetails,
    /// Called with every change; the owner applies it with [`PatientDetails::apply`].
    pub onedit: Callback<PatientEdit>,
}

/// The patient's demographics, the reason for referral and the clinical details.
#[function_component(PatientForm)]
pub fn patient_form(p: &PatientFormProps) -> Html {
    let input = |field: PatientField| p.onedit.reform(move |e: InputEvent| PatientEdit { field, value: input_value(&e) });
    let area = |field: PatientField| p.onedit.reform(move |e: InputEvent| PatientEdit { field, value: textarea_value(&e) });
    let sex = p.onedit.reform(|e: Event| PatientEdit { field: PatientField::Sex, value: select_value(&e) });
    let v = &p.value;
    html! {
        <>
            <fieldset>
                <legend>{ "Patient" }</legend>
                <div class="grid2">
                    <div><label for="pt-name">{ "Full name" }</label><input id="pt-name" autocomplete="off" value={v.name.clone()} oninput={input(PatientField::Name)} /></div>
                    <div><label for="pt-dob">{ "Date of birth" }</label><input id="pt-dob" type="date" value={v.date_of_birth.clone()} oninput={input(PatientField::DateOfBirth)} /></div>
                    <div>
                        <label for="pt-sex">{ "Sex" }</label>
                        <select id="pt-sex" onchange={sex}>
                            { for SEXES.into_iter().map(|x| html! { <option value={x} selected={v.sex == x}>{ if x.is_empty() { "Choose…" } else { x } }</option> }) }
                        </select>
                    </div>
                    <div><label for="pt-hn">{ "Personal health number" }</label><input id="pt-hn" autocomplete="off" inputmode="numeric" value={v.health_number.clone()} oninput={input(PatientField::HealthNumber)} /></div>
                    <div><label for="pt-phone">{ "Phone" }</label><input id="pt-phone" type="tel" autocomplete="off" value={v.phone.clone()} oninput={input(PatientField::Phone)} /></div>
                    <div><label for="pt-address">{ "Address" }</label><input id="pt-address" autocomplete="off" value={v.address.clone()} oninput={input(PatientField::Address)} /></div>
                </div>
            </fieldset>
            <label for="pt-reason">{ "Reason for referral" }</label>
            <textarea id="pt-reason" rows="3" value={v.reason.clone()} oninput={area(PatientField::Reason)} />
            <label for="pt-details">{ "Clinical details (history, medications, investigations)" }</label>
            <textarea id="pt-details" rows="6" value={v.clinical_details.clone()} oninput={area(PatientField::ClinicalDetails)} />
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_fill_the_details_and_the_content_is_trimmed_as_before() {
        let mut d = PatientDetails::default();
        assert_eq!(d.problem(), Some("Enter the patient's name."));
        for (field, value) in [
            (PatientField::Name, " Eleanor Whitfield "),
            (PatientField::DateOfBirth, "1948-03-14"),
            (PatientField::Sex, "Female"),
            (PatientField::HealthNumber, " 9876543210 "),
            (PatientField::Phone, " 604-555-0143"),
            (PatientField::Address, "12 Cedar Lane "),
        ] {
            d.apply(PatientEdit { field, value: value.into() });
        }
        assert_eq!(d.problem(), Some("Enter the reason for referral."));
        d.apply(PatientEdit { field: PatientField::Reason, value: " Palpitations. ".into() });
        d.apply(PatientEdit { field: PatientField::ClinicalDetails, value: "Holter pending.\n".into() });
        assert_eq!(d.problem(), None);
        let c = d.content();
        assert_eq!(c.patient.name, "Eleanor Whitfield");
        assert_eq!(c.patient.date_of_birth, "1948-03-14");
        assert_eq!(c.patient.sex, "Female");
        assert_eq!(c.patient.health_number, "9876543210");
        assert_eq!(c.patient.phone, "604-555-0143");
        assert_eq!(c.patient.address, "12 Cedar Lane");
        assert_eq!(c.reason, "Palpitations.");
        assert_eq!(c.clinical_details, "Holter pending.");
    }
}
