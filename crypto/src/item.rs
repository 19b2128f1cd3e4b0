//! Item keys: what is added to a referral after it was sent.
//!
//! A referral's content is sealed under its key `R`, which is wrapped to both
//! practices' epoch keys of the moment it was sent. A member removed later
//! still holds `R`, so anything added afterwards must not depend on it. Each
//! thread message, rejection note and added attachment therefore gets a fresh
//! 32-byte item key `I`: the item is sealed under `I` (XChaCha20-Poly1305,
//! associated data naming the referral, the item and its wraps), and `I` is
//! HPKE-wrapped to each party practice's *current* epoch public key, each wrap
//! naming its practice and epoch. A member removed before the item was added
//! holds none of those epoch keys, so `R` and every key they kept open nothing.
//!
//! A sealed item is self-describing: `2 || n || n × (practice(16) || epoch(8,
//! BE) || len(2, BE) || HPKE wrap) || box`, where `box` is the usual
//! `1 || nonce || ciphertext`. Items of the first format (sealed under `R`
//! alone) start with `1`, the sealed box's own version byte, and still open
//! with `R` ([`OpenKey::Referral`]). An added attachment carries its wraps in
//! its sealed name and type; its blob's chunks are sealed under a key derived
//! from the same `I`.

use zeroize::{Zeroize, ZeroizeOnDrop};

use handoff_protocol::PracticeId;
use handoff_protocol::ws::{BlobId, MessageId, ReferralId};

use crate::keys::{UserSecrets, hpke_seal, verify};
use crate::practice::PracticeKey;
use crate::referral::{AttachmentMeta, MessageBody, ReferralKey, message_signing_bytes, open_chunks, seal_chunks};
use crate::{CryptoError, hkdf32, random_array, seal};

/// The first byte of an item sealed under its own item key.
pub const ITEM_FORMAT: u8 = 2;
/// Most wraps one sealed item carries (two parties, with room to spare).
pub const MAX_WRAPS: usize = 8;
/// Largest HPKE wrap of an item key, bytes (`enc(32) || key(32) || tag(16)` is 80).
const MAX_WRAP_LEN: usize = 256;

/// Which item of a referral a seal belongs to: bound into its associated data
/// and its wraps, so an item cannot be passed off as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A thread message.
    Message(MessageId),
    /// The rejection note.
    Note,
    /// An attachment added after sending (its name and type, and its blob).
    Attachment(BlobId),
}

impl Item {
    fn label(self) -> Vec<u8> {
        let mut m = Vec::with_capacity(26);
        match self {
            Item::Message(id) => {
                m.extend_from_slice(b"message");
                m.extend_from_slice(id.as_bytes());
            }
            Item::Note => m.extend_from_slice(b"note"),
            Item::Attachment(blob) => {
                m.extend_from_slice(b"attachment");
                m.extend_from_slice(blob.as_bytes());
            }
        }
        m
    }
}

/// A practice's HPKE public key of one epoch, as an item key is wrapped to it.
/// The caller has checked it: its own practice's key comes from its group, a
/// counterpart's is verified against its signer's account key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The practice.
    pub practice: PracticeId,
    /// The epoch of the key.
    pub epoch: u64,
    /// The practice's HPKE public key for that epoch.
    pub hpke_pub: [u8; 32],
}

impl Recipient {
    /// The recipient for a practice key this client holds.
    pub fn of(practice: PracticeId, key: &PracticeKey) -> Self {
        Self { practice, epoch: key.epoch(), hpke_pub: key.hpke_public() }
    }
}

/// One wrap of an item key, as a sealed item carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemWrap {
    /// The practice it is wrapped to.
    pub practice: PracticeId,
    /// The epoch of that practice's key.
    pub epoch: u64,
    /// HPKE `enc || ciphertext`.
    pub sealed: Vec<u8>,
}

/// An item of the item-key format, parsed: its wraps and its sealed box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedItem<'a> {
    /// The wraps of its item key, one per practice.
    pub wraps: Vec<ItemWrap>,
    header: &'a [u8],
    sealed: &'a [u8],
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], CryptoError> {
    if rest.len() < n {
        return Err(CryptoError::Malformed("sealed item"));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

impl<'a> SealedItem<'a> {
    /// Whether `bytes` are of the item-key format; if not, they are sealed
    /// under the referral's `R` (the first format).
    pub fn is_item_sealed(bytes: &[u8]) -> bool {
        bytes.first() == Some(&ITEM_FORMAT)
    }

    /// Parses an item of the item-key format.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CryptoError> {
        let mut rest = bytes;
        let &[format, n] = take(&mut rest, 2)? else {
            return Err(CryptoError::Malformed("sealed item"));
        };
        if format != ITEM_FORMAT || n == 0 || usize::from(n) > MAX_WRAPS {
            return Err(CryptoError::Malformed("sealed item"));
        }
        let mut wraps = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let practice: [u8; 16] = take(&mut rest, 16)?.try_into().map_err(|_| CryptoError::Malformed("sealed item"))?;
            let epoch: [u8; 8] = take(&mut rest, 8)?.try_into().map_err(|_| CryptoError::Malformed("sealed item"))?;
            let len: [u8; 2] = take(&mut rest, 2)?.try_into().map_err(|_| CryptoError::Malformed("sealed item"))?;
            let len = usize::from(u16::from_be_bytes(len));
            if len > MAX_WRAP_LEN {
                return Err(CryptoError::Malformed("sealed item"));
            }
            let sealed = take(&mut rest, len)?.to_vec();
            wraps.push(ItemWrap { practice: PracticeId::from_bytes(practice), epoch: u64::from_be_bytes(epoch), sealed });
        }
        let (header, sealed) = bytes.split_at(bytes.len() - rest.len());
        Ok(Self { wraps, header, sealed })
    }

    /// The wrap made for `practice`, if the item has one.
    pub fn wrap_for(&self, practice: PracticeId) -> Option<&ItemWrap> {
        self.wraps.iter().find(|w| w.practice == practice)
    }
}

fn wrap_info(referral: ReferralId, item: Item, practice: PracticeId, epoch: u64) -> Vec<u8> {
    let mut m = b"handoff item key v2".to_vec();
    m.extend_from_slice(referral.as_bytes());
    m.extend_from_slice(&item.label());
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m
}

fn aad(referral: ReferralId, item: Item, header: &[u8]) -> Vec<u8> {
    let mut m = b"handoff item v2 ".to_vec();
    m.extend_from_slice(&item.label());
    m.extend_from_slice(referral.as_bytes());
    m.extend_from_slice(header);
    m
}

/// One item's key `I`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct ItemKey([u8; 32]);

impl std::fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ItemKey(..)")
    }
}

impl ItemKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_array()?))
    }

    /// The raw key, so tests can scan stored data for leaks. Never send it anywhere.
    pub fn expose_for_tests(&self) -> [u8; 32] {
        self.0
    }

    /// Opens the wrap of an item's key with the practice key of the wrap's epoch.
    pub fn unwrap_with(referral: ReferralId, item: Item, wrap: &ItemWrap, key: &PracticeKey) -> Result<Self, CryptoError> {
        if key.epoch() != wrap.epoch {
            return Err(CryptoError::Malformed("item key wrap epoch"));
        }
        let mut raw = key.open_sealed(&wrap_info(referral, item, wrap.practice, wrap.epoch), &wrap.sealed)?;
        let k: Result<[u8; 32], _> = raw.as_slice().try_into();
        raw.zeroize();
        Ok(Self(k.map_err(|_| CryptoError::Malformed("item key"))?))
    }

    /// Seals `plaintext` as `item`: the wraps to every recipient, then the box.
    fn seal(&self, referral: ReferralId, item: Item, to: &[Recipient], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let n = u8::try_from(to.len()).ok().filter(|n| *n > 0 && usize::from(*n) <= MAX_WRAPS);
        let n = n.ok_or(CryptoError::Malformed("item recipients"))?;
        let mut out = vec![ITEM_FORMAT, n];
        for r in to {
            let wrap = hpke_seal(&r.hpke_pub, &wrap_info(referral, item, r.practice, r.epoch), &self.0)?;
            let len = u16::try_from(wrap.len()).map_err(|_| CryptoError::Malformed("item key wrap"))?;
            out.extend_from_slice(r.practice.as_bytes());
            out.extend_from_slice(&r.epoch.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&wrap);
        }
        let sealed = seal::seal(&self.0, &aad(referral, item, &out), plaintext)?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an item sealed by [`seal`](Self::seal) under this key.
    fn open(&self, referral: ReferralId, item: Item, bytes: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let parsed = SealedItem::parse(bytes)?;
        seal::open(&self.0, &aad(referral, item, parsed.header), parsed.sealed)
    }

    /// Seals and signs a thread message, wrapping its key to `to`. Returns
    /// `(body, signature)`; the signature covers the whole body, wraps included.
    pub fn seal_message(
        &self,
        referral: ReferralId,
        id: MessageId,
        to: &[Recipient],
        author: &UserSecrets,
        body: &MessageBody,
    ) -> Result<(Vec<u8>, [u8; 64]), CryptoError> {
        let mut json = serde_json::to_vec(body).map_err(|_| CryptoError::Malformed("message"))?;
        let sealed = self.seal(referral, Item::Message(id), to, &json);
        json.zeroize();
        let sealed = sealed?;
        let sig = author.sign(&message_signing_bytes(referral, id, &sealed));
        Ok((sealed, sig))
    }

    /// Seals a rejection note, wrapping its key to `to`.
    pub fn seal_note(&self, referral: ReferralId, to: &[Recipient], note: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(referral, Item::Note, to, note.as_bytes())
    }

    /// Seals an added attachment's name and type, wrapping its key to `to`.
    pub fn seal_attachment_meta(
        &self,
        referral: ReferralId,
        blob: BlobId,
        to: &[Recipient],
        meta: &AttachmentMeta,
    ) -> Result<Vec<u8>, CryptoError> {
        let json = serde_json::to_vec(meta).map_err(|_| CryptoError::Malformed("attachment meta"))?;
        self.seal(referral, Item::Attachment(blob), to, &json)
    }

    fn attachment_key(&self, referral: ReferralId, blob: BlobId) -> [u8; 32] {
        let mut label = b"handoff item attachment key v2".to_vec();
        label.extend_from_slice(referral.as_bytes());
        label.extend_from_slice(blob.as_bytes());
        hkdf32(&self.0, &label)
    }

    /// Encrypts an added attachment's file in 64 KiB chunks (as
    /// [`ReferralKey::seal_attachment`] does) under a key derived from `I`.
    pub fn seal_attachment(&self, referral: ReferralId, blob: BlobId, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_chunks(&self.attachment_key(referral, blob), plaintext)
    }
}

/// The key one item of a referral opens with: `R` for items of the first
/// format, or the item's own key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenKey {
    /// The referral's key (items sealed before item keys; the referral's own attachments).
    Referral(ReferralKey),
    /// The item's own key.
    Item(ItemKey),
}

impl OpenKey {
    /// Verifies the author's signature, then opens a thread message.
    pub fn open_message(
        &self,
        referral: ReferralId,
        id: MessageId,
        author_sign_pub: &[u8],
        sealed: &[u8],
        signature: &[u8],
    ) -> Result<MessageBody, CryptoError> {
        match self {
            OpenKey::Referral(r) => r.open_message(referral, id, author_sign_pub, sealed, signature),
            OpenKey::Item(k) => {
                verify(author_sign_pub, &message_signing_bytes(referral, id, sealed), signature)?;
                let mut json = k.open(referral, Item::Message(id), sealed)?;
                let body = serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed("message"));
                json.zeroize();
                body
            }
        }
    }

    /// Opens a rejection note.
    pub fn open_note(&self, referral: ReferralId, sealed: &[u8]) -> Result<String, CryptoError> {
        match self {
            OpenKey::Referral(r) => r.open_note(referral, sealed),
            OpenKey::Item(k) => String::from_utf8(k.open(referral, Item::Note, sealed)?).map_err(|_| CryptoError::Malformed("note")),
        }
    }

    /// Opens an attachment's name and type.
    pub fn open_attachment_meta(&self, referral: ReferralId, blob: BlobId, sealed: &[u8]) -> Result<AttachmentMeta, CryptoError> {
        match self {
            OpenKey::Referral(r) => r.open_attachment_meta(blob, sealed),
            OpenKey::Item(k) => {
                let json = k.open(referral, Item::Attachment(blob), sealed)?;
                serde_json::from_slice(&json).map_err(|_| CryptoError::Malformed("attachment meta"))
            }
        }
    }

    /// Decrypts an attachment's file.
    pub fn open_attachment(&self, referral: ReferralId, blob: BlobId, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            OpenKey::Referral(r) => r.open_attachment(blob, sealed),
            OpenKey::Item(k) => open_chunks(&k.attachment_key(referral, blob), sealed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid() -> ReferralId {
        ReferralId(uuid::Uuid::from_u128(7))
    }

    fn p(n: u8) -> PracticeId {
        PracticeId::from_bytes([n; 16])
    }

    /// Epochs 0..=2 of a practice, linked as the key history links them.
    fn epochs() -> Vec<PracticeKey> {
        (0..=2).map(|e| PracticeKey::generate(e).unwrap()).collect()
    }

    #[test]
    fn a_removed_member_with_r_and_old_epoch_keys_cannot_open_items_sealed_after_removal() {
        // The referral was sent at epoch 1 of the receiver: R is wrapped to it.
        let (sender, receiver) = (p(1), p(2));
        let recv = epochs();
        let send_key = PracticeKey::generate(4).unwrap();
        let r = ReferralKey::generate().unwrap();
        let r_wrap = r.wrap_to(rid(), receiver, 1, &recv[1].hpke_public()).unwrap();
        // What the removed member kept: R (opened from the wrap) and epochs 0 and 1.
        let kept_r = ReferralKey::unwrap_with(rid(), receiver, &recv[1], &r_wrap).unwrap();
        let kept_keys = [recv[0].clone(), recv[1].clone()];
        // Removed: the receiver is at epoch 2. Items added now are wrapped to both current keys.
        let to = [Recipient::of(sender, &send_key), Recipient::of(receiver, &recv[2])];
        let author = UserSecrets::generate().unwrap();
        let mid = MessageId(uuid::Uuid::from_u128(3));
        let blob = BlobId(uuid::Uuid::from_u128(5));
        let body = MessageBody { text: "Echo booked".into(), written_at: 1 };
        let i_msg = ItemKey::generate().unwrap();
        let (m, sig) = i_msg.seal_message(rid(), mid, &to, &author, &body).unwrap();
        let note = ItemKey::generate().unwrap().seal_note(rid(), &to, "See Dr. Rhythm").unwrap();
        let i_att = ItemKey::generate().unwrap();
        let meta = AttachmentMeta { name: "ecg.pdf".into(), media_type: "application/pdf".into(), size: 3 };
        let sealed_meta = i_att.seal_attachment_meta(rid(), blob, &to, &meta).unwrap();
        let file = i_att.seal_attachment(rid(), blob, b"ECG").unwrap();

        // R opens none of them.
        let with_r = OpenKey::Referral(kept_r);
        assert!(with_r.open_message(rid(), mid, &author.public().sign_pub, &m, &sig).is_err());
        assert!(with_r.open_note(rid(), &note).is_err());
        assert!(with_r.open_attachment_meta(rid(), blob, &sealed_meta).is_err());
        assert!(with_r.open_attachment(rid(), blob, &file).is_err());
        // Nor any epoch key kept, whatever epoch it claims.
        for (bytes, item) in [(&m, Item::Message(mid)), (&note, Item::Note), (&sealed_meta, Item::Attachment(blob))] {
            let parsed = SealedItem::parse(bytes).unwrap();
            for wrap in &parsed.wraps {
                for k in &kept_keys {
                    assert!(ItemKey::unwrap_with(rid(), item, wrap, k).is_err());
                    let claimed = ItemWrap { epoch: k.epoch(), ..wrap.clone() };
                    assert!(ItemKey::unwrap_with(rid(), item, &claimed, k).is_err());
                }
            }
        }

        // Each party's current key opens everything.
        for (practice, key) in [(sender, &send_key), (receiver, &recv[2])] {
            let open = |bytes: &[u8], item| {
                let parsed = SealedItem::parse(bytes).unwrap();
                let wrap = parsed.wrap_for(practice).unwrap();
                assert_eq!(wrap.epoch, key.epoch());
                OpenKey::Item(ItemKey::unwrap_with(rid(), item, wrap, key).unwrap())
            };
            assert_eq!(open(&m, Item::Message(mid)).open_message(rid(), mid, &author.public().sign_pub, &m, &sig).unwrap(), body);
            assert_eq!(open(&note, Item::Note).open_note(rid(), &note).unwrap(), "See Dr. Rhythm");
            let k = open(&sealed_meta, Item::Attachment(blob));
            assert_eq!(k.open_attachment_meta(rid(), blob, &sealed_meta).unwrap(), meta);
            assert_eq!(k.open_attachment(rid(), blob, &file).unwrap(), b"ECG");
        }
    }

    #[test]
    fn items_are_bound_to_their_referral_item_and_wraps() {
        let key = PracticeKey::generate(3).unwrap();
        let to = [Recipient::of(p(2), &key)];
        let i = ItemKey::generate().unwrap();
        let note = i.seal_note(rid(), &to, "note").unwrap();
        assert!(SealedItem::is_item_sealed(&note));
        let parsed = SealedItem::parse(&note).unwrap();
        assert_eq!(parsed.wraps.len(), 1);
        assert!(parsed.wrap_for(p(1)).is_none(), "a receiver-only item has no wrap for anyone else");
        let wrap = parsed.wrap_for(p(2)).unwrap();
        assert_eq!(ItemKey::unwrap_with(rid(), Item::Note, wrap, &key).unwrap(), i);
        // The wrap is bound to the referral and the item.
        let other = ReferralId(uuid::Uuid::from_u128(8));
        assert!(ItemKey::unwrap_with(other, Item::Note, wrap, &key).is_err());
        assert!(ItemKey::unwrap_with(rid(), Item::Attachment(BlobId(uuid::Uuid::from_u128(1))), wrap, &key).is_err());
        // The box is bound to the referral, the item and the wraps it carries.
        let k = OpenKey::Item(i.clone());
        assert!(k.open_note(other, &note).is_err());
        assert!(k.open_attachment_meta(rid(), BlobId(uuid::Uuid::from_u128(1)), &note).is_err());
        let mut tampered = note.clone();
        tampered[2] ^= 1; // the first wrap's practice id
        assert_eq!(k.open_note(rid(), &tampered), Err(CryptoError::Decrypt));
        // Truncated or malformed headers are errors, never panics.
        for cut in 0..(2 + 16 + 8 + 2 + 4) {
            assert!(SealedItem::parse(&note[..cut]).is_err(), "cut at {cut}");
        }
        assert!(SealedItem::parse(&[ITEM_FORMAT, 0]).is_err());
        assert!(SealedItem::parse(&[ITEM_FORMAT, 200]).is_err());
        assert!(i.seal_note(rid(), &[], "to nobody").is_err());
    }

    #[test]
    fn items_of_the_first_format_still_open_with_r() {
        let r = ReferralKey::generate().unwrap();
        let note = r.seal_note(rid(), "old note").unwrap();
        assert!(!SealedItem::is_item_sealed(&note));
        assert_eq!(OpenKey::Referral(r.clone()).open_note(rid(), &note).unwrap(), "old note");
        let blob = BlobId(uuid::Uuid::from_u128(5));
        let file = r.seal_attachment(blob, b"old file").unwrap();
        assert_eq!(OpenKey::Referral(r).open_attachment(rid(), blob, &file).unwrap(), b"old file");
    }

    #[test]
    fn a_wrap_is_no_larger_than_the_parser_allows() {
        let key = PracticeKey::generate(0).unwrap();
        let note = ItemKey::generate().unwrap().seal_note(rid(), &[Recipient::of(p(1), &key)], "x").unwrap();
        let parsed = SealedItem::parse(&note).unwrap();
        assert!(parsed.wraps.iter().all(|w| w.sealed.len() <= MAX_WRAP_LEN));
    }
}
