//! Conformance tests: mls.

use super::*;

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
        generation: 0,
        links_to: epoch - 1,
        revoked: false,
    }
}

/// A stand-in for an observer snapshot at `epoch` (the store keeps it opaque).
fn state_of(epoch: u64) -> Vec<u8> {
    vec![0xA0 | epoch as u8; 48]
}

suite! {
    __conformance_mls;

    pub async fn mls_key_packages_are_single_use(s: &dyn Store) {
        let (a, b) = (user(1, "a@example.org"), user(2, "b@example.org"));
        s.create_user(a.clone()).await.unwrap();
        s.create_user(b.clone()).await.unwrap();
        assert_eq!(s.publish_key_packages(b.id, vec![(vec![1; 32], vec![11]), (vec![2; 32], vec![22])], 1).await.unwrap(), 2);
        // A key package seen before is refused, and the whole batch with it.
        assert!(matches!(
            s.publish_key_packages(b.id, vec![(vec![3; 32], vec![33]), (vec![1; 32], vec![11])], 2).await,
            Err(MlsError::KeyPackageReused)
        ));
        assert_eq!(s.key_package_count(b.id).await.unwrap(), 2);
        assert_eq!(s.claim_key_package(b.id, a.id, 3).await.unwrap(), Some(vec![11]));
        assert_eq!(s.claim_key_package(b.id, a.id, 4).await.unwrap(), Some(vec![22]));
        assert_eq!(s.claim_key_package(b.id, a.id, 5).await.unwrap(), None);
        assert_eq!(s.key_package_count(b.id).await.unwrap(), 0);
        // Claimed ones can never come back.
        assert!(matches!(s.publish_key_packages(b.id, vec![(vec![1; 32], vec![11])], 6).await, Err(MlsError::KeyPackageReused)));
        assert_eq!(s.claim_key_package(a.id, b.id, 7).await.unwrap(), None);
    }

    pub async fn mls_state_is_compare_and_swap(s: &dyn Store) {
        let a = user(1, "a@example.org");
        s.create_user(a.clone()).await.unwrap();
        assert_eq!(s.mls_state(a.id).await.unwrap(), None);
        assert_eq!(s.put_mls_state(a.id, 0, vec![1], 1).await.unwrap(), 1);
        assert_eq!(s.put_mls_state(a.id, 1, vec![2], 2).await.unwrap(), 2);
        // A tab still at version 1 loses and must reload.
        assert!(matches!(s.put_mls_state(a.id, 1, vec![3], 3).await, Err(MlsError::StaleState)));
        assert!(matches!(s.put_mls_state(a.id, 0, vec![3], 3).await, Err(MlsError::StaleState)));
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
        assert!(matches!(s.mls_append(mls_entry(p.id, 2, a.id, vec![], vec![]), state_of(2), "{}".into()).await, Err(MlsError::StaleEpoch)));
        let ev = s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), state_of(1), "{\"e\":1}".into()).await.unwrap();
        assert_eq!((ev.stream, ev.body.as_str()), (StreamId::Practice(p.id), "{\"e\":1}"));
        assert_eq!(s.mls_roster(p.id).await.unwrap(), vec![a.id]);
        s.mls_append(mls_entry(p.id, 2, a.id, vec![b.id, c.id], vec![]), state_of(2), "{}".into()).await.unwrap();
        // A second commit for epoch 2 loses, and changes nothing.
        assert!(matches!(
            s.mls_append(mls_entry(p.id, 2, b.id, vec![], vec![a.id]), state_of(2), "{}".into()).await,
            Err(MlsError::StaleEpoch)
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
        s.mls_append(mls_entry(p.id, 3, b.id, vec![], vec![c.id]), state_of(3), "{}".into()).await.unwrap();
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

    pub async fn a_welcome_is_forgotten_once_its_member_is_past_it(s: &dyn Store) {
        let (a, b, c) = (user(1, "a@example.org"), user(2, "b@example.org"), user(3, "c@example.org"));
        for u in [&a, &b, &c] {
            s.create_user(u.clone()).await.unwrap();
        }
        let p = practice(1, a.id, PracticeKind::Specialist);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), state_of(1), "{}".into()).await.unwrap();
        s.mls_append(mls_entry(p.id, 2, a.id, vec![b.id, c.id], vec![]), state_of(2), "{}".into()).await.unwrap();
        // Not past it yet: kept.
        assert!(!s.forget_welcome(p.id, b.id, 1).await.unwrap());
        assert!(s.mls_welcome(p.id, b.id).await.unwrap().is_some());
        // B is past it: B's is forgotten, but C still awaits the same welcome, so its bytes stay.
        assert!(s.forget_welcome(p.id, b.id, 2).await.unwrap());
        assert_eq!(s.mls_welcome(p.id, b.id).await.unwrap(), None);
        assert_eq!(s.mls_welcome(p.id, c.id).await.unwrap(), Some((2, vec![0xEE; 64])));
        assert!(s.mls_log(p.id, 1, 1).await.unwrap()[0].welcome.is_some());
        // Once C is past it too, the log no longer keeps it.
        assert!(s.forget_welcome(p.id, c.id, 5).await.unwrap());
        assert_eq!(s.mls_log(p.id, 1, 1).await.unwrap()[0].welcome, None);
        assert!(!s.forget_welcome(p.id, c.id, 5).await.unwrap());
    }

    pub async fn mls_public_state_moves_with_the_log_and_only_with_it(s: &dyn Store) {
        let (a, b) = (user(1, "a@example.org"), user(2, "b@example.org"));
        for u in [&a, &b] {
            s.create_user(u.clone()).await.unwrap();
        }
        let p = practice(1, a.id, PracticeKind::Specialist);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        // Nothing observed before the group exists.
        assert_eq!(s.mls_public_state(p.id).await.unwrap(), None);
        s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), state_of(1), "{}".into()).await.unwrap();
        assert_eq!(s.mls_public_state(p.id).await.unwrap(), Some((1, state_of(1))));
        s.mls_append(mls_entry(p.id, 2, a.id, vec![b.id], vec![]), state_of(2), "{}".into()).await.unwrap();
        assert_eq!(s.mls_public_state(p.id).await.unwrap(), Some((2, state_of(2))));
        // A losing commit for the same epoch leaves the winner's state in place.
        assert!(matches!(
            s.mls_append(mls_entry(p.id, 2, b.id, vec![], vec![]), vec![0xFF; 48], "{}".into()).await,
            Err(MlsError::StaleEpoch)
        ));
        assert_eq!(s.mls_public_state(p.id).await.unwrap(), Some((2, state_of(2))));
        // It goes with the practice.
        s.delete_practice(p.id).await.unwrap();
        assert_eq!(s.mls_public_state(p.id).await.unwrap(), None);
    }

    pub async fn mls_log_goes_with_the_practice(s: &dyn Store) {
        let a = user(1, "a@example.org");
        s.create_user(a.clone()).await.unwrap();
        let p = practice(1, a.id, PracticeKind::Specialist);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), state_of(1), "{}".into()).await.unwrap();
        s.delete_practice(p.id).await.unwrap();
        assert!(s.mls_log(p.id, 0, 10).await.unwrap().is_empty());
        assert!(s.mls_roster(p.id).await.unwrap().is_empty());
        assert_eq!(s.mls_epoch(p.id).await.unwrap(), 0);
    }

    pub async fn mls_reinitialisation_revokes_the_skipped_epochs_and_restarts_the_roster(s: &dyn Store) {
        let (a, b, c) = (user(1, "a@example.org"), user(2, "b@example.org"), user(3, "c@example.org"));
        for u in [&a, &b, &c] {
            s.create_user(u.clone()).await.unwrap();
        }
        let p = practice(1, a.id, PracticeKind::Specialist);
        s.create_practice(p.clone(), grant(p.id, a.id, a.id, 0)).await.unwrap();
        s.mls_append(mls_entry(p.id, 1, a.id, vec![], vec![]), state_of(1), "{}".into()).await.unwrap();
        s.mls_append(mls_entry(p.id, 2, a.id, vec![b.id, c.id], vec![]), state_of(2), "{}".into()).await.unwrap();
        s.mls_append(mls_entry(p.id, 3, c.id, vec![], vec![]), state_of(3), "{}".into()).await.unwrap();
        // Nothing reported yet; a report names an entry of the log.
        assert_eq!(s.mls_reported(p.id).await.unwrap(), None);
        assert!(matches!(s.mls_report(p.id, 9, b.id, 20).await, Err(MlsError::NoSuchEntry)));
        s.mls_report(p.id, 3, b.id, 20).await.unwrap();
        s.mls_report(p.id, 3, b.id, 21).await.unwrap();
        assert_eq!(s.mls_reported(p.id).await.unwrap(), Some(3));
        // The admin re-initialises: generation 1 at epoch 4, linking back to epoch 2.
        let reinit = MlsEntryRecord { generation: 1, links_to: 2, commit: None, ..mls_entry(p.id, 4, a.id, vec![], vec![]) };
        s.mls_append(reinit, state_of(4), "{}".into()).await.unwrap();
        assert_eq!(s.mls_roster(p.id).await.unwrap(), vec![a.id]);
        assert_eq!(s.mls_welcome(p.id, b.id).await.unwrap(), None);
        let log = s.mls_log(p.id, 0, 10).await.unwrap();
        assert_eq!(log.iter().map(|e| (e.epoch, e.revoked)).collect::<Vec<_>>(), vec![(1, false), (2, false), (3, true), (4, false)]);
        assert_eq!((log[3].generation, log[3].links_to), (1, 2));
        assert_eq!((log[1].generation, log[1].links_to), (0, 1));
        // The report was of the old generation: recovered from.
        assert_eq!(s.mls_reported(p.id).await.unwrap(), None);
        let pr = s.practice(p.id).await.unwrap().unwrap();
        assert_eq!(pr.key_epoch, 4);
        // The new generation goes on as usual.
        s.mls_append(MlsEntryRecord { generation: 1, ..mls_entry(p.id, 5, a.id, vec![b.id], vec![]) }, state_of(5), "{}".into())
            .await
            .unwrap();
        let mut roster = s.mls_roster(p.id).await.unwrap();
        roster.sort();
        let mut want = vec![a.id, b.id];
        want.sort();
        assert_eq!(roster, want);
        assert_eq!(s.mls_welcome(p.id, b.id).await.unwrap(), Some((5, vec![0xEE; 64])));
        // Nothing was sent to the practice, so nothing is unreadable.
        assert!(s.mls_unreadable(p.id, 10).await.unwrap().is_empty());
    }
}
