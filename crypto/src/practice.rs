//! The practice key. Epoch 0 is made by the creator's client and granted to
//! each new member by an existing member's client, sealed with HPKE to the new
//! member's public key. (The MLS issue replaces grant distribution with MLS
//! epochs; the shapes here — an epoch number, a derived HPKE public key, a
//! signature by the publisher — stay.)

use hpke::{Kem as _, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop};

use handoff_protocol::{PracticeId, UserId};

use crate::keys::{Kem, UserSecrets, hpke_open, hpke_seal, verify};
use crate::{CryptoError, hkdf32, random_array};

/// A practice's symmetric key for one epoch.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct PracticeKey {
    key: [u8; 32],
    #[zeroize(skip)]
    epoch: u64,
}

impl std::fmt::Debug for PracticeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PracticeKey(epoch {})", self.epoch)
    }
}

/// The bytes the publisher signs for a practice public key.
pub fn practice_public_key_message(practice: PracticeId, epoch: u64, hpke_pub: &[u8]) -> Vec<u8> {
    let mut m = b"handoff practice public key v1".to_vec();
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(hpke_pub);
    m
}

fn grant_info(practice: PracticeId, epoch: u64, recipient: UserId) -> Vec<u8> {
    let mut m = b"handoff practice key grant v1".to_vec();
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(recipient.as_bytes());
    m
}

/// Associated data of a history link from `epoch` back to epoch `to`
/// (`epoch - 1`, or an earlier one for a re-initialisation's link).
fn history_aad(practice: PracticeId, epoch: u64, to: u64) -> Vec<u8> {
    let mut m = b"handoff key history v1".to_vec();
    m.extend_from_slice(practice.as_bytes());
    m.extend_from_slice(&epoch.to_be_bytes());
    m.extend_from_slice(&to.to_be_bytes());
    m
}

impl PracticeKey {
    /// A fresh random key for `epoch`.
    pub fn generate(epoch: u64) -> Result<Self, CryptoError> {
        Ok(Self { key: random_array()?, epoch })
    }

    /// Wraps key material (the MLS exporter output for `epoch`).
    pub(crate) fn from_raw(key: [u8; 32], epoch: u64) -> Self {
        Self { key, epoch }
    }

    /// The key-history link for this epoch: `prev` (epoch `e - 1`) sealed
    /// under this key (epoch `e`), bound to the practice and both epochs.
    pub fn history_link(&self, practice: PracticeId, prev: &PracticeKey) -> Result<Vec<u8>, CryptoError> {
        if self.epoch == 0 || prev.epoch + 1 != self.epoch {
            return Err(CryptoError::Malformed("history link epochs"));
        }
        crate::seal::seal(&self.key, &history_aad(practice, self.epoch, prev.epoch), &prev.key)
    }

    /// Seals an earlier epoch's key under this one, skipping the epochs in
    /// between: a re-initialisation's link back to the last good epoch (the
    /// skipped, revoked epochs' keys are never reachable from here).
    pub fn history_link_from(&self, practice: PracticeId, earlier: &PracticeKey) -> Result<Vec<u8>, CryptoError> {
        if earlier.epoch >= self.epoch {
            return Err(CryptoError::Malformed("history link epochs"));
        }
        crate::seal::seal(&self.key, &history_aad(practice, self.epoch, earlier.epoch), &earlier.key)
    }

    /// Opens a history link of this epoch that seals epoch `to`'s key (made
    /// by [`history_link`](Self::history_link) when `to` is the epoch before,
    /// by [`history_link_from`](Self::history_link_from) otherwise).
    pub fn open_history_link_to(&self, practice: PracticeId, link: &[u8], to: u64) -> Result<PracticeKey, CryptoError> {
        if to >= self.epoch {
            return Err(CryptoError::Malformed("history link epochs"));
        }
        let mut k = crate::seal::open(&self.key, &history_aad(practice, self.epoch, to), link)?;
        let key: Result<[u8; 32], _> = k.as_slice().try_into();
        k.zeroize();
        Ok(Self { key: key.map_err(|_| CryptoError::Malformed("practice key"))?, epoch: to })
    }

    /// Opens this epoch's history link, giving the key of the epoch before.
    pub fn open_history_link(&self, practice: PracticeId, link: &[u8]) -> Result<PracticeKey, CryptoError> {
        if self.epoch == 0 {
            return Err(CryptoError::Malformed("history link epochs"));
        }
        let mut k = crate::seal::open(&self.key, &history_aad(practice, self.epoch, self.epoch - 1), link)?;
        let key: Result<[u8; 32], _> = k.as_slice().try_into();
        k.zeroize();
        Ok(Self { key: key.map_err(|_| CryptoError::Malformed("practice key"))?, epoch: self.epoch - 1 })
    }

    /// The raw key, for symmetric boxes bound to this epoch (a room's secret).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn hpke_seed(&self) -> [u8; 32] {
        let mut label = b"handoff practice hpke seed".to_vec();
        label.extend_from_slice(&self.epoch.to_be_bytes());
        hkdf32(&self.key, &label)
    }

    /// The practice's HPKE public key for this epoch, derived from the key.
    pub fn hpke_public(&self) -> [u8; 32] {
        let (_, pk) = Kem::derive_keypair(&self.hpke_seed());
        let mut out = [0u8; 32];
        pk.write_exact(&mut out);
        out
    }

    /// Signs the public key as `publisher`; see [`practice_public_key_message`].
    pub fn sign_public(&self, practice: PracticeId, publisher: &UserSecrets) -> [u8; 64] {
        publisher.sign(&practice_public_key_message(practice, self.epoch, &self.hpke_public()))
    }

    /// Seals this key to a member's HPKE public key.
    pub fn grant_to(&self, practice: PracticeId, recipient: UserId, recipient_hpke_pub: &[u8]) -> Result<Vec<u8>, CryptoError> {
        hpke_seal(recipient_hpke_pub, &grant_info(practice, self.epoch, recipient), &self.key)
    }

    /// Opens a grant sealed to `me`.
    pub fn open_grant(practice: PracticeId, epoch: u64, me: UserId, secrets: &UserSecrets, sealed: &[u8]) -> Result<Self, CryptoError> {
        let mut k = secrets.hpke_open(&grant_info(practice, epoch, me), sealed)?;
        let key: Result<[u8; 32], _> = k.as_slice().try_into();
        k.zeroize();
        Ok(Self { key: key.map_err(|_| CryptoError::Malformed("practice key"))?, epoch })
    }

    /// Opens a box sealed to the practice's HPKE public key (e.g. a referral key).
    pub fn open_sealed(&self, info: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (sk, _) = Kem::derive_keypair(&self.hpke_seed());
        hpke_open(&sk, info, sealed)
    }

    /// The raw key bytes, for tests that scan stored data for leaks.
    pub fn expose_for_tests(&self) -> [u8; 32] {
        self.key
    }
}

/// Verifies a published practice public key against the signer's signing key.
pub fn verify_practice_public_key(
    practice: PracticeId,
    epoch: u64,
    hpke_pub: &[u8],
    signer_sign_pub: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    verify(signer_sign_pub, &practice_public_key_message(practice, epoch, hpke_pub), signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::hpke_seal;

    #[test]
    fn grant_round_trip_and_binding() {
        let alice = UserSecrets::generate().unwrap();
        let bob = UserSecrets::generate().unwrap();
        let (p, a, b) = (PracticeId::from_bytes([1; 16]), UserId::from_bytes([2; 16]), UserId::from_bytes([3; 16]));
        let k = PracticeKey::generate(0).unwrap();
        let g = k.grant_to(p, b, &bob.public().hpke_pub).unwrap();
        assert_eq!(PracticeKey::open_grant(p, 0, b, &bob, &g).unwrap(), k);
        // Bound to recipient, practice and epoch, and to bob's key.
        assert!(PracticeKey::open_grant(p, 0, a, &bob, &g).is_err());
        assert!(PracticeKey::open_grant(PracticeId::from_bytes([9; 16]), 0, b, &bob, &g).is_err());
        assert!(PracticeKey::open_grant(p, 1, b, &bob, &g).is_err());
        assert!(PracticeKey::open_grant(p, 0, b, &alice, &g).is_err());
    }

    #[test]
    fn history_links_walk_back_and_are_bound() {
        let p = PracticeId::from_bytes([1; 16]);
        let k0 = PracticeKey::generate(0).unwrap();
        let k1 = PracticeKey::generate(1).unwrap();
        let k2 = PracticeKey::generate(2).unwrap();
        let l1 = k1.history_link(p, &k0).unwrap();
        let l2 = k2.history_link(p, &k1).unwrap();
        assert_eq!(k2.open_history_link(p, &l2).unwrap(), k1);
        assert_eq!(k2.open_history_link(p, &l2).unwrap().open_history_link(p, &l1).unwrap(), k0);
        // Only the newer key opens a link, only for its practice; links skip no epoch.
        assert_eq!(k1.open_history_link(p, &l2), Err(CryptoError::Decrypt));
        assert_eq!(k0.open_history_link(p, &l1), Err(CryptoError::Malformed("history link epochs")));
        assert_eq!(k2.open_history_link(PracticeId::from_bytes([2; 16]), &l2), Err(CryptoError::Decrypt));
        assert!(k2.history_link(p, &k0).is_err());
    }

    #[test]
    fn public_key_signature_and_sealing() {
        let alice = UserSecrets::generate().unwrap();
        let p = PracticeId::from_bytes([1; 16]);
        let k = PracticeKey::generate(0).unwrap();
        let sig = k.sign_public(p, &alice);
        let pubk = k.hpke_public();
        verify_practice_public_key(p, 0, &pubk, &alice.public().sign_pub, &sig).unwrap();
        let mut other = pubk;
        other[0] ^= 1;
        assert_eq!(verify_practice_public_key(p, 0, &other, &alice.public().sign_pub, &sig), Err(CryptoError::BadSignature));
        let boxed = hpke_seal(&pubk, b"ctx", b"referral key").unwrap();
        assert_eq!(k.open_sealed(b"ctx", &boxed).unwrap(), b"referral key");
        assert!(PracticeKey::generate(0).unwrap().open_sealed(b"ctx", &boxed).is_err());
    }
}
