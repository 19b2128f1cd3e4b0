//! A user's long-term keys: Ed25519 for signatures, X25519 (HPKE, RFC 9180
//! DHKEM(X25519, HKDF-SHA256)) for receiving practice-key grants.
//!
//! The private halves travel only sealed: `seal(KEK, "handoff user keys", sign_sk || hpke_seed)`,
//! once under the password KEK and once under the kit KEK.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hpke::{Deserializable, Kem as _, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoError, random_array, seal};

pub(crate) type Kem = hpke::kem::X25519HkdfSha256;
const WRAP_AAD: &[u8] = b"handoff user keys v1";

/// The private keys. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct UserSecrets {
    sign_sk: [u8; 32],
    hpke_seed: [u8; 32],
}

impl std::fmt::Debug for UserSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSecrets(..)")
    }
}

/// The public halves, as published in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPublicKeys {
    /// Ed25519 verifying key.
    pub sign_pub: [u8; 32],
    /// X25519 HPKE public key.
    pub hpke_pub: [u8; 32],
}

impl UserSecrets {
    /// New random keys.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self { sign_sk: random_array()?, hpke_seed: random_array()? })
    }

    /// The public halves.
    pub fn public(&self) -> UserPublicKeys {
        let sign_pub = SigningKey::from_bytes(&self.sign_sk).verifying_key().to_bytes();
        let (_, pk) = Kem::derive_keypair(&self.hpke_seed);
        let mut hpke_pub = [0u8; 32];
        pk.write_exact(&mut hpke_pub);
        UserPublicKeys { sign_pub, hpke_pub }
    }

    /// Seals the private keys under a KEK.
    pub fn wrap(&self, kek: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let mut plain = [0u8; 64];
        plain[..32].copy_from_slice(&self.sign_sk);
        plain[32..].copy_from_slice(&self.hpke_seed);
        let out = seal::seal(kek, WRAP_AAD, &plain);
        plain.zeroize();
        out
    }

    /// Opens keys sealed by [`wrap`](Self::wrap). Fails with `Decrypt` under a wrong KEK.
    pub fn unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Self, CryptoError> {
        let mut plain = seal::open(kek, WRAP_AAD, wrapped)?;
        if plain.len() != 64 {
            plain.zeroize();
            return Err(CryptoError::Malformed("user keys"));
        }
        let mut s = Self { sign_sk: [0; 32], hpke_seed: [0; 32] };
        let (sign, hpke) = plain.split_at(32);
        s.sign_sk.copy_from_slice(sign);
        s.hpke_seed.copy_from_slice(hpke);
        plain.zeroize();
        Ok(s)
    }

    /// The raw private key bytes (`sign_sk || hpke_seed`), so tests can scan
    /// stored data for leaks. Never send these anywhere.
    pub fn expose_for_tests(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.sign_sk);
        out[32..].copy_from_slice(&self.hpke_seed);
        out
    }

    /// Signs a message with the Ed25519 key.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        SigningKey::from_bytes(&self.sign_sk).sign(msg).to_bytes()
    }

    /// The Ed25519 key pair as `secret || public` (64 bytes), the form the MLS
    /// provider takes: a user's MLS signature key is their account key.
    pub(crate) fn sign_keypair_bytes(&self) -> [u8; 64] {
        SigningKey::from_bytes(&self.sign_sk).to_keypair_bytes()
    }

    /// A 32-byte key derived from the private keys under `label` (e.g. the
    /// key that seals the user's MLS state). Only this user can compute it.
    pub(crate) fn derive_key(&self, label: &[u8]) -> [u8; 32] {
        let mut ikm = [0u8; 64];
        ikm[..32].copy_from_slice(&self.sign_sk);
        ikm[32..].copy_from_slice(&self.hpke_seed);
        let out = crate::hkdf32(&ikm, label);
        ikm.zeroize();
        out
    }

    /// Opens an HPKE single-shot box sealed to this user's public key.
    pub fn hpke_open(&self, info: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (sk, _) = Kem::derive_keypair(&self.hpke_seed);
        hpke_open(&sk, info, sealed)
    }
}

/// Verifies an Ed25519 signature (strict: rejects malleable encodings).
pub fn verify(sign_pub: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let pk: [u8; 32] = sign_pub.try_into().map_err(|_| CryptoError::Malformed("signing key"))?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|_| CryptoError::Malformed("signing key"))?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| CryptoError::Malformed("signature"))?;
    vk.verify_strict(msg, &Signature::from_bytes(&sig)).map_err(|_| CryptoError::BadSignature)
}

type Aead = hpke::aead::ChaCha20Poly1305;
type Kdf = hpke::kdf::HkdfSha256;
const ENC_LEN: usize = 32;

/// HPKE base-mode single-shot seal (RFC 9180 §6.1) to an X25519 public key:
/// returns `enc(32) || ciphertext`.
pub fn hpke_seal(recipient_pub: &[u8], info: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_pub).map_err(|_| CryptoError::Malformed("HPKE public key"))?;
    let (enc, ct) =
        hpke::single_shot_seal::<Aead, Kdf, Kem>(&hpke::OpModeS::Base, &pk, info, plaintext, b"").map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(ENC_LEN + ct.len());
    let mut enc_bytes = [0u8; ENC_LEN];
    enc.write_exact(&mut enc_bytes);
    out.extend_from_slice(&enc_bytes);
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn hpke_open(sk: &<Kem as hpke::Kem>::PrivateKey, info: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < ENC_LEN + 16 {
        return Err(CryptoError::Malformed("HPKE box"));
    }
    let (enc, ct) = sealed.split_at(ENC_LEN);
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| CryptoError::Malformed("HPKE box"))?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&hpke::OpModeR::Base, sk, &enc, info, ct, b"").map_err(|_| CryptoError::Decrypt)
}
