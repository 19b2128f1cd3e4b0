//! The storage conformance suite: every backend must pass every test here.
//!
//! Each test is a plain async function over `&dyn Store` that panics on
//! failure. [`conformance_tests!`](crate::conformance_tests) turns the whole
//! list into `#[tokio::test]`s for one backend, given an async factory that
//! returns a fresh, empty store and a guard that cleans it up. The SQLite run is
//! in `store/tests/conformance.rs`; a ScyllaDB run would invoke the same macro
//! with a factory that makes a unique keyspace, gated on `SCYLLA_URI`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use handoff_protocol::v1::{
    Category, Intake, PracticeKind, PracticePublicKey, Region, Role, Specialty, Subcategory, Taxonomy, TaxonomyEdit,
};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, StreamId};
use handoff_protocol::{B64, CategoryRequestId, PracticeId, UserId};

use crate::*;

/// Generates one `#[tokio::test]` per conformance test for a backend.
///
/// `$make` is an expression callable with no arguments that returns a future of
/// `(S, G)` where `S: Store` is fresh and empty and `G` is dropped after the test.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            server_secret_is_stable,
            users_round_trip,
            duplicate_email_conflicts,
            reset_password_revokes_sessions,
            sessions_lookup_and_purge,
            practice_create_and_membership,
            create_practice_twice_conflicts,
            last_admin_cannot_be_removed,
            delete_practice_cascades,
            directory_lists_only_receiving_specialists,
            grants_put_and_replace,
            invites_accept_exactly_once,
            taxonomy_seed_and_edit,
            category_requests_lifecycle,
            mail_outbox_lifecycle,
            commit_appends_dense_seqs_per_stream,
            commit_is_all_or_nothing,
            routing_counts_by_category,
            blobs_attach_to_one_referral,
            notify_recipients_are_opted_in_members,
            deleting_one_side_keeps_the_other_sides_referrals,
            mls_key_packages_are_single_use,
            mls_state_is_compare_and_swap,
            mls_log_accepts_one_entry_per_epoch,
            mls_log_goes_with_the_practice
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($make)().await;
                $crate::conformance::$name(&store).await;
            }
        )*
    };
}

fn id16(n: u8) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = n;
    b[15] = 0x42;
    b
}

pub fn user(n: u8, email: &str) -> UserRecord {
    UserRecord {
        id: UserId::from_bytes(id16(n)),
        email: email.into(),
        display_name: format!("User {n}"),
        salt: vec![n; 16],
        auth_verifier: format!("$argon2id$v=19$m=19456,t=2,p=1$fake{n}"),
        kit_verifier: vec![n; 32],
        sign_pub: vec![n; 32],
        hpke_pub: vec![n.wrapping_add(1); 32],
        wrapped_by_password: vec![1, 2, 3, n],
        wrapped_by_kit: vec![4, 5, 6, n],
        is_staff: false,
        created_at: 1_000 + i64::from(n),
    }
}

pub fn practice(n: u8, creator: UserId, kind: PracticeKind) -> PracticeRecord {
    PracticeRecord {
        id: PracticeId::from_bytes(id16(100 + n)),
        name: format!("Practice {n}"),
        kind,
        specialty: (kind == PracticeKind::Specialist).then(|| "cardiology".to_string()),
        region: (kind == PracticeKind::Specialist).then(|| "fraser".to_string()),
        intake: vec![Intake { category: "arrhythmia".into(), subcategory: None }],
        verified: false,
        paused: false,
        key_epoch: 0,
        public_key: PracticePublicKey { epoch: 0, hpke_pub: B64(vec![n; 32]), signer: creator, signature: B64(vec![n; 64]) },
        created_by: creator,
        created_at: 2_000 + i64::from(n),
    }
}

pub fn grant(p: PracticeId, u: UserId, by: UserId, epoch: u64) -> GrantRecord {
    GrantRecord { practice_id: p, user_id: u, epoch, sealed: vec![9; 80], granted_by: by, created_at: 3_000 }
}

pub async fn server_secret_is_stable(s: &dyn Store) {
    let a = s.server_secret("prelogin", vec![1, 2, 3]).await.unwrap();
    let b = s.server_secret("prelogin", vec![9, 9, 9]).await.unwrap();
    assert_eq!(a, vec![1, 2, 3]);
    assert_eq!(b, a, "the first value sticks");
}

pub async fn users_round_trip(s: &dyn Store) {
    let u = user(1, "a@example.org");
    s.create_user(u.clone()).await.unwrap();
    assert_eq!(s.user_by_email("a@example.org").await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_by_id(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_by_email("b@example.org").await.unwrap(), None);
    assert_eq!(s.user_by_id(UserId::from_bytes(id16(77))).await.unwrap(), None);
    s.set_staff("a@example.org", true).await.unwrap();
    assert!(s.user_by_id(u.id).await.unwrap().unwrap().is_staff);
    assert!(matches!(s.set_staff("nobody@example.org", true).await, Err(StoreError::NotFound(_))));
}

pub async fn duplicate_email_conflicts(s: &dyn Store) {
    s.create_user(user(1, "a@example.org")).await.unwrap();
    let r = s.create_user(user(2, "a@example.org")).await;
    assert!(matches!(r, Err(StoreError::Conflict("email"))), "{r:?}");
    assert_eq!(s.user_by_id(user(2, "x").id).await.unwrap(), None, "nothing half-written");
}

pub async fn reset_password_revokes_sessions(s: &dyn Store) {
    let u = user(1, "a@example.org");
    s.create_user(u.clone()).await.unwrap();
    let sess = SessionRecord { token_hash: vec![7; 32], user_id: u.id, created_at: 1, expires_at: i64::MAX };
    s.create_session(sess.clone()).await.unwrap();
    s.reset_password(u.id, PasswordChange { salt: vec![8; 16], auth_verifier: "new".into(), wrapped_by_password: vec![8, 8], now: 5 })
        .await
        .unwrap();
    let after = s.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(after.salt, vec![8; 16]);
    assert_eq!(after.auth_verifier, "new");
    assert_eq!(after.wrapped_by_password, vec![8, 8]);
    assert_eq!(after.wrapped_by_kit, u.wrapped_by_kit, "the kit wrapping is untouched");
    assert_eq!(s.session(&sess.token_hash).await.unwrap(), None, "sessions revoked");
    let missing = s
        .reset_password(
            UserId::from_bytes(id16(99)),
            PasswordChange { salt: vec![], auth_verifier: String::new(), wrapped_by_password: vec![], now: 5 },
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub async fn sessions_lookup_and_purge(s: &dyn Store) {
    let u = user(1, "a@example.org");
    s.create_user(u.clone()).await.unwrap();
    let live = SessionRecord { token_hash: vec![1; 32], user_id: u.id, created_at: 10, expires_at: 1_000 };
    let old = SessionRecord { token_hash: vec![2; 32], user_id: u.id, created_at: 10, expires_at: 100 };
    s.create_session(live.clone()).await.unwrap();
    s.create_session(old.clone()).await.unwrap();
    assert_eq!(s.session(&live.token_hash).await.unwrap(), Some(live.clone()));
    assert_eq!(s.purge_sessions(500).await.unwrap(), 1);
    assert_eq!(s.session(&old.token_hash).await.unwrap(), None);
    s.delete_session(&live.token_hash).await.unwrap();
    assert_eq!(s.session(&live.token_hash).await.unwrap(), None);
}

pub async fn practice_create_and_membership(s: &dyn Store) {
    let a = user(1, "a@example.org");
    let b = user(2, "b@example.org");
    s.create_user(a.clone()).await.unwrap();
    s.create_user(b.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Specialist);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    assert_eq!(s.practice(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(s.role(p.id, a.id).await.unwrap(), Some(Role::Admin));
    assert_eq!(s.role(p.id, b.id).await.unwrap(), None);
    assert!(s.grant(p.id, a.id, 0).await.unwrap().is_some());
    s.add_member(p.id, b.id, Role::Member, 5_000).await.unwrap();
    assert!(matches!(s.add_member(p.id, b.id, Role::Member, 5_001).await, Err(StoreError::Conflict("member"))));
    let members = s.members(p.id).await.unwrap();
    assert_eq!(members.iter().map(|m| (m.user.id, m.role)).collect::<Vec<_>>(), vec![(a.id, Role::Admin), (b.id, Role::Member)]);
    // A user may belong to several practices.
    let q = practice(2, b.id, PracticeKind::Referring);
    s.create_practice(q.clone(), grant(q.id, b.id, b.id, 0)).await.unwrap();
    let mine = s.practices_of(b.id).await.unwrap();
    assert_eq!(mine.iter().map(|(p, r)| (p.id, *r)).collect::<Vec<_>>(), vec![(p.id, Role::Member), (q.id, Role::Admin)]);
    s.remove_member(p.id, b.id).await.unwrap();
    assert_eq!(s.role(p.id, b.id).await.unwrap(), None);
    assert!(matches!(s.remove_member(p.id, b.id).await, Err(StoreError::NotFound(_))));
    let all = s.all_practices().await.unwrap();
    assert_eq!(all.iter().map(|(p, n)| (p.id, *n)).collect::<Vec<_>>(), vec![(p.id, 1), (q.id, 1)]);
}

pub async fn create_practice_twice_conflicts(s: &dyn Store) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Referring);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    let mut again = p.clone();
    again.name = "Other".into();
    assert!(matches!(s.create_practice(again, grant(p.id, a.id, a.id, 0)).await, Err(StoreError::Conflict("practice"))));
    assert_eq!(s.practice(p.id).await.unwrap().unwrap().name, p.name);
}

pub async fn last_admin_cannot_be_removed(s: &dyn Store) {
    let a = user(1, "a@example.org");
    let b = user(2, "b@example.org");
    s.create_user(a.clone()).await.unwrap();
    s.create_user(b.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Referring);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    assert!(matches!(s.remove_member(p.id, a.id).await, Err(StoreError::Conflict("last_admin"))));
    s.add_member(p.id, b.id, Role::Admin, 1).await.unwrap();
    s.remove_member(p.id, a.id).await.unwrap();
    assert_eq!(s.grant(p.id, a.id, 0).await.unwrap(), None, "a removed member's grants go too");
}

pub async fn delete_practice_cascades(s: &dyn Store) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Specialist);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    s.create_invite(InviteRecord {
        token_hash: vec![5; 32],
        practice_id: p.id,
        email: "c@example.org".into(),
        role: Role::Member,
        invited_by: a.id,
        created_at: 1,
        expires_at: 2,
    })
    .await
    .unwrap();
    s.delete_practice(p.id).await.unwrap();
    assert_eq!(s.practice(p.id).await.unwrap(), None);
    assert_eq!(s.role(p.id, a.id).await.unwrap(), None);
    assert_eq!(s.grant(p.id, a.id, 0).await.unwrap(), None);
    assert_eq!(s.invite(&[5; 32]).await.unwrap(), None);
    assert!(s.practices_of(a.id).await.unwrap().is_empty());
    assert!(matches!(s.delete_practice(p.id).await, Err(StoreError::NotFound(_))));
}

pub async fn directory_lists_only_receiving_specialists(s: &dyn Store) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let spec = practice(1, a.id, PracticeKind::Specialist);
    let paused = practice(2, a.id, PracticeKind::Specialist);
    let unverified = practice(3, a.id, PracticeKind::Specialist);
    let referring = practice(4, a.id, PracticeKind::Referring);
    for p in [&spec, &paused, &unverified, &referring] {
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    }
    for p in [&spec, &paused, &referring] {
        s.set_verified(p.id, true).await.unwrap();
    }
    s.set_paused(paused.id, true).await.unwrap();
    let d = s.directory(Some("cardiology"), Some("fraser")).await.unwrap();
    assert_eq!(d.iter().map(|p| p.id).collect::<Vec<_>>(), vec![spec.id]);
    assert!(s.directory(Some("cardiology"), Some("island")).await.unwrap().is_empty());
    assert_eq!(s.directory(None, None).await.unwrap().len(), 1);
    s.set_paused(paused.id, false).await.unwrap();
    assert_eq!(s.directory(None, None).await.unwrap().len(), 2);
    assert!(matches!(s.set_verified(PracticeId::from_bytes(id16(200)), true).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.set_paused(PracticeId::from_bytes(id16(200)), true).await, Err(StoreError::NotFound(_))));
}

pub async fn grants_put_and_replace(s: &dyn Store) {
    let a = user(1, "a@example.org");
    let b = user(2, "b@example.org");
    s.create_user(a.clone()).await.unwrap();
    s.create_user(b.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Referring);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    s.add_member(p.id, b.id, Role::Member, 1).await.unwrap();
    assert_eq!(s.grant(p.id, b.id, 0).await.unwrap(), None);
    let mut g = grant(p.id, b.id, a.id, 0);
    s.put_grant(g.clone()).await.unwrap();
    assert_eq!(s.grant(p.id, b.id, 0).await.unwrap(), Some(g.clone()));
    g.sealed = vec![1; 80];
    s.put_grant(g.clone()).await.unwrap();
    assert_eq!(s.grant(p.id, b.id, 0).await.unwrap().unwrap().sealed, vec![1; 80]);
    assert_eq!(s.grant(p.id, b.id, 1).await.unwrap(), None);
    let orphan = grant(PracticeId::from_bytes(id16(250)), b.id, a.id, 0);
    assert!(matches!(s.put_grant(orphan).await, Err(StoreError::NotFound(_))));
}

pub async fn invites_accept_exactly_once(s: &dyn Store) {
    let a = user(1, "a@example.org");
    let c = user(3, "c@example.org");
    s.create_user(a.clone()).await.unwrap();
    s.create_user(c.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Referring);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    let inv = InviteRecord {
        token_hash: vec![5; 32],
        practice_id: p.id,
        email: "c@example.org".into(),
        role: Role::Member,
        invited_by: a.id,
        created_at: 1,
        expires_at: 2,
    };
    s.create_invite(inv.clone()).await.unwrap();
    assert_eq!(s.invite(&inv.token_hash).await.unwrap(), Some(inv.clone()));
    assert_eq!(s.invites_of(p.id).await.unwrap(), vec![inv.clone()]);
    s.accept_invite(&inv.token_hash, c.id, 10).await.unwrap();
    assert_eq!(s.role(p.id, c.id).await.unwrap(), Some(Role::Member));
    assert!(matches!(s.accept_invite(&inv.token_hash, c.id, 11).await, Err(StoreError::NotFound("invite"))));
    assert!(s.invites_of(p.id).await.unwrap().is_empty());
}

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
    assert!(matches!(s.edit_taxonomy(&edit("nope", Some("x"), None, "X")).await, Err(StoreError::NotFound(_))));
    assert!(matches!(s.edit_taxonomy(&edit("cardiology", Some("nope"), Some("x"), "X")).await, Err(StoreError::NotFound(_))));
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
        status: "open".into(),
        created_at: 10,
    };
    s.create_category_request(r.clone()).await.unwrap();
    assert_eq!(s.category_requests().await.unwrap(), vec![r.clone()]);
    s.resolve_category_request(r.id, "approved", 20).await.unwrap();
    assert_eq!(s.category_requests().await.unwrap()[0].status, "approved");
    assert!(matches!(
        s.resolve_category_request(CategoryRequestId::from_bytes(id16(9)), "approved", 20).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn mail_outbox_lifecycle(s: &dyn Store) {
    let id =
        s.enqueue_mail(NewMail { recipient: "x@example.org".into(), subject: "Hi".into(), body: "link".into(), now: 100 }).await.unwrap();
    assert!(s.due_mail(99, 10).await.unwrap().is_empty(), "not due before its time");
    let due = s.due_mail(100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempts, due[0].body.as_str()), (id, 0, "link"));
    s.mail_failed(id, 200, "connection refused").await.unwrap();
    assert!(s.due_mail(150, 10).await.unwrap().is_empty(), "backed off");
    assert_eq!(s.due_mail(200, 10).await.unwrap()[0].attempts, 1);
    s.mail_sent(id, 210).await.unwrap();
    assert!(s.due_mail(i64::MAX, 10).await.unwrap().is_empty());
    assert!(matches!(s.mail_sent(id, 220).await, Err(StoreError::NotFound(_))), "sent exactly once");
}

async fn two_practices(s: &dyn Store) -> (UserRecord, PracticeRecord, PracticeRecord) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let from = practice(1, a.id, PracticeKind::Referring);
    let to = practice(2, a.id, PracticeKind::Specialist);
    for p in [&from, &to] {
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    }
    (a, from, to)
}

pub fn referral(n: u8, from: PracticeId, to: PracticeId, category: &str) -> ReferralRecord {
    ReferralRecord {
        id: ReferralId(uuid::Uuid::from_bytes(id16(200 - n))),
        number: format!("HR-TEST-{n:04}"),
        from_practice: from,
        to_practice: to,
        routed_category: category.into(),
        routed_sub: None,
        body: format!("{{\"n\":{n}}}"),
        status: "sent".into(),
        created_at: 10_000 + i64::from(n),
        first_opened_at: None,
    }
}

pub async fn commit_appends_dense_seqs_per_stream(s: &dyn Store) {
    let (_, from, to) = two_practices(s).await;
    let r = referral(1, from.id, to.id, "arrhythmia");
    let streams = [StreamId::Referral(r.id), StreamId::Practice(from.id), StreamId::Practice(to.id)];
    let ev = s
        .commit(Commit {
            insert: Some(r.clone()),
            events: streams.iter().map(|st| (*st, "e1".to_string())).collect(),
            now: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 1, 1]);
    let ev = s
        .commit(Commit { events: vec![(streams[0], "e2".into()), (streams[0], "e3".into())], now: 2, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(s.stream_head(streams[0]).await.unwrap(), 3);
    assert_eq!(s.stream_head(streams[1]).await.unwrap(), 1);
    assert_eq!(s.stream_head(StreamId::Practice(PracticeId::from_bytes(id16(99)))).await.unwrap(), 0);
    let after = s.events_after(streams[0], 1, 10).await.unwrap();
    assert_eq!(after.iter().map(|e| (e.seq, e.body.as_str())).collect::<Vec<_>>(), vec![(2, "e2"), (3, "e3")]);
    assert_eq!(s.events_after(streams[0], 0, 2).await.unwrap().len(), 2, "limit holds");
    assert_eq!(s.referral(r.id).await.unwrap(), Some(r.clone()));
    let mut upd = r.clone();
    upd.status = "accepted".into();
    upd.first_opened_at = Some(5);
    s.commit(Commit { update: Some(upd.clone()), now: 3, ..Default::default() }).await.unwrap();
    assert_eq!(s.referral(r.id).await.unwrap(), Some(upd));
    assert_eq!(s.referrals_of(from.id, 10).await.unwrap().len(), 1);
    assert_eq!(s.referrals_of(to.id, 10).await.unwrap().len(), 1);
}

pub async fn commit_is_all_or_nothing(s: &dyn Store) {
    let (a, from, to) = two_practices(s).await;
    let r = referral(1, from.id, to.id, "arrhythmia");
    let idem = IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(9)), command: vec![1], result: "{}".into() };
    s.commit(Commit {
        insert: Some(r.clone()),
        idem: Some(idem.clone()),
        events: vec![(StreamId::Referral(r.id), "x".into())],
        now: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(s.idem(a.id, idem.key).await.unwrap(), Some(idem.clone()));
    // The same idempotency key again: nothing of this commit lands.
    let r2 = referral(2, from.id, to.id, "arrhythmia");
    let again = s
        .commit(Commit {
            insert: Some(r2.clone()),
            idem: Some(idem.clone()),
            events: vec![(StreamId::Referral(r.id), "y".into())],
            mail: vec![NewMail { recipient: "m@example.org".into(), subject: "s".into(), body: "b".into(), now: 1 }],
            now: 2,
            ..Default::default()
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict("idempotency"))), "{again:?}");
    assert_eq!(s.referral(r2.id).await.unwrap(), None);
    assert_eq!(s.stream_head(StreamId::Referral(r.id)).await.unwrap(), 1);
    assert!(s.due_mail(i64::MAX, 10).await.unwrap().is_empty());
    // A duplicate referral id: nothing lands either.
    let dup = s
        .commit(Commit { insert: Some(r.clone()), events: vec![(StreamId::Practice(to.id), "z".into())], now: 3, ..Default::default() })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict("referral"))));
    assert_eq!(s.stream_head(StreamId::Practice(to.id)).await.unwrap(), 0);
}

pub async fn routing_counts_by_category(s: &dyn Store) {
    let (a, from, to) = two_practices(s).await;
    let other = practice(3, a.id, PracticeKind::Specialist);
    s.create_practice(other.clone(), grant(other.id, a.id, a.id, 0)).await.unwrap();
    for (n, cat) in [(1, "arrhythmia"), (2, "arrhythmia"), (3, "heart-failure")] {
        s.commit(Commit { insert: Some(referral(n, from.id, to.id, cat)), now: 1, ..Default::default() }).await.unwrap();
    }
    let mut sub = referral(4, from.id, other.id, "arrhythmia");
    sub.routed_sub = Some("afib".into());
    s.commit(Commit { insert: Some(sub), now: 1, ..Default::default() }).await.unwrap();
    let counts = s.routing_counts(&[to.id, other.id], "arrhythmia", None).await.unwrap();
    assert_eq!(counts, vec![(to.id, 2), (other.id, 1)]);
    let counts = s.routing_counts(&[to.id, other.id], "arrhythmia", Some("afib")).await.unwrap();
    assert_eq!(counts, vec![(to.id, 0), (other.id, 1)]);
}

pub async fn blobs_attach_to_one_referral(s: &dyn Store) {
    let (a, from, to) = two_practices(s).await;
    let blob = BlobId(uuid::Uuid::from_u128(77));
    s.put_blob(blob, a.id, vec![1, 2, 3], 1).await.unwrap();
    assert!(matches!(s.put_blob(blob, a.id, vec![4], 1).await, Err(StoreError::Conflict("blob"))));
    assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().size, 3);
    assert_eq!(s.blob_bytes(blob).await.unwrap(), Some(vec![1, 2, 3]));
    let r1 = referral(1, from.id, to.id, "x");
    let r2 = referral(2, from.id, to.id, "x");
    s.commit(Commit { insert: Some(r1.clone()), attach: vec![(blob, r1.id)], now: 1, ..Default::default() }).await.unwrap();
    assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().referral, Some(r1.id));
    let stolen = s.commit(Commit { insert: Some(r2.clone()), attach: vec![(blob, r2.id)], now: 2, ..Default::default() }).await;
    assert!(matches!(stolen, Err(StoreError::NotFound("blob"))));
    assert_eq!(s.referral(r2.id).await.unwrap(), None, "the whole commit rolled back");
    assert_eq!(s.blob_meta(BlobId(uuid::Uuid::from_u128(78))).await.unwrap(), None);
}

pub async fn notify_recipients_are_opted_in_members(s: &dyn Store) {
    let (a, from, _) = two_practices(s).await;
    let b = user(2, "b@example.org");
    s.create_user(b.clone()).await.unwrap();
    s.add_member(from.id, b.id, Role::Member, 1).await.unwrap();
    assert!(s.email_recipients(from.id).await.unwrap().is_empty(), "opt-in: nobody by default");
    s.set_notify_email(from.id, b.id, true).await.unwrap();
    assert_eq!(s.email_recipients(from.id).await.unwrap(), vec!["b@example.org".to_string()]);
    assert!(s.members(from.id).await.unwrap().iter().any(|m| m.user.id == b.id && m.notify_email));
    s.set_notify_email(from.id, a.id, true).await.unwrap();
    s.set_notify_email(from.id, b.id, false).await.unwrap();
    assert_eq!(s.email_recipients(from.id).await.unwrap(), vec!["a@example.org".to_string()]);
    let outsider = user(3, "c@example.org");
    s.create_user(outsider.clone()).await.unwrap();
    assert!(matches!(s.set_notify_email(from.id, outsider.id, true).await, Err(StoreError::NotFound(_))));
}

pub async fn deleting_one_side_keeps_the_other_sides_referrals(s: &dyn Store) {
    let (_, from, to) = two_practices(s).await;
    let r = referral(1, from.id, to.id, "arrhythmia");
    s.commit(Commit { insert: Some(r.clone()), events: vec![(StreamId::Practice(from.id), "e".into())], now: 1, ..Default::default() })
        .await
        .unwrap();
    s.delete_practice(to.id).await.unwrap();
    assert_eq!(s.referral(r.id).await.unwrap(), Some(r.clone()), "the referring practice keeps its history");
    assert_eq!(s.referrals_of(from.id, 10).await.unwrap().len(), 1);
    assert_eq!(s.events_after(StreamId::Practice(from.id), 0, 10).await.unwrap().len(), 1);
}

fn mls_entry(p: PracticeId, epoch: u64, committer: UserId, added: Vec<UserId>, removed: Vec<UserId>) -> MlsEntryRecord {
    MlsEntryRecord {
        practice_id: p,
        epoch,
        committer,
        commit: (epoch > 1).then(|| vec![epoch as u8; 40]),
        welcome: (!added.is_empty()).then(|| vec![0xEE; 64]),
        added,
        removed,
        public_key: PracticePublicKey { epoch, hpke_pub: B64(vec![epoch as u8; 32]), signer: committer, signature: B64(vec![1; 64]) },
        history: vec![7; 72],
        created_at: 10 + epoch as i64,
    }
}

pub async fn mls_key_packages_are_single_use(s: &dyn Store) {
    let (a, b) = (user(1, "a@example.org"), user(2, "b@example.org"));
    s.create_user(a.clone()).await.unwrap();
    s.create_user(b.clone()).await.unwrap();
    assert_eq!(s.publish_key_packages(b.id, vec![(vec![1; 32], vec![11]), (vec![2; 32], vec![22])], 1).await.unwrap(), 2);
    // A key package seen before is refused, and the whole batch with it.
    assert!(matches!(
        s.publish_key_packages(b.id, vec![(vec![3; 32], vec![33]), (vec![1; 32], vec![11])], 2).await,
        Err(StoreError::Conflict("key_package"))
    ));
    assert_eq!(s.key_package_count(b.id).await.unwrap(), 2);
    assert_eq!(s.claim_key_package(b.id, a.id, 3).await.unwrap(), Some(vec![11]));
    assert_eq!(s.claim_key_package(b.id, a.id, 4).await.unwrap(), Some(vec![22]));
    assert_eq!(s.claim_key_package(b.id, a.id, 5).await.unwrap(), None);
    assert_eq!(s.key_package_count(b.id).await.unwrap(), 0);
    // Claimed ones can never come back.
    assert!(matches!(s.publish_key_packages(b.id, vec![(vec![1; 32], vec![11])], 6).await, Err(StoreError::Conflict("key_package"))));
    assert_eq!(s.claim_key_package(a.id, b.id, 7).await.unwrap(), None);
}

pub async fn mls_state_is_compare_and_swap(s: &dyn Store) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    assert_eq!(s.mls_state(a.id).await.unwrap(), None);
    assert_eq!(s.put_mls_state(a.id, 0, vec![1], 1).await.unwrap(), 1);
    assert_eq!(s.put_mls_state(a.id, 1, vec![2], 2).await.unwrap(), 2);
    // A tab still at version 1 loses and must reload.
    assert!(matches!(s.put_mls_state(a.id, 1, vec![3], 3).await, Err(StoreError::Conflict("stale_state"))));
    assert!(matches!(s.put_mls_state(a.id, 0, vec![3], 3).await, Err(StoreError::Conflict("stale_state"))));
    assert_eq!(s.mls_state(a.id).await.unwrap(), Some((2, vec![2])));
}

pub async fn mls_log_accepts_one_entry_per_epoch(s: &dyn Store) {
    let (a, b, c) = (user(1, "a@example.org"), user(2, "b@example.org"), user(3, "c@example.org"));
    for u in [&a, &b, &c] {
        s.create_user(u.clone()).await.unwrap();
    }
    let p = practice(1, a.id, PracticeKind::Specialist);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    assert_eq!(s.mls_epoch(p.id).await.unwrap(), 0);
    // Epoch 2 before epoch 1 is stale.
    assert!(matches!(s.mls_append(mls_entry(p.id, 2, a.id, vec![], vec![]), "{}".into()).await, Err(StoreError::Conflict("stale_epoch"))));
    let ev = s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), "{\"e\":1}".into()).await.unwrap();
    assert_eq!((ev.stream, ev.body.as_str()), (StreamId::Practice(p.id), "{\"e\":1}"));
    assert_eq!(s.mls_roster(p.id).await.unwrap(), vec![a.id]);
    s.mls_append(mls_entry(p.id, 2, a.id, vec![b.id, c.id], vec![]), "{}".into()).await.unwrap();
    // A second commit for epoch 2 loses, and changes nothing.
    assert!(matches!(
        s.mls_append(mls_entry(p.id, 2, b.id, vec![], vec![a.id]), "{}".into()).await,
        Err(StoreError::Conflict("stale_epoch"))
    ));
    let mut roster = s.mls_roster(p.id).await.unwrap();
    roster.sort();
    let mut want = vec![a.id, b.id, c.id];
    want.sort();
    assert_eq!(roster, want);
    assert_eq!(s.mls_welcome(p.id, b.id).await.unwrap(), Some((2, vec![0xEE; 64])));
    assert_eq!(s.mls_welcome(p.id, a.id).await.unwrap(), None);
    // The practice's current key follows the log.
    let pr = s.practice(p.id).await.unwrap().unwrap();
    assert_eq!((pr.key_epoch, pr.public_key.epoch, pr.public_key.hpke_pub.0.clone()), (2, 2, vec![2; 32]));
    s.mls_append(mls_entry(p.id, 3, b.id, vec![], vec![c.id]), "{}".into()).await.unwrap();
    assert!(!s.mls_roster(p.id).await.unwrap().contains(&c.id));
    assert_eq!(s.mls_welcome(p.id, c.id).await.unwrap(), None);
    assert_eq!(s.mls_epoch(p.id).await.unwrap(), 3);
    let log = s.mls_log(p.id, 1, 10).await.unwrap();
    assert_eq!(log.iter().map(|e| e.epoch).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(log[0], mls_entry(p.id, 2, a.id, vec![b.id, c.id], vec![]));
    assert_eq!(s.mls_log(p.id, 0, 1).await.unwrap().len(), 1);
    // Each entry's event is on the practice stream, in order.
    assert_eq!(s.stream_head(StreamId::Practice(p.id)).await.unwrap(), 3);
}

pub async fn mls_log_goes_with_the_practice(s: &dyn Store) {
    let a = user(1, "a@example.org");
    s.create_user(a.clone()).await.unwrap();
    let p = practice(1, a.id, PracticeKind::Specialist);
    s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
    s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), "{}".into()).await.unwrap();
    s.delete_practice(p.id).await.unwrap();
    assert!(s.mls_log(p.id, 0, 10).await.unwrap().is_empty());
    assert!(s.mls_roster(p.id).await.unwrap().is_empty());
    assert_eq!(s.mls_epoch(p.id).await.unwrap(), 0);
}
