//! The send wizard's state: which step it is on and everything entered so
//! far, as one reducer the steps change through [`WizardAction`]s.

use std::rc::Rc;

use handoff_domain::eligibility::covers;
use handoff_protocol::PracticeId;
use handoff_protocol::v1::{DirectoryEntry, Intake};
use handoff_protocol::ws::{Routing, Urgency};
use yew::Reducible;

use crate::api::ApiError;
use crate::forms::attachments::PickedFile;
use crate::forms::patient::{PatientDetails, PatientEdit};

/// The wizard's steps, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Specialty, category, subcategory, region and urgency.
    Routing,
    /// A named specialist practice, or "Choose for me".
    Specialist,
    /// The patient and the clinical details.
    Patient,
    /// Files to attach.
    Attachments,
    /// Everything at a glance, and the send.
    Review,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [Step::Routing, Step::Specialist, Step::Patient, Step::Attachments, Step::Review];

    /// The step's name, in the stepper and as the form's heading.
    pub fn title(self) -> &'static str {
        match self {
            Step::Routing => "Routing",
            Step::Specialist => "Specialist",
            Step::Patient => "Patient",
            Step::Attachments => "Attachments",
            Step::Review => "Review",
        }
    }

    /// The step after this one (the review is the last).
    pub fn next(self) -> Step {
        match self {
            Step::Routing => Step::Specialist,
            Step::Specialist => Step::Patient,
            Step::Patient => Step::Attachments,
            Step::Attachments | Step::Review => Step::Review,
        }
    }

    /// The step before this one, if there is one.
    pub fn back(self) -> Option<Step> {
        match self {
            Step::Routing => None,
            Step::Specialist => Some(Step::Routing),
            Step::Patient => Some(Step::Specialist),
            Step::Attachments => Some(Step::Patient),
            Step::Review => Some(Step::Attachments),
        }
    }
}

/// Where the referral is routed: what the routing step picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingChoice {
    /// The specialty's slug, or empty.
    pub specialty: String,
    /// The category's slug within the specialty, or empty.
    pub category: String,
    /// The subcategory's slug, or empty for "any / not applicable".
    pub subcategory: String,
    /// The health region's slug, or empty.
    pub region: String,
    /// How soon the patient should be seen.
    pub urgency: Urgency,
}

impl Default for RoutingChoice {
    fn default() -> Self {
        Self {
            specialty: String::new(),
            category: String::new(),
            subcategory: String::new(),
            region: String::new(),
            urgency: Urgency::Routine,
        }
    }
}

/// A change the routing step reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutingEdit {
    /// The practice to send from.
    From(PracticeId),
    /// A specialty (clears the category and subcategory).
    Specialty(String),
    /// A category (clears the subcategory).
    Category(String),
    /// A subcategory, or empty for none.
    Subcategory(String),
    /// A health region.
    Region(String),
    /// An urgency.
    Urgency(Urgency),
}

impl RoutingChoice {
    /// Why the routing is not complete, in words for the sender, if it is not.
    pub fn problem(&self) -> Option<&'static str> {
        (self.specialty.is_empty() || self.category.is_empty() || self.region.is_empty())
            .then_some("Choose a specialty, a category and a region.")
    }

    /// The routing as the referral carries it.
    pub fn routing(&self) -> Routing {
        Routing {
            specialty: self.specialty.clone(),
            category: self.category.clone(),
            subcategory: (!self.subcategory.is_empty()).then(|| self.subcategory.clone()),
            region: self.region.clone(),
            urgency: self.urgency,
        }
    }

    /// Whether a directory entry takes referrals in this category (and
    /// subcategory), by the rule the server routes with
    /// (`handoff_domain::eligibility::covers`; the directory lists only
    /// practices that receive referrals in the specialty and region).
    pub fn accepted_by(&self, intake: &[Intake]) -> bool {
        covers(intake, &self.category, (!self.subcategory.is_empty()).then_some(self.subcategory.as_str()))
    }
}

/// Who receives the referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// Handoff picks the practice with the fewest referrals in the category.
    ChooseForMe,
    /// This practice from the directory.
    Practice(PracticeId),
}

/// The directory's answer for the chosen specialty and region.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// Not asked yet, or on its way.
    Pending,
    /// The directory could not be read.
    Failed(ApiError),
    /// The verified specialist practices of the specialty in the region.
    Found(Rc<Vec<DirectoryEntry>>),
}

impl PartialEq for Lookup {
    /// Two answers are the same when they are the same answer (entries are compared by identity).
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (Lookup::Pending, Lookup::Pending) => true,
            (Lookup::Failed(a), Lookup::Failed(b)) => a == b,
            (Lookup::Found(a), Lookup::Found(b)) => Rc::ptr_eq(a, b),
            (Lookup::Pending | Lookup::Failed(_) | Lookup::Found(_), _) => false,
        }
    }
}

/// Everything the wizard holds.
#[derive(Clone, Debug)]
pub struct Wizard {
    /// The step on screen.
    pub step: Step,
    /// The practice it is sent from (one of the user's, holding its key).
    pub from: Option<PracticeId>,
    /// The routing.
    pub routing: RoutingChoice,
    /// The directory's answer for that routing.
    pub directory: Lookup,
    /// The receiving practice.
    pub recipient: Recipient,
    /// The patient and the clinical details.
    pub patient: PatientDetails,
    /// The files to attach.
    pub files: Rc<Vec<PickedFile>>,
    /// The error shown above the step.
    pub error: Option<ApiError>,
    /// While sending: what is happening now.
    pub busy: Option<String>,
    /// While uploading a file: the fraction sent.
    pub progress: Option<f64>,
}

impl Wizard {
    /// A new wizard on its first step, sending from `from`.
    pub fn new(from: Option<PracticeId>) -> Self {
        Self {
            step: Step::Routing,
            from,
            routing: RoutingChoice::default(),
            directory: Lookup::Pending,
            recipient: Recipient::ChooseForMe,
            patient: PatientDetails::default(),
            files: Rc::new(Vec::new()),
            error: None,
            busy: None,
            progress: None,
        }
    }

    /// The practices in the directory's answer that take this category (and subcategory).
    pub fn candidates(&self) -> Vec<DirectoryEntry> {
        match &self.directory {
            Lookup::Found(d) => d.iter().filter(|e| self.routing.accepted_by(&e.intake)).cloned().collect(),
            Lookup::Pending | Lookup::Failed(_) => Vec::new(),
        }
    }

    /// Why the current step cannot be left forward, in words for the sender, if it cannot.
    pub fn problem(&self) -> Option<&'static str> {
        match self.step {
            Step::Routing => self.routing.problem(),
            Step::Patient => self.patient.problem(),
            Step::Specialist | Step::Attachments | Step::Review => None,
        }
    }
}

/// Changes to a [`Wizard`].
#[derive(Debug)]
pub enum WizardAction {
    /// Go to a step (clears the error).
    Go(Step),
    /// A routing change.
    Routing(RoutingEdit),
    /// The directory's answer (or [`Lookup::Pending`] while asking again).
    Directory(Lookup),
    /// The receiving practice.
    Recipient(Recipient),
    /// A change to the patient details.
    Patient(PatientEdit),
    /// Files read from one choice, to append.
    AddFiles(Vec<PickedFile>),
    /// Take the file at this position off the list.
    RemoveFile(usize),
    /// Show an error above the step, or none.
    Error(Option<ApiError>),
    /// What the send is doing now, or nothing.
    Busy(Option<String>),
    /// How much of the current file is uploaded, or nothing.
    Progress(Option<f64>),
}

impl Reducible for Wizard {
    type Action = WizardAction;

    fn reduce(self: Rc<Self>, action: WizardAction) -> Rc<Self> {
        let mut w = (*self).clone();
        match action {
            WizardAction::Go(step) => {
                w.error = None;
                w.step = step;
            }
            WizardAction::Routing(edit) => match edit {
                RoutingEdit::From(p) => w.from = Some(p),
                RoutingEdit::Specialty(s) => {
                    w.routing.specialty = s;
                    w.routing.category.clear();
                    w.routing.subcategory.clear();
                }
                RoutingEdit::Category(c) => {
                    w.routing.category = c;
                    w.routing.subcategory.clear();
                }
                RoutingEdit::Subcategory(s) => w.routing.subcategory = s,
                RoutingEdit::Region(r) => w.routing.region = r,
                RoutingEdit::Urgency(u) => w.routing.urgency = u,
            },
            WizardAction::Directory(d) => w.directory = d,
            WizardAction::Recipient(r) => w.recipient = r,
            WizardAction::Patient(edit) => w.patient.apply(edit),
            WizardAction::AddFiles(mut more) => {
                let mut files = (*w.files).clone();
                files.append(&mut more);
                w.files = Rc::new(files);
            }
            WizardAction::RemoveFile(i) => {
                if i < w.files.len() {
                    let mut files = (*w.files).clone();
                    files.remove(i);
                    w.files = Rc::new(files);
                }
            }
            WizardAction::Error(e) => w.error = e,
            WizardAction::Busy(b) => w.busy = b,
            WizardAction::Progress(p) => w.progress = p,
        }
        Rc::new(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_servers_intake_rule() {
        let choice = |sub: &str| RoutingChoice {
            specialty: "cardiology".into(),
            category: "arrhythmia".into(),
            subcategory: sub.into(),
            region: "fraser".into(),
            urgency: Urgency::Routine,
        };
        let intake = |c: &str, s: Option<&str>| vec![Intake { category: c.into(), subcategory: s.map(Into::into) }];
        assert!(choice("").accepted_by(&[]), "an empty intake takes every category, as routing does");
        assert!(choice("").accepted_by(&intake("arrhythmia", Some("svt"))), "no subcategory chosen");
        assert!(choice("svt").accepted_by(&intake("arrhythmia", None)));
        assert!(choice("svt").accepted_by(&intake("arrhythmia", Some("svt"))));
        assert!(!choice("af").accepted_by(&intake("arrhythmia", Some("svt"))));
        assert!(!choice("").accepted_by(&intake("heart-failure", None)));
    }

    fn reduce(w: Wizard, a: WizardAction) -> Wizard {
        (*Rc::new(w).reduce(a)).clone()
    }

    #[test]
    fn the_steps_run_in_order_with_their_titles() {
        let titles: Vec<_> = Step::ALL.iter().map(|s| s.title()).collect();
        assert_eq!(titles, ["Routing", "Specialist", "Patient", "Attachments", "Review"]);
        for pair in Step::ALL.windows(2) {
            if let [a, b] = pair {
                assert_eq!(a.next(), *b);
                assert_eq!(b.back(), Some(*a));
            }
        }
        assert_eq!(Step::Review.next(), Step::Review);
        assert_eq!(Step::Routing.back(), None);
    }

    #[test]
    fn a_new_specialty_clears_the_category_and_each_step_checks_its_fields() {
        let mut w = Wizard::new(None);
        assert_eq!(w.problem(), Some("Choose a specialty, a category and a region."));
        for e in [
            RoutingEdit::Specialty("cardiology".into()),
            RoutingEdit::Category("arrhythmia".into()),
            RoutingEdit::Subcategory("af".into()),
            RoutingEdit::Region("fraser".into()),
            RoutingEdit::Urgency(Urgency::Urgent),
        ] {
            w = reduce(w, WizardAction::Routing(e));
        }
        assert_eq!(w.problem(), None);
        let r = w.routing.routing();
        assert_eq!((r.subcategory.as_deref(), r.urgency), (Some("af"), Urgency::Urgent));
        w = reduce(w, WizardAction::Routing(RoutingEdit::Specialty("neurology".into())));
        assert_eq!((w.routing.category.as_str(), w.routing.subcategory.as_str()), ("", ""));
        w = reduce(w, WizardAction::Go(Step::Patient));
        assert_eq!(w.problem(), Some("Enter the patient's name."));
    }

    #[test]
    fn files_append_and_a_removal_out_of_range_does_nothing() {
        let f = |n: &str| PickedFile { name: n.into(), media_type: "text/plain".into(), bytes: vec![1] };
        let mut w = reduce(Wizard::new(None), WizardAction::AddFiles(vec![f("a"), f("b")]));
        w = reduce(w, WizardAction::AddFiles(vec![f("c")]));
        w = reduce(w, WizardAction::RemoveFile(1));
        w = reduce(w, WizardAction::RemoveFile(7));
        let names: Vec<_> = w.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
    }
}
