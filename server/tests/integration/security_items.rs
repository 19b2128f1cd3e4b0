//! Items added to a referral after it was sent (thread messages, the
//! rejection note, added attachments) are sealed under fresh item keys
//! wrapped to both practices' current epoch keys: a member removed since,
//! who kept the referral's `R`, every old epoch key and their MLS state,
//! reads none of them even if the ciphertext leaks.

use std::time::Duration;

use handoff_client::Client;
use handoff_client::referrals::{File, To};
use handoff_crypto::item::{Item, ItemKey, SealedItem};
use handoff_crypto::mls::{MlsStore, MlsUser};
use handoff_crypto::referral::ReferralKey;
use handoff_protocol::api::{GetBlob, GetReferralKeys};
use handoff_protocol::v1::Role;
use handoff_protocol::ws::{AckBody, Event, RejectReason, StreamId};
use handoff_protocol::{ErrorCode, PracticeId};

use handoff_testkit::{content, routing};

use crate::harness::{PASSWORD, TestServer, world};

const WAIT: Duration = Duration::from_secs(20);

/// Invites `email` to `p` and registers them through the invite (mail goes to the data folder).
async fn join(srv: &TestServer, admin: &Client, p: PracticeId, email: &str) -> Client {
    admin.invite(p, email, Role::Member).await.unwrap();
    let token = srv.folder_invite_token(email).await;
    let mut c = srv.client();
    c.register(email, email, PASSWORD, Some(&token)).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_cannot_read_items_added_after_removal_to_an_earlier_referral() {
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
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

    // A referral sent while Carol is in: she opens it and keeps its R.
    let moa_live = w.moa.live().await.unwrap();
    let ack =
        w.moa.send_referral(&moa_live, w.referring.id, To::Practice(p.id), routing("arrhythmia"), &content("Early Patient"), &[]).await;
    let AckBody::ReferralSent { referral: rid, .. } = ack.unwrap() else { panic!("not sent") };
    let sent = carol.referral(rid).await.unwrap();
    assert_eq!(carol.open_referral(&sent).await.unwrap().patient.name, "Early Patient");
    let kept_r: ReferralKey = carol.referral_key(&sent).await.unwrap();
    // Everything else she ever had: every epoch key, and her whole MLS state.
    for e in 0..=2 {
        carol.practice_key_at(p.id, e).await.unwrap();
    }
    let kept_keys = carol.held_practice_keys();
    assert_eq!(kept_keys.len(), 3);
    let kept_state = carol.mls_user().unwrap().store().to_bytes().unwrap();

    // The admin removes her: the practice first, then the group, by one commit.
    w.spec.remove_member(p.id, carol.user_id().unwrap()).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(p.id).await.unwrap(), Some(3));
    bob.mls_sync(p.id).await.unwrap();
    assert_eq!(carol.referral(rid).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    // Nor may she ask for its parties' current keys (nor may anyone outside the referral).
    assert_eq!(carol.call::<GetReferralKeys>(&rid, &()).await.unwrap_err().code(), Some(ErrorCode::NotFound));
    let keys = bob.call::<GetReferralKeys>(&rid, &()).await.unwrap();
    let epochs: Vec<(PracticeId, u64)> = keys.practices.iter().map(|k| (k.practice, k.public_key.epoch)).collect();
    assert!(epochs.contains(&(p.id, 3)) && epochs.iter().any(|(x, _)| *x == w.referring.id), "{epochs:?}");

    // After the removal, on that earlier referral: the referring practice posts
    // a thread message and adds an attachment; the specialist practice rejects with a note.
    let r_now = w.moa.referral(rid).await.unwrap();
    w.moa.post_message(&moa_live, &r_now, "Holter results attached").await.unwrap();
    let holter = File { name: "holter.pdf".into(), media_type: "application/pdf".into(), bytes: vec![9u8; 70_000] };
    w.moa.add_attachment(&moa_live, &r_now, &holter).await.unwrap();
    let spec_live = w.spec.live().await.unwrap();
    w.spec.reject(&spec_live, &w.spec.referral(rid).await.unwrap(), RejectReason::AnotherSpecialist, "Refer to Dr. Rhythm").await.unwrap();

    // The leaked ciphertext: the referral's stream as a current member reads it, and the blob.
    let mut live = bob.live().await.unwrap();
    live.subscribe(StreamId::Referral(rid), 0).await.unwrap();
    let mut message = None;
    let mut attachment = None;
    let mut note = None;
    while message.is_none() || attachment.is_none() || note.is_none() {
        let e = live.wait_for(StreamId::Referral(rid), WAIT, |_| true).await.expect("the referral's events");
        match e.event {
            Event::MessagePosted { message: m, by, .. } => message = Some((m, by)),
            Event::AttachmentAdded { attachment: a, .. } => attachment = Some(a),
            Event::StatusChanged { note: Some(n), .. } => note = Some(n),
            _ => {}
        }
    }
    let ((message, author), attachment, note) = (message.unwrap(), attachment.unwrap(), note.unwrap());
    let blob = bob.download_octets::<GetBlob>(&attachment.blob).await.unwrap();
    let author_pub = w.moa.user_keys(author).await.unwrap().sign_pub;

    // R opens none of them.
    assert!(
        kept_r.open_message(rid, message.id, author_pub.as_slice(), message.body.as_slice(), message.signature.as_slice()).is_err(),
        "R opened a thread message posted after the removal"
    );
    assert!(kept_r.open_attachment_meta(attachment.blob, attachment.meta.as_slice()).is_err(), "R opened an added attachment's name");
    assert!(kept_r.open_attachment(attachment.blob, &blob).is_err(), "R opened an added attachment");
    assert!(kept_r.open_note(rid, note.as_slice()).is_err(), "R opened the rejection note");

    // Each item's key is wrapped to both practices' current epochs, and no
    // epoch key she kept (nor the one her restored MLS state gives) opens a wrap.
    let restored = MlsUser::new(
        carol.user_id().unwrap(),
        &carol.identity().unwrap().secrets,
        MlsStore::from_bytes(&kept_state).unwrap(),
        Default::default(),
    );
    let mut every_key = kept_keys.clone();
    every_key.push(restored.epoch_key(p.id).unwrap());
    let items = [
        (message.body.as_slice(), Item::Message(message.id)),
        (attachment.meta.as_slice(), Item::Attachment(attachment.blob)),
        (note.as_slice(), Item::Note),
    ];
    for (bytes, item) in items {
        let sealed = SealedItem::parse(bytes).unwrap();
        assert_eq!(sealed.wrap_for(p.id).map(|w| w.epoch), Some(3), "{item:?} is wrapped to the specialist's current epoch");
        assert!(sealed.wrap_for(w.referring.id).is_some(), "{item:?} is wrapped to the referring practice");
        for wrap in &sealed.wraps {
            for k in &every_key {
                assert!(ItemKey::unwrap_with(rid, item, wrap, k).is_err(), "epoch {} opened {item:?}", k.epoch());
            }
        }
    }

    // A current member of each practice opens all of them.
    let latest = bob.referral(rid).await.unwrap();
    for c in [&bob, &w.spec, &w.moa] {
        assert_eq!(c.open_message(&latest, author, &message).await.unwrap().text, "Holter results attached");
        let (meta, bytes) = c.download(&latest, &attachment).await.unwrap();
        assert_eq!((meta.name.as_str(), bytes), ("holter.pdf", holter.bytes.clone()));
        assert_eq!(c.open_note(&latest, &note).await.unwrap(), "Refer to Dr. Rhythm");
    }
    // And what was sealed before the removal, under R, still opens for them.
    assert_eq!(bob.open_referral(&latest).await.unwrap().patient.name, "Early Patient");
}
