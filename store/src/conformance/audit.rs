//! Conformance tests: the audit chains.

use handoff_protocol::audit::AuditAction;

use super::*;

fn entry(practice: Option<PracticeId>, at: i64, action: AuditAction, actor: u8) -> NewAuditEntry {
    NewAuditEntry {
        at,
        actor: Some(UserId::from_bytes(id16(actor))),
        on_behalf_of: None,
        practice,
        action,
        target: Some(format!("target-{at}")),
        address: Some("192.0.2.7".into()),
    }
}

fn p(n: u8) -> Option<PracticeId> {
    Some(PracticeId::from_bytes(id16(100 + n)))
}

suite! {
    __conformance_audit;

    pub async fn audit_entries_chain_per_practice_and_read_back_newest_first(s: &dyn Store) {
        let a1 = s.append_audit(entry(p(1), 10, AuditAction::SignIn, 1)).await.unwrap();
        let b1 = s.append_audit(entry(p(2), 11, AuditAction::SignIn, 2)).await.unwrap();
        let a2 = s.append_audit(entry(p(1), 12, AuditAction::ReferralServed, 1)).await.unwrap();
        let z1 = s.append_audit(entry(None, 13, AuditAction::PracticeVerified, 3)).await.unwrap();
        assert_eq!((a1.seq, b1.seq, a2.seq, z1.seq), (1, 1, 2, 1), "seq counts per chain");
        assert_eq!(a1.prev_hash, GENESIS.to_vec());
        assert_eq!(a2.prev_hash, a1.hash, "each entry carries the previous one's hash");
        assert_eq!(a2.hash, entry_hash(&a1.hash, 2, &a2.entry));
        let got = s.audit_entries(AuditFilter { practice: p(1), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(got, vec![a2.clone(), a1.clone()]);
        let walk = s.audit_walk(p(1), 0, 10).await.unwrap();
        assert_eq!(walk, vec![a1.clone(), a2.clone()], "the walk is oldest first");
        assert_eq!(s.audit_walk(p(1), 1, 10).await.unwrap(), vec![a2]);
        let chains: Vec<_> = s.audit_chains().await.unwrap().into_iter().map(|c| c.practice).collect();
        assert_eq!(chains, vec![None, p(1), p(2)], "the platform chain first");
        let report = verify_audit(s).await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.chains.iter().map(|c| c.entries).collect::<Vec<_>>(), vec![1, 2, 1]);
    }

    pub async fn audit_filters_select_by_member_action_time_and_page(s: &dyn Store) {
        let mut all = Vec::new();
        for (i, (action, actor)) in [(AuditAction::SignIn, 1), (AuditAction::ReferralServed, 1), (AuditAction::SignIn, 2), (AuditAction::BlobServed, 1)]
            .into_iter()
            .enumerate()
        {
            all.push(s.append_audit(entry(p(1), 100 + i as i64, action, actor)).await.unwrap());
        }
        let mut delegated = entry(p(1), 200, AuditAction::ReferralServed, 3);
        delegated.on_behalf_of = Some(UserId::from_bytes(id16(1)));
        let d = s.append_audit(delegated).await.unwrap();
        let q = |f: AuditFilter| async move { s.audit_entries(AuditFilter { practice: p(1), limit: 50, ..f }).await.unwrap() };
        let member1 = q(AuditFilter { member: Some(UserId::from_bytes(id16(1))), ..Default::default() }).await;
        assert_eq!(member1.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 4, 2, 1], "their own entries and those on their behalf");
        let served = q(AuditFilter { action: Some(AuditAction::ReferralServed), ..Default::default() }).await;
        assert_eq!(served, vec![d.clone(), all[1].clone()]);
        let window = q(AuditFilter { from: Some(101), until: Some(103), ..Default::default() }).await;
        assert_eq!(window, vec![all[2].clone(), all[1].clone()], "from inclusive, until exclusive");
        let one = q(AuditFilter { target: Some("target-101".into()), ..Default::default() }).await;
        assert_eq!(one, vec![all[1].clone()]);
        let page = s.audit_entries(AuditFilter { practice: p(1), limit: 2, before: Some(4), ..Default::default() }).await.unwrap();
        assert_eq!(page, vec![all[2].clone(), all[1].clone()]);
        assert!(s.audit_entries(AuditFilter { practice: p(2), limit: 50, ..Default::default() }).await.unwrap().is_empty(), "another chain");
    }

    pub async fn concurrent_audit_appends_never_fork_a_chain(s: &dyn Store) {
        // Four tasks of four appends each, at once, to one chain: every seq once, and the chain verifies.
        let four = |base: i64| async move {
            let mut seqs = Vec::new();
            for i in 0..4 {
                seqs.push(s.append_audit(entry(p(1), base + i, AuditAction::ReferralServed, 1)).await.unwrap().seq);
            }
            seqs
        };
        let (a, b, c, d) = tokio::join!(four(100), four(200), four(300), four(400));
        let mut seqs: Vec<u64> = [a, b, c, d].concat();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
        assert_eq!(verify_audit(s).await.unwrap().broken, None);
    }

    pub async fn pruning_keeps_an_anchor_and_the_chain_still_verifies(s: &dyn Store) {
        for i in 0..5 {
            s.append_audit(entry(p(1), 10 * i, AuditAction::SignIn, 1)).await.unwrap();
        }
        s.append_audit(entry(None, 5, AuditAction::TaxonomyEdited, 2)).await.unwrap();
        let third = s.audit_walk(p(1), 2, 1).await.unwrap().remove(0);
        // Entries at 0, 10, 20 are older than 25; the platform's one at 5 too.
        assert_eq!(s.prune_audit(25).await.unwrap(), 4);
        let chains = s.audit_chains().await.unwrap();
        let anchor = chains.iter().find(|c| c.practice == p(1)).unwrap().anchor.clone().unwrap();
        assert_eq!(anchor, AuditAnchor { seq: 3, hash: third.hash });
        let platform = chains.iter().find(|c| c.practice.is_none()).unwrap();
        assert_eq!(platform.anchor.as_ref().map(|a| a.seq), Some(1), "a chain pruned empty keeps its anchor");
        assert_eq!(s.audit_walk(p(1), 0, 10).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        let report = verify_audit(s).await.unwrap();
        assert_eq!(report.broken, None, "verification starts from the anchor");
        // Appending after pruning continues each chain from its head.
        assert_eq!(s.append_audit(entry(p(1), 60, AuditAction::SignOut, 1)).await.unwrap().seq, 6);
        let next = s.append_audit(entry(None, 61, AuditAction::TaxonomyEdited, 2)).await.unwrap();
        assert_eq!((next.seq, next.prev_hash.clone()), (2, platform.anchor.clone().unwrap().hash));
        assert_eq!(verify_audit(s).await.unwrap().broken, None);
        assert_eq!(s.prune_audit(0).await.unwrap(), 0, "nothing older than the cutoff: nothing pruned");
    }

    pub async fn an_oversized_audit_field_is_refused_and_nothing_is_written(s: &dyn Store) {
        let mut e = entry(p(1), 1, AuditAction::SignIn, 1);
        e.target = Some("x".repeat(MAX_AUDIT_FIELD + 1));
        assert!(matches!(s.append_audit(e).await, Err(AuditError::FieldTooLong(n)) if n == MAX_AUDIT_FIELD + 1));
        assert!(s.audit_chains().await.unwrap().is_empty());
    }
}
