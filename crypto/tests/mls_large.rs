//! A 200-member practice group: adding one member and removing one both
//! work, and every member ends on the same epoch key. Timings are printed for
//! information only (the figures that count come from `handoff-mls-bench`
//! in release mode); nothing here asserts on time.

use std::time::Instant;

use handoff_crypto::UserSecrets;
use handoff_crypto::mls::{Directory, MlsStore, MlsUser, Processed};
use handoff_protocol::{PracticeId, UserId};

const P: PracticeId = PracticeId(uuid::Uuid::from_u128(200));

fn user(n: u32, dir: &Directory) -> MlsUser {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    MlsUser::new(UserId::from_bytes(id), &UserSecrets::generate().unwrap(), MlsStore::new(), dir.clone())
}

#[test]
fn two_hundred_members_add_one_and_remove_one() {
    let dir = Directory::default();
    let users: Vec<MlsUser> = (0..201).map(|n| user(n, &dir)).collect();
    let (members, newcomer) = users.split_at(200);
    let admin = &members[0];
    let admin_id = UserId::from_bytes([0; 16]);
    admin.create_group(P).unwrap();
    // Build the group in batches of 50, as members' clients would over time.
    for batch in members[1..].chunks(50) {
        let kps: Vec<Vec<u8>> = batch.iter().map(|u| u.key_package().unwrap()).collect();
        let pc = admin.commit(P, &kps, &[]).unwrap();
        admin.apply_pending(P).unwrap();
        let already: Vec<&MlsUser> = members[1..].iter().filter(|u| u.epoch(P).unwrap().is_some()).collect();
        for u in already {
            assert!(matches!(u.process(P, &pc.commit, &pc.declared(admin_id)).unwrap(), Processed::Advanced(_)));
        }
        for u in batch {
            u.join(P, pc.welcome.as_ref().unwrap()).unwrap();
        }
    }
    assert_eq!(admin.members(P).unwrap().len(), 200);

    // Add one member to the 200.
    let kp = newcomer[0].key_package().unwrap();
    let t = Instant::now();
    let add = admin.commit(P, &[kp], &[]).unwrap();
    let e = admin.apply_pending(P).unwrap();
    let commit_add = t.elapsed();
    let t = Instant::now();
    for u in &members[1..] {
        assert_eq!(u.process(P, &add.commit, &add.declared(admin_id)).unwrap(), Processed::Advanced(e));
    }
    let process_add = t.elapsed() / 199;
    let t = Instant::now();
    newcomer[0].join(P, add.welcome.as_ref().unwrap()).unwrap();
    let join = t.elapsed();
    assert_eq!(admin.members(P).unwrap().len(), 201);

    // Remove one (member 100) from the 201.
    let gone = &members[100];
    let gone_id = admin.members(P).unwrap().into_iter().find(|u| u.as_bytes()[..4] == 100u32.to_be_bytes()).unwrap();
    let t = Instant::now();
    let rm = admin.commit(P, &[], &[gone_id]).unwrap();
    let e = admin.apply_pending(P).unwrap();
    let commit_remove = t.elapsed();
    let t = Instant::now();
    let mut n = 0u32;
    for u in members[1..].iter().chain(newcomer) {
        let r = u.process(P, &rm.commit, &rm.declared(admin_id)).unwrap();
        if std::ptr::eq(u, gone) {
            assert_eq!(r, Processed::Removed);
        } else {
            assert_eq!(r, Processed::Advanced(e));
            n += 1;
        }
    }
    let process_remove = t.elapsed() / (n + 1);
    let key = admin.epoch_key(P).unwrap();
    for u in members.iter().chain(newcomer).filter(|u| !std::ptr::eq(*u, gone)) {
        assert_eq!(u.epoch_key(P).unwrap(), key);
    }
    assert!(gone.epoch_key(P).is_err());
    assert_eq!(admin.members(P).unwrap().len(), 200);
    eprintln!(
        "200 members (debug build of handoff-crypto): add commit {commit_add:?}, add processing {process_add:?}/member, join {join:?}, \
         remove commit {commit_remove:?}, remove processing {process_remove:?}/member"
    );
}
