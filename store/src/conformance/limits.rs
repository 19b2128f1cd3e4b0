//! Conformance tests: rate-limit lock-outs.

use super::*;

fn lockout(key: u8, count: u32, until: i64) -> Lockout {
    Lockout { key: vec![key; 16], count, until }
}

suite! {
    __conformance_limits;

    pub async fn lockouts_are_written_through_and_lift_at_their_time(s: &dyn Store) {
        assert!(s.lockouts(0).await.unwrap().is_empty());
        s.put_lockouts(vec![lockout(1, 5, 1_000), lockout(2, 60, 2_000)]).await.unwrap();
        assert_eq!(s.lockouts(999).await.unwrap(), vec![lockout(1, 5, 1_000), lockout(2, 60, 2_000)]);
        assert_eq!(s.lockouts(1_000).await.unwrap(), vec![lockout(2, 60, 2_000)], "lifted at `until`");
        // Writing a key again replaces its lock-out.
        s.put_lockouts(vec![lockout(1, 7, 3_000)]).await.unwrap();
        assert_eq!(s.lockouts(2_500).await.unwrap(), vec![lockout(1, 7, 3_000)]);
        assert_eq!(s.purge_lockouts(2_000).await.unwrap(), 1, "only the lifted one");
        assert_eq!(s.lockouts(0).await.unwrap(), vec![lockout(1, 7, 3_000)]);
    }

    pub async fn deleted_lockouts_are_gone_and_absent_keys_are_no_error(s: &dyn Store) {
        s.put_lockouts(vec![lockout(1, 5, 1_000), lockout(2, 5, 1_000)]).await.unwrap();
        s.delete_lockouts(vec![vec![1; 16], vec![9; 16]]).await.unwrap();
        assert_eq!(s.lockouts(0).await.unwrap(), vec![lockout(2, 5, 1_000)]);
        s.delete_lockouts(Vec::new()).await.unwrap();
    }

    pub async fn a_bad_lockout_key_is_refused_and_nothing_is_written(s: &dyn Store) {
        let long = Lockout { key: vec![3; MAX_LOCKOUT_KEY + 1], count: 5, until: 1_000 };
        assert!(matches!(s.put_lockouts(vec![lockout(1, 5, 1_000), long]).await, Err(LimitError::BadKey(n)) if n == MAX_LOCKOUT_KEY + 1));
        let empty = Lockout { key: Vec::new(), count: 5, until: 1_000 };
        assert!(matches!(s.put_lockouts(vec![empty]).await, Err(LimitError::BadKey(0))));
        assert!(s.lockouts(0).await.unwrap().is_empty(), "all or none");
    }
}
