//! Client-side cryptography for Handoff. Everything here runs in the user's
//! browser (compiled to wasm32) or in the native client; the server never links
//! the decrypting half of this crate (CI checks `cargo tree -i handoff-crypto`).
//!
//! What it does:
//! - [`password`]: stretch a password with Argon2id (m=19456 KiB, t=2, p=1) and
//!   split the result with HKDF into an *auth key*, which the server hashes
//!   again and stores as a verifier, and a *key-encryption key* (KEK), which
//!   never leaves the client.
//! - [`kit`]: the Emergency Access Kit, 24 BIP39 English words (256 bits of
//!   entropy plus the 8-bit checksum). From it come a kit auth key and a kit KEK.
//! - [`keys`]: a user's Ed25519 signing key and X25519 HPKE key, and their
//!   wrapping under a KEK with XChaCha20-Poly1305.
//! - [`practice`]: the epoch-versioned practice key, its derived HPKE public
//!   key (signed by the publishing member), grants that seal it to a member,
//!   and the key-history chain that links each epoch key to the one before.
//! - [`referral`] and [`item`]: a referral's content under its key `R`, and
//!   everything added later under a fresh item key wrapped to both practices'
//!   current epoch keys.
//! - [`search_index`]: the key (HKDF from the user's private keys) and the
//!   XChaCha20-Poly1305 seal of the browser's search index.
//! - [`mls`]: the practice's MLS group (mls-rs): identities bound to account
//!   keys and checked against the directory, commits, welcomes, the exporter
//!   that yields each epoch's key, and the user's MLS state as one sealed blob.
//! - [`room`]: a telehealth room's secret and key, sealed check-ins, messages
//!   and external link, the guest's ephemeral key and the HPKE admission.
//!
//! - [`call`]: the built-in video call's signalling, sealed under the call key
//!   with a per-direction counter, and the DTLS fingerprint check.
//!
//! Limits: the server serves public keys; a malicious server could substitute
//! them. Key transparency is future work (see ARCHITECTURE.md).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod call;
pub mod item;
pub mod keys;
pub mod kit;
pub mod mls;
pub mod password;
pub mod practice;
pub mod referral;
pub mod room;
mod seal;
pub mod search_index;

pub use keys::{UserPublicKeys, UserSecrets};
pub use kit::EmergencyKit;
pub use password::PasswordKeys;
pub use practice::PracticeKey;
pub use referral::{ReferralContent, ReferralKey};

/// Every way a cryptographic operation can fail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system's random source failed.
    #[error("no randomness available")]
    Random,
    /// Argon2 refused its parameters or inputs.
    #[error("password stretching failed")]
    Kdf,
    /// A ciphertext did not authenticate: wrong key, or tampered data.
    #[error("decryption failed: wrong key or corrupted data")]
    Decrypt,
    /// A key or ciphertext had the wrong length or encoding.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A kit word is not in the BIP39 English list. Positions count from 1.
    #[error("word {position} of the kit is not a kit word")]
    KitUnknownWord {
        /// Grid position, 1-based.
        position: usize,
    },
    /// An MLS operation failed (bad message, wrong epoch, unknown member, ...).
    #[error("MLS: {0}")]
    Mls(String),
    /// The kit does not have exactly 24 words.
    #[error("the kit has 24 words; {0} were given")]
    KitWordCount(usize),
    /// All words are valid, but not in the order the kit printed them.
    #[error("the kit words are not in their grid positions (checksum mismatch)")]
    KitChecksum,
    /// An MLS commit does not do what its log entry declares (another
    /// committer, hidden adds or removes, or a proposal other than adding and
    /// removing members): the client refuses it.
    #[error("the commit does not do what its log entry declares: {0}")]
    Undeclared(String),
}

/// Fills an array from the OS random source (the browser's `crypto.getRandomValues` on wasm).
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// HKDF-SHA256 expand of `ikm` under a fixed label, 32 bytes out.
pub(crate) fn hkdf32(ikm: &[u8], label: &[u8]) -> [u8; 32] {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"handoff v1"), ikm);
    let mut out = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so this cannot fail.
    if hk.expand(label, &mut out).is_err() {
        unreachable!("HKDF output length is fixed and valid");
    }
    out
}
