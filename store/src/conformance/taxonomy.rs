//! Conformance tests: taxonomy.

use super::*;

fn small_taxonomy() -> Taxonomy {
    Taxonomy {
        regions: vec![Region { slug: "fraser".into(), name: "Fraser Health".into() }],
        specialties: vec![Specialty {
            slug: "cardiology".into(),
            name: "Cardiology".into(),
            categories: vec![Category {
                slug: "arrhythmia".into(),
                name: "Arrhythmia".into(),
                subcategories: vec![Subcategory { slug: "afib".into(), name: "Atrial fibrillation".into() }],
            }],
        }],
    }
}

suite! {
    __conformance_taxonomy;

    pub async fn taxonomy_seed_and_edit(s: &dyn Store) {
        let t = small_taxonomy();
        assert!(s.seed_taxonomy(&t).await.unwrap());
        assert!(!s.seed_taxonomy(&t).await.unwrap(), "seeding is once only");
        assert_eq!(s.taxonomy().await.unwrap(), t);
        let edit = |spec: &str, cat: Option<&str>, sub: Option<&str>, name: &str| TaxonomyEdit {
            specialty: spec.into(),
            category: cat.map(Into::into),
            subcategory: sub.map(Into::into),
            name: name.into(),
        };
        s.edit_taxonomy(&edit("cardiology", Some("heart-failure"), None, "Heart failure")).await.unwrap();
        s.edit_taxonomy(&edit("cardiology", Some("arrhythmia"), Some("svt"), "SVT")).await.unwrap();
        s.edit_taxonomy(&edit("cardiology", None, None, "Cardiology (adult)")).await.unwrap();
        s.edit_taxonomy(&edit("neurology", None, None, "Neurology")).await.unwrap();
        assert!(matches!(s.edit_taxonomy(&edit("nope", Some("x"), None, "X")).await, Err(TaxonomyError::NoSuchSpecialty)));
        assert!(matches!(s.edit_taxonomy(&edit("cardiology", Some("nope"), Some("x"), "X")).await, Err(TaxonomyError::NoSuchCategory)));
        let t2 = s.taxonomy().await.unwrap();
        assert_eq!(t2.specialties[0].name, "Cardiology (adult)");
        assert_eq!(t2.specialties[1].slug, "neurology");
        let cats: Vec<_> = t2.specialties[0].categories.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(cats, vec!["arrhythmia", "heart-failure"]);
        let subs: Vec<_> = t2.specialties[0].categories[0].subcategories.iter().map(|c| c.slug.as_str()).collect();
        assert_eq!(subs, vec!["afib", "svt"]);
    }

    pub async fn category_requests_lifecycle(s: &dyn Store) {
        let a = user(1, "a@example.org");
        s.create_user(a.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Specialist);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        let r = CategoryRequestRecord {
            id: CategoryRequestId::from_bytes(id16(3)),
            practice_id: p.id,
            specialty: "cardiology".into(),
            name: "Cardio-oncology".into(),
            note: "we see many".into(),
            status: CategoryRequestStatus::Open,
            created_at: 10,
        };
        s.create_category_request(r.clone()).await.unwrap();
        assert_eq!(s.category_requests().await.unwrap(), vec![r.clone()]);
        s.resolve_category_request(r.id, CategoryRequestStatus::Approved, 20).await.unwrap();
        assert_eq!(s.category_requests().await.unwrap()[0].status, CategoryRequestStatus::Approved);
        assert!(matches!(
            s.resolve_category_request(CategoryRequestId::from_bytes(id16(9)), CategoryRequestStatus::Approved, 20).await,
            Err(TaxonomyError::NoSuchRequest)
        ));
    }
}
