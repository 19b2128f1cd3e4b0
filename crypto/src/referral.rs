//! Referral encryption (ARCHITECTURE.md, "Referral encryption as built").
//!
//! The sender makes a random content key `R`. Demographics, reason and
//! clinical details ([`ReferralContent`]), attachments (chunked AEAD), thread
//! messages and rejection notes are sealed under `R`, each with associated data
//! that binds it to the referral and its role. `R` is wrapped with HPKE to the
//! receiving practice's epoch public key and to the sending practice's. Thread
//! messages are signed by their author with Ed25519.
//!
//! What is added to a referral after it was sent (thread messages, the
//! rejection note, added attachments) is sealed under its own item key
//! instead ([`crate::item`]), so that a member removed since cannot read it
//! with the `R` they kept. `R`'s item methods here open items stored before
//! item keys existed.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use handoff_protocol::ws::{BlobId, MessageId, ReferralId};
use handoff_protocol::{PracticeId, UnixMillis};

use crate::keys::{UserSecrets, hpke_seal, verify};
use crate::practice::PracticeKey;
use crate::{CryptoError, hkdf32, random_array, seal};

/// Attachment plaintext chunk size.
pub const CHUNK: usize = 64 * 1024;
const SEALED_CHUNK: usize = CHUNK + 1 + 24 + 16;

/// Patient demographics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Demographics {
    /// Full name.
    pub name: String,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Sex as recorded.
    pub sex: String,
    /// Provincial health number.
    pub health_number: String,
    /// The patient's phone number, as the referrer wrote it.
    pub phone: String,
    /// The patient's home address.
    pub address: String,
}

/// Everything about the patient in a referral. Never leaves the client in plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReferralContent {
    /// The patient's demographics.
    pub patient: Demographics,
    /// Reason for referral.
    pub reason: String,
    /// Clinical details.
    pub clinical_details: String,
    /// Who sent a free referral (no account): read by the receiving practice
    /// only, since the server sees nothing of the sender but their email.
    /// `None` for a practice's referral, whose sender is its member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_sender: Option<FreeSender>,
}

/// Who is sending a free referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SenderRole {
    /// A medical office assistant or administrator, for a referring provider.
    #[default]
    Moa,
    /// The referring provider themselves.
    Provider,
}

/// The free sender's details, sealed inside the referral's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FreeSender {
    /// MOA/admin or the provider.
    pub role: SenderRole,
    /// The sender's name.
    pub name: String,
    /// The verified email address updates go to.
    pub email: String,
    /// The referring provider's name (the sender's, for a provider).
    pub provider_name: String,
    /// The referring provider's MSP number (digits).
    pub provider_msp: String,
    /// The clinic's name; may be empty.
    pub clinic_name: String,
    /// The clinic's phone number.
    pub clinic_phone: String,
    /// The clinic's address.
    pub clinic_address: String,
}

/// An attachment's name and type, sealed beside its blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    /// File name.
    pub name: String,
    /// Media type.
    pub media_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
}

/// A referral's content key `R`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct ReferralKey([u8; 32]);

impl std::fmt::Debug for ReferralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReferralKey(..)")
    }
}

fn wrap_info(referral: ReferralId, practice: PracticeId, epoch: u64) -> Vec<u8> {
    let mut m = b"handoff referral key v1".to_vec();
    m.extend_from_slice(referral.as_bytes());
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m
}

fn aad(referral: ReferralId, role: &[u8]) -> Vec<u8> {
    let mut m = b"handoff referral v1 ".to_vec();
    m.extend_from_slice(role);
    m.extend_from_slice(referral.as_bytes());
    m
}

/// The bytes an author signs for a thread message.
pub fn message_signing_bytes(referral: ReferralId, message: MessageId, body: &[u8]) -> Vec<u8> {
    let mut m = b"handoff thread message v1".to_vec();
    m.extend_from_slice(referral.as_bytes());
    m.extend_from_slice(message.as_bytes());
    m.extend_from_slice(body);
    m
}

/// A decrypted, verified thread message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBody {
    /// The text.
    pub text: String,
    /// When the author wrote it (client clock).
    pub written_at: UnixMillis,
}

impl ReferralKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_array()?))
    }

    /// The raw key, so tests can scan stored data for leaks. Never send it anywhere.
    pub fn expose_for_tests(&self) -> [u8; 32] {
        self.0
    }

    /// Wraps `R` to a practice's published HPKE public key for `epoch`.
    pub fn wrap_to(
        &self,
        referral: ReferralId,
        practice: PracticeId,
        epoch: u64,
        practice_hpke_pub: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        hpke_seal(practice_hpke_pub, &wrap_info(referral, practice, epoch), &self.0)
    }

    /// Opens a wrap with the practice key it was made for.
    pub fn unwrap_with(referral: ReferralId, practice: PracticeId, key: &PracticeKey, sealed: &[u8]) -> Result<Self, CryptoError> {
        let mut raw = key.open_sealed(&wrap_info(referral, practice, key.epoch()), sealed)?;
        let r: Result<[u8; 32], _> = raw.as_slice().try_into();
        raw.zeroize();
        Ok(Self(r.map_err(|_| CryptoError::Malformed("referral key"))?))
    }

    /// Seals the content.
    pub fn seal_content(&self, referral: ReferralId, content: &ReferralContent) -> Result<Vec<u8>, CryptoError> {
        let mut json = serde_json::to_vec(content).map_err(|_| CryptoError::Malformed("content"))?;
        let out = seal::seal(&self.0, &aad(referral, b"content"), &json);
        json.zeroize();
        out
    }

    /// Opens the content.
    pub fn open_content(&self, referral: ReferralId, sealed: &[u8]) -> Result<ReferralContent, CryptoError> {
        let mut json = seal::open(&self.0, &aad(referral, b"content"), sealed)?;
        let c = serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed("content"));
        json.zeroize();
        c
    }

    /// Seals a rejection note.
    pub fn seal_note(&self, referral: ReferralId, note: &str) -> Result<Vec<u8>, CryptoError> {
        seal::seal(&self.0, &aad(referral, b"note"), note.as_bytes())
    }

    /// Opens a rejection note.
    pub fn open_note(&self, referral: ReferralId, sealed: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(seal::open(&self.0, &aad(referral, b"note"), sealed)?).map_err(|_| CryptoError::Malformed("note"))
    }

    /// Seals and signs a thread message. Returns `(body, signature)`.
    pub fn seal_message(
        &self,
        referral: ReferralId,
        id: MessageId,
        author: &UserSecrets,
        body: &MessageBody,
    ) -> Result<(Vec<u8>, [u8; 64]), CryptoError> {
        let json = serde_json::to_vec(body).map_err(|_| CryptoError::Malformed("message"))?;
        let mut role = b"message".to_vec();
        role.extend_from_slice(id.as_bytes());
        let sealed = seal::seal(&self.0, &aad(referral, &role), &json)?;
        let sig = author.sign(&message_signing_bytes(referral, id, &sealed));
        Ok((sealed, sig))
    }

    /// Verifies the author's signature, then opens a thread message.
    pub fn open_message(
        &self,
        referral: ReferralId,
        id: MessageId,
        author_sign_pub: &[u8],
        sealed: &[u8],
        signature: &[u8],
    ) -> Result<MessageBody, CryptoError> {
        verify(author_sign_pub, &message_signing_bytes(referral, id, sealed), signature)?;
        let mut role = b"message".to_vec();
        role.extend_from_slice(id.as_bytes());
        let json = seal::open(&self.0, &aad(referral, &role), sealed)?;
        serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed("message"))
    }

    fn attachment_key(&self, blob: BlobId) -> [u8; 32] {
        let mut label = b"handoff attachment key".to_vec();
        label.extend_from_slice(blob.as_bytes());
        hkdf32(&self.0, &label)
    }

    /// Seals an attachment's name and type.
    pub fn seal_attachment_meta(&self, blob: BlobId, meta: &AttachmentMeta) -> Result<Vec<u8>, CryptoError> {
        let json = serde_json::to_vec(meta).map_err(|_| CryptoError::Malformed("attachment meta"))?;
        seal::seal(&self.attachment_key(blob), b"meta", &json)
    }

    /// Opens an attachment's name and type.
    pub fn open_attachment_meta(&self, blob: BlobId, sealed: &[u8]) -> Result<AttachmentMeta, CryptoError> {
        let json = seal::open(&self.attachment_key(blob), b"meta", sealed)?;
        serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed("attachment meta"))
    }

    /// Encrypts a file in 64 KiB chunks. Each chunk's associated data carries
    /// its index and whether it is the last, so chunks cannot be reordered,
    /// dropped or truncated without detection.
    pub fn seal_attachment(&self, blob: BlobId, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_chunks(&self.attachment_key(blob), plaintext)
    }

    /// Decrypts a file sealed by [`seal_attachment`](Self::seal_attachment).
    pub fn open_attachment(&self, blob: BlobId, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_chunks(&self.attachment_key(blob), sealed)
    }
}

/// Seals a file in [`CHUNK`]-sized chunks under `key`, each bound to its index
/// and to whether it is the last.
pub(crate) fn seal_chunks(key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let chunks: Vec<&[u8]> = if plaintext.is_empty() { vec![&[][..]] } else { plaintext.chunks(CHUNK).collect() };
    let n = chunks.len();
    let mut out = Vec::with_capacity(plaintext.len() + n * (SEALED_CHUNK - CHUNK));
    for (i, c) in chunks.into_iter().enumerate() {
        out.extend_from_slice(&seal::seal(key, &chunk_aad(i, i + 1 == n), c)?);
    }
    Ok(out)
}

/// Opens a file sealed by [`seal_chunks`].
pub(crate) fn open_chunks(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let chunks: Vec<&[u8]> = sealed.chunks(SEALED_CHUNK).collect();
    let n = chunks.len();
    if n == 0 {
        return Err(CryptoError::Malformed("attachment"));
    }
    let mut out = Vec::with_capacity(sealed.len());
    for (i, c) in chunks.into_iter().enumerate() {
        out.extend_from_slice(&seal::open(key, &chunk_aad(i, i + 1 == n), c)?);
    }
    Ok(out)
}

fn chunk_aad(index: usize, last: bool) -> Vec<u8> {
    let mut a = b"chunk".to_vec();
    a.extend_from_slice(&(index as u64).to_be_bytes());
    a.push(u8::from(last));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid() -> ReferralId {
        ReferralId(uuid::Uuid::from_u128(7))
    }

    #[test]
    fn wraps_open_only_for_the_right_practice_key() {
        let r = ReferralKey::generate().unwrap();
        let pk = PracticeKey::generate(0).unwrap();
        let practice = PracticeId(uuid::Uuid::from_u128(1));
        let w = r.wrap_to(rid(), practice, 0, &pk.hpke_public()).unwrap();
        assert_eq!(ReferralKey::unwrap_with(rid(), practice, &pk, &w).unwrap(), r);
        assert!(ReferralKey::unwrap_with(rid(), PracticeId(uuid::Uuid::from_u128(2)), &pk, &w).is_err());
        assert!(ReferralKey::unwrap_with(rid(), practice, &PracticeKey::generate(0).unwrap(), &w).is_err());
    }

    #[test]
    fn content_notes_and_messages_round_trip_and_bind() {
        let r = ReferralKey::generate().unwrap();
        let c = ReferralContent { reason: "palpitations".into(), ..Default::default() };
        let sealed = r.seal_content(rid(), &c).unwrap();
        assert_eq!(r.open_content(rid(), &sealed).unwrap(), c);
        assert!(r.open_content(ReferralId(uuid::Uuid::from_u128(8)), &sealed).is_err());
        assert!(r.open_note(rid(), &sealed).is_err(), "a content box is not a note");
        let author = UserSecrets::generate().unwrap();
        let mid = MessageId(uuid::Uuid::from_u128(3));
        let body = MessageBody { text: "hello".into(), written_at: 1 };
        let (b, sig) = r.seal_message(rid(), mid, &author, &body).unwrap();
        assert_eq!(r.open_message(rid(), mid, &author.public().sign_pub, &b, &sig).unwrap(), body);
        let other = UserSecrets::generate().unwrap();
        assert_eq!(r.open_message(rid(), mid, &other.public().sign_pub, &b, &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn attachments_detect_truncation_and_reordering() {
        let r = ReferralKey::generate().unwrap();
        let blob = BlobId(uuid::Uuid::from_u128(5));
        let data: Vec<u8> = (0..(CHUNK * 2 + 100)).map(|i| (i % 251) as u8).collect();
        let sealed = r.seal_attachment(blob, &data).unwrap();
        assert_eq!(r.open_attachment(blob, &sealed).unwrap(), data);
        assert!(r.open_attachment(blob, &sealed[..SEALED_CHUNK * 2]).is_err(), "dropping the last chunk is detected");
        let mut swapped = sealed[SEALED_CHUNK..SEALED_CHUNK * 2].to_vec();
        swapped.extend_from_slice(&sealed[..SEALED_CHUNK]);
        swapped.extend_from_slice(&sealed[SEALED_CHUNK * 2..]);
        assert!(r.open_attachment(blob, &swapped).is_err());
        assert_eq!(r.open_attachment(blob, &r.seal_attachment(blob, b"").unwrap()).unwrap(), b"");
        assert!(r.open_attachment(BlobId(uuid::Uuid::from_u128(6)), &sealed).is_err());
    }
}
