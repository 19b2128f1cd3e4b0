//! Conformance tests: free referral drafts, sender blocks and practices' opt-out.

use handoff_protocol::free::{BlockKind, DraftId};

use super::*;

fn draft_id(n: u8) -> DraftId {
    DraftId::from_bytes(id16(200 + n))
}

fn new_draft(n: u8) -> NewDraft {
    NewDraft {
        id: draft_id(n),
        email: format!("sender{n}@clinic.example"),
        code_hash: vec![n; 32],
        code_expires_at: 10_000,
        expires_at: 100_000,
        created_at: 1_000,
    }
}

fn verification(n: u8) -> Verification {
    Verification { token_hash: vec![100 + n; 32], expires_at: 500_000 }
}

fn send(n: u8) -> DraftSend {
    DraftSend {
        idem: IdemKey::from_bytes(id16(210 + n)),
        referral: ReferralId::from_bytes(id16(220 + n)),
        answer: format!("{{\"n\":{n}}}"),
    }
}

suite! {
    __conformance_free;

    pub async fn a_draft_is_stored_once_and_read_back(s: &dyn Store) {
        assert!(s.draft(draft_id(1)).await.unwrap().is_none());
        s.create_draft(new_draft(1)).await.unwrap();
        assert!(matches!(s.create_draft(new_draft(1)).await, Err(FreeError::DraftExists)));
        let d = s.draft(draft_id(1)).await.unwrap().unwrap();
        assert_eq!((d.email.as_str(), d.tries, d.resends, d.verified_at, d.sent), ("sender1@clinic.example", 0, 0, None, None));
        assert_eq!((d.code_expires_at, d.expires_at, d.created_at), (10_000, 100_000, 1_000));
    }

    pub async fn the_right_code_verifies_once_and_then_counts_as_used(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        assert_eq!(s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Verified);
        let d = s.draft(draft_id(1)).await.unwrap().unwrap();
        assert_eq!((d.verified_at, d.expires_at, d.tries), (Some(2_000), 500_000, 1));
        assert_eq!(s.verified_draft(vec![101; 32]).await.unwrap().map(|d| d.id), Some(draft_id(1)));
        assert_eq!(s.try_code(draft_id(1), vec![1; 32], 5, verification(2), 2_001).await.unwrap(), CodeCheck::Used);
        assert!(s.verified_draft(vec![102; 32]).await.unwrap().is_none(), "a used code makes no second token");
        assert!(matches!(s.try_code(draft_id(9), vec![1; 32], 5, verification(9), 2_000).await, Err(FreeError::NoSuchDraft)));
    }

    pub async fn wrong_codes_count_and_the_try_after_the_last_is_refused_even_when_right(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        for left in (0..5).rev() {
            assert_eq!(s.try_code(draft_id(1), vec![0; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Wrong { tries_left: left });
        }
        assert_eq!(s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Exhausted);
        assert!(s.verified_draft(vec![101; 32]).await.unwrap().is_none());
        assert_eq!(s.draft(draft_id(1)).await.unwrap().unwrap().tries, 5);
    }

    pub async fn concurrent_tries_cannot_exceed_the_limit(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        // `s` is borrowed; run the tries concurrently on this task.
        let tries = (0..20).map(|_| s.try_code(draft_id(1), vec![0; 32], 5, verification(1), 2_000));
        let outcomes = futures_join_all(tries).await;
        let wrong = outcomes.iter().filter(|o| matches!(o, Ok(CodeCheck::Wrong { .. }))).count();
        let refused = outcomes.iter().filter(|o| matches!(o, Ok(CodeCheck::Exhausted))).count();
        assert_eq!((wrong, refused), (5, 15));
        assert_eq!(s.draft(draft_id(1)).await.unwrap().unwrap().tries, 5);
    }

    pub async fn an_expired_code_is_refused_uncounted(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        assert_eq!(s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 10_000).await.unwrap(), CodeCheck::Expired);
        assert_eq!(s.draft(draft_id(1)).await.unwrap().unwrap().tries, 0);
        assert!(s.verified_draft(vec![101; 32]).await.unwrap().is_none());
    }

    pub async fn a_new_code_replaces_the_old_one_and_resends_are_bounded(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        assert!(matches!(s.try_code(draft_id(1), vec![0; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Wrong { .. }));
        assert_eq!(s.replace_code(draft_id(1), vec![7; 32], 20_000, 3).await.unwrap(), 1);
        let d = s.draft(draft_id(1)).await.unwrap().unwrap();
        assert_eq!((d.tries, d.resends, d.code_expires_at), (0, 1, 20_000), "the tries start again");
        assert_eq!(s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Wrong { tries_left: 4 }, "the old code is dead");
        assert_eq!(s.replace_code(draft_id(1), vec![8; 32], 20_000, 3).await.unwrap(), 2);
        assert_eq!(s.replace_code(draft_id(1), vec![9; 32], 20_000, 3).await.unwrap(), 3);
        assert!(matches!(s.replace_code(draft_id(1), vec![10; 32], 20_000, 3).await, Err(FreeError::ResendsExhausted)));
        assert_eq!(s.try_code(draft_id(1), vec![9; 32], 5, verification(1), 2_000).await.unwrap(), CodeCheck::Verified, "the refused resend changed nothing");
        assert!(matches!(s.replace_code(draft_id(1), vec![11; 32], 20_000, 9).await, Err(FreeError::AlreadyVerified)));
        assert!(matches!(s.replace_code(draft_id(9), vec![11; 32], 20_000, 9).await, Err(FreeError::NoSuchDraft)));
    }

    pub async fn a_draft_is_sent_once(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        assert!(matches!(s.claim_send(draft_id(1), send(1).idem).await, Err(FreeError::DraftSent)), "not verified");
        s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 2_000).await.unwrap();
        s.claim_send(draft_id(1), send(1).idem).await.unwrap();
        s.claim_send(draft_id(1), send(1).idem).await.expect("the same key claims again (a retry)");
        assert!(matches!(s.claim_send(draft_id(1), send(2).idem).await, Err(FreeError::DraftSent)), "another key");
        assert!(matches!(s.record_send(draft_id(1), send(2)).await, Err(FreeError::DraftSent)), "not claimed by that key");
        assert_eq!(s.verified_draft(vec![101; 32]).await.unwrap().unwrap().sent, None, "claimed, not yet sent");
        s.record_send(draft_id(1), send(1)).await.unwrap();
        s.record_send(draft_id(1), send(1)).await.expect("recording the same send again");
        s.release_send(draft_id(1), send(1).idem).await.unwrap();
        assert_eq!(s.verified_draft(vec![101; 32]).await.unwrap().unwrap().sent, Some(send(1)), "a recorded send is not released");
        assert!(matches!(s.claim_send(draft_id(1), send(2).idem).await, Err(FreeError::DraftSent)));
        assert!(matches!(s.record_send(draft_id(9), send(1)).await, Err(FreeError::NoSuchDraft)));
        assert!(matches!(s.claim_send(draft_id(9), send(1).idem).await, Err(FreeError::NoSuchDraft)));
    }

    pub async fn a_failed_send_gives_its_claim_back(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        s.try_code(draft_id(1), vec![1; 32], 5, verification(1), 2_000).await.unwrap();
        s.claim_send(draft_id(1), send(1).idem).await.unwrap();
        s.release_send(draft_id(1), send(2).idem).await.unwrap();
        assert!(matches!(s.claim_send(draft_id(1), send(2).idem).await, Err(FreeError::DraftSent)), "another key's release frees nothing");
        s.release_send(draft_id(1), send(1).idem).await.unwrap();
        s.claim_send(draft_id(1), send(2).idem).await.expect("released: a new send may go");
    }

    pub async fn draft_blobs_are_counted_in_the_same_transaction(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        let owner = UserId::from_bytes(*draft_id(1).as_bytes());
        for n in 0..3 {
            s.begin_draft_blob(BlobId::from_bytes(id16(n)), draft_id(1), 3, 1_000).await.unwrap();
        }
        assert!(matches!(s.begin_draft_blob(BlobId::from_bytes(id16(9)), draft_id(1), 3, 1_000).await, Err(FreeError::TooManyBlobs)));
        assert!(matches!(s.begin_draft_blob(BlobId::from_bytes(id16(0)), draft_id(1), 9, 1_000).await, Err(FreeError::BlobExists)));
        // The uploads are the draft's: the blob calls take them with its id's bytes as owner.
        s.append_blob_chunk(BlobId::from_bytes(id16(0)), owner, vec![1, 2, 3], 100).await.unwrap();
        assert_eq!(s.finish_blob(BlobId::from_bytes(id16(0)), owner).await.unwrap(), 3);
        assert_eq!(s.blob_meta(BlobId::from_bytes(id16(0))).await.unwrap().map(|b| b.owner), Some(owner));
    }

    pub async fn expired_drafts_are_purged(s: &dyn Store) {
        s.create_draft(new_draft(1)).await.unwrap();
        s.create_draft(NewDraft { expires_at: 200_000, ..new_draft(2) }).await.unwrap();
        assert_eq!(s.purge_drafts(99_999).await.unwrap(), 0);
        assert_eq!(s.purge_drafts(100_000).await.unwrap(), 1);
        assert!(s.draft(draft_id(1)).await.unwrap().is_none());
        assert!(s.draft(draft_id(2)).await.unwrap().is_some());
    }

    pub async fn blocks_are_stored_replaced_listed_and_lifted(s: &dyn Store) {
        let b = |kind, value: &str, at| BlockRecord { kind, value: value.into(), reason: "spam".into(), created_at: at };
        assert!(!s.is_blocked(vec![(BlockKind::Email, "x@y.example".into())]).await.unwrap());
        s.put_block(b(BlockKind::Email, "x@y.example", 1)).await.unwrap();
        s.put_block(b(BlockKind::Address, "198.51.100.7", 2)).await.unwrap();
        s.put_block(BlockRecord { reason: "again".into(), ..b(BlockKind::Email, "x@y.example", 3) }).await.unwrap();
        let all = s.blocks().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].value.as_str(), all[0].reason.as_str()), ("x@y.example", "again"), "newest first, replaced");
        assert!(s.is_blocked(vec![(BlockKind::Email, "a@b.example".into()), (BlockKind::Address, "198.51.100.7".into())]).await.unwrap());
        assert!(!s.is_blocked(vec![(BlockKind::Address, "x@y.example".into())]).await.unwrap(), "kinds do not mix");
        s.lift_block(BlockKind::Email, "x@y.example".into()).await.unwrap();
        assert!(matches!(s.lift_block(BlockKind::Email, "x@y.example".into()).await, Err(FreeError::NoSuchBlock)));
        assert!(!s.is_blocked(vec![(BlockKind::Email, "x@y.example".into())]).await.unwrap());
    }

    pub async fn practices_accept_free_referrals_until_they_opt_out(s: &dyn Store) {
        let (_, _, to) = two_practices(s).await;
        assert!(s.practice(to.id).await.unwrap().unwrap().accepts_free);
        s.set_accepts_free(to.id, false).await.unwrap();
        assert!(!s.practice(to.id).await.unwrap().unwrap().accepts_free);
        s.set_accepts_free(to.id, true).await.unwrap();
        assert!(s.practice(to.id).await.unwrap().unwrap().accepts_free);
        assert!(matches!(s.set_accepts_free(PracticeId::from_bytes(id16(99)), false).await, Err(FreeError::NoSuchPractice)));
    }
}

/// Polls every future to completion on the current task (the store runs each
/// call on its blocking pool, so they overlap there), in completion order.
async fn futures_join_all<F: Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = fs.map(|f| Some(Box::pin(f))).collect();
    let mut results = Vec::with_capacity(pending.len());
    std::future::poll_fn(|cx| {
        for slot in pending.iter_mut() {
            if let Some(f) = slot
                && let std::task::Poll::Ready(v) = f.as_mut().poll(cx)
            {
                results.push(v);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results
}
