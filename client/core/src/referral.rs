//! Practices and referrals as every client seals them before sending, and
//! the items added to a referral later (thread messages, the rejection note,
//! added attachments), each sealed under its own item key wrapped to both
//! practices' current epoch keys ([`handoff_crypto::item`]) and opened with
//! the reader's practice key of the wrap's epoch.

use handoff_crypto::item::{Item, ItemKey, OpenKey, Recipient, SealedItem};
use handoff_crypto::practice::verify_practice_public_key;
use handoff_crypto::referral::{AttachmentMeta, MessageBody, ReferralKey};
use handoff_crypto::{CryptoError, PracticeKey, ReferralContent};
use handoff_protocol::api::{GetPracticeKey, GetReferralKeys, GetUserKeys};
use handoff_protocol::v1::{CreatePracticeRequest, DirectoryEntry, Intake, KeyGrant, PracticeKind, PracticePublicKey};
use handoff_protocol::ws::{
    Attachment, BlobId, Destination, MessageId, NewReferral, NewSender, Referral, ReferralId, Routing, ThreadMessage, WrappedKey,
};
use handoff_protocol::{B64, PracticeId};

use crate::{Mls, Transport, Who};

/// What a new practice is.
#[derive(Clone, Debug)]
pub struct PracticeSpec {
    /// The practice's display name.
    pub name: String,
    /// Referring or specialist.
    pub kind: PracticeKind,
    /// Specialty slug (specialists).
    pub specialty: Option<String>,
    /// Region slug (specialists).
    pub region: Option<String>,
    /// Categories accepted (specialists).
    pub intake: Vec<Intake>,
}

/// The request creating practice `id` with a fresh epoch-0 key made here: its
/// HPKE public key signed by the creator, and the key granted to the creator.
/// Returns the key too, so the creator holds it at once.
pub fn new_practice(who: Who<'_>, id: PracticeId, spec: PracticeSpec) -> Result<(CreatePracticeRequest, PracticeKey), CryptoError> {
    let key = PracticeKey::generate(0)?;
    let req = CreatePracticeRequest {
        id,
        name: spec.name,
        kind: spec.kind,
        specialty: spec.specialty,
        region: spec.region,
        intake: spec.intake,
        public_key: PracticePublicKey {
            epoch: 0,
            hpke_pub: B64(key.hpke_public().to_vec()),
            signer: who.id,
            signature: B64(key.sign_public(id, who.secrets).to_vec()),
        },
        creator_grant: KeyGrant { epoch: 0, sealed: B64(key.grant_to(id, who.id, &who.secrets.public().hpke_pub)?), granted_by: who.id },
    };
    Ok((req, key))
}

/// Seals a new referral: content under `r`, and `r` wrapped to the sending
/// practice's current key (`from`; `None` for a free sender, who keeps no
/// wrap) and to each target's published key. The caller
/// has verified every target's key signature (see
/// [`crate::account::verify_directory_entry`]).
#[allow(clippy::too_many_arguments)] // each is one part of the referral; a struct would only rename them
pub fn seal_referral(
    id: ReferralId,
    r: &ReferralKey,
    from: Option<(PracticeId, &PracticeKey)>,
    targets: &[DirectoryEntry],
    destination: Destination,
    routing: Routing,
    content: &ReferralContent,
    attachments: Vec<Attachment>,
) -> Result<NewReferral, CryptoError> {
    let from = match from {
        Some((practice, key)) => NewSender::Practice {
            practice,
            key: WrappedKey { practice, epoch: key.epoch(), sealed: B64(r.wrap_to(id, practice, key.epoch(), &key.hpke_public())?) },
        },
        None => NewSender::Free,
    };
    let to_keys = targets
        .iter()
        .map(|e| {
            Ok(WrappedKey {
                practice: e.id,
                epoch: e.public_key.epoch,
                sealed: B64(r.wrap_to(id, e.id, e.public_key.epoch, e.public_key.hpke_pub.as_slice())?),
            })
        })
        .collect::<Result<Vec<_>, CryptoError>>()?;
    Ok(NewReferral { id, from, destination, routing, content: B64(r.seal_content(id, content)?), to_keys, attachments })
}

/// The practice a client acts for on `r`, among its practices `mine`
/// (the receiver first, as a practice could be both).
pub fn my_side(r: &Referral, mine: &[PracticeId]) -> Option<PracticeId> {
    std::iter::once(r.to_practice).chain(r.from_practice()).find(|p| mine.contains(p))
}

/// The wrap of `R` made for `side` when the referral was sent.
fn r_wrap(r: &Referral, side: PracticeId) -> Option<&WrappedKey> {
    r.key_for(side)
}

/// The referral's key `R`, unwrapped with `side`'s key of the epoch it was wrapped to.
pub async fn referral_key<T: Transport>(mls: &Mls, t: &T, who: Who<'_>, r: &Referral, side: PracticeId) -> Result<ReferralKey, T::Error> {
    let wrap = r_wrap(r, side).ok_or_else(|| T::protocol("this referral involves none of our practices".into()))?;
    let key = mls.key_at(t, who, wrap.practice, wrap.epoch).await?;
    Ok(ReferralKey::unwrap_with(r.id, wrap.practice, &key, wrap.sealed.as_slice())?)
}

/// `side`'s current epoch key, from its group (or its grant before MLS).
pub async fn current_key<T: Transport>(mls: &Mls, t: &T, who: Who<'_>, side: PracticeId) -> Result<PracticeKey, T::Error> {
    let epoch = t.call::<GetPracticeKey>(&side, &()).await?.public_key.epoch;
    mls.key_at(t, who, side, epoch).await
}

/// Whom an item added to `r` now is wrapped to: `side`'s current key from its
/// own group, and each other party's current published key, its signature
/// checked against the publisher's account key (an unsigned or forged key is
/// an error, never used) and never older than the epoch `R` was wrapped to.
/// A party practice that no longer exists gets no wrap.
pub async fn item_recipients<T: Transport>(
    mls: &Mls,
    t: &T,
    who: Who<'_>,
    r: &Referral,
    side: PracticeId,
) -> Result<Vec<Recipient>, T::Error> {
    let mut to = vec![Recipient::of(side, &current_key(mls, t, who, side).await?)];
    let published = t.call::<GetReferralKeys>(&r.id, &()).await?;
    for party in r.from_practice().into_iter().chain([r.to_practice]) {
        if party == side || to.iter().any(|x| x.practice == party) {
            continue;
        }
        let Some(entry) = published.practices.iter().find(|k| k.practice == party) else { continue };
        let pk = &entry.public_key;
        let signer = t.call::<GetUserKeys>(&pk.signer, &()).await?;
        verify_practice_public_key(party, pk.epoch, pk.hpke_pub.as_slice(), signer.sign_pub.as_slice(), pk.signature.as_slice())?;
        if r_wrap(r, party).is_some_and(|w| pk.epoch < w.epoch) {
            return Err(T::protocol(format!("the server offered an older key of practice {party} than the referral's")));
        }
        let hpke_pub: [u8; 32] = pk.hpke_pub.as_slice().try_into().map_err(|_| T::protocol("a practice key is not 32 bytes".into()))?;
        to.push(Recipient { practice: party, epoch: pk.epoch, hpke_pub });
    }
    Ok(to)
}

/// The key that opens `item` of `r` for `side`: its item key, unwrapped with
/// `side`'s key of the wrap's epoch, or `R` for an item sealed before item
/// keys (and for the attachments sent with the referral).
pub async fn open_key<T: Transport>(
    mls: &Mls,
    t: &T,
    who: Who<'_>,
    r: &Referral,
    side: PracticeId,
    item: Item,
    sealed: &[u8],
) -> Result<OpenKey, T::Error> {
    if !SealedItem::is_item_sealed(sealed) {
        return Ok(OpenKey::Referral(referral_key(mls, t, who, r, side).await?));
    }
    let parsed = SealedItem::parse(sealed)?;
    let wrap = parsed.wrap_for(side).ok_or_else(|| T::protocol("this item is not wrapped to our practice".into()))?;
    let key = mls.key_at(t, who, side, wrap.epoch).await?;
    Ok(OpenKey::Item(ItemKey::unwrap_with(r.id, item, wrap, &key)?))
}

/// Like [`open_key`] with only the practice keys `mls` already holds (no
/// network, for rendering): `None` if the key of the needed epoch is not
/// held yet; [`open_key`] fetches it.
pub fn held_open_key(mls: &Mls, r: &Referral, side: PracticeId, item: Item, sealed: &[u8]) -> Result<Option<OpenKey>, CryptoError> {
    if !SealedItem::is_item_sealed(sealed) {
        let Some(wrap) = r_wrap(r, side) else { return Err(CryptoError::Malformed("referral side")) };
        let Some(key) = mls.cached_key(wrap.practice, wrap.epoch) else { return Ok(None) };
        return Ok(Some(OpenKey::Referral(ReferralKey::unwrap_with(r.id, wrap.practice, &key, wrap.sealed.as_slice())?)));
    }
    let parsed = SealedItem::parse(sealed)?;
    let wrap = parsed.wrap_for(side).ok_or(CryptoError::Malformed("item without a wrap for our practice"))?;
    let Some(key) = mls.cached_key(side, wrap.epoch) else { return Ok(None) };
    Ok(Some(OpenKey::Item(ItemKey::unwrap_with(r.id, item, wrap, &key)?)))
}

/// A new thread message with id `id`, sealed under a fresh item key wrapped to
/// every party's current key, and signed by its author.
pub async fn seal_message<T: Transport>(
    mls: &Mls,
    t: &T,
    who: Who<'_>,
    r: &Referral,
    side: PracticeId,
    id: MessageId,
    body: &MessageBody,
) -> Result<ThreadMessage, T::Error> {
    let to = item_recipients(mls, t, who, r, side).await?;
    let (body, sig) = ItemKey::generate()?.seal_message(r.id, id, &to, who.secrets, body)?;
    Ok(ThreadMessage { id, body: B64(body), signature: B64(sig.to_vec()) })
}

/// A rejection note sealed under a fresh item key wrapped to every party's
/// current key (the note is written for the referring practice).
pub async fn seal_note<T: Transport>(mls: &Mls, t: &T, who: Who<'_>, r: &Referral, side: PracticeId, note: &str) -> Result<B64, T::Error> {
    let to = item_recipients(mls, t, who, r, side).await?;
    Ok(B64(ItemKey::generate()?.seal_note(r.id, &to, note)?))
}

/// An attachment added to `r` after sending, under a fresh item key wrapped to
/// every party's current key: the sealed file to upload as blob `blob`, and
/// the attachment (its sealed name and type, which carry the wraps) to announce.
#[allow(clippy::too_many_arguments)] // each is one part of the attachment
pub async fn seal_added_attachment<T: Transport>(
    mls: &Mls,
    t: &T,
    who: Who<'_>,
    r: &Referral,
    side: PracticeId,
    blob: BlobId,
    meta: &AttachmentMeta,
    bytes: &[u8],
) -> Result<(Vec<u8>, Attachment), T::Error> {
    let to = item_recipients(mls, t, who, r, side).await?;
    let i = ItemKey::generate()?;
    let sealed = i.seal_attachment(r.id, blob, bytes)?;
    let meta = i.seal_attachment_meta(r.id, blob, &to, meta)?;
    Ok((sealed, Attachment { blob, meta: B64(meta) }))
}
