//! The telehealth waiting room's keys (issue 15).
//!
//! - A room has a random 32-byte **room secret**. Members keep it sealed under
//!   the practice's epoch key (the `sealed_secret` the server stores); patients
//!   get it from the patient link's URL fragment, which browsers never send.
//! - The **room key** is `HKDF-SHA256(ikm = secret, info = "handoff room v1" || room id)`.
//!   Under it, with XChaCha20-Poly1305 and a random nonce, go the check-ins,
//!   the waiting-room messages and the external meeting link. The associated
//!   data is the purpose (`"check-in"`, `"message"`, `"external-link"`) followed
//!   by the room id, so a box of one kind or of one room opens as nothing else.
//! - Each guest makes an ephemeral X25519 key pair ([`GuestKeyPair`]) and puts
//!   its public half inside the sealed check-in. The host seals the
//!   [`Admission`] (the external link, or the built-in call's key) to that key
//!   with HPKE, `info = "handoff admission v1" || room id || guest id`: only
//!   that guest opens it, and since the key came under the room key, the
//!   server cannot substitute its own.
//!
//! Room and guest ids are taken as their UUID bytes (`RoomId::as_bytes`,
//! `GuestId::as_bytes`), like the call module's signalling.

use hpke::{Kem as _, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use handoff_protocol::{B64, PracticeId};

use crate::keys::{Kem, hpke_open, hpke_seal};
use crate::{CryptoError, PracticeKey, random_array, seal};

/// What a box under the room key holds; part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomPurpose {
    /// A guest's check-in ([`CheckInContent`]).
    CheckIn,
    /// A host's message to the waiting room.
    Message,
    /// The room's external meeting link (Zoom, Doxy.me, ...).
    ExternalLink,
}

impl RoomPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::CheckIn => b"check-in",
            Self::Message => b"message",
            Self::ExternalLink => b"external-link",
        }
    }
}

fn secret_aad(practice: PracticeId, room: [u8; 16], epoch: u64) -> Vec<u8> {
    let mut m = b"handoff room secret v1".to_vec();
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&room);
    m.extend_from_slice(&epoch.to_be_bytes());
    m
}

fn admission_info(room: [u8; 16], guest: [u8; 16]) -> Vec<u8> {
    let mut m = b"handoff admission v1".to_vec();
    m.extend_from_slice(&room);
    m.extend_from_slice(&guest);
    m
}

/// A room's secret: 32 random bytes. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RoomSecret([u8; 32]);

impl std::fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

impl RoomSecret {
    /// A fresh random secret (a new room, or a rotated patient link).
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_array()?))
    }

    /// The secret from the bytes of a patient link's fragment.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let b: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed("room secret"))?;
        Ok(Self(b))
    }

    /// The raw bytes, to put in the patient link's URL fragment (and only
    /// there: never in a path, a query, or anything sent to the server).
    pub fn fragment_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Seals the secret under the practice's epoch key, bound to the practice,
    /// the room and the epoch: the `sealed_secret` the server stores.
    pub fn seal_for_practice(&self, practice: PracticeId, room: [u8; 16], key: &PracticeKey) -> Result<Vec<u8>, CryptoError> {
        seal::seal(key.bytes(), &secret_aad(practice, room, key.epoch()), &self.0)
    }

    /// Opens a `sealed_secret` with the practice key of its epoch.
    pub fn open_from_practice(practice: PracticeId, room: [u8; 16], key: &PracticeKey, sealed: &[u8]) -> Result<Self, CryptoError> {
        let mut raw = seal::open(key.bytes(), &secret_aad(practice, room, key.epoch()), sealed)?;
        let out = Self::from_bytes(&raw);
        raw.zeroize();
        out
    }

    /// The room key of `room`.
    pub fn room_key(&self, room: [u8; 16]) -> RoomKey {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, &self.0);
        let mut info = b"handoff room v1".to_vec();
        info.extend_from_slice(&room);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so this cannot fail.
        if hk.expand(&info, &mut key).is_err() {
            unreachable!("HKDF output length is fixed and valid");
        }
        RoomKey { key, room }
    }
}

/// What a guest tells the host at check-in (sealed under the room key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInContent {
    /// The display name the patient typed.
    pub name: String,
    /// Date of birth, if the room asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    /// Reason for the visit, if the room asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The guest's ephemeral X25519 public key: the only key a host seals the admission to.
    pub public_key: B64,
}

/// The room key, derived from the secret and bound to its room. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RoomKey {
    key: [u8; 32],
    #[zeroize(skip)]
    room: [u8; 16],
}

impl std::fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomKey(..)")
    }
}

impl RoomKey {
    fn aad(&self, purpose: RoomPurpose) -> Vec<u8> {
        let mut m = purpose.label().to_vec();
        m.extend_from_slice(&self.room);
        m
    }

    /// The id (UUID bytes) of the room this key belongs to.
    pub fn room(&self) -> [u8; 16] {
        self.room
    }

    /// Seals bytes for `purpose` (random nonce; `version || nonce || ciphertext`).
    pub fn seal(&self, purpose: RoomPurpose, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal::seal(&self.key, &self.aad(purpose), plaintext)
    }

    /// Opens a box sealed for `purpose` in this room; any other purpose, room or key fails.
    pub fn open(&self, purpose: RoomPurpose, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal::open(&self.key, &self.aad(purpose), sealed)
    }

    /// Seals a check-in.
    pub fn seal_check_in(&self, content: &CheckInContent) -> Result<Vec<u8>, CryptoError> {
        let mut json = serde_json::to_vec(content).map_err(|_| CryptoError::Malformed("check-in"))?;
        let out = self.seal(RoomPurpose::CheckIn, &json);
        json.zeroize();
        out
    }

    /// Opens a check-in; its public key must be a 32-byte X25519 key.
    pub fn open_check_in(&self, sealed: &[u8]) -> Result<CheckInContent, CryptoError> {
        let mut json = self.open(RoomPurpose::CheckIn, sealed)?;
        let out = serde_json::from_slice::<CheckInContent>(&json).map_err(|_| CryptoError::Malformed("check-in"));
        json.zeroize();
        let out = out?;
        if out.public_key.as_slice().len() != 32 {
            return Err(CryptoError::Malformed("check-in public key"));
        }
        Ok(out)
    }

    /// Seals a host's message to the waiting room.
    pub fn seal_message(&self, text: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(RoomPurpose::Message, text.as_bytes())
    }

    /// Opens a waiting-room message.
    pub fn open_message(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(RoomPurpose::Message, sealed)?).map_err(|_| CryptoError::Malformed("room message"))
    }

    /// Seals the room's external meeting link (stored in the room's settings).
    pub fn seal_external_link(&self, link: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(RoomPurpose::ExternalLink, link.as_bytes())
    }

    /// Opens the room's external meeting link.
    pub fn open_external_link(&self, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.open(RoomPurpose::ExternalLink, sealed)?).map_err(|_| CryptoError::Malformed("external link"))
    }
}

/// What an admitted guest receives, HPKE-sealed to its ephemeral key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Admission {
    /// Join the clinic's own web-conference software at this link.
    External {
        /// The meeting link.
        link: String,
    },
    /// Join the built-in 1:1 call; its signalling is sealed under this key.
    BuiltIn {
        /// The fresh 32-byte call key.
        call_key: B64,
    },
}

impl std::fmt::Debug for Admission {
    // Never print the link or the call key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::External { .. } => f.write_str("Admission::External(..)"),
            Self::BuiltIn { .. } => f.write_str("Admission::BuiltIn(..)"),
        }
    }
}

impl Admission {
    /// A built-in call admission with a fresh random call key; returns the key too.
    pub fn new_call() -> Result<(Self, [u8; 32]), CryptoError> {
        let key: [u8; 32] = random_array()?;
        Ok((Self::BuiltIn { call_key: B64(key.to_vec()) }, key))
    }

    /// The call key of a built-in admission (32 bytes), `None` for an external one.
    pub fn call_key(&self) -> Option<[u8; 32]> {
        match self {
            Self::BuiltIn { call_key } => call_key.as_slice().try_into().ok(),
            Self::External { .. } => None,
        }
    }

    /// Seals this admission to the guest's public key from its (opened) check-in.
    pub fn seal_to(&self, guest_public: &[u8], room: [u8; 16], guest: [u8; 16]) -> Result<Vec<u8>, CryptoError> {
        let mut json = serde_json::to_vec(self).map_err(|_| CryptoError::Malformed("admission"))?;
        let out = hpke_seal(guest_public, &admission_info(room, guest), &json);
        json.zeroize();
        out
    }
}

/// A guest's ephemeral X25519 key pair, made at check-in. Zeroized on drop.
///
/// It lives only in the patient's tab (the web client keeps its seed in the
/// tab's `sessionStorage` at most, so a reload re-joins with the same check-in).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct GuestKeyPair {
    seed: [u8; 32],
}

impl std::fmt::Debug for GuestKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestKeyPair(..)")
    }
}

impl GuestKeyPair {
    /// A fresh key pair.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self { seed: random_array()? })
    }

    /// Restores a key pair from its seed (see [`seed`](Self::seed)).
    pub fn from_seed(seed: &[u8]) -> Result<Self, CryptoError> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| CryptoError::Malformed("guest key"))?;
        Ok(Self { seed })
    }

    /// The seed, for the tab's own `sessionStorage` only.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The public key, to put in the check-in.
    pub fn public(&self) -> [u8; 32] {
        let (_, pk) = Kem::derive_keypair(&self.seed);
        let mut out = [0u8; 32];
        pk.write_exact(&mut out);
        out
    }

    /// Opens an admission sealed to this key for `guest` in `room`.
    pub fn open_admission(&self, room: [u8; 16], guest: [u8; 16], sealed: &[u8]) -> Result<Admission, CryptoError> {
        let (sk, _) = Kem::derive_keypair(&self.seed);
        let mut json = hpke_open(&sk, &admission_info(room, guest), sealed)?;
        let out = serde_json::from_slice::<Admission>(&json).map_err(|_| CryptoError::Malformed("admission"));
        json.zeroize();
        let out = out?;
        if let Admission::BuiltIn { call_key } = &out
            && call_key.as_slice().len() != 32
        {
            return Err(CryptoError::Malformed("call key"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(n: u8) -> [u8; 16] {
        [n; 16]
    }

    fn check_in(keys: &GuestKeyPair) -> CheckInContent {
        CheckInContent { name: "Ada Patient".into(), dob: Some("1970-01-02".into()), reason: None, public_key: B64(keys.public().to_vec()) }
    }

    #[test]
    fn a_check_in_opens_under_its_room_key_only() {
        let secret = RoomSecret::generate().unwrap();
        let guest = GuestKeyPair::generate().unwrap();
        let sealed = secret.room_key(room(1)).seal_check_in(&check_in(&guest)).unwrap();
        assert_eq!(secret.room_key(room(1)).open_check_in(&sealed).unwrap(), check_in(&guest));
        // Another room id, another secret: nothing opens.
        assert_eq!(secret.room_key(room(2)).open_check_in(&sealed), Err(CryptoError::Decrypt));
        assert_eq!(RoomSecret::generate().unwrap().room_key(room(1)).open_check_in(&sealed), Err(CryptoError::Decrypt));
    }

    #[test]
    fn a_box_of_one_purpose_does_not_open_as_another() {
        let key = RoomSecret::generate().unwrap().room_key(room(1));
        let msg = key.seal_message("The doctor is running 10 minutes late").unwrap();
        assert_eq!(key.open_message(&msg).unwrap(), "The doctor is running 10 minutes late");
        assert_eq!(key.open_external_link(&msg), Err(CryptoError::Decrypt));
        assert_eq!(key.open(RoomPurpose::CheckIn, &msg), Err(CryptoError::Decrypt));
        let link = key.seal_external_link("https://meet.example/abc").unwrap();
        assert_eq!(key.open_external_link(&link).unwrap(), "https://meet.example/abc");
        assert_eq!(key.open_message(&link), Err(CryptoError::Decrypt));
    }

    #[test]
    fn a_tampered_byte_fails_to_open() {
        let key = RoomSecret::generate().unwrap().room_key(room(1));
        let sealed = key.seal_message("hello").unwrap();
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(key.open_message(&t).is_err(), "byte {i} tampered still opened");
        }
        assert_eq!(key.open_message(&sealed[..10]), Err(CryptoError::Malformed("sealed box")));
    }

    #[test]
    fn the_sealed_secret_opens_only_with_its_practice_key_and_room() {
        let (p, r) = (PracticeId::from_bytes([7; 16]), room(1));
        let key = PracticeKey::generate(3).unwrap();
        let secret = RoomSecret::generate().unwrap();
        let sealed = secret.seal_for_practice(p, r, &key).unwrap();
        assert_eq!(RoomSecret::open_from_practice(p, r, &key, &sealed).unwrap(), secret);
        assert!(RoomSecret::open_from_practice(p, room(2), &key, &sealed).is_err());
        assert!(RoomSecret::open_from_practice(PracticeId::from_bytes([8; 16]), r, &key, &sealed).is_err());
        assert!(RoomSecret::open_from_practice(p, r, &PracticeKey::generate(3).unwrap(), &sealed).is_err());
        // The same key bytes at another epoch do not open it either.
        let other_epoch = PracticeKey::from_raw(key.expose_for_tests(), 4);
        assert!(RoomSecret::open_from_practice(p, r, &other_epoch, &sealed).is_err());
    }

    #[test]
    fn an_admission_opens_only_with_the_guests_key_for_that_guest_and_room() {
        let (r, g) = (room(1), [5; 16]);
        let guest = GuestKeyPair::generate().unwrap();
        let other = GuestKeyPair::generate().unwrap();
        let adm = Admission::External { link: "https://meet.example/abc".into() };
        let sealed = adm.seal_to(&guest.public(), r, g).unwrap();
        assert_eq!(guest.open_admission(r, g, &sealed).unwrap(), adm);
        assert_eq!(other.open_admission(r, g, &sealed), Err(CryptoError::Decrypt));
        assert_eq!(guest.open_admission(room(2), g, &sealed), Err(CryptoError::Decrypt));
        assert_eq!(guest.open_admission(r, [6; 16], &sealed), Err(CryptoError::Decrypt));
        let mut t = sealed.clone();
        if let Some(b) = t.last_mut() {
            *b ^= 1;
        }
        assert_eq!(guest.open_admission(r, g, &t), Err(CryptoError::Decrypt));
        // The seed restores the same pair (a reload of the patient's tab).
        assert_eq!(GuestKeyPair::from_seed(&guest.seed()).unwrap().open_admission(r, g, &sealed).unwrap(), adm);
    }

    #[test]
    fn a_built_in_admission_carries_the_call_key() {
        let (r, g) = (room(1), [5; 16]);
        let guest = GuestKeyPair::generate().unwrap();
        let (adm, key) = Admission::new_call().unwrap();
        let opened = guest.open_admission(r, g, &adm.seal_to(&guest.public(), r, g).unwrap()).unwrap();
        assert_eq!(opened.call_key(), Some(key));
        assert_eq!(serde_json::to_value(&opened).unwrap()["mode"], "built_in");
        assert_eq!(Admission::External { link: "x".into() }.call_key(), None);
    }

    #[test]
    fn a_check_in_with_a_wrong_size_public_key_is_refused() {
        let key = RoomSecret::generate().unwrap().room_key(room(1));
        let bad = CheckInContent { name: "x".into(), dob: None, reason: None, public_key: B64(vec![1; 31]) };
        let sealed = key.seal_check_in(&bad).unwrap();
        assert_eq!(key.open_check_in(&sealed), Err(CryptoError::Malformed("check-in public key")));
    }
}
