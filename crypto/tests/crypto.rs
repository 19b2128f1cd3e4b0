//! Properties the privacy model rests on.
use handoff_crypto::{CryptoError, EmergencyKit, PasswordKeys, UserSecrets};

#[test]
fn password_keys_are_deterministic_and_independent() {
    let salt = [7u8; 16];
    let a = PasswordKeys::derive("correct horse battery", &salt).unwrap();
    let b = PasswordKeys::derive("correct horse battery", &salt).unwrap();
    assert_eq!(a.auth_key, b.auth_key);
    assert_eq!(a.kek, b.kek);
    // The value sent to the server is not the KEK.
    assert_ne!(a.auth_key, a.kek);
    let c = PasswordKeys::derive("correct horse batterz", &salt).unwrap();
    assert_ne!(a.auth_key, c.auth_key);
    let d = PasswordKeys::derive("correct horse battery", &[8u8; 16]).unwrap();
    assert_ne!(a.kek, d.kek);
}

#[test]
fn weak_parameters_from_a_server_are_refused() {
    assert_eq!(PasswordKeys::derive_with("pw", &[0; 16], 1024, 2, 1).unwrap_err(), CryptoError::Kdf);
    assert_eq!(PasswordKeys::derive_with("pw", &[0; 16], 19456, 1, 1).unwrap_err(), CryptoError::Kdf);
    assert_eq!(PasswordKeys::derive_with("pw", &[0; 4], 19456, 2, 1).unwrap_err(), CryptoError::Kdf);
}

#[test]
fn kit_round_trips_through_its_words() {
    let kit = EmergencyKit::generate().unwrap();
    let words = kit.words();
    assert_eq!(words.len(), 24);
    let back = EmergencyKit::from_words(&words).unwrap();
    assert_eq!(back, kit);
    // Case and surrounding space are forgiven.
    let shouty: Vec<String> = words.iter().map(|w| format!("  {} ", w.to_uppercase())).collect();
    assert_eq!(EmergencyKit::from_words(&shouty).unwrap(), kit);
}

#[test]
fn kit_errors_name_the_position() {
    let kit = EmergencyKit::generate().unwrap();
    let mut words = kit.words();
    words[6] = "notaword".into();
    assert_eq!(EmergencyKit::from_words(&words).unwrap_err(), CryptoError::KitUnknownWord { position: 7 });
    assert_eq!(EmergencyKit::from_words(&kit.words()[..23]).unwrap_err(), CryptoError::KitWordCount(23));
}

#[test]
fn kit_with_swapped_words_never_yields_the_same_keys() {
    // A swap either breaks the checksum or decodes to a different kit.
    for _ in 0..20 {
        let kit = EmergencyKit::generate().unwrap();
        let mut words = kit.words();
        if words[2] == words[17] {
            continue;
        }
        words.swap(2, 17);
        match EmergencyKit::from_words(&words) {
            Err(e) => assert_eq!(e, CryptoError::KitChecksum),
            Ok(other) => assert_ne!(other.auth_key(), kit.auth_key()),
        }
    }
}

#[test]
fn user_keys_wrap_under_either_kek() {
    let s = UserSecrets::generate().unwrap();
    let pw = PasswordKeys::derive("a long enough password", &[1; 16]).unwrap();
    let kit = EmergencyKit::generate().unwrap();
    let by_pw = s.wrap(&pw.kek).unwrap();
    let by_kit = s.wrap(&kit.kek()).unwrap();
    assert_eq!(UserSecrets::unwrap(&pw.kek, &by_pw).unwrap().public(), s.public());
    assert_eq!(UserSecrets::unwrap(&kit.kek(), &by_kit).unwrap().public(), s.public());
    assert_eq!(UserSecrets::unwrap(&pw.auth_key, &by_pw).unwrap_err(), CryptoError::Decrypt);
    let mut tampered = by_pw.clone();
    let n = tampered.len() - 1;
    tampered[n] ^= 1;
    assert_eq!(UserSecrets::unwrap(&pw.kek, &tampered).unwrap_err(), CryptoError::Decrypt);
    assert!(UserSecrets::unwrap(&pw.kek, &[1, 2, 3]).is_err());
}

#[test]
fn signatures_verify_only_for_the_signed_message() {
    let s = UserSecrets::generate().unwrap();
    let sig = s.sign(b"hello");
    handoff_crypto::keys::verify(&s.public().sign_pub, b"hello", &sig).unwrap();
    assert_eq!(handoff_crypto::keys::verify(&s.public().sign_pub, b"hellp", &sig), Err(CryptoError::BadSignature));
    assert!(handoff_crypto::keys::verify(&[0; 3], b"hello", &sig).is_err());
}
