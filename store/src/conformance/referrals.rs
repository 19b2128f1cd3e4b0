//! Conformance tests: referrals.

use super::*;

pub fn referral(n: u8, from: PracticeId, to: PracticeId, category: &str) -> ReferralRecord {
    ReferralRecord {
        id: ReferralId(uuid::Uuid::from_bytes(id16(200 - n))),
        number: format!("HR-TEST-{n:04}"),
        from_practice: Some(from),
        free_email: None,
        to_practice: to,
        routed_category: category.into(),
        routed_sub: None,
        body: format!("{{\"n\":{n}}}"),
        status: Status::Sent,
        created_at: 10_000 + i64::from(n),
        first_opened_at: None,
    }
}

suite! {
    __conformance_referrals;

    pub async fn commit_appends_dense_seqs_per_stream(s: &dyn Store) {
        let (_, from, to) = two_practices(s).await;
        let r = referral(1, from.id, to.id, "arrhythmia");
        let streams = [StreamId::Referral(r.id), StreamId::Practice(from.id), StreamId::Practice(to.id)];
        let ev = s
            .commit(Commit {
                insert: Some(r.clone()),
                events: streams.iter().map(|st| (*st, "e1".to_string())).collect(),
                now: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 1, 1]);
        let ev = s
            .commit(Commit { events: vec![(streams[0], "e2".into()), (streams[0], "e3".into())], now: 2, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(s.stream_head(streams[0]).await.unwrap(), 3);
        assert_eq!(s.stream_head(streams[1]).await.unwrap(), 1);
        assert_eq!(s.stream_head(StreamId::Practice(PracticeId::from_bytes(id16(99)))).await.unwrap(), 0);
        let after = s.events_after(streams[0], 1, 10).await.unwrap();
        assert_eq!(after.iter().map(|e| (e.seq, e.body.as_str())).collect::<Vec<_>>(), vec![(2, "e2"), (3, "e3")]);
        assert_eq!(s.events_after(streams[0], 0, 2).await.unwrap().len(), 2, "limit holds");
        assert_eq!(s.referral(r.id).await.unwrap(), Some(r.clone()));
        let mut upd = r.clone();
        upd.status = Status::Accepted;
        upd.first_opened_at = Some(5);
        s.commit(Commit { update: Some(upd.clone()), now: 3, ..Default::default() }).await.unwrap();
        assert_eq!(s.referral(r.id).await.unwrap(), Some(upd));
        assert_eq!(s.referrals_of(from.id, 10).await.unwrap().len(), 1);
        assert_eq!(s.referrals_of(to.id, 10).await.unwrap().len(), 1);
    }

    pub async fn old_idempotency_records_are_purged(s: &dyn Store) {
        let (a, _, _) = two_practices(s).await;
        let rec = |n: u128| IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(n)), command: vec![1], result: "{}".into() };
        s.commit(Commit { idem: Some(rec(1)), now: 100, ..Default::default() }).await.unwrap();
        s.commit(Commit { idem: Some(rec(2)), now: 200, ..Default::default() }).await.unwrap();
        assert_eq!(s.purge_idempotency(100).await.unwrap(), 0, "made at the cut-off: kept");
        assert_eq!(s.purge_idempotency(150).await.unwrap(), 1);
        assert_eq!(s.idem(a.id, rec(1).key).await.unwrap(), None);
        assert_eq!(s.idem(a.id, rec(2).key).await.unwrap(), Some(rec(2)));
        // The purged key can be used again; the kept one still refuses a replay.
        s.commit(Commit { idem: Some(rec(1)), now: 300, ..Default::default() }).await.unwrap();
        let again = s.commit(Commit { idem: Some(rec(2)), now: 300, ..Default::default() }).await;
        assert!(matches!(again, Err(ReferralError::IdempotencyKeyUsed)), "{again:?}");
    }

    pub async fn commit_is_all_or_nothing(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let r = referral(1, from.id, to.id, "arrhythmia");
        let idem = IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(9)), command: vec![1], result: "{}".into() };
        s.commit(Commit {
            insert: Some(r.clone()),
            idem: Some(idem.clone()),
            events: vec![(StreamId::Referral(r.id), "x".into())],
            now: 1,
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(s.idem(a.id, idem.key).await.unwrap(), Some(idem.clone()));
        // The same idempotency key again: nothing of this commit lands.
        let r2 = referral(2, from.id, to.id, "arrhythmia");
        let again = s
            .commit(Commit {
                insert: Some(r2.clone()),
                idem: Some(idem.clone()),
                events: vec![(StreamId::Referral(r.id), "y".into())],
                mail: vec![NewMail { recipient: "m@example.org".into(), subject: "s".into(), body: "b".into(), now: 1 }],
                now: 2,
                ..Default::default()
            })
            .await;
        assert!(matches!(again, Err(ReferralError::IdempotencyKeyUsed)), "{again:?}");
        assert_eq!(s.referral(r2.id).await.unwrap(), None);
        assert_eq!(s.stream_head(StreamId::Referral(r.id)).await.unwrap(), 1);
        assert!(s.due_mail(i64::MAX, 10).await.unwrap().is_empty());
        // A duplicate referral id: nothing lands either.
        let dup = s
            .commit(Commit { insert: Some(r.clone()), events: vec![(StreamId::Practice(to.id), "z".into())], now: 3, ..Default::default() })
            .await;
        assert!(matches!(dup, Err(ReferralError::ReferralExists)));
        assert_eq!(s.stream_head(StreamId::Practice(to.id)).await.unwrap(), 0);
    }

    pub async fn routing_counts_by_category(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let other = practice(3, a.id, PracticeKind::Specialist);
        s.create_practice(other.clone(), grant(other.id, a.id, a.id, 0)).await.unwrap();
        for (n, cat) in [(1, "arrhythmia"), (2, "arrhythmia"), (3, "heart-failure")] {
            s.commit(Commit { insert: Some(referral(n, from.id, to.id, cat)), now: 1, ..Default::default() }).await.unwrap();
        }
        let mut sub = referral(4, from.id, other.id, "arrhythmia");
        sub.routed_sub = Some("afib".into());
        s.commit(Commit { insert: Some(sub), now: 1, ..Default::default() }).await.unwrap();
        let counts = s.routing_counts(&[to.id, other.id], "arrhythmia", None, &[]).await.unwrap();
        assert_eq!(counts, vec![(to.id, 2), (other.id, 1)]);
        let counts = s.routing_counts(&[to.id, other.id], "arrhythmia", Some("afib"), &[]).await.unwrap();
        assert_eq!(counts, vec![(to.id, 0), (other.id, 1)]);
        // Referrals the caller counts itself (submitted, not yet seen durable) are left out; unknown ids change nothing.
        let excluded = [referral(1, from.id, to.id, "arrhythmia").id, referral(4, from.id, other.id, "arrhythmia").id, ReferralId(uuid::Uuid::from_u128(5))];
        let counts = s.routing_counts(&[to.id, other.id], "arrhythmia", None, &excluded).await.unwrap();
        assert_eq!(counts, vec![(to.id, 1), (other.id, 0)]);
        let counts = s.routing_counts(&[to.id, other.id], "heart-failure", None, &excluded).await.unwrap();
        assert_eq!(counts, vec![(to.id, 1), (other.id, 0)]);
    }

    pub async fn blobs_attach_to_one_referral(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let blob = BlobId(uuid::Uuid::from_u128(77));
        s.put_blob(blob, a.id, vec![1, 2, 3], 1).await.unwrap();
        assert!(matches!(s.put_blob(blob, a.id, vec![4], 1).await, Err(ReferralError::BlobExists)));
        assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().size, 3);
        assert_eq!(s.blob_bytes(blob).await.unwrap(), Some(vec![1, 2, 3]));
        let r1 = referral(1, from.id, to.id, "x");
        let r2 = referral(2, from.id, to.id, "x");
        s.commit(Commit { insert: Some(r1.clone()), attach: vec![(blob, r1.id)], now: 1, ..Default::default() }).await.unwrap();
        assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().referral, Some(r1.id));
        let stolen = s.commit(Commit { insert: Some(r2.clone()), attach: vec![(blob, r2.id)], now: 2, ..Default::default() }).await;
        assert!(matches!(stolen, Err(ReferralError::BlobUnavailable)));
        assert_eq!(s.referral(r2.id).await.unwrap(), None, "the whole commit rolled back");
        assert_eq!(s.blob_meta(BlobId(uuid::Uuid::from_u128(78))).await.unwrap(), None);
    }

    pub async fn an_upload_arrives_in_chunks_and_shows_only_when_finished(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let blob = BlobId(uuid::Uuid::from_u128(90));
        s.begin_blob(blob, a.id, 1).await.unwrap();
        assert!(matches!(s.begin_blob(blob, a.id, 1).await, Err(ReferralError::BlobExists)));
        assert_eq!(s.append_blob_chunk(blob, a.id, vec![1, 2], 100).await.unwrap(), 2);
        assert_eq!(s.append_blob_chunk(blob, a.id, vec![3], 100).await.unwrap(), 3);
        assert_eq!(s.blob_usage(a.id).await.unwrap(), 3, "an upload in progress counts at once");
        assert_eq!(s.blob_meta(blob).await.unwrap(), None, "not a blob until finished");
        assert_eq!(s.blob_chunk(blob, 0).await.unwrap(), None);
        let r = referral(1, from.id, to.id, "x");
        let early = s.commit(Commit { insert: Some(r.clone()), attach: vec![(blob, r.id)], now: 1, ..Default::default() }).await;
        assert!(matches!(early, Err(ReferralError::BlobUnavailable)), "an unfinished upload cannot be attached");
        let stranger = user(9, "stranger@example.org");
        s.create_user(stranger.clone()).await.unwrap();
        assert!(matches!(s.append_blob_chunk(blob, stranger.id, vec![9], 100).await, Err(ReferralError::NoSuchUpload)));
        assert!(matches!(s.finish_blob(blob, stranger.id).await, Err(ReferralError::NoSuchUpload)));
        assert_eq!(s.finish_blob(blob, a.id).await.unwrap(), 3);
        assert!(matches!(s.append_blob_chunk(blob, a.id, vec![4], 100).await, Err(ReferralError::NoSuchUpload)), "finished");
        assert_eq!(s.blob_meta(blob).await.unwrap().unwrap().size, 3);
        assert_eq!(s.blob_chunk(blob, 0).await.unwrap(), Some(vec![1, 2]));
        assert_eq!(s.blob_chunk(blob, 1).await.unwrap(), Some(vec![3]));
        assert_eq!(s.blob_chunk(blob, 2).await.unwrap(), None);
        assert_eq!(s.blob_bytes(blob).await.unwrap(), Some(vec![1, 2, 3]));
        s.commit(Commit { insert: Some(r.clone()), attach: vec![(blob, r.id)], now: 1, ..Default::default() }).await.unwrap();
    }

    pub async fn a_chunk_past_the_quota_is_refused_and_discarding_frees_it(s: &dyn Store) {
        let (a, _, _) = two_practices(s).await;
        let (one, two) = (BlobId(uuid::Uuid::from_u128(91)), BlobId(uuid::Uuid::from_u128(92)));
        s.put_blob(one, a.id, vec![0; 6], 1).await.unwrap();
        s.begin_blob(two, a.id, 1).await.unwrap();
        assert_eq!(s.append_blob_chunk(two, a.id, vec![0; 4], 10).await.unwrap(), 4);
        assert!(matches!(s.append_blob_chunk(two, a.id, vec![0], 10).await, Err(ReferralError::QuotaExceeded)));
        assert_eq!(s.blob_usage(a.id).await.unwrap(), 10, "the refused chunk was not stored");
        s.discard_upload(two, a.id).await.unwrap();
        assert_eq!(s.blob_usage(a.id).await.unwrap(), 6);
        s.discard_upload(one, a.id).await.unwrap();
        assert_eq!(s.blob_usage(a.id).await.unwrap(), 6, "a finished blob is not discarded");
    }

    pub async fn purging_removes_only_old_unattached_blobs(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let (old, attached, fresh, half) =
            (BlobId(uuid::Uuid::from_u128(93)), BlobId(uuid::Uuid::from_u128(94)), BlobId(uuid::Uuid::from_u128(95)), BlobId(uuid::Uuid::from_u128(96)));
        s.put_blob(old, a.id, vec![1; 5], 100).await.unwrap();
        s.put_blob(attached, a.id, vec![2; 5], 100).await.unwrap();
        s.put_blob(fresh, a.id, vec![3; 5], 300).await.unwrap();
        s.begin_blob(half, a.id, 100).await.unwrap();
        s.append_blob_chunk(half, a.id, vec![4; 5], 1000).await.unwrap();
        let r = referral(1, from.id, to.id, "x");
        s.commit(Commit { insert: Some(r.clone()), attach: vec![(attached, r.id)], now: 1, ..Default::default() }).await.unwrap();
        assert_eq!(s.purge_unattached_blobs(200).await.unwrap(), 2, "the old one and the abandoned upload");
        assert_eq!(s.blob_meta(old).await.unwrap(), None);
        assert_eq!(s.blob_bytes(old).await.unwrap(), None);
        assert_eq!(s.blob_meta(attached).await.unwrap().unwrap().referral, Some(r.id));
        assert_eq!(s.blob_bytes(fresh).await.unwrap(), Some(vec![3; 5]));
        assert_eq!(s.blob_usage(a.id).await.unwrap(), 10);
        assert_eq!(s.purge_unattached_blobs(200).await.unwrap(), 0);
    }

    pub async fn deleting_one_side_keeps_the_other_sides_referrals(s: &dyn Store) {
        let (_, from, to) = two_practices(s).await;
        let r = referral(1, from.id, to.id, "arrhythmia");
        s.commit(Commit { insert: Some(r.clone()), events: vec![(StreamId::Practice(from.id), "e".into())], now: 1, ..Default::default() })
            .await
            .unwrap();
        s.delete_practice(to.id).await.unwrap();
        assert_eq!(s.referral(r.id).await.unwrap(), Some(r.clone()), "the referring practice keeps its history");
        assert_eq!(s.referrals_of(from.id, 10).await.unwrap().len(), 1);
        assert_eq!(s.events_after(StreamId::Practice(from.id), 0, 10).await.unwrap().len(), 1);
    }

    pub async fn a_free_referral_has_no_sending_practice_and_keeps_its_senders_address(s: &dyn Store) {
        let (_, from, to) = two_practices(s).await;
        let mut free = referral(1, from.id, to.id, "arrhythmia");
        free.from_practice = None;
        free.free_email = Some("moa@clinic.example".into());
        s.commit(Commit { insert: Some(free.clone()), now: 1, ..Default::default() }).await.unwrap();
        assert_eq!(s.referral(free.id).await.unwrap(), Some(free.clone()));
        assert_eq!(s.referrals_of(to.id, 10).await.unwrap(), vec![free.clone()], "the receiver lists it");
        assert!(s.referrals_of(from.id, 10).await.unwrap().is_empty(), "no practice sent it");
        assert_eq!(s.routing_counts(&[to.id], "arrhythmia", None, &[]).await.unwrap(), vec![(to.id, 1)], "it counts for balancing");
    }

    pub async fn a_failing_commit_in_a_batch_does_not_affect_its_neighbours(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let idem = |n: u128| IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(n)), command: vec![1], result: "{}".into() };
        s.commit(Commit { idem: Some(idem(1)), now: 1, ..Default::default() }).await.unwrap();
        let inbox = StreamId::Practice(to.id);
        let make = |n: u8, key: u128| Commit {
            insert: Some(referral(n, from.id, to.id, "arrhythmia")),
            events: vec![(inbox, format!("e{n}"))],
            idem: Some(idem(key)),
            now: 2,
            ..Default::default()
        };
        // Submitted together, so they may share one transaction; the middle one reuses a stored key.
        let pending: Vec<Submitted> = vec![
            s.submit(make(1, 10), &Chain::new()),
            s.submit(make(2, 1), &Chain::new()),
            s.submit(make(3, 11), &Chain::new()),
        ];
        let mut answers = Vec::new();
        for p in pending {
            answers.push(p.await);
        }
        assert!(matches!(answers[1], Err(ReferralError::IdempotencyKeyUsed)), "{:?}", answers[1]);
        let seqs: Vec<u64> = [&answers[0], &answers[2]].iter().map(|a| a.as_ref().unwrap()[0].seq).collect();
        assert_eq!(seqs, vec![1, 2], "the neighbours landed, with dense seqs around the failed one");
        assert!(s.referral(referral(1, from.id, to.id, "arrhythmia").id).await.unwrap().is_some());
        assert_eq!(s.referral(referral(2, from.id, to.id, "arrhythmia").id).await.unwrap(), None, "nothing of the failed one landed");
        assert!(s.referral(referral(3, from.id, to.id, "arrhythmia").id).await.unwrap().is_some());
        let bodies: Vec<String> = s.events_after(inbox, 0, 10).await.unwrap().into_iter().map(|e| e.body).collect();
        assert_eq!(bodies, vec!["e1", "e3"]);
    }

    pub async fn audit_entries_queued_with_commits_land_whatever_a_neighbouring_commit_does(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let idem = |n: u128| IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(n)), command: vec![1], result: "{}".into() };
        s.commit(Commit { idem: Some(idem(1)), now: 1, ..Default::default() }).await.unwrap();
        let entry = |at: i64| NewAuditEntry {
            at,
            actor: Some(a.id),
            on_behalf_of: None,
            practice: Some(to.id),
            action: handoff_protocol::audit::AuditAction::ReferralSent,
            target: Some(format!("t{at}")),
            address: None,
        };
        // Interleaved, so they may share one batch: a commit that lands, one that fails, and audit entries around both.
        let ok = s.submit(Commit { insert: Some(referral(1, from.id, to.id, "x")), now: 2, ..Default::default() }, &Chain::new());
        let (e1, e2) = (s.append_audit(entry(10)), s.append_audit(entry(11)));
        let failing = s.submit(Commit { insert: Some(referral(2, from.id, to.id, "x")), idem: Some(idem(1)), now: 2, ..Default::default() }, &Chain::new());
        let (r1, a1, a2, r2, e3) = tokio::join!(ok, e1, e2, failing, s.append_audit(entry(12)));
        r1.unwrap();
        assert!(matches!(r2, Err(ReferralError::IdempotencyKeyUsed)), "{r2:?}");
        let mut seqs = vec![a1.unwrap().seq, a2.unwrap().seq, e3.unwrap().seq];
        seqs.sort_unstable();
        assert_eq!(seqs, vec![1, 2, 3], "every entry appended once, the chain dense");
        let stored = s.audit_entries(AuditFilter { practice: Some(to.id), limit: 10, ..Default::default() }).await.unwrap();
        let mut targets: Vec<String> = stored.iter().filter_map(|r| r.entry.target.clone()).collect();
        targets.sort();
        assert_eq!(targets, vec!["t10", "t11", "t12"]);
        assert_eq!(verify_audit(s).await.unwrap().broken, None);
        assert_eq!(s.referral(referral(2, from.id, to.id, "x").id).await.unwrap(), None, "the failed commit left nothing");
    }

    pub async fn a_commits_audit_entries_land_with_it_or_not_at_all(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let entry = |target: String| NewAuditEntry {
            at: 5,
            actor: Some(a.id),
            on_behalf_of: None,
            practice: Some(from.id),
            action: handoff_protocol::audit::AuditAction::ReferralSent,
            target: Some(target),
            address: Some("192.0.2.1".into()),
        };
        let ok = referral(1, from.id, to.id, "x");
        s.submit(Commit { insert: Some(ok.clone()), audit: vec![entry(ok.id.to_string())], now: 5, ..Default::default() }, &Chain::new())
            .await
            .unwrap();
        // An entry the log refuses (a field over the limit) fails its whole commit: the referral does not land either.
        let bad = referral(2, from.id, to.id, "x");
        let refused = s
            .submit(Commit { insert: Some(bad.clone()), audit: vec![entry("x".repeat(MAX_AUDIT_FIELD + 1))], now: 5, ..Default::default() }, &Chain::new())
            .await;
        assert!(refused.is_err());
        assert_eq!(s.referral(bad.id).await.unwrap(), None, "no referral without its audit entry");
        assert!(s.referral(ok.id).await.unwrap().is_some());
        let log = s.audit_entries(AuditFilter { practice: Some(from.id), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(log.iter().filter_map(|r| r.entry.target.clone()).collect::<Vec<_>>(), vec![ok.id.to_string()], "the entry landed with its referral");
        assert_eq!(verify_audit(s).await.unwrap().broken, None);
    }

    pub async fn a_commit_decided_on_a_failed_one_of_its_chain_is_not_applied(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let taken = IdemRecord { user: a.id, key: IdemKey(uuid::Uuid::from_u128(1)), command: vec![1], result: "{}".into() };
        s.commit(Commit { idem: Some(taken.clone()), now: 1, ..Default::default() }).await.unwrap();
        let chain = Chain::new();
        let first = s.submit(Commit { insert: Some(referral(1, from.id, to.id, "x")), idem: Some(taken), now: 2, ..Default::default() }, &chain);
        let second = s.submit(Commit { insert: Some(referral(2, from.id, to.id, "x")), now: 2, ..Default::default() }, &chain);
        let other = s.submit(Commit { insert: Some(referral(3, from.id, to.id, "x")), now: 2, ..Default::default() }, &Chain::new());
        assert!(matches!(first.await, Err(ReferralError::IdempotencyKeyUsed)));
        assert!(matches!(second.await, Err(ReferralError::ChainBroken)));
        other.await.unwrap();
        assert!(chain.is_broken());
        assert_eq!(s.referral(referral(2, from.id, to.id, "x").id).await.unwrap(), None, "built on a failed write: not applied");
        assert!(s.referral(referral(3, from.id, to.id, "x").id).await.unwrap().is_some(), "another chain is unaffected");
        // Later commits on the broken chain fail too; a new chain works.
        let late = s.submit(Commit { insert: Some(referral(4, from.id, to.id, "x")), now: 3, ..Default::default() }, &chain).await;
        assert!(matches!(late, Err(ReferralError::ChainBroken)));
        s.submit(Commit { insert: Some(referral(4, from.id, to.id, "x")), now: 3, ..Default::default() }, &Chain::new()).await.unwrap();
    }

    pub async fn commits_of_one_submitter_apply_in_submission_order(s: &dyn Store) {
        let (_, from, to) = two_practices(s).await;
        let r = referral(1, from.id, to.id, "x");
        s.commit(Commit { insert: Some(r.clone()), now: 1, ..Default::default() }).await.unwrap();
        let chain = Chain::new();
        let stream = StreamId::Referral(r.id);
        let pending: Vec<Submitted> = (0..40)
            .map(|i| {
                let mut upd = r.clone();
                upd.body = format!("{{\"v\":{i}}}");
                s.submit(Commit { update: Some(upd), events: vec![(stream, format!("m{i}"))], now: 2, ..Default::default() }, &chain)
            })
            .collect();
        let mut seqs = Vec::new();
        for p in pending {
            seqs.push(p.await.unwrap()[0].seq);
        }
        assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
        assert_eq!(s.referral(r.id).await.unwrap().unwrap().body, "{\"v\":39}", "the last submitted update is the stored state");
        let bodies: Vec<String> = s.events_after(stream, 0, 100).await.unwrap().into_iter().map(|e| e.body).collect();
        assert_eq!(bodies, (0..40).map(|i| format!("m{i}")).collect::<Vec<_>>());
    }

    // The inbox snapshot (issue 16, wt-inbox).
    pub async fn an_inbox_page_is_newest_first_with_its_heads_and_others_activity(s: &dyn Store) {
        let (a, from, to) = two_practices(s).await;
        let other = UserId::from_bytes(id16(2));
        let (rs, pf, pt) = (StreamId::Referral, StreamId::Practice(from.id), StreamId::Practice(to.id));
        let mut made = Vec::new();
        for n in 1..=3u8 {
            let r = referral(n, from.id, to.id, "arrhythmia");
            // Sent by `other`; then `a` and `other` each act once; a body that is not JSON counts for no one.
            let sent = format!(r#"{{"type":"referral_sent","referral":{{"from":{{"kind":"practice","user":"{other}"}}}}}}"#);
            let mine = format!(r#"{{"type":"opened","by":"{}"}}"#, a.id);
            let theirs = format!(r#"{{"type":"opened","by":"{other}"}}"#);
            let mut events = vec![(rs(r.id), sent.clone()), (pf, sent.clone()), (pt, sent)];
            events.extend([(rs(r.id), mine), (rs(r.id), theirs), (rs(r.id), "not json".to_string())]);
            s.commit(Commit { insert: Some(r.clone()), events, now: 1, ..Default::default() }).await.unwrap();
            made.push(r);
        }
        // Another practice's referral is not on this page.
        let third = practice(3, a.id, PracticeKind::Specialist);
        s.create_practice(third.clone(), grant(third.id, a.id, a.id, 0)).await.unwrap();
        let foreign_referral = referral(9, third.id, third.id, "arrhythmia");
        s.commit(Commit { insert: Some(foreign_referral.clone()), now: 1, ..Default::default() }).await.unwrap();

        let page = s.inbox_page(to.id, a.id, None, 2).await.unwrap();
        assert_eq!(page.head, 3, "the practice stream's head");
        assert_eq!(page.rows.iter().map(|r| r.referral.id).collect::<Vec<_>>(), vec![made[2].id, made[1].id], "newest first");
        assert!(page.rows.iter().all(|r| r.seq == 4), "each row carries its referral stream's head");
        assert!(page.rows.iter().all(|r| r.foreign == 2), "the sender's event and the other's open, not mine nor the unreadable one");
        let last = &page.rows[1].referral;
        let rest = s.inbox_page(to.id, a.id, Some((last.created_at, last.id)), 2).await.unwrap();
        assert_eq!(rest.rows.iter().map(|r| r.referral.id).collect::<Vec<_>>(), vec![made[0].id], "the next page starts after the cursor");
        let sent = s.inbox_page(from.id, other, None, 10).await.unwrap();
        assert_eq!(sent.rows.len(), 3, "the sending practice lists them too");
        assert!(sent.rows.iter().all(|r| r.foreign == 1), "for the sender only the other member's open is someone else's");
        assert_eq!(sent.head, 3);
        let empty = s.inbox_page(PracticeId::from_bytes(id16(77)), a.id, None, 10).await.unwrap();
        assert_eq!((empty.rows.len(), empty.head), (0, 0));
        // The same created_at: the cursor's id breaks the tie, with nothing lost or repeated.
        let mut tied = Vec::new();
        for n in 10..=13u8 {
            let mut r = referral(n, from.id, to.id, "arrhythmia");
            r.created_at = 50_000;
            s.commit(Commit { insert: Some(r.clone()), now: 2, ..Default::default() }).await.unwrap();
            tied.push(r.id);
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let p = s.inbox_page(to.id, a.id, cursor, 3).await.unwrap();
            let Some(l) = p.rows.last() else { break };
            cursor = Some((l.referral.created_at, l.referral.id));
            seen.extend(p.rows.iter().map(|r| r.referral.id));
        }
        assert_eq!(seen.len(), 7, "every referral once: {seen:?}");
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 7);
        assert!(tied.iter().all(|t| seen[..4].contains(t)), "the four newest are the tied ones");
    }
}
