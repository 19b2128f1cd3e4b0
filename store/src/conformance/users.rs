//! Conformance tests: users.

use super::*;

suite! {
    __conformance_users;

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
        assert!(matches!(s.set_staff("nobody@example.org", true).await, Err(UserError::NoSuchUser)));
    }

    pub async fn duplicate_email_conflicts(s: &dyn Store) {
        s.create_user(user(1, "a@example.org")).await.unwrap();
        let r = s.create_user(user(2, "a@example.org")).await;
        assert!(matches!(r, Err(UserError::EmailTaken)), "{r:?}");
        assert_eq!(s.user_by_id(user(2, "x").id).await.unwrap(), None, "nothing half-written");
    }

    pub async fn reset_password_revokes_sessions(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        let sess = session(7, u.id, 1, i64::MAX);
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
        assert!(matches!(missing, Err(UserError::NoSuchUser)));
    }

    pub async fn sessions_lookup_and_purge(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        let live = session(1, u.id, 10, 1_000);
        let old = session(2, u.id, 10, 100);
        s.create_session(live.clone()).await.unwrap();
        s.create_session(old.clone()).await.unwrap();
        assert_eq!(s.session(&live.token_hash).await.unwrap(), Some(live.clone()));
        assert_eq!(s.purge_sessions(500).await.unwrap(), 1);
        assert_eq!(s.session(&old.token_hash).await.unwrap(), None);
        s.delete_session(&live.token_hash).await.unwrap();
        assert_eq!(s.session(&live.token_hash).await.unwrap(), None);
    }

    pub async fn a_session_records_its_client_and_last_activity(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        let a = session(1, u.id, 10, 1_000);
        s.create_session(a.clone()).await.unwrap();
        assert_eq!(s.session(&a.token_hash).await.unwrap(), Some(a.clone()), "handle, user agent and address round-trip");
        s.touch_session(&a.token_hash, 50).await.unwrap();
        s.touch_session(&a.token_hash, 40).await.unwrap();
        assert_eq!(s.session(&a.token_hash).await.unwrap().unwrap().last_seen_at, 50, "last seen never goes back");
        s.touch_session(&[9; 32], 60).await.unwrap();
        assert_eq!(s.session(&[9; 32]).await.unwrap(), None, "touching an unknown session creates nothing");
        let dup = SessionRecord { token_hash: vec![2; 32], ..a.clone() };
        assert!(s.create_session(dup).await.is_err(), "handles are unique");
    }

    pub async fn sessions_are_listed_and_ended_per_user(s: &dyn Store) {
        let (u, v) = (user(1, "a@example.org"), user(2, "b@example.org"));
        s.create_user(u.clone()).await.unwrap();
        s.create_user(v.clone()).await.unwrap();
        let (a, b, c) = (session(1, u.id, 10, 1_000), session(2, u.id, 20, 1_000), session(3, u.id, 30, 1_000));
        let theirs = session(4, v.id, 5, 1_000);
        for x in [&a, &b, &c, &theirs] {
            s.create_session(x.clone()).await.unwrap();
        }
        assert_eq!(s.sessions_of(u.id).await.unwrap(), vec![a.clone(), b.clone(), c.clone()], "oldest first, only the user's");
        let r = s.end_session_by_handle(u.id, &theirs.handle).await;
        assert!(matches!(r, Err(UserError::NoSuchSession)), "another user's handle is not found: {r:?}");
        assert!(s.session(&theirs.token_hash).await.unwrap().is_some(), "and their session lives");
        assert_eq!(s.end_session_by_handle(u.id, &b.handle).await.unwrap(), b.token_hash);
        assert!(matches!(s.end_session_by_handle(u.id, &b.handle).await, Err(UserError::NoSuchSession)), "ended once");
        assert_eq!(s.end_other_sessions(u.id, &a.token_hash).await.unwrap(), vec![c.token_hash.clone()]);
        assert_eq!(s.sessions_of(u.id).await.unwrap(), vec![a.clone()], "the kept session stays");
        assert_eq!(s.sessions_of(v.id).await.unwrap(), vec![theirs.clone()], "another user's sessions are untouched");
    }

    pub async fn idle_sessions_are_purged(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        let (a, b) = (session(1, u.id, 10, 1_000), session(2, u.id, 10, 1_000));
        s.create_session(a.clone()).await.unwrap();
        s.create_session(b.clone()).await.unwrap();
        s.touch_session(&b.token_hash, 300).await.unwrap();
        assert_eq!(s.purge_idle_sessions(200).await.unwrap(), 1);
        assert_eq!(s.session(&a.token_hash).await.unwrap(), None, "idle since 10");
        assert!(s.session(&b.token_hash).await.unwrap().is_some(), "seen at 300");
    }

    pub async fn a_pending_registration_is_no_account_until_confirmed(s: &dyn Store) {
        let mut u = user(1, "a@example.org");
        u.email_confirmed_at = None;
        let p = PendingRegistration { token_hash: vec![1; 32], user: u.clone(), expires_at: 10_000 };
        s.create_pending_registration(p.clone()).await.unwrap();
        assert!(matches!(s.create_pending_registration(p.clone()).await, Err(UserError::RegistrationExists)));
        assert_eq!(s.user_by_email("a@example.org").await.unwrap(), None, "pending is not an account");
        // Its proof is there while it lives, and only for its token.
        let proof = PendingProof { salt: u.salt.clone(), auth_verifier: u.auth_verifier.clone() };
        assert_eq!(s.pending_proof(&[1; 32], 5_000).await.unwrap(), Some(proof));
        assert_eq!(s.pending_proof(&[9; 32], 5_000).await.unwrap(), None);
        assert_eq!(s.pending_proof(&[1; 32], 10_000).await.unwrap(), None, "expired");
        // An unknown or expired token confirms nothing.
        assert!(matches!(s.confirm_registration(&[9; 32], u.id, 5_000).await, Err(UserError::NoSuchRegistration)));
        assert!(matches!(s.confirm_registration(&[1; 32], u.id, 10_000).await, Err(UserError::NoSuchRegistration)));
        let id = UserId::from_bytes(id16(50));
        let made = s.confirm_registration(&[1; 32], id, 5_000).await.unwrap();
        assert_eq!((made.id, made.email.as_str(), made.email_confirmed_at, made.created_at), (id, "a@example.org", Some(5_000), 5_000));
        assert_eq!(s.user_by_email("a@example.org").await.unwrap(), Some(made));
        // A link works once.
        assert!(matches!(s.confirm_registration(&[1; 32], id, 5_001).await, Err(UserError::NoSuchRegistration)));
        assert_eq!(s.pending_proof(&[1; 32], 5_001).await.unwrap(), None, "a confirmed registration proves nothing more");
    }

    pub async fn the_first_confirmed_registration_of_an_address_wins(s: &dyn Store) {
        let mut first = user(1, "a@example.org");
        first.email_confirmed_at = None;
        let mut second = user(2, "a@example.org");
        second.email_confirmed_at = None;
        s.create_pending_registration(PendingRegistration { token_hash: vec![1; 32], user: first, expires_at: 10_000 }).await.unwrap();
        s.create_pending_registration(PendingRegistration { token_hash: vec![2; 32], user: second.clone(), expires_at: 10_000 }).await.unwrap();
        // The second is confirmed first: it wins, and the first can no longer confirm.
        let made = s.confirm_registration(&[2; 32], UserId::from_bytes(id16(60)), 5_000).await.unwrap();
        assert_eq!(made.sign_pub, second.sign_pub);
        assert!(matches!(s.confirm_registration(&[1; 32], UserId::from_bytes(id16(61)), 5_001).await, Err(UserError::NoSuchRegistration)));
        // A pending registration for an address taken since cannot create a second account.
        let mut late = user(3, "a@example.org");
        late.email_confirmed_at = None;
        s.create_pending_registration(PendingRegistration { token_hash: vec![3; 32], user: late, expires_at: 10_000 }).await.unwrap();
        assert!(matches!(s.confirm_registration(&[3; 32], UserId::from_bytes(id16(62)), 5_002).await, Err(UserError::EmailTaken)));
        assert!(matches!(s.confirm_registration(&[3; 32], UserId::from_bytes(id16(62)), 5_003).await, Err(UserError::NoSuchRegistration)));
    }

    pub async fn expired_pending_registrations_are_purged(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_pending_registration(PendingRegistration { token_hash: vec![1; 32], user: u.clone(), expires_at: 100 }).await.unwrap();
        s.create_pending_registration(PendingRegistration { token_hash: vec![2; 32], user: u, expires_at: 1_000 }).await.unwrap();
        assert_eq!(s.purge_pending_registrations(500).await.unwrap(), 1);
        assert!(s.confirm_registration(&[2; 32], UserId::from_bytes(id16(70)), 600).await.is_ok());
    }
}

/// A session of `user` numbered `n` (its token hash, handle, agent and address derive from `n`).
fn session(n: u8, user: UserId, created_at: i64, expires_at: i64) -> SessionRecord {
    SessionRecord {
        token_hash: vec![n; 32],
        user_id: user,
        created_at,
        expires_at,
        handle: vec![n; 16],
        last_seen_at: created_at,
        user_agent: format!("agent {n}"),
        client_addr: format!("192.0.2.{n}"),
    }
}
