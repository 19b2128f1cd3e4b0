//! Whether routing names real taxonomy nodes: a new referral's routing, a
//! re-filing by the receiving practice, and a specialist practice's intake.

use handoff_protocol::v1::{Intake, Taxonomy};
use handoff_protocol::ws::Routing;

use crate::limits::MAX_INTAKE;
use crate::taxonomy::Lookup;

/// Why routing was refused. The text names the field first, as clients show
/// it next to that field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The region is not one of the taxonomy's regions.
    #[error("region: not a known region")]
    UnknownRegion,
    /// The specialty is not in the taxonomy.
    #[error("specialty: not a known specialty")]
    UnknownSpecialty,
    /// The category is not one of the specialty's.
    #[error("category: not a category of that specialty")]
    UnknownCategory,
    /// A re-filing names a category outside the referral's specialty.
    #[error("category: not a category of the referral's specialty")]
    NotOfReferralSpecialty,
    /// The subcategory is not one of the category's.
    #[error("subcategory: not a subcategory of that category")]
    UnknownSubcategory,
    /// A practice declared more intake entries than [`MAX_INTAKE`].
    #[error("intake: at most 200 entries")]
    TooMuchIntake,
    /// An intake entry's category is not one of the practice's specialty.
    #[error("intake: {category} is not a category of {specialty}")]
    IntakeCategory {
        /// The practice's specialty.
        specialty: String,
        /// The entry's category.
        category: String,
    },
    /// An intake entry's subcategory is not one of its category's.
    #[error("intake: {subcategory} is not a subcategory of {category}")]
    IntakeSubcategory {
        /// The entry's category.
        category: String,
        /// The entry's subcategory.
        subcategory: String,
    },
}

/// Checks a new referral's routing: region, then specialty, category and
/// subcategory (when given), each under its parent.
pub fn validate(t: &Taxonomy, r: &Routing) -> Result<(), RoutingError> {
    t.region(&r.region).ok_or(RoutingError::UnknownRegion)?;
    t.specialty(&r.specialty).ok_or(RoutingError::UnknownSpecialty)?;
    t.category(&r.specialty, &r.category).ok_or(RoutingError::UnknownCategory)?;
    if let Some(sub) = &r.subcategory {
        t.subcategory(&r.specialty, &r.category, sub).ok_or(RoutingError::UnknownSubcategory)?;
    }
    Ok(())
}

/// Checks a re-filing: the new category (and subcategory) must belong to the
/// referral's specialty, which never changes.
pub fn refile(t: &Taxonomy, specialty: &str, category: &str, subcategory: Option<&str>) -> Result<(), RoutingError> {
    t.category(specialty, category).ok_or(RoutingError::NotOfReferralSpecialty)?;
    if let Some(sub) = subcategory {
        t.subcategory(specialty, category, sub).ok_or(RoutingError::UnknownSubcategory)?;
    }
    Ok(())
}

/// Checks a specialist practice's region, specialty and intake (at most
/// [`MAX_INTAKE`] entries, each a category of the specialty, with an optional
/// subcategory of that category).
pub fn check_intake(t: &Taxonomy, specialty: &str, region: &str, intake: &[Intake]) -> Result<(), RoutingError> {
    t.region(region).ok_or(RoutingError::UnknownRegion)?;
    t.specialty(specialty).ok_or(RoutingError::UnknownSpecialty)?;
    if intake.len() > MAX_INTAKE {
        return Err(RoutingError::TooMuchIntake);
    }
    for i in intake {
        t.category(specialty, &i.category)
            .ok_or_else(|| RoutingError::IntakeCategory { specialty: specialty.into(), category: i.category.clone() })?;
        if let Some(sub) = &i.subcategory {
            t.subcategory(specialty, &i.category, sub)
                .ok_or_else(|| RoutingError::IntakeSubcategory { category: i.category.clone(), subcategory: sub.clone() })?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use handoff_protocol::ws::Urgency;

    use super::*;
    use crate::taxonomy::tests::taxonomy;

    pub(crate) fn routing(specialty: &str, category: &str, sub: Option<&str>, region: &str) -> Routing {
        Routing {
            specialty: specialty.into(),
            category: category.into(),
            subcategory: sub.map(Into::into),
            region: region.into(),
            urgency: Urgency::Routine,
        }
    }

    #[test]
    fn a_referral_routes_only_to_real_nodes_under_their_parents() {
        let t = taxonomy();
        assert_eq!(validate(&t, &routing("cardiology", "arrhythmia", None, "fraser")), Ok(()));
        assert_eq!(validate(&t, &routing("cardiology", "arrhythmia", Some("svt"), "island")), Ok(()));
        assert_eq!(validate(&t, &routing("cardiology", "arrhythmia", None, "mars")), Err(RoutingError::UnknownRegion));
        assert_eq!(validate(&t, &routing("oncology", "arrhythmia", None, "fraser")), Err(RoutingError::UnknownSpecialty));
        assert_eq!(validate(&t, &routing("dermatology", "arrhythmia", None, "fraser")), Err(RoutingError::UnknownCategory));
        assert_eq!(validate(&t, &routing("cardiology", "heart-failure", Some("svt"), "fraser")), Err(RoutingError::UnknownSubcategory));
    }

    #[test]
    fn the_region_is_checked_first() {
        let t = taxonomy();
        assert_eq!(validate(&t, &routing("oncology", "x", Some("y"), "mars")), Err(RoutingError::UnknownRegion));
    }

    #[test]
    fn a_refiling_stays_within_the_referrals_specialty() {
        let t = taxonomy();
        assert_eq!(refile(&t, "cardiology", "heart-failure", None), Ok(()));
        assert_eq!(refile(&t, "cardiology", "arrhythmia", Some("svt")), Ok(()));
        assert_eq!(refile(&t, "cardiology", "acne", None), Err(RoutingError::NotOfReferralSpecialty));
        assert_eq!(refile(&t, "cardiology", "heart-failure", Some("svt")), Err(RoutingError::UnknownSubcategory));
        assert_eq!(
            RoutingError::NotOfReferralSpecialty.to_string(),
            "category: not a category of the referral's specialty",
            "the wire message is unchanged"
        );
    }

    #[test]
    fn intake_names_categories_of_the_practices_specialty() {
        let t = taxonomy();
        let i = |c: &str, s: Option<&str>| Intake { category: c.into(), subcategory: s.map(Into::into) };
        assert_eq!(check_intake(&t, "cardiology", "fraser", &[]), Ok(()));
        assert_eq!(check_intake(&t, "cardiology", "fraser", &[i("arrhythmia", Some("svt")), i("heart-failure", None)]), Ok(()));
        assert_eq!(check_intake(&t, "cardiology", "mars", &[]), Err(RoutingError::UnknownRegion));
        assert_eq!(check_intake(&t, "oncology", "fraser", &[]), Err(RoutingError::UnknownSpecialty));
        let e = check_intake(&t, "cardiology", "fraser", &[i("acne", None)]).unwrap_err();
        assert_eq!(e.to_string(), "intake: acne is not a category of cardiology");
        let e = check_intake(&t, "cardiology", "fraser", &[i("heart-failure", Some("svt"))]).unwrap_err();
        assert_eq!(e.to_string(), "intake: svt is not a subcategory of heart-failure");
        let many = vec![i("arrhythmia", None); MAX_INTAKE + 1];
        assert_eq!(check_intake(&t, "cardiology", "fraser", &many), Err(RoutingError::TooMuchIntake));
        assert_eq!(check_intake(&t, "cardiology", "fraser", &many[..MAX_INTAKE]), Ok(()));
    }
}
