//! MLS practice groups against the real server: the delivery service, key
//! packages, welcomes, the key-history chain, removal, concurrency, two tabs,
//! migration of pre-MLS practices, and bad input.

use std::time::Duration;

use handoff_client::Client;
use handoff_client::mls::SyncOutcome;
use handoff_client::referrals::To;
use handoff_crypto::mls::{Declared, MlsStore, MlsUser, Processed};
use handoff_crypto::referral::ReferralKey;
use handoff_protocol::api::{Endpoint as _, SaveMlsState, UploadKeyPackages};
use handoff_protocol::mls::SubmitCommit;
use handoff_protocol::v1::{Practice, Role};
use handoff_protocol::ws::{AckBody, Event, ReferralId, StreamId};
use handoff_protocol::{B64, ErrorCode, PracticeId};

use handoff_testkit::{World, content, routing};

use crate::harness::{PASSWORD, TestServer, world};

const WAIT: Duration = Duration::from_secs(20);

/// Invites `email` to `p` and registers them through the invite (mail goes to the data folder).
pub(crate) async fn join(srv: &TestServer, admin: &Client, p: PracticeId, email: &str) -> Client {
    admin.invite(p, email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(email).await;
    let mut c = srv.client();
    c.register(email, email, PASSWORD, Some(&token)).await.unwrap();
    c
}

pub(crate) fn server() -> TestServer {
    TestServer::start_with(None, |c| c.smtp_url = None)
}

pub(crate) async fn send(w: &World, to: &Practice, name: &str) -> ReferralId {
    let live = w.moa.live().await.unwrap();
    let ack = w.moa.send_referral(&live, w.referring.id, To::Practice(to.id), routing("arrhythmia"), &content(name), &[]).await.unwrap();
    let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
    referral
}

pub(crate) async fn name_of(c: &Client, r: ReferralId) -> String {
    let r = c.referral(r).await.unwrap();
    c.open_referral(&r).await.unwrap().patient.name
}

pub(crate) fn member(o: SyncOutcome) -> u64 {
    match o {
        SyncOutcome::Member(e) => e,
        other => panic!("not a member: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_member_reads_every_past_referral_including_pre_mls_ones() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    // Before MLS: a referral wrapped to the granted epoch-0 key, and a member who got the grant.
    let r0 = send(&w, &p, "Ada Epochzero").await;
    let bob = join(&srv, &w.spec, p.id, "bob@cardio.example").await;
    w.spec.complete_pending_grants(p.id).await.unwrap();
    assert_eq!(name_of(&bob, r0).await, "Ada Epochzero");

    // Migration: the first member online creates the group; epoch 1 links back to epoch 0.
    let mut live = w.spec.live().await.unwrap();
    live.subscribe(StreamId::Practice(p.id), 0).await.unwrap();
    assert_eq!(member(w.spec.mls_sync(p.id).await.unwrap()), 1);
    let e = live.wait_for(StreamId::Practice(p.id), WAIT, |e| matches!(e, Event::EpochAdvanced { .. })).await.unwrap();
    assert!(matches!(e.event, Event::EpochAdvanced { epoch: 1, committer, .. } if committer == w.spec.user_id().unwrap()));
    let pk = w.spec.practice(p.id).await.unwrap().public_key;
    assert_eq!((pk.epoch, pk.signer), (1, w.spec.user_id().unwrap()));
    // An outsider verifies the committer's signature on the new epoch's key before using it.
    let dir = w.moa.directory(Some("cardiology"), Some("fraser")).await.unwrap();
    let entry = dir.iter().find(|e| e.id == p.id).unwrap();
    assert_eq!(entry.public_key.epoch, 1);
    w.moa.verify_directory_entry(entry).await.unwrap();
    let mut forged = entry.clone();
    forged.public_key.hpke_pub.0[0] ^= 1;
    assert!(w.moa.verify_directory_entry(&forged).await.is_err());

    // Bob is added by MLS commit (his key package), and joins from the welcome.
    bob.mls_publish_key_packages(2).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(p.id).await.unwrap(), Some(2));
    assert_eq!(member(bob.mls_sync(p.id).await.unwrap()), 2);
    assert_eq!(bob.practice_key(p.id).await.unwrap(), w.spec.practice_key(p.id).await.unwrap());
    let live_e2 = live.wait_for(StreamId::Practice(p.id), WAIT, |e| matches!(e, Event::EpochAdvanced { epoch: 2, .. })).await;
    assert!(live_e2.is_some(), "the commit was pushed live");
    let r2 = send(&w, &p, "Bea Epochtwo").await;
    assert_eq!(w.spec.referral(r2).await.unwrap().to_key.epoch, 2);

    // Carol joins later, added by Bob; she never had a grant, yet reads everything.
    let carol = join(&srv, &w.spec, p.id, "carol@cardio.example").await;
    assert!(carol.grant_key(p.id).await.is_err());
    carol.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(bob.mls_reconcile(p.id).await.unwrap(), Some(3));
    assert_eq!(member(carol.mls_sync(p.id).await.unwrap()), 3);
    assert_eq!(member(w.spec.mls_sync(p.id).await.unwrap()), 3);
    let r3 = send(&w, &p, "Cy Epochthree").await;
    for c in [&carol, &bob, &w.spec] {
        assert_eq!(name_of(c, r0).await, "Ada Epochzero");
        assert_eq!(name_of(c, r2).await, "Bea Epochtwo");
        assert_eq!(name_of(c, r3).await, "Cy Epochthree");
    }
    // Every member walked the same chain to the same keys.
    for epoch in 0..=3 {
        assert_eq!(carol.practice_key_at(p.id, epoch).await.unwrap(), w.spec.practice_key_at(p.id, epoch).await.unwrap());
    }
    let members = w.spec.members(p.id).await.unwrap();
    assert!(members.members.iter().all(|m| m.has_key), "all three are in the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_with_all_old_keys_and_state_cannot_read_what_comes_after() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    w.spec.mls_sync(p.id).await.unwrap();
    let carol = join(&srv, &w.spec, p.id, "carol@cardio.example").await;
    let bob = join(&srv, &w.spec, p.id, "bob@cardio.example").await;
    carol.mls_publish_key_packages(1).await.unwrap();
    bob.mls_publish_key_packages(1).await.unwrap();
    w.spec.mls_reconcile(p.id).await.unwrap();
    carol.mls_sync(p.id).await.unwrap();
    bob.mls_sync(p.id).await.unwrap();
    let before = send(&w, &p, "Old Patient").await;
    assert_eq!(name_of(&carol, before).await, "Old Patient");
    // Everything Carol ever had: every epoch key, and her whole MLS state.
    for e in 0..=2 {
        carol.practice_key_at(p.id, e).await.unwrap();
    }
    let kept_keys = carol.held_practice_keys();
    assert_eq!(kept_keys.len(), 3);
    let kept_state = carol.mls_user().unwrap().store().to_bytes().unwrap();

    // The admin removes her: the practice first, then the group, by one commit.
    w.spec.remove_member(p.id, carol.user_id().unwrap()).await.unwrap();
    assert_eq!(w.spec.mls_pending(p.id).await.unwrap().remove, vec![carol.user_id().unwrap()]);
    assert_eq!(w.spec.mls_reconcile(p.id).await.unwrap(), Some(3));
    assert_eq!(member(bob.mls_sync(p.id).await.unwrap()), 3);
    // She has lost the log, welcomes and keys on the server at once.
    assert_eq!(carol.mls_log(p.id, 0).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert_eq!(carol.mls_sync(p.id).await.unwrap_err().code(), Some(ErrorCode::NotFound));

    // A referral and a thread message after the removal.
    let after = send(&w, &p, "New Patient").await;
    let spec_live = w.spec.live().await.unwrap();
    let r_after = w.spec.referral(after).await.unwrap();
    w.spec.post_message(&spec_live, &r_after, "Echo booked for New Patient").await.unwrap();
    assert_eq!(r_after.to_key.epoch, 3);
    assert_eq!(name_of(&bob, after).await, "New Patient");
    // Suppose the ciphertext leaks to her: no key she ever held opens the wrap.
    for k in &kept_keys {
        assert!(ReferralKey::unwrap_with(after, p.id, k, r_after.to_key.sealed.as_slice()).is_err(), "epoch {} opened it", k.epoch());
        assert_ne!(k.expose_for_tests(), bob.practice_key(p.id).await.unwrap().expose_for_tests());
    }
    // Her restored state, fed the removal commit, only learns she is out.
    let log = bob.mls_log(p.id, 2).await.unwrap();
    let removal = log.entries[0].commit.clone().unwrap();
    let declared = Declared { committer: log.entries[0].committer, added: &log.entries[0].added, removed: &log.entries[0].removed };
    let carol_secrets = &carol.identity().unwrap().secrets;
    let restored = MlsUser::new(carol.user_id().unwrap(), carol_secrets, MlsStore::from_bytes(&kept_state).unwrap(), Default::default());
    let dir = restored.directory().clone();
    for m in bob.members(p.id).await.unwrap().members {
        dir.insert(m.user_id, m.sign_pub.as_slice().try_into().unwrap());
    }
    assert_eq!(restored.process(p.id, removal.as_slice(), &declared).unwrap(), Processed::Removed);
    assert!(restored.epoch_key(p.id).is_err());
    // Without R she cannot open the thread message either: it is sealed under the referral's key.
    let thread = bob.referral(after).await.unwrap();
    assert!(kept_keys.iter().all(|k| ReferralKey::unwrap_with(after, p.id, k, thread.to_key.sealed.as_slice()).is_err()));
}

async fn raw(c: &Client, kps: Vec<Vec<u8>>) -> handoff_client::RawResponse {
    let body = serde_json::json!({ "key_packages": kps.into_iter().map(B64).collect::<Vec<_>>() }).to_string();
    c.raw("POST", UploadKeyPackages::PATH, Some("application/json"), body.into_bytes()).await.unwrap()
}

/// A real commit removing `who`, made and then discarded (the tab's state is restored).
async fn user_commit_removing(c: &Client, p: PracticeId, who: handoff_protocol::UserId) -> Vec<u8> {
    let user = c.mls_user().unwrap();
    let snapshot = MlsStore::from_bytes(&user.store().to_bytes().unwrap()).unwrap();
    let pc = user.commit(p, &[], &[who]).unwrap();
    user.store().replace_with(&snapshot).unwrap();
    pc.commit
}

pub(crate) async fn assert_rejected<T: std::fmt::Debug>(r: handoff_client::Result<T>, code: ErrorCode) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some(code), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_at_one_epoch_one_wins_and_the_other_retries() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    w.spec.mls_sync(p.id).await.unwrap();
    let bob = join(&srv, &w.spec, p.id, "bob@cardio.example").await;
    bob.mls_publish_key_packages(1).await.unwrap();
    w.spec.mls_reconcile(p.id).await.unwrap();
    bob.mls_sync(p.id).await.unwrap();
    let carol = join(&srv, &w.spec, p.id, "carol@cardio.example").await;
    let dave = join(&srv, &w.spec, p.id, "dave@cardio.example").await;
    carol.mls_publish_key_packages(3).await.unwrap();
    dave.mls_publish_key_packages(3).await.unwrap();
    for c in [&w.spec, &bob] {
        c.mls_sync(p.id).await.unwrap();
    }
    // The admin's tab would add Carol, Bob's would add Dave: both at epoch 2.
    let kp_c = w.spec.mls_claim_key_package(p.id, carol.user_id().unwrap()).await.unwrap();
    let kp_d = bob.mls_claim_key_package(p.id, dave.user_id().unwrap()).await.unwrap();
    let (kp_c, kp_d) = ([kp_c], [kp_d]);
    let (a, b) = tokio::join!(w.spec.mls_commit(p.id, &kp_c, &[]), bob.mls_commit(p.id, &kp_d, &[]));
    let (winner, loser) = match (&a, &b) {
        (Ok(3), Err(e)) => {
            assert_eq!(e.code(), Some(ErrorCode::StaleEpoch));
            (&w.spec, &bob)
        }
        (Err(e), Ok(3)) => {
            assert_eq!(e.code(), Some(ErrorCode::StaleEpoch));
            (&bob, &w.spec)
        }
        other => panic!("exactly one commit must win: {other:?}"),
    };
    assert_eq!(winner.mls_log(p.id, 0).await.unwrap().epoch, 3);
    // The loser syncs and commits again: the remaining member is added at epoch 4.
    assert_eq!(loser.mls_reconcile(p.id).await.unwrap(), Some(4));
    for c in [&carol, &dave, &w.spec, &bob] {
        assert_eq!(member(c.mls_sync(p.id).await.unwrap()), 4);
    }
    let k = w.spec.practice_key(p.id).await.unwrap();
    for c in [&carol, &dave, &bob] {
        assert_eq!(c.practice_key(p.id).await.unwrap(), k);
    }
    assert_eq!(w.spec.mls_pending(p.id).await.unwrap().add, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_of_one_user_stay_consistent() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    let mut tab2 = srv.client();
    tab2.login(&w.spec_account.email, PASSWORD).await.unwrap();
    let tab1 = &w.spec;
    tab1.mls_sync(p.id).await.unwrap();
    // Tab 2 loads the state tab 1 saved: same group, same key.
    assert_eq!(member(tab2.mls_sync(p.id).await.unwrap()), 1);
    assert_eq!(tab2.practice_key(p.id).await.unwrap(), tab1.practice_key(p.id).await.unwrap());

    let bob = join(&srv, tab1, p.id, "bob@cardio.example").await;
    bob.mls_publish_key_packages(2).await.unwrap();
    assert_eq!(tab1.mls_reconcile(p.id).await.unwrap(), Some(2));
    // Tab 2's copy is stale: saving it is refused, so it cannot overwrite tab 1's.
    assert_rejected(tab2.mls_save_state().await, ErrorCode::StaleState).await;
    // Syncing, it meets its own user's commit and loads tab 1's state.
    assert_eq!(member(tab2.mls_sync(p.id).await.unwrap()), 2);
    assert_eq!(tab2.practice_key(p.id).await.unwrap(), tab1.practice_key(p.id).await.unwrap());
    // Now tab 2 commits, and tab 1 catches up the same way.
    let carol = join(&srv, tab1, p.id, "carol@cardio.example").await;
    carol.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(tab2.mls_reconcile(p.id).await.unwrap(), Some(3));
    assert_eq!(member(tab1.mls_sync(p.id).await.unwrap()), 3);
    bob.mls_sync(p.id).await.unwrap();
    carol.mls_sync(p.id).await.unwrap();
    let k = tab1.practice_key(p.id).await.unwrap();
    for c in [&tab2, &bob, &carol] {
        assert_eq!(c.practice_key(p.id).await.unwrap(), k);
    }
    // A third browser signing in from scratch sees the same.
    let mut tab3 = srv.client();
    tab3.login(&w.spec_account.email, PASSWORD).await.unwrap();
    assert_eq!(tab3.practice_key(p.id).await.unwrap(), k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mls_input_is_refused_with_its_error_and_the_group_stays_usable() {
    let srv = server();
    let w = world(&srv, 2).await;
    let p = w.specialists[0].clone();
    let spec = &w.spec;
    spec.mls_sync(p.id).await.unwrap();
    let bob = join(&srv, spec, p.id, "bob@cardio.example").await;
    bob.mls_publish_key_packages(2).await.unwrap();
    spec.mls_reconcile(p.id).await.unwrap();
    bob.mls_sync(p.id).await.unwrap();
    let log = spec.mls_log(p.id, 0).await.unwrap();
    let good = log.entries.last().unwrap().clone();
    assert_eq!(good.epoch, 2);
    let k = spec.practice_key(p.id).await.unwrap();
    let valid = |epoch: u64, commit: Option<B64>| SubmitCommit {
        epoch,
        commit,
        group_info: None,
        reinit: None,
        welcome: None,
        added: vec![],
        removed: vec![bob.user_id().unwrap()],
        public_key: handoff_protocol::v1::PracticePublicKey { epoch, ..good.public_key.clone() },
        history: good.history.clone(),
    };

    // A commit for the wrong epoch: a replay of epoch 2, and one from the future.
    assert_rejected(spec.mls_submit(p.id, &valid(2, good.commit.clone())).await, ErrorCode::StaleEpoch).await;
    assert_rejected(spec.mls_submit(p.id, &valid(5, good.commit.clone())).await, ErrorCode::StaleEpoch).await;
    // A malformed MLS message, and a real commit whose framing is for another epoch.
    assert_rejected(spec.mls_submit(p.id, &valid(3, Some(B64(b"not an mls message".to_vec())))).await, ErrorCode::MalformedMls).await;
    assert_rejected(spec.mls_submit(p.id, &valid(3, good.commit.clone())).await, ErrorCode::MalformedMls).await;
    // A key package is a handshake: refused where a commit belongs.
    let kp = bob.mls_user().unwrap().key_package().unwrap();
    assert_rejected(spec.mls_submit(p.id, &valid(3, Some(B64(kp.clone())))).await, ErrorCode::MalformedMls).await;

    // Reused key packages: published twice, or published again after being handed out.
    assert_eq!(raw(&bob, vec![kp.clone()]).await.status, 201);
    let again = raw(&bob, vec![kp.clone()]).await;
    assert_eq!((again.status, again.error().unwrap().error), (409, ErrorCode::KeyPackageUsed));
    // Someone else's key package (Bob's) cannot be published by the admin.
    let theirs = raw(spec, vec![bob.mls_user().unwrap().key_package().unwrap()]).await;
    assert_eq!((theirs.status, theirs.error().unwrap().error), (422, ErrorCode::MalformedMls));
    let garbage = raw(spec, vec![vec![7u8; 100]]).await;
    assert_eq!(garbage.error().unwrap().error, ErrorCode::MalformedMls);
    // Each key package is handed out once: Bob has 2 left (1 from before, 1 just published).
    let c1 = spec.mls_claim_key_package(p.id, bob.user_id().unwrap()).await.unwrap();
    let c2 = spec.mls_claim_key_package(p.id, bob.user_id().unwrap()).await.unwrap();
    assert_ne!(c1, c2);
    assert_rejected(spec.mls_claim_key_package(p.id, bob.user_id().unwrap()).await, ErrorCode::NotFound).await;
    let reused = raw(&bob, vec![c1.clone()]).await;
    assert_eq!(reused.error().unwrap().error, ErrorCode::KeyPackageUsed);

    // A commit from someone who is not a member: an outsider gets not_found; a
    // practice member not yet in the group gets not_member.
    assert_rejected(w.moa.mls_submit(p.id, &valid(3, good.commit.clone())).await, ErrorCode::NotFound).await;
    let newbie = join(&srv, spec, p.id, "newbie@cardio.example").await;
    let newbie_entry = SubmitCommit {
        public_key: handoff_protocol::v1::PracticePublicKey { signer: newbie.user_id().unwrap(), ..valid(3, None).public_key },
        ..valid(3, good.commit.clone())
    };
    assert_rejected(newbie.mls_submit(p.id, &newbie_entry).await, ErrorCode::NotMember).await;
    // Removing a colleague who is still in the practice is refused: the practice's membership leads.
    let cut = user_commit_removing(spec, p.id, bob.user_id().unwrap()).await;
    let cut = SubmitCommit { removed: vec![bob.user_id().unwrap()], ..SubmitCommit { commit: Some(B64(cut)), ..valid(3, None) } };
    assert_rejected(spec.mls_submit(p.id, &cut).await, ErrorCode::Forbidden).await;
    // A welcome addressed to someone outside the practice.
    let outsider = w.moa.user_id().unwrap();
    let user = spec.mls_user().unwrap();
    user.directory().insert(outsider, w.moa.identity().unwrap().secrets.public().sign_pub);
    let moa_kp = w.moa.mls_user().unwrap().key_package().unwrap();
    let snapshot = MlsStore::from_bytes(&user.store().to_bytes().unwrap()).unwrap();
    let pc = user.commit(p.id, &[moa_kp], &[]).unwrap();
    user.store().replace_with(&snapshot).unwrap();
    let wrong = SubmitCommit {
        epoch: 3,
        commit: Some(B64(pc.commit)),
        group_info: None,
        reinit: None,
        welcome: pc.welcome.map(B64),
        added: vec![outsider],
        removed: vec![],
        public_key: valid(3, None).public_key,
        history: good.history.clone(),
    };
    assert_rejected(spec.mls_submit(p.id, &wrong).await, ErrorCode::WrongRecipient).await;
    // A welcome not made for you cannot be joined, even if it reached you.
    let stray = MlsUser::new(newbie.user_id().unwrap(), &newbie.identity().unwrap().secrets, MlsStore::new(), Default::default());
    assert!(stray.join(p.id, wrong.welcome.as_ref().unwrap().as_slice()).is_err());
    // A stale state write.
    let stale = bob.raw(
        "PUT",
        SaveMlsState::PATH,
        Some("application/json"),
        serde_json::json!({"expected_version": 999, "sealed": B64(vec![1; 64])}).to_string().into_bytes(),
    );
    let stale = stale.await.unwrap();
    assert_eq!((stale.status, stale.error().unwrap().error), (409, ErrorCode::StaleState));

    // Nothing of that changed the group: still epoch 2, and it moves on normally.
    assert_eq!(spec.mls_log(p.id, 0).await.unwrap().epoch, 2);
    assert_eq!(spec.practice_key(p.id).await.unwrap(), k);
    newbie.mls_publish_key_packages(1).await.unwrap();
    assert_eq!(bob.mls_reconcile(p.id).await.unwrap(), Some(3));
    assert_eq!(member(newbie.mls_sync(p.id).await.unwrap()), 3);
    assert_eq!(member(spec.mls_sync(p.id).await.unwrap()), 3);
    assert_eq!(newbie.practice_key(p.id).await.unwrap(), spec.practice_key(p.id).await.unwrap());
    let r = send(&w, &p, "Still Works").await;
    assert_eq!(name_of(&newbie, r).await, "Still Works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_refuse_an_epoch_whose_published_key_is_not_the_groups() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    let spec = &w.spec;
    spec.mls_sync(p.id).await.unwrap();
    let bob = join(&srv, spec, p.id, "bob@cardio.example").await;
    bob.mls_publish_key_packages(1).await.unwrap();
    spec.mls_reconcile(p.id).await.unwrap();
    bob.mls_sync(p.id).await.unwrap();
    let carol = join(&srv, spec, p.id, "carol@cardio.example").await;
    carol.mls_publish_key_packages(1).await.unwrap();
    // The admin's client is compromised: it commits honestly but publishes a key
    // of its own (validly signed), hoping outsiders encrypt to it.
    let user = spec.mls_user().unwrap();
    let prev = spec.practice_key(p.id).await.unwrap();
    let kp = spec.mls_claim_key_package(p.id, carol.user_id().unwrap()).await.unwrap();
    user.directory().insert(carol.user_id().unwrap(), carol.identity().unwrap().secrets.public().sign_pub);
    let pc = user.commit(p.id, &[kp], &[]).unwrap();
    let epoch = user.apply_pending(p.id).unwrap();
    let real = user.epoch_key(p.id).unwrap();
    let rogue = handoff_crypto::PracticeKey::generate(epoch).unwrap();
    let me = spec.identity().unwrap();
    let entry = SubmitCommit {
        epoch,
        commit: Some(B64(pc.commit)),
        group_info: None,
        reinit: None,
        welcome: pc.welcome.map(B64),
        added: pc.added,
        removed: vec![],
        public_key: handoff_protocol::v1::PracticePublicKey {
            epoch,
            hpke_pub: B64(rogue.hpke_public().to_vec()),
            signer: me.me.id,
            signature: B64(rogue.sign_public(p.id, &me.secrets).to_vec()),
        },
        history: B64(real.history_link(p.id, &prev).unwrap()),
    };
    // The server cannot tell (it never holds epoch keys) and accepts it...
    spec.mls_submit(p.id, &entry).await.unwrap();
    // ...but every member checks the published key against the key the group agreed.
    let e = bob.mls_sync(p.id).await.unwrap_err();
    assert!(e.to_string().contains("published key is not the group's"), "{e}");
    let e = carol.mls_sync(p.id).await.unwrap_err();
    assert!(e.to_string().contains("published key is not the group's"), "{e}");
    // Bob did not adopt the epoch: asking again gives the same refusal, and he still holds epoch 2.
    assert!(bob.mls_sync(p.id).await.is_err());
    assert_eq!(bob.mls_user().unwrap().epoch(p.id).unwrap(), Some(2));
}
