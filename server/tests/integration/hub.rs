//! The live hub over real WebSockets, with the native client and real crypto.

use std::time::Duration;

use handoff_client::Client;
use handoff_client::live::Live;
use handoff_client::referrals::{File, To};
use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, GetMe, PutBlob, WS_PATH};
use handoff_protocol::v1::PracticeAction;
use handoff_protocol::v1::{Practice, Role};
use handoff_protocol::ws::{AckBody, Command, Event, RejectReason, Status, StreamId, Urgency};
use handoff_testkit::{World, content, moa_account, routing};

use handoff_testkit::RegisterConfirmed as _;

use crate::harness::{PASSWORD, Smtp, TestServer, world, world_at, world_with};

const WAIT: Duration = Duration::from_secs(20);

fn events_of(pushed: &[handoff_client::live::Pushed]) -> Vec<&Event> {
    pushed.iter().map(|p| &p.event).collect()
}

async fn drain(live: &mut Live, stream: StreamId, upto: u64) -> Vec<handoff_client::live::Pushed> {
    let mut out = Vec::new();
    while out.last().map(|p: &handoff_client::live::Pushed| p.seq).unwrap_or(0) < upto {
        let e = live.wait_for(stream, WAIT, |_| true).await.expect("event");
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_is_live_on_both_sides_and_in_the_history() {
    let srv = TestServer::start(None);
    let w = world(&srv, 2).await;
    let inbox = |p: &Practice| StreamId::Practice(p.id);
    let mut spec_live = w.spec.live().await.unwrap();
    for p in &w.specialists {
        spec_live.subscribe(inbox(p), 0).await.unwrap();
    }
    let mut moa_live = w.moa.live().await.unwrap();
    moa_live.subscribe(inbox(&w.referring), 0).await.unwrap();

    // 1. A "choose for me" referral with an attachment appears live in the chosen inbox.
    let pdf = File { name: "holter.pdf".into(), media_type: "application/pdf".into(), bytes: b"%PDF-1.4 holter report".repeat(5000) };
    let ack = w
        .moa
        .send_referral(
            &moa_live,
            w.referring.id,
            To::ChooseForMe,
            routing("arrhythmia"),
            &content("Margaret Example"),
            std::slice::from_ref(&pdf),
        )
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, number, to_practice } = ack else { panic!("{ack:?}") };
    assert!(number.starts_with("HR-") && number.len() == 12, "{number}");
    assert!(w.specialists.iter().any(|p| p.id == to_practice));
    let got = spec_live
        .wait_for(StreamId::Practice(to_practice), WAIT, |e| matches!(e, Event::ReferralSent { referral } if referral.id == rid))
        .await
        .expect("the referral arrives live");
    let Event::ReferralSent { referral } = got.event else { unreachable!() };
    assert_eq!(referral.number, number);
    let opened = w.spec.open_referral(&referral).await.unwrap();
    assert_eq!(opened, content("Margaret Example"), "the specialist decrypts what the MOA wrote");
    let (meta, bytes) = w.spec.download(&referral, &referral.attachments[0]).await.unwrap();
    assert_eq!((meta.name.as_str(), bytes), ("holter.pdf", pdf.bytes.clone()));
    moa_live
        .wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::ReferralSent { .. }))
        .await
        .expect("the sender's inbox too");

    // The referrer sees when the specialist first opened it; opening again makes no event.
    let rs = StreamId::Referral(rid);
    spec_live.command(Command::MarkOpened { referral: rid }).await.unwrap();
    spec_live.command(Command::MarkOpened { referral: rid }).await.unwrap();
    let seen = moa_live.wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::Opened { .. })).await.expect("opened");
    let Event::Opened { at, .. } = seen.event else { unreachable!() };
    assert_eq!(w.moa.referral(rid).await.unwrap().first_opened_at, Some(at));

    // 2. Category, urgency, accept, thread, late attachment: each live at the other side.
    spec_live.command(Command::ChangeCategory { referral: rid, category: "heart-failure".into(), subcategory: None }).await.unwrap();
    let e = moa_live.wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::CategoryChanged { .. })).await.unwrap();
    assert!(matches!(e.event, Event::CategoryChanged { ref category, .. } if category == "heart-failure"));
    spec_live.command(Command::ChangeUrgency { referral: rid, urgency: Urgency::Urgent }).await.unwrap();
    moa_live
        .wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::UrgencyChanged { urgency: Urgency::Urgent, .. }))
        .await
        .unwrap();
    spec_live.command(Command::Accept { referral: rid }).await.unwrap();
    moa_live
        .wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::StatusChanged { status: Status::Accepted, .. }))
        .await
        .unwrap();
    let r_now = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r_now, "Patient prefers morning appointments.").await.unwrap();
    let m = spec_live.wait_for(StreamId::Practice(to_practice), WAIT, |e| matches!(e, Event::MessagePosted { .. })).await.unwrap();
    let Event::MessagePosted { message, by, .. } = m.event else { unreachable!() };
    assert_eq!(w.spec.open_message(&r_now, by, &message).await.unwrap().text, "Patient prefers morning appointments.");
    let ecg = File { name: "ecg.png".into(), media_type: "image/png".into(), bytes: vec![7u8; 70_000] };
    w.spec.add_attachment(&spec_live, &r_now, &ecg).await.unwrap();
    let a = moa_live.wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::AttachmentAdded { .. })).await.unwrap();
    let Event::AttachmentAdded { attachment, .. } = a.event else { unreachable!() };
    let latest = w.moa.referral(rid).await.unwrap();
    assert_eq!(w.moa.download(&latest, &attachment).await.unwrap().1, ecg.bytes);
    assert_eq!(latest.status, Status::Accepted);
    assert_eq!(latest.routing.category, "heart-failure");
    assert_eq!(latest.routing.urgency, Urgency::Urgent);

    // The history: every change, in order, on the referral's own stream.
    let mut hist = w.moa.live().await.unwrap();
    let head = hist.subscribe(rs, 0).await.unwrap();
    let all = drain(&mut hist, rs, head).await;
    let kinds: Vec<&str> = events_of(&all)
        .iter()
        .map(|e| match e {
            Event::ReferralSent { .. } => "sent",
            Event::Opened { .. } => "opened",
            Event::CategoryChanged { .. } => "category",
            Event::UrgencyChanged { .. } => "urgency",
            Event::StatusChanged { .. } => "status",
            Event::MessagePosted { .. } => "message",
            Event::AttachmentAdded { .. } => "attachment",
            Event::EpochAdvanced { .. } => "epoch",
        })
        .collect();
    assert_eq!(kinds, vec!["sent", "opened", "category", "urgency", "status", "message", "attachment"]);
    assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<u64>>());

    // Reject (a second referral): reason and encrypted note arrive; the note decrypts.
    let ack = w
        .moa
        .send_referral(&moa_live, w.referring.id, To::Practice(to_practice), routing("arrhythmia"), &content("Second Patient"), &[])
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid2, .. } = ack else { panic!() };
    let r2 = w.spec.referral(rid2).await.unwrap();
    w.spec.reject(&spec_live, &r2, RejectReason::AnotherSpecialist, "Please refer to Dr. Rhythm at Surrey EP clinic").await.unwrap();
    let rej = moa_live
        .wait_for(StreamId::Practice(w.referring.id), WAIT, |e| matches!(e, Event::StatusChanged { status: Status::Rejected, .. }))
        .await
        .unwrap();
    let Event::StatusChanged { reason, note, .. } = rej.event else { unreachable!() };
    assert_eq!(reason, Some(RejectReason::AnotherSpecialist));
    assert_eq!(w.moa.open_note(&r2, &note.unwrap()).await.unwrap(), "Please refer to Dr. Rhythm at Surrey EP clinic");
    // A rejected referral cannot be accepted; the referrer cannot accept; the specialist cannot cancel.
    let e = spec_live.command(Command::Accept { referral: rid2 }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidTransition));
    let e = moa_live.command(Command::Accept { referral: rid }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden));
    let e = spec_live.command(Command::Cancel { referral: rid }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden));
    // The referrer can cancel an accepted referral.
    moa_live.command(Command::Cancel { referral: rid }).await.unwrap();
    spec_live
        .wait_for(StreamId::Practice(to_practice), WAIT, |e| matches!(e, Event::StatusChanged { status: Status::Cancelled, .. }))
        .await
        .unwrap();
    // Both listings agree after a reload.
    assert_eq!(w.moa.referrals(w.referring.id).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_gets_exactly_the_missed_events_in_order() {
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let inbox = StreamId::Practice(to);
    let moa_live = w.moa.live().await.unwrap();
    let mut spec_live = w.spec.live().await.unwrap();
    spec_live.subscribe(inbox, 0).await.unwrap();
    let ack = w
        .moa
        .send_referral(&moa_live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Resume Patient"), &[])
        .await
        .unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let first = spec_live.wait_for(inbox, WAIT, |_| true).await.unwrap();
    assert_eq!(first.seq, 1);
    drop(spec_live);

    // While the specialist is away: five messages.
    let r = w.moa.referral(rid).await.unwrap();
    for i in 0..5 {
        w.moa.post_message(&moa_live, &r, &format!("note {i}")).await.unwrap();
    }
    let mut back = w.spec.live().await.unwrap();
    let head = back.subscribe(inbox, first.seq).await.unwrap();
    assert_eq!(head, 6);
    let missed = drain(&mut back, inbox, head).await;
    assert_eq!(missed.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6], "exactly the missed ones, in order");
    let mut texts = Vec::new();
    for p in &missed {
        let Event::MessagePosted { message, by, .. } = &p.event else { panic!("{:?}", p.event) };
        texts.push(w.spec.open_message(&r, *by, message).await.unwrap().text);
    }
    assert_eq!(texts, (0..5).map(|i| format!("note {i}")).collect::<Vec<_>>());
    // Then live again, with no duplicate.
    w.moa.post_message(&moa_live, &r, "after resume").await.unwrap();
    let next = back.wait_for(inbox, WAIT, |_| true).await.unwrap();
    assert_eq!(next.seq, 7);
    assert!(back.next_event(Duration::from_millis(300)).await.is_none(), "nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choose_for_me_balances_1000_concurrent_referrals() {
    let srv = TestServer::start(None);
    let w = world(&srv, 9).await;
    // Practice 7 is paused; practice 8 loses its verification.
    w.staff.admin_practice_action(w.specialists[7].id, PracticeAction::Pause).await.unwrap();
    w.staff.admin_practice_action(w.specialists[8].id, PracticeAction::Unverify).await.unwrap();
    let from_key = w.moa.practice_key(w.referring.id).await.unwrap();
    // Wrap to all nine, including the two that must receive nothing.
    let keys: Vec<_> = futures_util::future::join_all(w.specialists.iter().map(|p| w.spec.practice_key(p.id))).await;
    let keys: Vec<_> = keys.into_iter().map(Result::unwrap).collect();
    let sockets: Vec<Live> = futures_util::future::join_all((0..8).map(|_| w.moa.live())).await.into_iter().map(Result::unwrap).collect();
    let n = 1000;
    let mut tasks = Vec::new();
    for i in 0..n {
        let r = handoff_crypto::ReferralKey::generate().unwrap();
        let id = handoff_protocol::ws::ReferralId(uuid::Uuid::new_v4());
        let wrap = |p: handoff_protocol::PracticeId, k: &handoff_crypto::PracticeKey| handoff_protocol::ws::WrappedKey {
            practice: p,
            epoch: 0,
            sealed: handoff_protocol::B64(r.wrap_to(id, p, 0, &k.hpke_public()).unwrap()),
        };
        let new = handoff_protocol::ws::NewReferral {
            id,
            from: handoff_protocol::ws::NewSender::Practice { practice: w.referring.id, key: wrap(w.referring.id, &from_key) },
            destination: handoff_protocol::ws::Destination::ChooseForMe,
            routing: routing("arrhythmia"),
            content: handoff_protocol::B64(r.seal_content(id, &content(&format!("Patient {i}"))).unwrap()),
            to_keys: w.specialists.iter().zip(&keys).map(|(p, k)| wrap(p.id, k)).collect(),
            attachments: vec![],
        };
        tasks.push((i % sockets.len(), new));
    }
    let sockets = std::sync::Arc::new(sockets);
    let results = futures_util::future::join_all(tasks.into_iter().map(|(s, new)| {
        let sockets = sockets.clone();
        async move { sockets[s].command(Command::SendReferral { referral: new }).await }
    }))
    .await;
    let mut counts = std::collections::HashMap::new();
    for r in results {
        let AckBody::ReferralSent { to_practice, .. } = r.unwrap() else { panic!() };
        *counts.entry(to_practice).or_insert(0u32) += 1;
    }
    let eligible: Vec<_> = w.specialists[..7].iter().map(|p| p.id).collect();
    assert_eq!(counts.keys().filter(|p| !eligible.contains(p)).count(), 0, "paused and unverified practices receive none: {counts:?}");
    let per: Vec<u32> = eligible.iter().map(|p| counts.get(p).copied().unwrap_or(0)).collect();
    assert_eq!(per.iter().sum::<u32>(), n as u32);
    let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
    assert!(hi - lo <= 1, "balanced within 1: {per:?}");
    // The server's own listings agree.
    for (p, want) in eligible.iter().zip(&per) {
        assert_eq!(w.spec.referrals(*p).await.unwrap().len() as u32, *want);
    }
    assert!(w.spec.referrals(w.specialists[7].id).await.unwrap().is_empty());
    assert!(w.spec.referrals(w.specialists[8].id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_sends_to_unverified_or_paused_practices_are_refused() {
    let srv = TestServer::start(None);
    let w = world(&srv, 2).await;
    let live = w.moa.live().await.unwrap();
    w.staff.admin_practice_action(w.specialists[0].id, PracticeAction::Pause).await.unwrap();
    // The MOA's client built the wrap while the practice was open.
    let (new, _) = {
        w.staff.admin_practice_action(w.specialists[1].id, PracticeAction::Unverify).await.unwrap();
        w.staff.admin_practice_action(w.specialists[0].id, PracticeAction::Unpause).await.unwrap();
        let prepared = w
            .moa
            .prepare_referral(w.referring.id, To::Practice(w.specialists[0].id), routing("arrhythmia"), &content("P"), &[])
            .await
            .unwrap();
        w.staff.admin_practice_action(w.specialists[0].id, PracticeAction::Pause).await.unwrap();
        prepared
    };
    let e = live.command(Command::SendReferral { referral: new }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotEligible));
    // Choose-for-me with only ineligible candidates.
    w.staff.admin_practice_action(w.specialists[0].id, PracticeAction::Unpause).await.unwrap();
    let (mut new, _) = w.moa.prepare_referral(w.referring.id, To::ChooseForMe, routing("arrhythmia"), &content("P"), &[]).await.unwrap();
    w.staff.admin_practice_action(w.specialists[0].id, PracticeAction::Pause).await.unwrap();
    new.id = handoff_protocol::ws::ReferralId(uuid::Uuid::new_v4());
    let e = live.command(Command::SendReferral { referral: new }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoEligiblePractice));
    assert!(w.moa.referrals(w.referring.id).await.unwrap().is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_emails_survive_an_smtp_outage_and_arrive_once() {
    // The SMTP port is reserved.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let srv = TestServer::start_with(None, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail_backoff_ms = 200;
        c.mail_backoff_max_ms = 400;
    });
    // Registering takes a confirmation mail, so SMTP is up while the accounts
    // are made; the outage starts after.
    let setup = Smtp::start_on(port, tempfile::tempdir().unwrap());
    handoff_testkit::deliver_to(&srv.url(), setup.dir.path().join("new"));
    let w = world_with(&srv, World::builder().moa(moa_account().email("moa@family.example")).specialists(1)).await;
    let to = w.specialists[0].id;
    w.moa.set_email_on_status(w.referring.id, true).await.unwrap();
    // A second member of the referring practice who did not opt in.
    let mut other = srv.client();
    other.register_confirmed("quiet@family.example", "Quiet", PASSWORD).await.unwrap();
    drop(setup);
    w.moa.invite(w.referring.id, "quiet@family.example", Role::Member).await.unwrap();
    let moa_live = w.moa.live().await.unwrap();
    let spec_live = w.spec.live().await.unwrap();
    let mut numbers = Vec::new();
    for (i, accept) in [(0, true), (1, false), (2, true)] {
        let ack = w
            .moa
            .send_referral(&moa_live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content(&format!("Mail {i}")), &[])
            .await
            .unwrap();
        let AckBody::ReferralSent { referral, number, .. } = ack else { panic!() };
        let r = w.spec.referral(referral).await.unwrap();
        if accept {
            spec_live.command(Command::Accept { referral }).await.unwrap();
        } else {
            w.spec.reject(&spec_live, &r, RejectReason::WrongCategory, "we do not see this").await.unwrap();
        }
        numbers.push((number, if accept { "accepted" } else { "rejected" }));
    }
    // The server retries while SMTP is down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let smtp = Smtp::start_on(port, tempfile::tempdir().unwrap());
    for (number, status) in &numbers {
        let m = smtp.wait_for("moa@family.example", number).await;
        assert!(m.contains(status), "{m}");
        assert!(!m.contains("Mail 0") && !m.contains("9876 543 210") && !m.contains("palpitations"), "no patient data in email");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = smtp.messages();
    for (number, _) in &numbers {
        let n = all.iter().filter(|m| m.contains(number.as_str())).count();
        assert_eq!(n, 1, "exactly one email for {number}");
    }
    assert!(!all.iter().any(|m| m.contains("quiet@family.example") && m.contains("Referral HR-")), "only opted-in members");
    drop(other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_is_dropped_and_others_are_not() {
    let srv = crate::metrics::with_metrics(|c| c.ws_outgoing_buffer = 8);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let inbox = StreamId::Practice(to);
    let moa_live = w.moa.live().await.unwrap();
    let ack =
        w.moa.send_referral(&moa_live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Flood"), &[]).await.unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let r = w.moa.referral(rid).await.unwrap();

    // The stalled reader: a raw socket that subscribes, then never reads again.
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let mut req = format!("{}/ws", srv.url().replacen("http", "ws", 1)).into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", w.spec.token().unwrap()).parse().unwrap());
    let (mut stalled, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let sub = serde_json::json!({"id": 1, "cmd": {"type": "subscribe", "stream": inbox.to_string(), "after_seq": 0}});
    stalled.send(Message::Text(sub.to_string().into())).await.unwrap();

    let mut healthy = w.spec.live().await.unwrap();
    healthy.subscribe(inbox, 0).await.unwrap();
    let total = 300u64;
    let big = "x".repeat(20_000);
    for _ in 0..total {
        w.moa.post_message(&moa_live, &r, &big).await.unwrap();
    }
    // The healthy reader gets every event.
    let got = drain(&mut healthy, inbox, total + 1).await;
    assert_eq!(got.len() as u64, total + 1);
    // The stalled one was cut off well before the end.
    let mut events = 0u64;
    let mut close_code = None;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
        match m {
            Ok(Message::Text(t)) if t.contains("\"type\":\"event\"") => events += 1,
            Ok(Message::Close(f)) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(events < total + 1, "the stalled reader was disconnected (got {events} of {})", total + 1);
    if let Some(c) = close_code {
        assert_eq!(c, handoff_protocol::ws::close::SLOW_CONSUMER);
    }
    // The metrics count the close (the server ended that socket as a slow consumer).
    let slow = "handoff_ws_slow_consumer_closes_total";
    let mut closes = 0.0;
    for _ in 0..100 {
        closes = crate::metrics::sample(&crate::metrics::scrape(&srv).await, slow).unwrap_or(0.0);
        if closes >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(closes, 1.0, "one slow-consumer close is counted");
    // The server is fine and the healthy socket still works.
    w.moa.post_message(&moa_live, &r, "still here").await.unwrap();
    assert!(healthy.wait_for(inbox, WAIT, |_| true).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_documented_errors_and_the_socket_survives() {
    use tokio_tungstenite::tungstenite::Message;
    let srv = TestServer::start(None);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let mut live = w.moa.live().await.unwrap();

    live.send_raw(Message::Text("{not json".into())).unwrap();
    assert_eq!(live.next_error(WAIT).await.unwrap().error, ErrorCode::MalformedJson);
    live.send_raw(Message::Text(r#"{"id": 5, "cmd": {"type": "launch_rockets"}}"#.into())).unwrap();
    let e = live.next_error(WAIT).await.unwrap();
    assert_eq!(e.error, ErrorCode::UnknownCommand, "{e:?}");
    live.send_raw(Message::Text(r#"{"id": 6, "cmd": {"type": "subscribe", "stream": 42}}"#.into())).unwrap();
    assert_eq!(live.next_error(WAIT).await.unwrap().error, ErrorCode::InvalidBody, "wrong types");
    live.send_raw(Message::Binary(vec![1, 2, 3].into())).unwrap();
    assert_eq!(live.next_error(WAIT).await.unwrap().error, ErrorCode::MalformedJson, "binary frames are refused");
    let e = live.request(None, Command::Accept { referral: handoff_protocol::ws::ReferralId(uuid::Uuid::new_v4()) }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MissingIdempotencyKey));
    // Foreign streams and referrals look like unknown ones.
    let foreign = live.subscribe(StreamId::Practice(to), 0).await.unwrap_err();
    let unknown = live.subscribe(StreamId::Practice(handoff_protocol::PracticeId(uuid::Uuid::new_v4())), 0).await.unwrap_err();
    assert_eq!(foreign.code(), Some(ErrorCode::NotFound));
    assert_eq!(foreign.to_string(), unknown.to_string());

    // Idempotency: a replay acts once; a different command under the same key is refused.
    let (new, _) = w.moa.prepare_referral(w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Idem"), &[]).await.unwrap();
    let key = handoff_protocol::ws::IdemKey(uuid::Uuid::new_v4());
    let (dup1, a1) = live.request(Some(key), Command::SendReferral { referral: new.clone() }).await.unwrap();
    let (dup2, a2) = live.request(Some(key), Command::SendReferral { referral: new.clone() }).await.unwrap();
    assert_eq!((dup1, dup2), (false, true));
    assert_eq!(a1, a2);
    let e = live.request(Some(key), Command::Cancel { referral: new.id }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::IdempotencyConflict));
    assert_eq!(w.moa.referrals(w.referring.id).await.unwrap().len(), 1, "the referral exists once");
    // The same id with a fresh key: a conflict, not a second referral.
    let e = live.command(Command::SendReferral { referral: new.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Conflict));

    // Commands on a referral of someone else.
    let mut stranger = srv.client();
    stranger.register_confirmed("stranger@else.example", "S", PASSWORD).await.unwrap();
    let slive = stranger.live().await.unwrap();
    let e = slive.command(Command::Accept { referral: new.id }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert_eq!(slive.subscribe(StreamId::Referral(new.id), 0).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    let AckBody::ReferralSent { referral, .. } = a1 else { panic!() };
    let r = w.moa.referral(referral).await.unwrap();
    assert_eq!(stranger.referral(referral).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    assert!(stranger.open_referral(&r).await.is_err(), "and it could not decrypt it anyway");

    // An oversized frame closes that socket with 1009; the server stays up.
    let huge = format!(
        r#"{{"id": 9, "cmd": {{"type": "subscribe", "stream": "{}"}}, "pad": "{}"}}"#,
        StreamId::Practice(w.referring.id),
        "x".repeat(300_000)
    );
    live.send_raw(Message::Text(huge.into())).unwrap();
    let closed = live.closed(WAIT).await.unwrap();
    assert_eq!(closed.0, handoff_protocol::ws::close::TOO_BIG);
    let again = w.moa.live().await.unwrap();
    again.subscribe(StreamId::Practice(w.referring.id), 0).await.unwrap();

    // An attachment over the limit.
    let blob = handoff_protocol::ws::BlobId(uuid::Uuid::new_v4());
    let r = w
        .moa
        .raw("POST", &PutBlob::path(&blob), Some("application/octet-stream"), vec![0u8; handoff_protocol::ws::MAX_BLOB + 1])
        .await
        .unwrap();
    assert_eq!((r.status, r.error().unwrap().error), (413, ErrorCode::PayloadTooLarge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_needs_a_session_and_a_known_version() {
    use tokio_tungstenite::tungstenite::Error;
    let srv = TestServer::start(None);
    let url = format!("{}/ws", srv.url().replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let mut a = srv.client();
    a.register_confirmed("v@clinic.example", "V", PASSWORD).await.unwrap();
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{url}?v=99").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", a.token().unwrap()).parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    // A page on another site cannot open a socket with the user's session.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", a.token().unwrap()).parse().unwrap());
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // The server's own origin is fine.
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", a.token().unwrap()).parse().unwrap());
    let own = srv.url();
    req.headers_mut().insert("origin", own.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("same-origin socket");
}

/// Sends one raw HTTP/1.1 request and reads the reply until the server closes
/// the connection: (status, error code of the JSON body).
async fn raw_http(srv: &TestServer, request: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = srv.url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.expect("the server answers and closes").unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON error: {text:?}"));
    (status, v["error"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_that_are_not_a_websocket_handshake_to_ws_are_refused_with_json_errors() {
    let srv = TestServer::start(None);
    let mut a = srv.client();
    a.register_confirmed("u@clinic.example", "U", PASSWORD).await.unwrap();
    let token = a.token().unwrap();
    let upgrade = |path: &str, extra: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        )
    };
    let bearer = format!("Authorization: Bearer {token}\r\n");
    // No session: 401, before anything else is looked at.
    assert_eq!(raw_http(&srv, upgrade(WS_PATH, "Sec-WebSocket-Version: 13\r\n")).await, (401, "unauthenticated".into()));
    // A session cookie is as good as a bearer token; an unknown one is not.
    assert_eq!(
        raw_http(&srv, upgrade(WS_PATH, "Sec-WebSocket-Version: 13\r\nCookie: other=1; handoff_session=nope\r\n")).await,
        (401, "unauthenticated".into())
    );
    // Not version 13 of the protocol: 422 invalid_body.
    assert_eq!(raw_http(&srv, upgrade(WS_PATH, &format!("Sec-WebSocket-Version: 8\r\n{bearer}"))).await, (422, "invalid_body".into()));
    // An upgrade anywhere but /ws: 404, the App's own answer for an unknown route.
    assert_eq!(raw_http(&srv, upgrade(GetMe::PATH, &format!("Sec-WebSocket-Version: 13\r\n{bearer}"))).await, (404, "no_route".into()));
    // Unknown query fields: 422, as for any route.
    assert_eq!(
        raw_http(&srv, upgrade(&format!("{WS_PATH}?v=1&x=2"), &format!("Sec-WebSocket-Version: 13\r\n{bearer}"))).await,
        (422, "validation_failed".into())
    );
    // A plain GET /ws (no upgrade headers) reaches the App: 401 without a session, 422 invalid_body with one.
    assert_eq!(raw_http(&srv, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await, (401, "unauthenticated".into()));
    assert_eq!(
        raw_http(&srv, format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{bearer}\r\n")).await,
        (422, "invalid_body".into())
    );
    // The session cookie opens a socket (what a browser sends).
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}/ws", srv.url().replacen("http", "ws", 1)).into_client_request().unwrap();
    req.headers_mut().insert("cookie", format!("a=b; handoff_session={token}").parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.expect("a socket with the session cookie");
    assert_eq!(resp.status().as_u16(), 101);
    use futures_util::StreamExt as _;
    let hello = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""), "{hello:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_event() {
    let mut srv = crate::harness::ProcessServer::start().await;
    let w = world_at(&srv.url(), |e| srv.grant_staff(e), 1).await;
    let to = w.specialists[0].id;
    let live = w.moa.live().await.unwrap();
    let ack = w.moa.send_referral(&live, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Crash"), &[]).await.unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let r = w.moa.referral(rid).await.unwrap();
    // Seal the burst up front so it goes out as fast as the socket takes it.
    let mut burst = Vec::new();
    for i in 0..600 {
        burst.push(w.moa.seal_message(&r, &format!("burst {i}")).await.unwrap());
    }
    let live = std::sync::Arc::new(live);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for m in burst {
        let (live, acked) = (live.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let id = m.id;
            if live.command(Command::PostMessage { referral: rid, message: m }).await.is_ok() {
                acked.lock().unwrap().push(id);
            }
        }));
    }
    // Kill once a good share is acknowledged, with more still in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 100 {
        assert!(std::time::Instant::now() < deadline, "the burst did not get going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    srv.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<_> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 100 && acked.len() < 600, "killed mid-burst ({} acked)", acked.len());

    srv.restart().await;
    let mut again = Client::new(srv.url());
    again.login(&w.moa_account.email, PASSWORD).await.unwrap();
    let mut l = again.live().await.unwrap();
    let stream = StreamId::Referral(rid);
    let head = l.subscribe(stream, 0).await.unwrap();
    let stored = drain(&mut l, stream, head).await;
    let ids: Vec<_> = stored
        .iter()
        .filter_map(|p| match &p.event {
            Event::MessagePosted { message, .. } => Some(message.id),
            _ => None,
        })
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event stored twice");
    let lost: Vec<_> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    assert_eq!(stored.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>(), "dense seqs after recovery");
}

async fn live_actors(url: &str) -> (u64, u64) {
    let h: serde_json::Value = reqwest::get(format!("{url}/healthz")).await.unwrap().json().await.unwrap();
    (h["live_practices"].as_u64().unwrap(), h["live_referrals"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actors_passivate_and_come_back_from_the_store() {
    let srv = TestServer::start_with(None, |c| c.actor_idle_secs = 1);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let moa = w.moa.live().await.unwrap();
    let ack = w.moa.send_referral(&moa, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Idle"), &[]).await.unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let hist = w.spec.live().await.unwrap();
    hist.subscribe(StreamId::Referral(rid), 0).await.unwrap();
    let (p, r) = live_actors(&srv.url()).await;
    assert!(p >= 1 && r == 1, "active: {p} practice actors, {r} referral actors");
    drop(hist);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while live_actors(&srv.url()).await != (0, 0) {
        assert!(std::time::Instant::now() < deadline, "actors did not passivate: {:?}", live_actors(&srv.url()).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Reactivated on demand, with the state and history from the store.
    moa.command(Command::Cancel { referral: rid }).await.unwrap();
    let mut again = w.spec.live().await.unwrap();
    let head = again.subscribe(StreamId::Referral(rid), 0).await.unwrap();
    assert_eq!(head, 2);
    let evs = drain(&mut again, StreamId::Referral(rid), head).await;
    assert!(matches!(evs[1].event, Event::StatusChanged { status: Status::Cancelled, .. }));
    let e = moa.command(Command::Cancel { referral: rid }).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidTransition), "the reactivated actor knows it was cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_gap_is_replayed_in_pages_without_tripping_the_buffer() {
    let srv = TestServer::start_with(None, |c| c.ws_outgoing_buffer = 600);
    let w = world(&srv, 1).await;
    let to = w.specialists[0].id;
    let moa = std::sync::Arc::new(w.moa.live().await.unwrap());
    let ack = w.moa.send_referral(&moa, w.referring.id, To::Practice(to), routing("arrhythmia"), &content("Pages"), &[]).await.unwrap();
    let AckBody::ReferralSent { referral: rid, .. } = ack else { panic!() };
    let r = w.moa.referral(rid).await.unwrap();
    let m = w.moa.seal_message(&r, "page filler").await.unwrap();
    let n = handoff_protocol::ws::MAX_REPLAY as usize * 2 + 37;
    let results = futures_util::future::join_all((0..n).map(|_| {
        let (moa, m) = (moa.clone(), m.clone());
        async move { moa.command(Command::PostMessage { referral: rid, message: m }).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok));
    let inbox = StreamId::Practice(to);
    let mut back = w.spec.live().await.unwrap();
    let head = back.subscribe(inbox, 0).await.unwrap();
    assert_eq!(head, n as u64 + 1);
    let all = drain(&mut back, inbox, head).await;
    assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>(), "every event once, in order, across pages");
    assert!(back.close_info().is_none(), "the socket was not dropped as a slow consumer");
    // And then live.
    moa.command(Command::PostMessage { referral: rid, message: m }).await.unwrap();
    assert_eq!(back.wait_for(inbox, WAIT, |_| true).await.unwrap().seq, head + 1);
}
