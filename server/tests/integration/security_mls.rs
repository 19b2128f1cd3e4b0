//! Attacks on a practice's key group by one of its own members, refused by
//! the server as an MLS external observer (issue 12, item 3a): a commit that
//! does not verify, a commit that adds or removes more than its entry
//! declares, and a group created from a forged group info. In each case the
//! group stays usable for the honest members.

use handoff_client::Client;
use handoff_crypto::mls::{MlsStore, MlsUser, key_package_owner};
use handoff_protocol::mls::SubmitCommit;
use handoff_protocol::v1::PracticePublicKey;
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};

use crate::harness::{TestServer, world};
use crate::mls::{assert_rejected, join, member, name_of, send, server};

/// A log entry for a real commit made by `c`'s own MLS client (adding the
/// owners of `kps`, removing `remove`), passed through `tamper`, and declaring
/// `added` and `removed`: what a malicious member's client can post. `c`'s
/// state is left as it was.
async fn forged_entry(
    c: &Client,
    p: PracticeId,
    kps: &[Vec<u8>],
    remove: &[UserId],
    added: Vec<UserId>,
    removed: Vec<UserId>,
    tamper: impl FnOnce(&mut Vec<u8>),
) -> SubmitCommit {
    let prev = c.practice_key(p).await.unwrap();
    let user = c.mls_user().unwrap();
    for kp in kps {
        let (owner, key) = key_package_owner(kp).unwrap();
        user.directory().insert(owner, key.try_into().unwrap());
    }
    let snapshot = MlsStore::from_bytes(&user.store().to_bytes().unwrap()).unwrap();
    let pc = user.commit(p, kps, remove).unwrap();
    let epoch = user.apply_pending(p).unwrap();
    let k = user.epoch_key(p).unwrap();
    user.store().replace_with(&snapshot).unwrap();
    let me = c.identity().unwrap();
    let mut commit = pc.commit;
    tamper(&mut commit);
    SubmitCommit {
        epoch,
        commit: Some(B64(commit)),
        group_info: None,
        reinit: None,
        welcome: pc.welcome.map(B64),
        added,
        removed,
        public_key: PracticePublicKey {
            epoch,
            hpke_pub: B64(k.hpke_public().to_vec()),
            signer: me.me.id,
            signature: B64(k.sign_public(p, &me.secrets).to_vec()),
        },
        history: B64(k.history_link(p, &prev).unwrap()),
    }
}

/// A practice whose group holds its admin (`w.spec`) and Mallory, at epoch 2,
/// with Carol and Dave members of the practice waiting to be added (each with
/// two key packages published).
async fn group_with_mallory(srv: &TestServer) -> (handoff_testkit::World, PracticeId, Client, Client, Client) {
    let w = world(srv, 1).await;
    let p = w.specialists[0].id;
    w.spec.mls_sync(p).await.unwrap();
    let mallory = join(srv, &w.spec, p, "mallory@cardio.example").await;
    mallory.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(p).await.unwrap(), Some(2));
    assert_eq!(member(mallory.mls_sync(p).await.unwrap()), 2);
    let carol = join(srv, &w.spec, p, "carol@cardio.example").await;
    let dave = join(srv, &w.spec, p, "dave@cardio.example").await;
    carol.mls_publish_key_packages(2).await.unwrap();
    dave.mls_publish_key_packages(2).await.unwrap();
    (w, p, mallory, carol, dave)
}

/// After a refused attack: the log did not move, an honest member adds
/// everyone waiting, and all of them read the next referral.
async fn still_usable(w: &handoff_testkit::World, p: PracticeId, others: &[&Client]) {
    assert_eq!(w.spec.mls_log(p, 0).await.unwrap().epoch, 2, "nothing was accepted");
    assert_eq!(w.spec.mls_reconcile(p).await.unwrap(), Some(3));
    for c in others {
        assert_eq!(member(c.mls_sync(p).await.unwrap()), 3);
    }
    let practice = w.specialists[0].clone();
    let r = send(w, &practice, "Honest Group").await;
    for c in others {
        assert_eq!(name_of(c, r).await, "Honest Group");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_garbage_commit_is_refused() {
    let srv = server();
    let (w, p, mallory, carol, dave) = group_with_mallory(&srv).await;
    // Mallory's commit adds Carol, as its entry says, but its signature is garbage:
    // no honest client could process it, and every later commit would be stuck behind it.
    let kp = mallory.mls_claim_key_package(p, carol.user_id().unwrap()).await.unwrap();
    let garbled = forged_entry(&mallory, p, &[kp], &[], vec![carol.user_id().unwrap()], vec![], |c| {
        // A PublicMessage commit ends: signature (64 bytes), confirmation tag (32), membership tag (32),
        // each after its one-byte length.
        let n = c.len();
        assert_eq!((c[n - 33], c[n - 66], c[n - 131]), (32, 32, 64), "commit layout");
        c[n - 100] ^= 0xFF;
    })
    .await;
    assert_rejected(mallory.mls_submit(p, &garbled).await, ErrorCode::InvalidCommit).await;
    // A commit sent encrypted cannot be checked, so it is no commit at all here.
    let opaque = SubmitCommit { commit: Some(B64(vec![0, 1, 0, 2, 0, 0, 0])), ..garbled.clone() };
    assert_rejected(mallory.mls_submit(p, &opaque).await, ErrorCode::MalformedMls).await;
    still_usable(&w, p, &[&mallory, &carol, &dave]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_add_is_refused_by_the_server() {
    let srv = server();
    let (w, p, mallory, carol, dave) = group_with_mallory(&srv).await;
    let kp_c = mallory.mls_claim_key_package(p, carol.user_id().unwrap()).await.unwrap();
    let kp_d = mallory.mls_claim_key_package(p, dave.user_id().unwrap()).await.unwrap();
    // The commit adds Carol and Dave; the entry declares only Carol.
    let hidden = forged_entry(&mallory, p, &[kp_c.clone(), kp_d], &[], vec![carol.user_id().unwrap()], vec![], |_| {}).await;
    assert_rejected(mallory.mls_submit(p, &hidden).await, ErrorCode::InvalidCommit).await;
    // An outsider's key package, hidden behind a declared add of Carol.
    let outsider = w.moa.mls_user().unwrap().key_package().unwrap();
    let stranger = forged_entry(&mallory, p, &[kp_c, outsider], &[], vec![carol.user_id().unwrap()], vec![], |_| {}).await;
    assert_rejected(mallory.mls_submit(p, &stranger).await, ErrorCode::InvalidCommit).await;
    still_usable(&w, p, &[&mallory, &carol, &dave]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_removal_of_a_colleague_is_refused_by_the_server() {
    let srv = server();
    let (w, p, mallory, carol, dave) = group_with_mallory(&srv).await;
    let admin = w.spec.user_id().unwrap();
    let kp = mallory.mls_claim_key_package(p, carol.user_id().unwrap()).await.unwrap();
    // The commit adds Carol, as declared, and silently removes the admin, who is
    // still in the practice: the server's roster would go on listing them.
    let cut = forged_entry(&mallory, p, std::slice::from_ref(&kp), &[admin], vec![carol.user_id().unwrap()], vec![], |_| {}).await;
    assert_rejected(mallory.mls_submit(p, &cut).await, ErrorCode::InvalidCommit).await;
    // Declaring the removal does not help: the admin is still a member of the practice.
    let declared = forged_entry(&mallory, p, &[kp], &[admin], vec![carol.user_id().unwrap()], vec![admin], |_| {}).await;
    assert_rejected(mallory.mls_submit(p, &declared).await, ErrorCode::Forbidden).await;
    still_usable(&w, p, &[&mallory, &carol, &dave]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_created_without_a_valid_group_info_is_refused() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let spec = &w.spec;
    let k0 = spec.grant_key(p).await.unwrap();
    let me = spec.identity().unwrap();
    // The creator's own client makes a real epoch-1 group, so the entry is otherwise right.
    let user = MlsUser::new(me.me.id, &me.secrets, MlsStore::new(), Default::default());
    user.create_group(p).unwrap();
    let k1 = user.epoch_key(p).unwrap();
    let entry = |group_info: Option<Vec<u8>>| SubmitCommit {
        epoch: 1,
        commit: None,
        group_info: group_info.map(B64),
        reinit: None,
        welcome: None,
        added: vec![],
        removed: vec![],
        public_key: PracticePublicKey {
            epoch: 1,
            hpke_pub: B64(k1.hpke_public().to_vec()),
            signer: me.me.id,
            signature: B64(k1.sign_public(p, &me.secrets).to_vec()),
        },
        history: B64(k1.history_link(p, &k0).unwrap()),
    };
    // No group info: the server would have nothing to check later commits against.
    assert_rejected(spec.mls_submit(p, &entry(None)).await, ErrorCode::ValidationFailed).await;
    assert_rejected(spec.mls_submit(p, &entry(Some(b"garbage".to_vec()))).await, ErrorCode::MalformedMls).await;
    // A group info of another group; of this group at a later epoch; and of a
    // group whose only member is someone else.
    let elsewhere = PracticeId(uuid::Uuid::new_v4());
    let other = MlsUser::new(me.me.id, &me.secrets, MlsStore::new(), Default::default());
    other.create_group(elsewhere).unwrap();
    assert_rejected(spec.mls_submit(p, &entry(Some(other.group_info(elsewhere).unwrap()))).await, ErrorCode::InvalidCommit).await;
    let later = MlsUser::new(me.me.id, &me.secrets, MlsStore::new(), Default::default());
    later.create_group(p).unwrap();
    later.commit(p, &[], &[]).unwrap();
    later.apply_pending(p).unwrap();
    assert_rejected(spec.mls_submit(p, &entry(Some(later.group_info(p).unwrap()))).await, ErrorCode::InvalidCommit).await;
    let bob = join(&srv, spec, p, "bob@cardio.example").await;
    let bobs = bob.identity().unwrap();
    let bobs_group = MlsUser::new(bobs.me.id, &bobs.secrets, MlsStore::new(), Default::default());
    bobs_group.create_group(p).unwrap();
    assert_rejected(spec.mls_submit(p, &entry(Some(bobs_group.group_info(p).unwrap()))).await, ErrorCode::InvalidCommit).await;
    assert_eq!(spec.mls_log(p, 0).await.unwrap().epoch, 0);
    // The honest creation goes through, and the group works.
    assert_eq!(member(spec.mls_sync(p).await.unwrap()), 1);
    bob.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(spec.mls_reconcile(p).await.unwrap(), Some(2));
    assert_eq!(member(bob.mls_sync(p).await.unwrap()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_server_did_not_observe_is_taken_up_from_the_committers_group_info() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    w.spec.mls_sync(p).await.unwrap();
    let bob = join(&srv, &w.spec, p, "bob@cardio.example").await;
    bob.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(p).await.unwrap(), Some(2));
    bob.mls_sync(p).await.unwrap();
    // As if the group had been created before the server observed groups.
    let db = rusqlite::Connection::open(srv.data_dir().join("handoff.db")).unwrap();
    assert_eq!(db.execute("DELETE FROM mls_public_state", []).unwrap(), 1);
    // A commit without the group info is asked for it...
    let carol = join(&srv, &w.spec, p, "carol@cardio.example").await;
    carol.mls_publish_key_packages(2).await.unwrap();
    let kp = bob.mls_claim_key_package(p, carol.user_id().unwrap()).await.unwrap();
    let bare = forged_entry(&bob, p, &[kp], &[], vec![carol.user_id().unwrap()], vec![], |_| {}).await;
    assert_rejected(bob.mls_submit(p, &bare).await, ErrorCode::GroupInfoRequired).await;
    // ...and one whose group info does not hold the group's members is refused.
    let me = bob.identity().unwrap();
    let lonely = MlsUser::new(me.me.id, &me.secrets, MlsStore::new(), Default::default());
    lonely.create_group(p).unwrap();
    lonely.commit(p, &[], &[]).unwrap();
    lonely.apply_pending(p).unwrap();
    let wrong = SubmitCommit { group_info: Some(B64(lonely.group_info(p).unwrap())), ..bare.clone() };
    assert_rejected(bob.mls_submit(p, &wrong).await, ErrorCode::InvalidCommit).await;
    // The honest client sends its group info when asked, and the server observes from there.
    assert_eq!(bob.mls_reconcile(p).await.unwrap(), Some(3));
    let n: i64 = db.query_row("SELECT epoch FROM mls_public_state", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
    assert_eq!(member(carol.mls_sync(p).await.unwrap()), 3);
    assert_eq!(member(w.spec.mls_sync(p).await.unwrap()), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprocessable_commit_is_recovered_by_reinitialising_the_group() {
    let srv = server();
    let w = world(&srv, 1).await;
    let practice = w.specialists[0].clone();
    let p = practice.id;
    let spec = &w.spec;
    spec.mls_sync(p).await.unwrap();
    let bob = join(&srv, spec, p, "bob@cardio.example").await;
    let mallory = join(&srv, spec, p, "mallory@cardio.example").await;
    bob.mls_publish_key_packages(1).await.unwrap();
    mallory.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(spec.mls_reconcile(p).await.unwrap(), Some(2));
    bob.mls_sync(p).await.unwrap();
    mallory.mls_sync(p).await.unwrap();
    let before = send(&w, &practice, "Before Attack").await;
    let carol = join(&srv, spec, p, "carol@cardio.example").await;
    carol.mls_publish_key_packages(1).await.unwrap();

    // Mallory's commit verifies for an observer, but its membership tag, keyed
    // by a group secret, is garbage: no server can tell, and no member can process it.
    let kp = mallory.mls_claim_key_package(p, carol.user_id().unwrap()).await.unwrap();
    let bad = forged_entry(&mallory, p, &[kp], &[], vec![carol.user_id().unwrap()], vec![], |c| {
        let n = c.len();
        c[n - 1] ^= 0xFF;
    })
    .await;
    mallory.mls_submit(p, &bad).await.unwrap();
    // A referral sent now is wrapped to the epoch-3 key Mallory published.
    let wedged = send(&w, &practice, "Wrapped To Bad").await;
    assert_eq!(spec.referral(wedged).await.unwrap().to_key.epoch, 3);
    // The honest members cannot follow, and their clients report it.
    assert!(bob.mls_sync(p).await.is_err());
    assert!(spec.mls_sync(p).await.is_err());
    assert_eq!(spec.mls_pending(p).await.unwrap().reported, Some(3));

    // The admin removes Mallory from the practice and re-initialises the group:
    // a new group at epoch 4 linked back to epoch 2, then everyone added back.
    spec.remove_member(p, mallory.user_id().unwrap()).await.unwrap();
    let kept_keys = mallory.held_practice_keys();
    bob.mls_publish_key_packages(1).await.unwrap();
    carol.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(spec.mls_reinitialise(p).await.unwrap(), 5);
    let log = spec.mls_log(p, 0).await.unwrap();
    let reinit = log.entries.iter().find(|e| e.epoch == 4).unwrap();
    assert_eq!((reinit.generation, reinit.links_to, reinit.commit.is_none()), (1, 2, true));
    assert!(log.entries.iter().find(|e| e.epoch == 3).unwrap().revoked);
    assert_eq!(spec.mls_pending(p).await.unwrap().reported, None);
    for c in [&bob, &carol] {
        assert_eq!(member(c.mls_sync(p).await.unwrap()), 5);
    }
    // The server hands out the new epoch's key, not the bad one.
    assert_eq!(spec.practice(p).await.unwrap().public_key.epoch, 5);
    // The referral wrapped to the revoked epoch is listed to its sender for resending.
    let unreadable = w.moa.mls_unreadable(w.referring.id).await.unwrap();
    assert_eq!(unreadable.iter().map(|u| (u.referral, u.to_practice, u.epoch)).collect::<Vec<_>>(), vec![(wedged, p, 3)]);

    // A new referral: every honest member reads it, and what came before the attack.
    let after = send(&w, &practice, "After Recovery").await;
    assert_eq!(spec.referral(after).await.unwrap().to_key.epoch, 5);
    for c in [spec, &bob, &carol] {
        assert_eq!(name_of(c, after).await, "After Recovery");
        assert_eq!(name_of(c, before).await, "Before Attack");
    }
    // Mallory is refused by the server, and no key she ever held opens the new wrap.
    assert_eq!(mallory.referral(after).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    let wrap = spec.referral(after).await.unwrap().to_key.sealed;
    assert!(!kept_keys.is_empty());
    for k in &kept_keys {
        assert!(handoff_crypto::referral::ReferralKey::unwrap_with(after, p, k, wrap.as_slice()).is_err(), "epoch {}", k.epoch());
    }
}
