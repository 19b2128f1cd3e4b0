//! Issue 12, items 1 and 7: ending access cuts every stream it reached, and
//! `subscribe` refuses a position past the stream's head.
//!
//! The "nothing more arrived" assertions need a barrier, not a timer: the
//! other side's socket receiving the event shows it was fanned out, and an
//! answer on the cut socket itself (its frames are queued in order, and the
//! stream's actor answers only after it finished the fan-out) shows that
//! anything fanned out to it would already have arrived.

use std::time::Duration;

use handoff_client::Client;
use handoff_client::live::Live;
use handoff_client::referrals::To;
use handoff_protocol::v1::Role;
use handoff_protocol::ws::{AckBody, Command, Event, ReferralId, StreamId};
use handoff_protocol::{ErrorCode, PracticeId};
use handoff_testkit::{World, content, routing};

use crate::harness::{PASSWORD, TestServer, invite_token, world};

const WAIT: Duration = Duration::from_secs(20);
/// How long to look for a frame that the barrier shows has already arrived, if it was sent.
const SETTLE: Duration = Duration::from_millis(300);

/// A server whose mail goes to the data folder (invites are read from there).
fn server() -> TestServer {
    TestServer::start_with(None, |c| c.smtp_url = None)
}

/// Invites `email` to `p` and registers them through the invite.
async fn join(srv: &TestServer, admin: &Client, p: PracticeId, email: &str) -> Client {
    admin.invite(p, email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(email).await;
    let mut c = srv.client();
    c.register(email, email, PASSWORD, Some(&token)).await.unwrap();
    c
}

/// A referral from the world's referring office to its first specialist practice.
async fn send(w: &World, live: &Live) -> ReferralId {
    let to = w.specialists[0].id;
    let ack = w.moa.send_referral(live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Cut Off"), &[]).await.unwrap();
    let AckBody::ReferralSent { referral, .. } = ack else { panic!("{ack:?}") };
    referral
}

/// The barrier on one socket: its own answer from the stream's actor comes after anything fanned out to it before.
async fn barrier(live: &Live, stream: StreamId) {
    let ack = live.request(None, Command::Unsubscribe { stream }).await.unwrap().1;
    assert_eq!(ack, AckBody::Unsubscribed { stream });
}

/// Asserts that `live` received no event at all, and was told, once per stream, that each of `streams` ended.
async fn assert_cut(live: &mut Live, streams: &[StreamId]) {
    for s in streams {
        barrier(live, *s).await;
    }
    let got = live.next_event(SETTLE).await;
    assert!(got.is_none(), "the socket still received {got:?}");
    let mut named = Vec::new();
    for _ in streams {
        let ended = live.next_error(SETTLE).await.expect("a frame saying the stream ended");
        assert_eq!(ended.error, ErrorCode::AccessEnded, "{ended:?}");
        let stream = streams.iter().find(|s| ended.message.contains(&s.to_string()));
        named.push(*stream.unwrap_or_else(|| panic!("the frame names one of the streams: {}", ended.message)));
    }
    named.sort();
    let mut want = streams.to_vec();
    want.sort();
    assert_eq!(named, want, "one frame per cut stream");
    assert!(live.next_error(SETTLE).await.is_none(), "nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_receives_nothing_more_on_a_referral_stream() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let carol = join(&srv, &w.spec, p, "carol@cardio.example").await;
    let moa_live = w.moa.live().await.unwrap();
    let rid = send(&w, &moa_live).await;
    let rs = StreamId::Referral(rid);

    // Carol follows the referral and her practice's inbox; the admin follows the referral too.
    let mut carol_live = carol.live().await.unwrap();
    let head = carol_live.subscribe(rs, 0).await.unwrap();
    carol_live.subscribe(StreamId::Practice(p), 0).await.unwrap();
    while carol_live.next_event(SETTLE).await.is_some() {}
    let mut spec_live = w.spec.live().await.unwrap();
    spec_live.subscribe(rs, head).await.unwrap();

    // Before the removal she receives the thread live.
    let r = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r, "before the removal").await.unwrap();
    // On both her streams (in either order: the inbox is fed through the hub).
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = carol_live.next_event(WAIT).await.expect("live before the removal");
        assert!(matches!(e.event, Event::MessagePosted { .. }), "{e:?}");
        seen.push(e.stream);
    }
    seen.sort();
    assert_eq!(seen, vec![StreamId::Practice(p), rs]);
    spec_live.wait_for(rs, WAIT, |e| matches!(e, Event::MessagePosted { .. })).await.unwrap();

    w.spec.remove_member(p, carol.user_id().unwrap()).await.unwrap();

    // The other practice posts; the admin receives it, Carol's socket receives nothing more.
    w.moa.post_message(&moa_live, &r, "after the removal").await.unwrap();
    spec_live.wait_for(rs, WAIT, |e| matches!(e, Event::MessagePosted { .. })).await.expect("the other member still receives it");
    assert_cut(&mut carol_live, &[rs, StreamId::Practice(p)]).await;

    // The same socket that subscribed before the removal is refused when it subscribes again, as is a new one.
    let again = carol_live.subscribe(rs, head).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::NotFound), "{again:?}");
    let fresh = carol.live().await.unwrap();
    assert_eq!(fresh.subscribe(rs, 0).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert_eq!(fresh.subscribe(StreamId::Practice(p), 0).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    // Her socket is otherwise fine.
    assert!(carol_live.next_event(SETTLE).await.is_none());
    assert!(carol_live.close_info().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_deleted_practice_receive_nothing_more() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].clone();
    let carol = join(&srv, &w.spec, p.id, "carol@cardio.example").await;
    let mut moa_live = w.moa.live().await.unwrap();
    let rid = send(&w, &moa_live).await;
    let rs = StreamId::Referral(rid);
    let mut members = Vec::new();
    for c in [&w.spec, &carol] {
        let mut live = c.live().await.unwrap();
        live.subscribe(rs, 0).await.unwrap();
        live.subscribe(StreamId::Practice(p.id), 0).await.unwrap();
        while live.next_event(SETTLE).await.is_some() {}
        members.push(live);
    }
    moa_live.subscribe(rs, 0).await.unwrap();
    while moa_live.next_event(SETTLE).await.is_some() {}

    w.spec.delete_practice(p.id, &p.name).await.unwrap();

    // The referring practice keeps the referral and posts on it; its own socket is the barrier.
    let r = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r, "after the deletion").await.unwrap();
    moa_live.wait_for(rs, WAIT, |e| matches!(e, Event::MessagePosted { .. })).await.expect("the referring side still receives it");
    for live in &mut members {
        assert_cut(live, &[rs, StreamId::Practice(p.id)]).await;
        assert_eq!(live.subscribe(rs, 0).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_both_practices_removed_from_one_keeps_the_referral_but_not_the_inbox() {
    let srv = server();
    let w = world(&srv, 1).await;
    let p = w.specialists[0].id;
    let email = "carol@both.example";
    let carol = join(&srv, &w.spec, p, email).await;
    w.moa.invite(w.referring.id, email, Role::Member).await.unwrap();
    let token = invite_token(&srv.wait_for_folder_mail(email, &w.referring.name).await);
    carol.accept_invite(&token).await.unwrap();
    let moa_live = w.moa.live().await.unwrap();
    let rid = send(&w, &moa_live).await;
    let rs = StreamId::Referral(rid);
    let mut carol_live = carol.live().await.unwrap();
    carol_live.subscribe(rs, 0).await.unwrap();
    carol_live.subscribe(StreamId::Practice(p), 0).await.unwrap();
    while carol_live.next_event(SETTLE).await.is_some() {}

    // Removed from the receiving practice, she is still a member of the sending one: the one rule says she sees the referral.
    w.spec.remove_member(p, carol.user_id().unwrap()).await.unwrap();
    let r = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r, "still yours").await.unwrap();
    let got = carol_live.next_event(WAIT).await.expect("the referral stream goes on");
    assert_eq!(got.stream, rs, "{got:?}");
    assert!(matches!(got.event, Event::MessagePosted { .. }), "{got:?}");
    // Only the inbox of the practice she left was cut.
    assert_cut(&mut carol_live, &[StreamId::Practice(p)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_past_the_head_is_refused_and_extreme_positions_never_break_the_stream() {
    let srv = server();
    let w = world(&srv, 1).await;
    let moa_live = w.moa.live().await.unwrap();
    let rid = send(&w, &moa_live).await;
    let r = w.moa.referral(rid).await.unwrap();
    for i in 0..3 {
        w.moa.post_message(&moa_live, &r, &format!("m{i}")).await.unwrap();
    }
    let rs = StreamId::Referral(rid);
    let inbox = StreamId::Practice(w.referring.id);
    let head = 4u64;

    // Past the head: refused with a documented code, on both kinds of stream, and the socket lives on.
    let mut positions = vec![u64::MAX, u64::MAX - 1, head + 1, head + 2, 1 << 53, i64::MAX as u64, i64::MAX as u64 + 1];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..16 {
        // xorshift: deterministic "random" positions across the whole range.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        positions.push(seed.max(head + 1));
    }
    let mut probe = w.moa.live().await.unwrap();
    for &after in &positions {
        for stream in [rs, inbox] {
            let e = probe.request(None, Command::Subscribe { stream, after_seq: after }).await.unwrap_err();
            assert_eq!(e.code(), Some(ErrorCode::SeqAhead), "{stream} after {after}: {e:?}");
        }
    }
    assert!(probe.next_event(SETTLE).await.is_none(), "a refused subscription sends nothing");
    assert!(probe.close_info().is_none());

    // At or below the head: exactly the events after the position, then live, once each.
    let mut sockets = Vec::new();
    for after in [0, 1, head - 1, head] {
        let mut live = w.moa.live().await.unwrap();
        // A refused subscription first: it breaks nothing that follows on the socket.
        let e = live.request(None, Command::Subscribe { stream: rs, after_seq: u64::MAX }).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::SeqAhead));
        assert_eq!(live.subscribe(rs, after).await.unwrap(), head);
        let mut seqs = Vec::new();
        while let Some(e) = live.next_event(SETTLE).await {
            seqs.push(e.seq);
        }
        assert_eq!(seqs, (after + 1..=head).collect::<Vec<_>>(), "after {after}");
        sockets.push(live);
    }
    w.moa.post_message(&moa_live, &r, "live").await.unwrap();
    for live in &mut sockets {
        assert_eq!(live.wait_for(rs, WAIT, |_| true).await.unwrap().seq, head + 1);
        assert!(live.next_event(SETTLE).await.is_none(), "nothing twice");
    }
}
