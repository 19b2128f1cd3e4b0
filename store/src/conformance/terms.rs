//! Conformance tests: membership terms (dates, delegates' sponsors).

use super::*;

suite! {
    __conformance_terms;

    pub async fn an_invited_delegate_joins_with_the_invites_dates_and_the_inviter_as_sponsor(s: &dyn Store) {
        let a = user(1, "a@example.org");
        let d = user(2, "d@example.org");
        s.create_user(a.clone()).await.unwrap();
        s.create_user(d.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        let inv = InviteRecord {
            token_hash: vec![7; 32],
            practice_id: p.id,
            email: "d@example.org".into(),
            role: Role::Delegate,
            invited_by: a.id,
            created_at: 1,
            expires_at: 100,
            starts_at: Some(50),
            ends_at: Some(500),
        };
        s.create_invite(inv.clone()).await.unwrap();
        assert_eq!(s.invite(&inv.token_hash).await.unwrap(), Some(inv.clone()), "the dates are kept on the invite");
        s.accept_invite(&inv.token_hash, d.id, 10).await.unwrap();
        let terms = Terms { starts_at: Some(50), ends_at: Some(500), sponsor: Some(a.id) };
        assert_eq!(s.terms(p.id, d.id).await.unwrap(), Some((Role::Delegate, terms)));
        assert_eq!(s.role(p.id, d.id).await.unwrap(), Some(Role::Delegate));
        assert_eq!(s.sponsor_of(p.id, d.id).await.unwrap(), Some(a.id));
        assert_eq!(s.sponsor_of(p.id, a.id).await.unwrap(), None, "an admin acts for themself");
        assert_eq!(s.delegates_of(p.id, a.id).await.unwrap(), vec![d.id]);
        let members = s.members(p.id).await.unwrap();
        let of = |u: UserId| members.iter().find(|m| m.user.id == u).map(|m| m.terms);
        assert_eq!((of(a.id), of(d.id)), (Some(Terms::default()), Some(terms)), "the members list carries the terms");
        assert!(!terms.in_force(49) && terms.in_force(50) && terms.in_force(499) && !terms.in_force(500));
        assert_eq!(s.terms(p.id, user(9, "x@example.org").id).await.unwrap(), None);
    }

    pub async fn end_dates_are_set_listed_once_past_and_reminded_once(s: &dyn Store) {
        let a = user(1, "a@example.org");
        let b = user(2, "b@example.org");
        s.create_user(a.clone()).await.unwrap();
        s.create_user(b.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Referring);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.add_member(p.id, b.id, Role::Member, 1).await.unwrap();
        assert!(matches!(s.set_dates(p.id, user(9, "x@example.org").id, None, Some(5)).await, Err(PracticeError::NotMember)));
        s.set_dates(p.id, b.id, None, Some(1_000)).await.unwrap();
        assert_eq!(s.terms(p.id, b.id).await.unwrap().unwrap().1.ends_at, Some(1_000));
        assert!(s.ended(999).await.unwrap().is_empty());
        let ending = Ending { practice: p.id, user: b.id, ends_at: 1_000 };
        assert_eq!(s.ended(1_000).await.unwrap(), vec![ending]);
        assert!(s.reminders_due(0, 900).await.unwrap().is_empty(), "not within the window yet");
        assert_eq!(s.reminders_due(0, 1_000).await.unwrap(), vec![ending]);
        assert!(s.mark_reminded(p.id, b.id, 1_000).await.unwrap());
        assert!(!s.mark_reminded(p.id, b.id, 1_000).await.unwrap(), "reminded once");
        assert!(s.reminders_due(0, 1_000).await.unwrap().is_empty());
        s.set_dates(p.id, b.id, None, Some(1_000)).await.unwrap();
        assert!(s.reminders_due(0, 1_000).await.unwrap().is_empty(), "the same end is not reminded again");
        s.set_dates(p.id, b.id, None, Some(2_000)).await.unwrap();
        assert_eq!(s.reminders_due(0, 2_000).await.unwrap(), vec![Ending { ends_at: 2_000, ..ending }], "a changed end is reminded anew");
        assert!(!s.mark_reminded(p.id, b.id, 1_000).await.unwrap(), "a reminder of the old end does not count");
        s.set_dates(p.id, b.id, None, None).await.unwrap();
        assert!(s.ended(i64::MAX).await.unwrap().is_empty());
    }
}
