use super::*;

fn user(n: u8) -> (UserId, UserSecrets) {
    (UserId::from_bytes([n; 16]), UserSecrets::generate().unwrap())
}

/// A directory every test client shares, like the server's user directory.
fn client(dir: &Directory, (id, secrets): &(UserId, UserSecrets)) -> MlsUser {
    dir.insert(*id, secrets.public().sign_pub);
    MlsUser::new(*id, secrets, MlsStore::new(), dir.clone())
}

const P: PracticeId = PracticeId(uuid::Uuid::from_u128(7));

#[test]
fn add_join_agree_on_epoch_keys_and_history() {
    let dir = Directory::default();
    let (a, b) = (user(1), user(2));
    let (alice, bob) = (client(&dir, &a), client(&dir, &b));
    assert_eq!(alice.create_group(P).unwrap(), 1);
    let k1 = alice.epoch_key(P).unwrap();
    let pc = alice.commit(P, &[bob.key_package().unwrap()], &[]).unwrap();
    assert_eq!((pc.mls_epoch, pc.added.clone()), (0, vec![b.0]));
    // Not applied until the DS accepts it.
    assert_eq!(alice.epoch(P).unwrap(), Some(1));
    assert_eq!(alice.apply_pending(P).unwrap(), 2);
    assert_eq!(bob.join(P, pc.welcome.as_ref().unwrap()).unwrap(), 2);
    let (ka, kb) = (alice.epoch_key(P).unwrap(), bob.epoch_key(P).unwrap());
    assert_eq!(ka, kb);
    assert_eq!(ka.epoch(), 2);
    assert_ne!(ka.expose_for_tests(), k1.expose_for_tests());
    // Bob, who joined at epoch 2, reaches epoch 1's key through the history link alice published.
    let link = ka.history_link(P, &k1).unwrap();
    assert_eq!(kb.open_history_link(P, &link).unwrap(), k1);
    let mut members = bob.members(P).unwrap();
    members.sort();
    assert_eq!(members, vec![a.0, b.0]);
    // The key package was used: its secret is gone from bob's state.
    assert_eq!(bob.store().key_package_count(), 0);
}

#[test]
fn removed_member_with_all_old_state_cannot_derive_the_new_key() {
    let dir = Directory::default();
    let (a, b, c) = (user(1), user(2), user(3));
    let (alice, bob, carol) = (client(&dir, &a), client(&dir, &b), client(&dir, &c));
    alice.create_group(P).unwrap();
    let pc = alice.commit(P, &[bob.key_package().unwrap(), carol.key_package().unwrap()], &[]).unwrap();
    alice.apply_pending(P).unwrap();
    bob.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    carol.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    let carol_saved = carol.store().to_bytes().unwrap();
    let old = carol.epoch_key(P).unwrap();

    let rm = alice.commit(P, &[], &[c.0]).unwrap();
    assert_eq!(rm.removed, vec![c.0]);
    alice.apply_pending(P).unwrap();
    assert_eq!(bob.process(P, &rm.commit, &rm.declared(a.0)).unwrap(), Processed::Advanced(3));
    let new = alice.epoch_key(P).unwrap();
    assert_eq!(bob.epoch_key(P).unwrap(), new);
    // Carol sees the commit and learns only that she is out.
    assert_eq!(carol.process(P, &rm.commit, &rm.declared(a.0)).unwrap(), Processed::Removed);
    assert!(carol.epoch_key(P).is_err());
    // Restoring every byte of state she ever had gives her the old epoch, not the new one.
    let restored = MlsUser::new(c.0, &c.1, MlsStore::from_bytes(&carol_saved).unwrap(), dir.clone());
    let k = restored.epoch_key(P).unwrap();
    assert_eq!(k, old);
    assert_ne!(k.expose_for_tests(), new.expose_for_tests());
    assert_eq!(restored.process(P, &rm.commit, &rm.declared(a.0)).unwrap(), Processed::Removed);
    // The new epoch's history link does not open under anything she holds.
    let link = new.history_link(P, &old).unwrap();
    assert!(old.open_history_link(P, &link).is_err());
}

#[test]
fn concurrent_commits_one_wins_the_other_retries() {
    let dir = Directory::default();
    let (a, b, c, d) = (user(1), user(2), user(3), user(4));
    let (alice, bob, carol, dave) = (client(&dir, &a), client(&dir, &b), client(&dir, &c), client(&dir, &d));
    alice.create_group(P).unwrap();
    let pc = alice.commit(P, &[bob.key_package().unwrap()], &[]).unwrap();
    alice.apply_pending(P).unwrap();
    bob.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    // Both commit at MLS epoch 1.
    let from_a = alice.commit(P, &[carol.key_package().unwrap()], &[]).unwrap();
    let from_b = bob.commit(P, &[dave.key_package().unwrap()], &[]).unwrap();
    assert_eq!(from_a.mls_epoch, from_b.mls_epoch);
    // The DS takes alice's; bob processes it (dropping his own) and commits again.
    alice.apply_pending(P).unwrap();
    assert_eq!(bob.process(P, &from_a.commit, &from_a.declared(a.0)).unwrap(), Processed::Advanced(3));
    let retry = bob.commit(P, &[dave.key_package().unwrap()], &[]).unwrap();
    assert_eq!(retry.mls_epoch, 2);
    bob.apply_pending(P).unwrap();
    assert_eq!(alice.process(P, &retry.commit, &retry.declared(b.0)).unwrap(), Processed::Advanced(4));
    carol.join(P, from_a.welcome.as_ref().unwrap()).unwrap();
    assert_eq!(carol.process(P, &retry.commit, &retry.declared(b.0)).unwrap(), Processed::Advanced(4));
    dave.join(P, retry.welcome.as_ref().unwrap()).unwrap();
    let k = alice.epoch_key(P).unwrap();
    for u in [&bob, &carol, &dave] {
        assert_eq!(u.epoch_key(P).unwrap(), k);
    }
    // The stale commit is refused by everyone who moved on.
    assert!(alice.process(P, &from_b.commit, &from_b.declared(b.0)).is_err());
    assert_eq!(alice.epoch_key(P).unwrap(), k);
}

#[test]
fn leaves_are_checked_against_the_directory() {
    let dir = Directory::default();
    let (a, b) = (user(1), user(2));
    let alice = client(&dir, &a);
    alice.create_group(P).unwrap();
    // Mallory's client claims to be bob, but signs with her own key; the
    // directory has bob's real key, so alice's client refuses the key package.
    let mallory_dir = Directory::default();
    let mallory_secrets = UserSecrets::generate().unwrap();
    let fake_bob = MlsUser::new(b.0, &mallory_secrets, MlsStore::new(), mallory_dir);
    dir.insert(b.0, b.1.public().sign_pub);
    let kp = fake_bob.key_package().unwrap();
    assert_eq!(key_package_owner(&kp).unwrap().0, b.0);
    let e = alice.commit(P, &[kp], &[]).unwrap_err();
    assert!(matches!(e, CryptoError::Mls(ref m) if m.contains("match")), "{e:?}");
    // A user missing from the directory is refused too.
    let stranger = user(9);
    let s = MlsUser::new(stranger.0, &stranger.1, MlsStore::new(), Directory::default());
    assert!(alice.commit(P, &[s.key_package().unwrap()], &[]).is_err());
    // The group is untouched and still usable.
    let real_bob = client(&dir, &b);
    let pc = alice.commit(P, &[real_bob.key_package().unwrap()], &[]).unwrap();
    alice.apply_pending(P).unwrap();
    real_bob.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    assert_eq!(real_bob.epoch_key(P).unwrap(), alice.epoch_key(P).unwrap());
}

#[test]
fn bad_messages_are_errors_and_leave_the_group_usable() {
    let dir = Directory::default();
    let (a, b, c) = (user(1), user(2), user(3));
    let (alice, bob, carol) = (client(&dir, &a), client(&dir, &b), client(&dir, &c));
    alice.create_group(P).unwrap();
    let pc = alice.commit(P, &[bob.key_package().unwrap()], &[]).unwrap();
    alice.apply_pending(P).unwrap();
    assert!(matches!(alice.process(P, b"not mls", &Declared { committer: b.0, added: &[], removed: &[] }), Err(CryptoError::Malformed(_))));
    assert!(matches!(carol.join(P, b"garbage"), Err(CryptoError::Malformed(_))));
    // A welcome for someone else cannot be opened by carol.
    assert!(carol.join(P, pc.welcome.as_ref().unwrap()).is_err());
    // A welcome for another practice is refused even by its addressee.
    let other = PracticeId(uuid::Uuid::from_u128(8));
    assert!(bob.join(other, pc.welcome.as_ref().unwrap()).is_err());
    bob.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    assert_eq!(bob.epoch_key(P).unwrap(), alice.epoch_key(P).unwrap());
}

#[test]
fn state_seals_to_its_user_and_round_trips() {
    let dir = Directory::default();
    let (a, b) = (user(1), user(2));
    let alice = client(&dir, &a);
    alice.create_group(P).unwrap();
    alice.key_package().unwrap();
    let sealed = seal_state(&a.1, a.0, alice.store()).unwrap();
    let opened = open_state(&a.1, a.0, &sealed).unwrap();
    assert_eq!(opened.to_bytes().unwrap(), alice.store().to_bytes().unwrap());
    assert_eq!(opened.key_package_count(), 1);
    let again = MlsUser::new(a.0, &a.1, opened, dir.clone());
    assert_eq!(again.epoch_key(P).unwrap(), alice.epoch_key(P).unwrap());
    // Another user's keys, or the right keys under another user id, do not open it.
    assert_eq!(open_state(&b.1, a.0, &sealed).unwrap_err(), CryptoError::Decrypt);
    assert_eq!(open_state(&a.1, b.0, &sealed).unwrap_err(), CryptoError::Decrypt);
    // The sealed blob does not contain the epoch key.
    let k = alice.epoch_key(P).unwrap().expose_for_tests();
    assert!(!sealed.windows(32).any(|w| w == k));
    assert!(MlsStore::from_bytes(b"HMLS1\0\0").is_err());
}

#[test]
fn another_tab_loads_state_after_a_commit_elsewhere() {
    let dir = Directory::default();
    let (a, b) = (user(1), user(2));
    let tab1 = client(&dir, &a);
    tab1.create_group(P).unwrap();
    let saved = seal_state(&a.1, a.0, tab1.store()).unwrap();
    let tab2 = MlsUser::new(a.0, &a.1, open_state(&a.1, a.0, &saved).unwrap(), dir.clone());
    let bob = client(&dir, &b);
    let pc = tab1.commit(P, &[bob.key_package().unwrap()], &[]).unwrap();
    tab1.apply_pending(P).unwrap();
    // Tab 2 is behind; its user's commit is loaded as saved state, not processed.
    assert_eq!(tab2.epoch(P).unwrap(), Some(1));
    assert_ne!(tab2.epoch_key(P).unwrap(), tab1.epoch_key(P).unwrap());
    let _ = pc;
    tab2.store().replace_with(&open_state(&a.1, a.0, &seal_state(&a.1, a.0, tab1.store()).unwrap()).unwrap()).unwrap();
    assert_eq!(tab2.epoch(P).unwrap(), Some(2));
    assert_eq!(tab2.epoch_key(P).unwrap(), tab1.epoch_key(P).unwrap());
}

/// A test user: their id, their keys and their MLS client.
type Member = ((UserId, UserSecrets), MlsUser);

/// Alice, Bob and Carol in one group at Handoff epoch 2, as the log has it.
fn three_in_a_group(dir: &Directory) -> (Member, Member, Member) {
    let (a, b, c) = (user(1), user(2), user(3));
    let (alice, bob, carol) = (client(dir, &a), client(dir, &b), client(dir, &c));
    alice.create_group(P).unwrap();
    let pc = alice.commit(P, &[bob.key_package().unwrap(), carol.key_package().unwrap()], &[]).unwrap();
    alice.apply_pending(P).unwrap();
    bob.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    carol.join(P, pc.welcome.as_ref().unwrap()).unwrap();
    ((a, alice), (b, bob), (c, carol))
}

#[test]
fn a_silent_removal_of_a_colleague_is_refused_by_clients() {
    let dir = Directory::default();
    let ((a, alice), (b, bob), (c, carol)) = three_in_a_group(&dir);
    let d = user(4);
    let dave = client(&dir, &d);
    // Bob's client is malicious: its commit adds Dave, as the entry says, and
    // also removes Carol, which the entry does not say (so the server's roster
    // would keep listing her and nobody would ever re-add her).
    let pc = bob.commit(P, &[dave.key_package().unwrap()], &[c.0]).unwrap();
    let entry = Declared { committer: b.0, added: &[d.0], removed: &[] };
    let e = alice.process(P, &pc.commit, &entry).unwrap_err();
    assert!(matches!(e, CryptoError::Undeclared(ref m) if m.contains("removes")), "{e:?}");
    // Carol refuses it too, rather than learning she is out.
    assert!(matches!(carol.process(P, &pc.commit, &entry), Err(CryptoError::Undeclared(_))));
    // Neither moved: both still hold epoch 2 and its key, and still agree.
    assert_eq!(alice.epoch(P).unwrap(), Some(2));
    assert_eq!(carol.epoch(P).unwrap(), Some(2));
    assert_eq!(alice.epoch_key(P).unwrap(), carol.epoch_key(P).unwrap());
    // An entry naming another committer than the signer is refused as well.
    let honest = bob.commit(P, &[dave.key_package().unwrap()], &[]).unwrap();
    assert!(matches!(alice.process(P, &honest.commit, &honest.declared(a.0)), Err(CryptoError::Undeclared(_))));
    // The honest commit, declared as it is, is processed.
    assert_eq!(alice.process(P, &honest.commit, &honest.declared(b.0)).unwrap(), Processed::Advanced(3));
}

#[test]
fn a_hidden_non_member_add_is_refused_by_clients() {
    let dir = Directory::default();
    let ((a, alice), (b, bob), (c, carol)) = three_in_a_group(&dir);
    let (d, e) = (user(4), user(5));
    let (dave, eve) = (client(&dir, &d), client(&dir, &e));
    // Bob's commit adds Dave, as declared, and Eve, who is hidden from the entry.
    let pc = bob.commit(P, &[dave.key_package().unwrap(), eve.key_package().unwrap()], &[]).unwrap();
    let entry = Declared { committer: b.0, added: &[d.0], removed: &[] };
    let err = alice.process(P, &pc.commit, &entry).unwrap_err();
    assert!(matches!(err, CryptoError::Undeclared(ref m) if m.contains("adds")), "{err:?}");
    assert!(matches!(carol.process(P, &pc.commit, &entry), Err(CryptoError::Undeclared(_))));
    assert_eq!(alice.epoch(P).unwrap(), Some(2));
    let mut members = alice.members(P).unwrap();
    members.sort();
    assert_eq!(members, vec![a.0, b.0, c.0]);
}

#[test]
fn commits_are_public_messages_and_group_infos_carry_the_tree() {
    let dir = Directory::default();
    let ((_, alice), (_, bob), (c, _)) = three_in_a_group(&dir);
    let pc = bob.commit(P, &[], &[c.0]).unwrap();
    // The server can verify it: a PublicMessage, not a PrivateMessage.
    let m = MlsMessage::from_bytes(&pc.commit).unwrap();
    assert_eq!(m.wire_format(), WireFormat::PublicMessage);
    let info = MlsMessage::from_bytes(&alice.group_info(P).unwrap()).unwrap();
    let gi = info.as_group_info().unwrap();
    assert_eq!(gi.group_context().epoch, 1);
    assert!(gi.extensions().get_as::<mls_rs::extension::built_in::RatchetTreeExt>().unwrap().is_some());
}
