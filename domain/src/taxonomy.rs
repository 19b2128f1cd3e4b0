//! Lookups in the taxonomy: specialty → category → subcategory, and regions.

use handoff_protocol::v1::{Category, Region, Specialty, Subcategory, Taxonomy};

/// Finding taxonomy nodes by slug. Implemented for the protocol's
/// [`Taxonomy`], so every side looks nodes up the same way.
pub trait Lookup {
    /// The specialty with this slug.
    fn specialty(&self, slug: &str) -> Option<&Specialty>;
    /// The category `category` of the specialty `specialty`.
    fn category(&self, specialty: &str, category: &str) -> Option<&Category>;
    /// The subcategory `sub` of that category.
    fn subcategory(&self, specialty: &str, category: &str, sub: &str) -> Option<&Subcategory>;
    /// The region with this slug.
    fn region(&self, slug: &str) -> Option<&Region>;

    /// The specialty's display name, or the slug itself if it is unknown.
    fn specialty_name(&self, slug: &str) -> String {
        self.specialty(slug).map_or_else(|| slug.to_string(), |s| s.name.clone())
    }
    /// The category's display name, or the slug itself if it is unknown.
    fn category_name(&self, specialty: &str, slug: &str) -> String {
        self.category(specialty, slug).map_or_else(|| slug.to_string(), |c| c.name.clone())
    }
    /// The region's display name, or the slug itself if it is unknown.
    fn region_name(&self, slug: &str) -> String {
        self.region(slug).map_or_else(|| slug.to_string(), |r| r.name.clone())
    }
}

impl Lookup for Taxonomy {
    fn specialty(&self, slug: &str) -> Option<&Specialty> {
        self.specialties.iter().find(|s| s.slug == slug)
    }
    fn category(&self, specialty: &str, category: &str) -> Option<&Category> {
        self.specialty(specialty)?.categories.iter().find(|c| c.slug == category)
    }
    fn subcategory(&self, specialty: &str, category: &str, sub: &str) -> Option<&Subcategory> {
        self.category(specialty, category)?.subcategories.iter().find(|s| s.slug == sub)
    }
    fn region(&self, slug: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.slug == slug)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Cardiology (arrhythmia with svt; heart-failure), dermatology (acne), and two regions.
    pub(crate) fn taxonomy() -> Taxonomy {
        let sub = |slug: &str| Subcategory { slug: slug.into(), name: slug.to_uppercase() };
        let cat = |slug: &str, subs: Vec<Subcategory>| Category { slug: slug.into(), name: format!("{slug} name"), subcategories: subs };
        Taxonomy {
            specialties: vec![
                Specialty {
                    slug: "cardiology".into(),
                    name: "Cardiology".into(),
                    categories: vec![cat("arrhythmia", vec![sub("svt")]), cat("heart-failure", vec![])],
                },
                Specialty { slug: "dermatology".into(), name: "Dermatology".into(), categories: vec![cat("acne", vec![])] },
            ],
            regions: vec![
                Region { slug: "fraser".into(), name: "Fraser Health".into() },
                Region { slug: "island".into(), name: "Island Health".into() },
            ],
        }
    }

    #[test]
    fn finds_nodes_by_slug_and_only_under_their_parent() {
        let t = taxonomy();
        assert_eq!(t.specialty("cardiology").map(|s| s.name.as_str()), Some("Cardiology"));
        assert!(t.specialty("oncology").is_none());
        assert!(t.category("cardiology", "arrhythmia").is_some());
        assert!(t.category("dermatology", "arrhythmia").is_none(), "a category belongs to one specialty");
        assert!(t.subcategory("cardiology", "arrhythmia", "svt").is_some());
        assert!(t.subcategory("cardiology", "heart-failure", "svt").is_none(), "a subcategory belongs to one category");
        assert_eq!(t.region("island").map(|r| r.name.as_str()), Some("Island Health"));
        assert!(t.region("mars").is_none());
    }

    #[test]
    fn names_fall_back_to_the_slug() {
        let t = taxonomy();
        assert_eq!(t.specialty_name("cardiology"), "Cardiology");
        assert_eq!(t.specialty_name("retired-specialty"), "retired-specialty");
        assert_eq!(t.category_name("cardiology", "heart-failure"), "heart-failure name");
        assert_eq!(t.category_name("cardiology", "acne"), "acne");
        assert_eq!(t.region_name("fraser"), "Fraser Health");
        assert_eq!(t.region_name("nowhere"), "nowhere");
    }
}
