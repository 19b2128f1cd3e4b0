//! Group commit (issue 16): the commits queued behind one fsync share it, and
//! the routing and referral actors pipeline theirs. What must still hold:
//! every acknowledged referral is durable, acknowledged once, and counted
//! once by choose-for-me, however many senders send at once.

use std::collections::{HashMap, HashSet};

use handoff_client::Client;
use handoff_client::live::Live;
use handoff_client::referrals::To;
use handoff_protocol::ws::{AckBody, Command, IdemKey};
use handoff_testkit::{content, routing};

use crate::harness::{PASSWORD, ProcessServer, world_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_senders_referrals_are_all_durable_and_acknowledged_once_after_a_restart() {
    let mut srv = ProcessServer::start().await;
    let w = world_at(&srv.url(), |e| srv.grant_staff(e), 3).await;
    // Eight sockets (a user's socket allowance is limited), each with forty referrals in flight at once.
    let senders = 8;
    let per_sender = 40;
    // Sealed up front, each with its own idempotency key, so the senders go out together.
    let mut prepared = Vec::new();
    for i in 0..senders * per_sender {
        let (new, _) =
            w.moa.prepare_referral(w.referring.id, To::ChooseForMe, routing("arrhythmia"), &content(&format!("P{i}")), &[]).await.unwrap();
        prepared.push((IdemKey(uuid::Uuid::new_v4()), new));
    }
    let sockets: Vec<Live> =
        futures_util::future::join_all((0..senders).map(|_| w.moa.live())).await.into_iter().map(Result::unwrap).collect();
    let sockets = std::sync::Arc::new(sockets);
    let answers = futures_util::future::join_all(prepared.iter().enumerate().map(|(i, (idem, new))| {
        let sockets = sockets.clone();
        let cmd = Command::SendReferral { referral: new.clone() };
        let idem = *idem;
        async move { sockets[i % senders].request(Some(idem), cmd).await }
    }))
    .await;
    let mut acked = HashMap::new();
    for ((_, new), answer) in prepared.iter().zip(answers) {
        let (replayed, ack) = answer.expect("every referral is acknowledged");
        assert!(!replayed, "sent once, so acknowledged as new");
        let AckBody::ReferralSent { referral, to_practice, ref number } = ack else { panic!("{ack:?}") };
        assert_eq!(referral, new.id);
        acked.insert(referral, (to_practice, number.clone(), ack.clone()));
    }
    let numbers: HashSet<_> = acked.values().map(|(_, n, _)| n.clone()).collect();
    assert_eq!(numbers.len(), acked.len(), "every referral got its own number");

    // Nothing acknowledged may live only in memory: kill the server outright and start it again.
    drop(sockets);
    srv.kill9();
    srv.restart().await;
    let mut moa = Client::new(srv.url());
    moa.login(&w.moa_account.email, PASSWORD).await.unwrap();
    let mut spec = Client::new(srv.url());
    spec.login(&w.spec_account.email, PASSWORD).await.unwrap();

    let mut stored = HashMap::new();
    for p in &w.specialists {
        for r in spec.referrals(p.id).await.unwrap() {
            assert!(stored.insert(r.id, (r.to_practice, r.number.clone())).is_none(), "a referral listed twice");
        }
    }
    assert_eq!(stored.len(), acked.len(), "every acknowledged referral is stored, and nothing else");
    for (id, (to, number, _)) in &acked {
        assert_eq!(stored.get(id), Some(&(*to, number.clone())), "stored as acknowledged");
    }
    let per: Vec<usize> = w.specialists.iter().map(|p| acked.values().filter(|(to, _, _)| *to == p.id).count()).collect();
    assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1, "choose-for-me balanced within 1: {per:?}");

    // Each command, sent again with its key after the restart, is answered from its record and acts no more.
    let live = moa.live().await.unwrap();
    for (idem, new) in &prepared {
        let (replayed, ack) = live.request(Some(*idem), Command::SendReferral { referral: new.clone() }).await.unwrap();
        assert!(replayed, "a retry is a replay");
        assert_eq!(ack, acked[&new.id].2);
    }
    let mut total = 0;
    for p in &w.specialists {
        total += spec.referrals(p.id).await.unwrap().len();
    }
    assert_eq!(total, acked.len(), "the retries created nothing");
}
