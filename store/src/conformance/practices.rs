//! Conformance tests: practices.

use super::*;

suite! {
    __conformance_practices;

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
        assert!(matches!(s.add_member(p.id, b.id, Role::Member, 5_001).await, Err(PracticeError::AlreadyMember)));
        let members = s.members(p.id).await.unwrap();
        assert_eq!(members.iter().map(|m| (m.user.id, m.role)).collect::<Vec<_>>(), vec![(a.id, Role::Admin), (b.id, Role::Member)]);
        // A user may belong to several practices.
        let q = practice(2, b.id, PracticeKind::Referring);
        s.create_practice(q.clone(), grant(q.id, b.id, b.id, 0)).await.unwrap();
        let mine = s.practices_of(b.id).await.unwrap();
        assert_eq!(mine.iter().map(|(p, r)| (p.id, *r)).collect::<Vec<_>>(), vec![(p.id, Role::Member), (q.id, Role::Admin)]);
        s.remove_member(p.id, b.id).await.unwrap();
        assert_eq!(s.role(p.id, b.id).await.unwrap(), None);
        assert!(matches!(s.remove_member(p.id, b.id).await, Err(PracticeError::NotMember)));
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
        assert!(matches!(s.create_practice(again, grant(p.id, a.id, a.id, 0)).await, Err(PracticeError::PracticeExists)));
        assert_eq!(s.practice(p.id).await.unwrap().unwrap().name, p.name);
    }

    pub async fn a_deleted_practice_id_is_never_accepted_again(s: &dyn Store) {
        let a = user(1, "a@example.org");
        let b = user(2, "b@example.org");
        s.create_user(a.clone()).await.unwrap();
        s.create_user(b.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.delete_practice(p.id).await.unwrap();
        assert_eq!(s.practice(p.id).await.unwrap(), None);
        // Neither the former creator nor anyone else may take the id again.
        assert!(matches!(s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await, Err(PracticeError::PracticeIdRetired)));
        let theirs = practice(1, b.id, PracticeKind::Specialist);
        assert!(matches!(s.create_practice(theirs, grant(p.id, b.id, b.id, 0)).await, Err(PracticeError::PracticeIdRetired)));
        assert_eq!(s.practice(p.id).await.unwrap(), None, "a refused creation creates nothing");
        assert_eq!(s.role(p.id, b.id).await.unwrap(), None);
        assert!(matches!(s.delete_practice(p.id).await, Err(PracticeError::NoSuchPractice)));
    }

    pub async fn invites_are_counted_per_user_and_per_practice(s: &dyn Store) {
        let a = user(1, "a@example.org");
        let b = user(2, "b@example.org");
        s.create_user(a.clone()).await.unwrap();
        s.create_user(b.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        let q = practice(2, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.create_practice(q.clone(), grant(q.id, a.id, a.id, 0)).await.unwrap();
        let quota = InviteQuota { per_user: 2, user_window_ms: 1_000, per_practice: 3, practice_window_ms: 10_000 };
        let inv = |n: u8, practice: PracticeId, by: UserId, at: handoff_protocol::UnixMillis| InviteRecord {
            token_hash: vec![n; 32],
            practice_id: practice,
            email: format!("x{n}@example.org"),
            role: Role::Member,
            invited_by: by,
            created_at: at,
            expires_at: at + 100_000,
            starts_at: None,
            ends_at: None,
        };
        s.create_invite_within(inv(1, p.id, a.id, 100), quota).await.unwrap();
        s.create_invite_within(inv(2, p.id, a.id, 200), quota).await.unwrap();
        // The inviter's quota covers every practice; the refusal says when the oldest leaves the window.
        let r = s.create_invite_within(inv(3, q.id, a.id, 300), quota).await;
        assert!(matches!(r, Err(PracticeError::InviteQuotaExceeded { retry_at: 1_100 })), "{r:?}");
        assert_eq!(s.invite(&[3; 32]).await.unwrap(), None, "a refused invite is not stored");
        // Another inviter of the same practice meets the practice's quota.
        s.create_invite_within(inv(4, p.id, b.id, 400), quota).await.unwrap();
        let r = s.create_invite_within(inv(5, p.id, b.id, 500), quota).await;
        assert!(matches!(r, Err(PracticeError::InviteQuotaExceeded { retry_at: 10_100 })), "{r:?}");
        // Windows slide: later, both may invite again; accepted invites still counted.
        s.accept_invite(&[1; 32], b.id, 600).await.unwrap();
        s.create_invite_within(inv(6, q.id, a.id, 1_300), quota).await.unwrap();
        s.create_invite_within(inv(7, p.id, b.id, 10_300), quota).await.unwrap();
    }

    pub async fn last_admin_cannot_be_removed(s: &dyn Store) {
        let a = user(1, "a@example.org");
        let b = user(2, "b@example.org");
        s.create_user(a.clone()).await.unwrap();
        s.create_user(b.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        assert!(matches!(s.remove_member(p.id, a.id).await, Err(PracticeError::LastAdmin)));
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
            starts_at: None,
            ends_at: None,
        })
        .await
        .unwrap();
        s.delete_practice(p.id).await.unwrap();
        assert_eq!(s.practice(p.id).await.unwrap(), None);
        assert_eq!(s.role(p.id, a.id).await.unwrap(), None);
        assert_eq!(s.grant(p.id, a.id, 0).await.unwrap(), None);
        assert_eq!(s.invite(&[5; 32]).await.unwrap(), None);
        assert!(s.practices_of(a.id).await.unwrap().is_empty());
        assert!(matches!(s.delete_practice(p.id).await, Err(PracticeError::NoSuchPractice)));
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
        assert!(matches!(s.set_verified(PracticeId::from_bytes(id16(200)), true).await, Err(PracticeError::NoSuchPractice)));
        assert!(matches!(s.set_paused(PracticeId::from_bytes(id16(200)), true).await, Err(PracticeError::NoSuchPractice)));
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
        assert!(matches!(s.put_grant(orphan).await, Err(PracticeError::GrantTargetMissing)));
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
            starts_at: None,
            ends_at: None,
        };
        s.create_invite(inv.clone()).await.unwrap();
        assert_eq!(s.invite(&inv.token_hash).await.unwrap(), Some(inv.clone()));
        assert_eq!(s.invites_of(p.id).await.unwrap(), vec![inv.clone()]);
        s.accept_invite(&inv.token_hash, c.id, 10).await.unwrap();
        assert_eq!(s.role(p.id, c.id).await.unwrap(), Some(Role::Member));
        assert!(matches!(s.accept_invite(&inv.token_hash, c.id, 11).await, Err(PracticeError::InviteUsed)));
        assert!(s.invites_of(p.id).await.unwrap().is_empty());
    }

    pub async fn expired_invites_are_purged(s: &dyn Store) {
        let a = user(1, "a@example.org");
        s.create_user(a.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        let inv = |n: u8, expires_at| InviteRecord {
            token_hash: vec![n; 32],
            practice_id: p.id,
            email: format!("{n}@example.org"),
            role: Role::Member,
            invited_by: a.id,
            created_at: 1,
            expires_at,
            starts_at: None,
            ends_at: None,
        };
        s.create_invite(inv(5, 100)).await.unwrap();
        s.create_invite(inv(6, 200)).await.unwrap();
        assert_eq!(s.purge_invites(100).await.unwrap(), 0, "an invite expiring at `now` is not yet expired");
        assert_eq!(s.purge_invites(150).await.unwrap(), 1);
        assert_eq!(s.invite(&[5; 32]).await.unwrap(), None);
        assert_eq!(s.invite(&[6; 32]).await.unwrap(), Some(inv(6, 200)));
        assert_eq!(s.invites_of(p.id).await.unwrap(), vec![inv(6, 200)]);
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
        assert!(matches!(s.set_notify_email(from.id, outsider.id, true).await, Err(PracticeError::NotMember)));
    }
}
