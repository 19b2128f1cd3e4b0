//! The inbox snapshot (issue 16, wt-inbox): `GET /practices/{id}/inbox`
//! serves a page of referral metadata newest first with the practice
//! stream's head, and a client that subscribes from that head misses nothing
//! and sees nothing twice, even while referrals keep arriving.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use handoff_client::live::Pushed;
use handoff_client::referrals::To;
use handoff_protocol::ErrorCode;
use handoff_protocol::api::GetInbox;
use handoff_protocol::v1::{INBOX_PAGE_MAX, InboxPage, InboxQuery};
use handoff_protocol::ws::{AckBody, Command, Event, ReferralId, Status, StreamId};
use handoff_testkit::{content, routing};

use crate::harness::{TestServer, world};

const WAIT: Duration = Duration::from_secs(20);

async fn drain(live: &mut handoff_client::live::Live, stream: StreamId, upto: u64) -> Vec<Pushed> {
    let mut out: Vec<Pushed> = Vec::new();
    while out.last().map(|p| p.seq).unwrap_or(0) < upto {
        out.push(live.wait_for(stream, WAIT, |_| true).await.expect("event"));
    }
    out
}

fn q(before: Option<String>, limit: Option<u32>) -> InboxQuery {
    InboxQuery { before, limit }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_is_served_newest_first_in_pages_as_ciphertext_with_its_head() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let moa_live = w.moa.live().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let ack = w
            .moa
            .send_referral(&moa_live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content(&format!("Inbox Patient {i}")), &[])
            .await
            .unwrap();
        let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
        ids.push(referral);
    }
    let spec_live = w.spec.live().await.unwrap();
    let first = w.spec.referral(ids[0]).await.unwrap();
    spec_live.command(Command::Accept { referral: first.id }).await.unwrap();

    let page: InboxPage = w.spec.call::<GetInbox>(&to, &q(None, Some(2))).await.unwrap();
    assert_eq!(page.practice, to);
    assert_eq!(page.head_seq, 4, "three sends and an accept on the practice stream");
    assert_eq!(page.rows.iter().map(|r| r.referral.id).collect::<Vec<_>>(), vec![ids[2], ids[1]], "newest first");
    assert!(page.rows.iter().all(|r| r.seq == 1 && r.foreign == 1), "each: its stream's head; the MOA's send is someone else's");
    // The row is the referral as stored: sealed content the member opens in the client.
    assert_eq!(w.spec.open_referral(&page.rows[0].referral).await.unwrap().patient.name, "Inbox Patient 2");
    let rest: InboxPage = w.spec.call::<GetInbox>(&to, &q(page.next_before.clone(), Some(2))).await.unwrap();
    assert_eq!(rest.rows.len(), 1);
    assert_eq!(rest.next_before, None, "the last page says so");
    let row = &rest.rows[0];
    assert_eq!((row.referral.id, row.referral.status, row.seq), (ids[0], Status::Accepted, 2), "the current status, and its stream's head");
    // On the sending side the specialist's accept is someone else's, the MOA's own send is not.
    let sent: InboxPage = w.moa.call::<GetInbox>(&w.referring.id, &InboxQuery::default()).await.unwrap();
    assert_eq!(sent.rows.len(), 3);
    assert_eq!(sent.rows.iter().map(|r| r.foreign).collect::<Vec<_>>(), vec![0, 0, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_between_the_inbox_page_and_the_subscribe_are_neither_lost_nor_doubled() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let inbox = StreamId::Practice(to);
    let moa_live = Arc::new(w.moa.live().await.unwrap());
    let send = |i: usize| {
        let (moa, live, from) = (&w.moa, moa_live.clone(), w.referring.id);
        async move {
            let ack =
                moa.send_referral(&live, from, To::Practice(to), routing("arrhythmia"), &content(&format!("Race {i}")), &[]).await.unwrap();
            let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
            referral
        }
    };
    let mut all: Vec<ReferralId> = Vec::new();
    for i in 0..5 {
        all.push(send(i).await);
    }
    // Senders keep going while the page is read, and after it, before the subscribe.
    let (page, burst) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            w.spec.call::<GetInbox>(&to, &q(None, Some(INBOX_PAGE_MAX))).await.unwrap()
        },
        futures_util::future::join_all((5..35).map(send))
    );
    all.extend(burst);
    let first = w.moa.referral(all[0]).await.unwrap();
    w.moa.post_message(&moa_live, &first, "after the page").await.unwrap();

    let mut live = w.spec.live().await.unwrap();
    let head = live.subscribe(inbox, page.head_seq).await.unwrap();
    let after = drain(&mut live, inbox, head).await;
    assert_eq!(
        after.iter().map(|p| p.seq).collect::<Vec<_>>(),
        (page.head_seq + 1..=head).collect::<Vec<_>>(),
        "every later event, once, in order"
    );
    let on_page: Vec<ReferralId> = page.rows.iter().map(|r| r.referral.id).collect();
    let arrived: Vec<ReferralId> = after
        .iter()
        .filter_map(|p| match &p.event {
            Event::ReferralSent { referral } => Some(referral.id),
            _ => None,
        })
        .collect();
    assert_eq!(on_page.len() as u64 + arrived.len() as u64 + 1, head, "each event is on the page or after it");
    let page_set: HashSet<_> = on_page.iter().collect();
    assert!(arrived.iter().all(|a| !page_set.contains(a)), "no referral both on the page and pushed after it");
    let union: HashSet<_> = on_page.iter().chain(&arrived).collect();
    assert_eq!(union, all.iter().collect::<HashSet<_>>(), "none lost");
    assert!(matches!(after.last().map(|p| &p.event), Some(Event::MessagePosted { referral, .. }) if *referral == all[0]));
    // Then live, with nothing twice.
    w.moa.post_message(&moa_live, &first, "live").await.unwrap();
    assert_eq!(live.wait_for(inbox, WAIT, |_| true).await.unwrap().seq, head + 1);
    assert!(live.next_event(Duration::from_millis(300)).await.is_none(), "nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_inbox_query_is_refused_and_a_stranger_sees_no_inbox() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    for bad in
        [q(None, Some(0)), q(None, Some(INBOX_PAGE_MAX + 1)), q(Some("yesterday".into()), None), q(Some("1.not-a-uuid".into()), None)]
    {
        let e = w.spec.call::<GetInbox>(&to, &bad).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::ValidationFailed), "{bad:?}");
    }
    let e = w.moa.call::<GetInbox>(&to, &InboxQuery::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "another practice's inbox is not found");
}
