//! Practice membership, deletion, grants, taxonomy and staff.

use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, PutKeyGrant};
use handoff_protocol::v1::{PracticeKind, Role, TaxonomyEdit};

use handoff_testkit::RegisterConfirmed as _;

use crate::harness::{PASSWORD, Smtp, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_roles_removal_and_permanent_deletion() {
    let smtp = Smtp::start();
    let srv = TestServer::start(Some(&smtp));
    let mut admin = srv.client();
    admin.register_confirmed("admin@clinic.example", "Admin", PASSWORD).await.unwrap();
    let p = admin.create_practice("Valley Family Practice", PracticeKind::Referring, None, Some("interior"), vec![]).await.unwrap();

    // An existing account accepts an invite after signing in.
    let mut bob = srv.client();
    bob.register_confirmed("bob@clinic.example", "Bob", PASSWORD).await.unwrap();
    admin.invite(p.id, "bob@clinic.example", Role::Member).await.unwrap();
    let members = admin.members(p.id).await.unwrap();
    assert_eq!(members.pending_invites.len(), 1);
    let token = smtp.invite_token("bob@clinic.example").await;
    assert!(srv.client().invite_info(&token).await.unwrap().account_exists);

    // Someone else cannot use Bob's invite.
    let mut eve = srv.client();
    eve.register_confirmed("eve@elsewhere.example", "Eve", PASSWORD).await.unwrap();
    assert_eq!(eve.accept_invite(&token).await.unwrap_err().code(), Some(ErrorCode::InviteWrongAccount));
    assert_eq!(
        srv.client().register("eve2@elsewhere.example", "Eve", PASSWORD, Some(&token)).await.unwrap_err().code(),
        Some(ErrorCode::InviteWrongAccount)
    );
    bob.accept_invite(&token).await.unwrap();
    admin.complete_pending_grants(p.id).await.unwrap();
    assert_eq!(bob.practice_key(p.id).await.unwrap(), admin.practice_key(p.id).await.unwrap());
    // Inviting a member again conflicts.
    assert_eq!(admin.invite(p.id, "bob@clinic.example", Role::Member).await.unwrap_err().code(), Some(ErrorCode::Conflict));

    // A plain member cannot invite, remove others, or delete.
    assert_eq!(bob.invite(p.id, "x@clinic.example", Role::Member).await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    assert_eq!(bob.remove_member(p.id, admin.user_id().unwrap()).await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    assert_eq!(bob.delete_practice(p.id, "Valley Family Practice").await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    // The last admin cannot be removed.
    assert_eq!(admin.remove_member(p.id, admin.user_id().unwrap()).await.unwrap_err().code(), Some(ErrorCode::LastAdmin));

    // Removal takes access away at once.
    admin.remove_member(p.id, bob.user_id().unwrap()).await.unwrap();
    assert_eq!(bob.practice(p.id).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert!(bob.practice_key(p.id).await.is_err());
    assert!(bob.practices().await.unwrap().is_empty());

    // Deletion needs the exact name, and then nobody has access.
    assert_eq!(admin.delete_practice(p.id, "valley family practice").await.unwrap_err().code(), Some(ErrorCode::ConfirmationMismatch));
    assert!(admin.practice(p.id).await.is_ok(), "a failed confirmation deletes nothing");
    admin.delete_practice(p.id, "Valley Family Practice").await.unwrap();
    assert_eq!(admin.practice(p.id).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert!(admin.practice_key(p.id).await.is_err());
    assert!(admin.practices().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_cannot_be_forged_or_overwritten() {
    let srv = TestServer::start(None);
    let mut admin = srv.client();
    admin.register_confirmed("admin@clinic.example", "Admin", PASSWORD).await.unwrap();
    let p = admin.create_practice("Grant Clinic", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let admin_id = admin.user_id().unwrap();
    // Only members who hold the key may grant; a grant claims its granter honestly.
    let body = serde_json::json!({"epoch": 0, "sealed": handoff_protocol::B64(vec![0; 80]), "granted_by": admin_id});
    let mut outsider = srv.client();
    outsider.register_confirmed("o@clinic.example", "O", PASSWORD).await.unwrap();
    let r =
        outsider.raw("PUT", &PutKeyGrant::path(&(p.id, admin_id)), Some("application/json"), body.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status, 404);
    // The admin's own grant cannot be overwritten.
    let r = admin.raw("PUT", &PutKeyGrant::path(&(p.id, admin_id)), Some("application/json"), body.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.error().unwrap().error, ErrorCode::Conflict);
    admin.practice_key(p.id).await.unwrap();
    // Wrong epoch.
    let body = serde_json::json!({"epoch": 3, "sealed": handoff_protocol::B64(vec![0; 80]), "granted_by": admin_id});
    let r = admin.raw("PUT", &PutKeyGrant::path(&(p.id, admin_id)), Some("application/json"), body.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.error().unwrap().error, ErrorCode::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_belongs_to_several_practices() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("a@clinic.example", "A", PASSWORD).await.unwrap();
    let p1 = a.create_practice("Morning Clinic", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let p2 =
        a.create_practice("Evening Neuro", PracticeKind::Specialist, Some("neurology"), Some("vancouver-coastal"), vec![]).await.unwrap();
    let mine: Vec<_> = a.practices().await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(mine, vec![p1.id, p2.id]);
    assert_ne!(a.practice_key(p1.id).await.unwrap(), a.practice_key(p2.id).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxonomy_is_seeded_realistic_and_staff_editable() {
    let srv = TestServer::start(None);
    let mut staff = srv.client();
    staff.register_confirmed("ops@handoff.example", "Ops", PASSWORD).await.unwrap();
    srv.grant_staff("ops@handoff.example");
    let t = staff.taxonomy().await.unwrap();
    assert!(t.specialties.len() >= 10, "at least 10 specialties");
    assert!(t.specialties.iter().all(|s| s.categories.len() >= 3), "each with real categories");
    assert_eq!(t.regions.len(), 5);

    staff
        .admin_edit_taxonomy(&TaxonomyEdit {
            specialty: "cardiology".into(),
            category: Some("cardio-oncology".into()),
            subcategory: None,
            name: "Cardio-oncology".into(),
        })
        .await
        .unwrap();
    let t2 = staff.taxonomy().await.unwrap();
    let cardio = t2.specialties.iter().find(|s| s.slug == "cardiology").unwrap();
    assert!(cardio.categories.iter().any(|c| c.slug == "cardio-oncology"));
    let bad = staff
        .admin_edit_taxonomy(&TaxonomyEdit { specialty: "Cardiology!".into(), category: None, subcategory: None, name: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(ErrorCode::ValidationFailed));
    let orphan = staff
        .admin_edit_taxonomy(&TaxonomyEdit { specialty: "no-such".into(), category: Some("x".into()), subcategory: None, name: "X".into() })
        .await
        .unwrap_err();
    assert_eq!(orphan.code(), Some(ErrorCode::NotFound));

    // A specialist requests a category; staff see it and approve it.
    let mut spec = srv.client();
    spec.register_confirmed("spec@clinic.example", "Spec", PASSWORD).await.unwrap();
    let p = spec.create_practice("Sleep Lab", PracticeKind::Specialist, Some("respirology"), Some("island"), vec![]).await.unwrap();
    let req = spec.request_category(p.id, "Sleep apnea titration", "many referrals for CPAP titration").await.unwrap();
    assert_eq!(spec.admin_category_requests().await.unwrap_err().code(), Some(ErrorCode::Forbidden));
    let seen = staff.admin_category_requests().await.unwrap();
    assert_eq!(
        seen.iter().map(|r| (r.id, r.status.as_str(), r.practice_name.as_str())).collect::<Vec<_>>(),
        vec![(req.id, "open", "Sleep Lab")]
    );
    staff.admin_resolve_category_request(req.id, true, Some("sleep-apnea-titration")).await.unwrap();
    let t3 = staff.taxonomy().await.unwrap();
    let resp = t3.specialties.iter().find(|s| s.slug == "respirology").unwrap();
    assert!(resp.categories.iter().any(|c| c.slug == "sleep-apnea-titration" && c.name == "Sleep apnea titration"));
    assert_eq!(staff.admin_resolve_category_request(req.id, false, None).await.unwrap_err().code(), Some(ErrorCode::Conflict));
    // Staff see metadata of every practice, never keys.
    let all = staff.admin_practices().await.unwrap();
    assert!(all.iter().any(|x| x.id == p.id && !x.verified));
    assert_eq!(staff.practice_key(p.id).await.unwrap_err().code(), Some(ErrorCode::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_invites_are_refused() {
    let smtp = Smtp::start();
    let srv = TestServer::start_with(Some(&smtp), |c| c.invite_ttl_secs = 1);
    let mut admin = srv.client();
    admin.register_confirmed("admin@clinic.example", "Admin", PASSWORD).await.unwrap();
    let p = admin.create_practice("Short Invite Clinic", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    admin.invite(p.id, "late@clinic.example", Role::Member).await.unwrap();
    let token = smtp.invite_token("late@clinic.example").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut late = srv.client();
    let err = late.register("late@clinic.example", "Late", PASSWORD, Some(&token)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InviteInvalid));
    // Nothing was created: the email is still free.
    late.register_confirmed("late@clinic.example", "Late", PASSWORD).await.unwrap();
    assert_eq!(late.accept_invite(&token).await.unwrap_err().code(), Some(ErrorCode::InviteInvalid));
    assert!(late.practices().await.unwrap().is_empty());
}
