//! Conformance tests: two-factor sign-in (TOTP state, recovery codes, a
//! practice's requirement).

use super::*;

suite! {
    __conformance_two_factor;

    pub async fn an_enrollment_is_not_in_force_until_enabled(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        assert_eq!(s.totp(u.id).await.unwrap(), None);
        s.start_totp(u.id, vec![1; 40], 10).await.unwrap();
        let t = s.totp(u.id).await.unwrap().unwrap();
        assert_eq!((t.sealed_secret, t.enabled_at, t.last_step, t.recovery_codes_left), (vec![1; 40], None, -1, 0));
        // Starting again replaces the waiting secret.
        s.start_totp(u.id, vec![2; 40], 11).await.unwrap();
        assert_eq!(s.totp(u.id).await.unwrap().unwrap().sealed_secret, vec![2; 40]);
        s.enable_totp(u.id, 500, vec![vec![7; 32], vec![8; 32]], 12).await.unwrap();
        let t = s.totp(u.id).await.unwrap().unwrap();
        assert_eq!((t.enabled_at, t.last_step, t.recovery_codes_left), (Some(12), 500, 2));
        assert!(matches!(s.start_totp(u.id, vec![3; 40], 13).await, Err(UserError::TotpEnabled)), "no silent re-enrollment");
        assert!(matches!(s.enable_totp(u.id, 501, vec![], 13).await, Err(UserError::TotpEnabled)));
        assert_eq!(s.totp(u.id).await.unwrap().unwrap().sealed_secret, vec![2; 40], "the secret in force is untouched");
    }

    pub async fn enabling_without_an_enrollment_or_for_no_user_fails(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        assert!(matches!(s.enable_totp(u.id, 1, vec![], 1).await, Err(UserError::NoTotp)));
        assert!(matches!(s.start_totp(user(9, "x").id, vec![1; 40], 1).await, Err(UserError::NoSuchUser)));
        assert!(matches!(s.disable_totp(u.id).await, Err(UserError::NoTotp)));
    }

    pub async fn a_step_is_accepted_once_and_never_an_earlier_one(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        s.start_totp(u.id, vec![1; 40], 1).await.unwrap();
        s.enable_totp(u.id, 100, vec![], 1).await.unwrap();
        assert!(!s.use_totp_step(u.id, 100).await.unwrap(), "the confirming code's step is used");
        assert!(s.use_totp_step(u.id, 101).await.unwrap());
        assert!(!s.use_totp_step(u.id, 101).await.unwrap(), "a replay is refused");
        assert!(!s.use_totp_step(u.id, 99).await.unwrap(), "an earlier step too");
        assert!(s.use_totp_step(u.id, 103).await.unwrap());
        assert_eq!(s.totp(u.id).await.unwrap().unwrap().last_step, 103);
    }

    pub async fn a_recovery_code_works_once(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        s.start_totp(u.id, vec![1; 40], 1).await.unwrap();
        s.enable_totp(u.id, 1, vec![vec![7; 32], vec![8; 32]], 1).await.unwrap();
        assert_eq!(s.use_recovery_code(u.id, &[7; 32], 5).await.unwrap(), RecoveryCodeUse::Accepted);
        assert_eq!(s.use_recovery_code(u.id, &[7; 32], 6).await.unwrap(), RecoveryCodeUse::AlreadyUsed);
        assert_eq!(s.use_recovery_code(u.id, &[9; 32], 6).await.unwrap(), RecoveryCodeUse::Unknown);
        let other = user(2, "b@example.org");
        s.create_user(other.clone()).await.unwrap();
        assert_eq!(s.use_recovery_code(other.id, &[8; 32], 6).await.unwrap(), RecoveryCodeUse::Unknown, "codes are per user");
        assert_eq!(s.totp(u.id).await.unwrap().unwrap().recovery_codes_left, 1);
    }

    pub async fn disabling_drops_the_secret_and_the_recovery_codes(s: &dyn Store) {
        let u = user(1, "a@example.org");
        s.create_user(u.clone()).await.unwrap();
        s.start_totp(u.id, vec![1; 40], 1).await.unwrap();
        s.enable_totp(u.id, 1, vec![vec![7; 32]], 1).await.unwrap();
        s.disable_totp(u.id).await.unwrap();
        assert_eq!(s.totp(u.id).await.unwrap(), None);
        assert_eq!(s.use_recovery_code(u.id, &[7; 32], 6).await.unwrap(), RecoveryCodeUse::Unknown);
    }

    pub async fn a_practice_requirement_holds_back_only_members_without_two_factor(s: &dyn Store) {
        let (a, p, _) = two_practices(s).await;
        assert!(!s.two_factor_missing(p.id, a.id).await.unwrap(), "not required by default");
        s.set_require_two_factor(p.id, true).await.unwrap();
        assert!(s.two_factor_missing(p.id, a.id).await.unwrap());
        s.start_totp(a.id, vec![1; 40], 1).await.unwrap();
        assert!(s.two_factor_missing(p.id, a.id).await.unwrap(), "a waiting enrollment is not 2FA");
        s.enable_totp(a.id, 1, vec![], 1).await.unwrap();
        assert!(!s.two_factor_missing(p.id, a.id).await.unwrap());
        s.disable_totp(a.id).await.unwrap();
        assert!(s.two_factor_missing(p.id, a.id).await.unwrap());
        s.set_require_two_factor(p.id, false).await.unwrap();
        assert!(!s.two_factor_missing(p.id, a.id).await.unwrap());
        let missing = PracticeId::from_bytes(id16(250));
        assert!(matches!(s.set_require_two_factor(missing, true).await, Err(PracticeError::NoSuchPractice)));
        assert!(!s.two_factor_missing(missing, a.id).await.unwrap());
    }
}
