//! Vendor-blindness, proven on the bytes: after a full scenario, nothing the
//! server stored (database, WAL, mail folder) contains a password, a kit word
//! sequence, a private key, a password KEK, a practice key of any epoch
//! (granted or from MLS) or plaintext patient data.

use base64::Engine as _;
use handoff_protocol::api::{Endpoint as _, Prelogin};
use handoff_protocol::v1::{PracticeKind, Role};

use handoff_testkit::{World, content, moa_account, routing};

use handoff_testkit::RegisterConfirmed as _;

use crate::harness::{PASSWORD, TestServer, all_bytes, contains, world_with};

fn encodings(secret: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let std = base64::engine::general_purpose::STANDARD.encode(secret);
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![secret.to_vec(), b64.into_bytes(), std.into_bytes(), hex.into_bytes()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bytes_hold_no_secrets() {
    // No SMTP: the mail folder under the data directory is scanned too.
    let srv = TestServer::start_with(None, |c| c.smtp_url = None);
    let mut a = srv.client();
    let kit_a = a.register_confirmed("lee@clinic.example", "Dr. Lee", PASSWORD).await.unwrap();
    let p = a.create_practice("Privacy Cardiology", PracticeKind::Specialist, Some("cardiology"), Some("fraser"), vec![]).await.unwrap();
    a.invite(p.id, "kim@clinic.example", Role::Member).await.unwrap();
    // Wait for the invite .eml, and take the token from it.
    let token = srv.folder_invite_token("kim@clinic.example").await;
    let mut b = srv.client();
    let kit_b = b.register("kim@clinic.example", "Kim", "kim's own long password", Some(&token)).await.unwrap();
    a.complete_pending_grants(p.id).await.unwrap();
    let key = b.practice_key(p.id).await.unwrap();
    let mut b2 = srv.client();
    b2.recover("kim@clinic.example", &kit_b, "kim's newer long password").await.unwrap();

    // Secrets the server must never have seen.
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("password A".into(), PASSWORD.as_bytes().to_vec()),
        ("password B".into(), b"kim's own long password".to_vec()),
        ("password B2".into(), b"kim's newer long password".to_vec()),
        ("kit A".into(), kit_a.join(" ").into_bytes()),
        ("kit B".into(), kit_b.join(" ").into_bytes()),
        ("kit A words 1-3".into(), kit_a[..3].join(" ").into_bytes()),
        ("kit B words 1-3".into(), kit_b[..3].join(" ").into_bytes()),
        ("kit A concatenated".into(), kit_a.concat().into_bytes()),
    ];
    for (who, c) in [("A", &a), ("B", &b2)] {
        let raw = c.identity().unwrap().secrets.expose_for_tests();
        secrets.push((format!("{who} signing key"), raw[..32].to_vec()));
        secrets.push((format!("{who} hpke seed"), raw[32..].to_vec()));
    }
    secrets.push(("practice key".into(), key.expose_for_tests().to_vec()));
    // The password KEKs: derive them as the clients did.
    for (email, pw) in [("lee@clinic.example", PASSWORD), ("kim@clinic.example", "kim's newer long password")] {
        let salt = srv
            .client()
            .raw("POST", Prelogin::PATH, Some("application/json"), serde_json::json!({"email": email}).to_string().into_bytes())
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&salt.body).unwrap();
        let salt = handoff_protocol::B64::decode(v["salt"].as_str().unwrap()).unwrap();
        let k = handoff_crypto::PasswordKeys::derive(pw, salt.as_slice()).unwrap();
        secrets.push((format!("KEK of {email}"), k.kek.to_vec()));
        // The auth key is stored only as an Argon2id hash, never raw.
        secrets.push((format!("auth key of {email}"), k.auth_key.to_vec()));
    }

    // Stop the server so every byte is on disk, then read everything.
    let mut srv = srv;
    srv.server.take().expect("running").stop();
    let files = all_bytes(srv.data_dir());
    assert!(files.iter().any(|(p, _)| p.ends_with("handoff.db")), "the database is scanned");
    assert!(files.iter().any(|(p, _)| p.extension().is_some_and(|e| e == "eml")), "the mail folder is scanned");
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert!(total > 10_000, "there is data to scan ({total} bytes)");
    for (path, bytes) in &files {
        for (name, secret) in &secrets {
            for enc in encodings(secret) {
                assert!(!contains(bytes, &enc), "{name} found in {}", path.display());
            }
        }
    }
    // Sanity: the scan does find things that are stored (so it would catch a leak).
    let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(contains(&all, b"lee@clinic.example"));
    assert!(contains(&all, b.identity().unwrap().me.keys.wrapped_by_kit.as_slice()));
}

/// The hub scenario, then every stored byte: no patient field in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bytes_hold_no_patient_data() {
    use handoff_client::referrals::{File, To};
    use handoff_protocol::ws::{AckBody, Command, RejectReason};

    let smtp = crate::harness::Smtp::start();
    let mut srv = TestServer::start(Some(&smtp));
    let w = world_with(&srv, World::builder().moa(moa_account().email("moa@family.example")).specialists(2)).await;
    w.moa.set_email_on_status(w.referring.id, true).await.unwrap();
    // Both specialist practices move onto MLS and add a second member by commit,
    // so the store holds commits, welcomes, key packages, history links and
    // sealed MLS states too; the referral is wrapped to an MLS epoch key.
    let nurse_token = {
        w.spec.invite(w.specialists[0].id, "nurse@cardio.example", Role::Member).await.unwrap();
        smtp.invite_token("nurse@cardio.example").await
    };
    let mut nurse = srv.client();
    nurse.register("nurse@cardio.example", "Nurse", PASSWORD, Some(&nurse_token)).await.unwrap();
    nurse.mls_publish_key_packages(2).await.unwrap();
    w.spec.mls_sync(w.specialists[0].id).await.unwrap();
    assert_eq!(w.spec.mls_reconcile(w.specialists[0].id).await.unwrap(), Some(2));
    nurse.mls_sync(w.specialists[0].id).await.unwrap();
    w.spec.mls_sync(w.specialists[1].id).await.unwrap();
    let moa = w.moa.live().await.unwrap();
    let spec = w.spec.live().await.unwrap();
    let patient = content("Zebediah Quintrell-Okafor");
    let scan_file = File {
        name: "echo-zebediah.pdf".into(),
        media_type: "application/pdf".into(),
        bytes: b"ECHO REPORT: LVEF 35 percent, severe MR".repeat(100),
    };
    let AckBody::ReferralSent { referral, .. } = w
        .moa
        .send_referral(&moa, w.referring.id, To::ChooseForMe, routing("heart-failure"), &patient, std::slice::from_ref(&scan_file))
        .await
        .unwrap()
    else {
        panic!()
    };
    let r = w.spec.referral(referral).await.unwrap();
    assert!(r.to_key.epoch >= 1, "wrapped to an MLS epoch key");
    let rkey = w.spec.referral_key(&r).await.unwrap();
    for p in &w.specialists {
        for e in 0..=w.spec.practice(p.id).await.unwrap().public_key.epoch {
            w.spec.practice_key_at(p.id, e).await.unwrap();
        }
    }
    let epoch_keys = w.spec.held_practice_keys();
    assert_eq!(epoch_keys.len(), 5, "epochs 0-2 of one practice and 0-1 of the other");
    spec.command(Command::MarkOpened { referral }).await.unwrap();
    w.spec.post_message(&spec, &r, "Please send the 2023 angiogram for Mr Quintrell-Okafor").await.unwrap();
    w.moa
        .add_attachment(
            &moa,
            &r,
            &File { name: "angiogram-2023.txt".into(), media_type: "text/plain".into(), bytes: b"LAD 70 percent stenosis".to_vec() },
        )
        .await
        .unwrap();
    w.spec.reject(&spec, &r, RejectReason::WrongCategory, "Valve clinic takes severe MR cases").await.unwrap();
    smtp.wait_for("moa@family.example", &r.number).await;
    drop((moa, spec));
    srv.server.take().expect("running").stop();

    let fields: Vec<(&str, Vec<u8>)> = vec![
        ("name", patient.patient.name.clone().into_bytes()),
        ("surname", b"Quintrell-Okafor".to_vec()),
        ("date of birth", patient.patient.date_of_birth.clone().into_bytes()),
        ("health number", patient.patient.health_number.clone().into_bytes()),
        ("phone", patient.patient.phone.clone().into_bytes()),
        ("address", patient.patient.address.clone().into_bytes()),
        ("reason", patient.reason.clone().into_bytes()),
        ("clinical details", b"Holter showed runs of SVT".to_vec()),
        ("attachment body", b"LVEF 35 percent".to_vec()),
        ("attachment name", b"echo-zebediah".to_vec()),
        ("late attachment", b"LAD 70 percent".to_vec()),
        ("late attachment name", b"angiogram-2023".to_vec()),
        ("thread message", b"send the 2023 angiogram".to_vec()),
        ("rejection note", b"Valve clinic".to_vec()),
        ("referral key", rkey.expose_for_tests().to_vec()),
    ];
    let epoch_key_names: Vec<String> = epoch_keys.iter().map(|k| format!("epoch {} key", k.epoch())).collect();
    let mut fields = fields;
    for (k, n) in epoch_keys.iter().zip(&epoch_key_names) {
        fields.push((n.as_str(), k.expose_for_tests().to_vec()));
    }
    let mut files = all_bytes(srv.data_dir());
    files.extend(all_bytes(smtp.dir.path()));
    let stored: usize = files.iter().filter(|(p, _)| p.to_string_lossy().contains("handoff.db")).map(|(_, b)| b.len()).sum();
    assert!(stored > 50_000, "the database and its WAL hold the referral ({stored} bytes)");
    for (path, bytes) in &files {
        for (what, needle) in &fields {
            for enc in encodings(needle) {
                assert!(!contains(bytes, &enc), "{what} found in {}", path.display());
            }
        }
    }
    // The scan can see what is stored: the referral number and routing metadata are there.
    let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(contains(&all, r.number.as_bytes()));
    assert!(contains(&all, b"heart-failure"));
}
