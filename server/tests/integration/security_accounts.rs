//! Issue 12, items 2, 8 and 9: attacks on accounts, practice ids and invites.
//!
//! - Item 2: a deleted practice's id is tombstoned; creating it again, or
//!   creating any id that is not yours, answers one uniform conflict.
//! - Item 8: registration is confirmed by an emailed link, so `register`
//!   answers the same for a free and a taken address, and nobody can squat
//!   an address they cannot read mail for.
//! - Item 9: invites are rate-limited per user and per practice.

use handoff_client::{Client, ClientError};
use handoff_protocol::PracticeId;
use handoff_protocol::v1::{PracticeKind, Role};
use handoff_protocol::ws::{AckBody, StreamId};
use handoff_testkit::{Account, content, routing};

use crate::harness::{TestServer, world};

/// The status and the whole error body of a refused call.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, body }) => (status, serde_json::to_string(&body).expect("error body")),
        other => panic!("expected a refusal from the server, got {other:?}"),
    }
}

/// Everything of practice `id` that `c` could reach: it must be nothing. The
/// referral stays readable only to its other party, through its own practice.
async fn nothing_of(c: &Client, id: PracticeId, referral: handoff_protocol::ws::ReferralId, who: &str, other_party: bool) {
    assert!(c.practice(id).await.is_err(), "{who} sees the practice");
    assert!(c.referrals(id).await.is_err(), "{who} lists the old inbox");
    assert_eq!(c.referral(referral).await.is_ok(), other_party, "{who} reading the old referral's metadata");
    assert!(c.members(id).await.is_err(), "{who} lists the old members");
    assert!(c.practices().await.expect("own practices").iter().all(|p| p.id != id), "{who} lists the practice as theirs");
    let live = c.live().await.expect("socket");
    assert!(live.subscribe(StreamId::Practice(id), 0).await.is_err(), "{who} subscribes to the old practice's stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_practice_id_cannot_be_created_again() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let old = w.referring.clone();
    let url = srv.url();

    // A colleague joins the referring office and is later removed.
    let colleague_account = Account::new("colleague", "family.example", "Colleague");
    let colleague = colleague_account.register(&url).await.unwrap();
    w.moa.invite(old.id, &colleague_account.email, Role::Member).await.unwrap();
    colleague.accept_invite(&srv.folder_invite_token(&colleague_account.email).await).await.unwrap();

    // The office sends a referral; the specialist receives it: the practice has history.
    let moa_live = w.moa.live().await.unwrap();
    moa_live.subscribe(StreamId::Practice(old.id), 0).await.unwrap();
    let ack = w
        .moa
        .send_referral(
            &moa_live,
            old.id,
            handoff_client::referrals::To::Practice(w.specialists[0].id),
            routing("arrhythmia"),
            &content("Old Patient"),
            &[],
        )
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!("not sent: {ack:?}") };
    let received = w.spec.referral(rid).await.unwrap();
    assert_eq!(w.spec.open_referral(&received).await.unwrap(), content("Old Patient"));
    drop(moa_live);

    w.moa.remove_member(old.id, colleague.user_id().unwrap()).await.unwrap();
    w.moa.delete_practice(old.id, &old.name).await.unwrap();

    // The reference: what creating someone else's live practice id answers.
    let stranger = Account::new("stranger", "else.example", "Stranger").register(&url).await.unwrap();
    let foreign = w.specialists[0].id;
    let reference =
        refusal(stranger.create_practice_with_id(foreign, "Mine now", PracticeKind::Referring, None, Some("fraser"), vec![]).await);
    assert_eq!(reference.0, 409);

    // Whoever tries, the old id is refused exactly as a foreign one, and
    // nothing of the old practice becomes theirs.
    for (who, c, other_party) in [
        ("the former creator", &w.moa, false),
        ("a former member", &colleague, false),
        ("the counterpart's admin", &w.spec, true),
        ("a stranger", &stranger, false),
    ] {
        let same = c.create_practice_with_id(old.id, &old.name, PracticeKind::Referring, None, old.region.as_deref(), vec![]).await;
        assert_eq!(refusal(same), reference, "{who} re-creating the deleted id");
        let other = c.create_practice_with_id(old.id, "Another Name", PracticeKind::Referring, None, None, vec![]).await;
        assert_eq!(refusal(other), reference, "{who} re-creating the deleted id under another name");
        nothing_of(c, old.id, rid, who, other_party).await;
    }
    // The counterpart keeps its own side of the history, through its own practice.
    assert!(w.spec.referrals(w.specialists[0].id).await.unwrap().iter().any(|r| r.id == rid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_foreign_or_tombstoned_id_answers_like_any_conflict() {
    let srv = TestServer::start(None);
    let url = srv.url();
    let a_account = Account::new("a", "clinic.example", "A");
    let b_account = Account::new("b", "clinic.example", "B");
    let a = a_account.register(&url).await.unwrap();
    let b = b_account.register(&url).await.unwrap();
    // A practice of B's: foreign to A.
    let foreign = b.create_practice("B's Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    // A practice A created, then deleted: tombstoned.
    let gone = a.create_practice("Gone Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    a.delete_practice(gone.id, "Gone Office").await.unwrap();
    // A practice A created, then was removed from by its other admin.
    let left = a.create_practice("Left Office", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    a.invite(left.id, &b_account.email, Role::Admin).await.unwrap();
    b.accept_invite(&srv.folder_invite_token(&b_account.email).await).await.unwrap();
    b.remove_member(left.id, a.user_id().unwrap()).await.unwrap();

    // A creator's own retry while still a member is answered with the practice.
    let mine = a.create_practice("Mine", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    let again = a.create_practice_with_id(mine.id, "Mine", PracticeKind::Referring, None, None, vec![]).await.unwrap();
    assert_eq!(again.id, mine.id);

    let foreign_answer = refusal(a.create_practice_with_id(foreign.id, "B's Office", PracticeKind::Referring, None, None, vec![]).await);
    let tombstoned_answer = refusal(a.create_practice_with_id(gone.id, "Gone Office", PracticeKind::Referring, None, None, vec![]).await);
    let removed_retry_answer =
        refusal(a.create_practice_with_id(left.id, "Left Office", PracticeKind::Referring, None, None, vec![]).await);
    assert_eq!(foreign_answer.0, 409);
    assert_eq!(tombstoned_answer, foreign_answer, "a tombstoned id answers as a foreign one");
    assert_eq!(removed_retry_answer, foreign_answer, "a removed creator's retry answers as a foreign id");
    // And the removed creator's retry gave nothing back.
    assert!(a.practice(left.id).await.is_err());
    assert!(a.practices().await.unwrap().iter().all(|p| p.id != left.id && p.id != gone.id));
}
