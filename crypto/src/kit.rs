//! The Emergency Access Kit: 256 bits of entropy shown as 24 BIP39 English
//! words in a numbered grid. The last word carries the 8-bit checksum, so a
//! mistyped or swapped word is usually caught here; the rest are caught by the
//! server, which compares `kit_auth` against its stored hash.

use bip39::{Language, Mnemonic};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoError, hkdf32, random_array};

/// Number of words in a kit.
pub const WORDS: usize = 24;

/// A kit's entropy. Shown once at registration, then only the user has it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct EmergencyKit {
    entropy: [u8; 32],
}

impl std::fmt::Debug for EmergencyKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmergencyKit(..)")
    }
}

impl EmergencyKit {
    /// A new random kit.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self { entropy: random_array()? })
    }

    /// The 24 words, in grid order (index 0 is grid position 1).
    pub fn words(&self) -> Vec<String> {
        match Mnemonic::from_entropy_in(Language::English, &self.entropy) {
            Ok(m) => m.words().map(str::to_owned).collect(),
            // 32 bytes is a valid BIP39 entropy length, so this cannot happen.
            Err(_) => unreachable!("32-byte entropy is always a valid mnemonic"),
        }
    }

    /// Reads a kit back from its words in grid order. Words are trimmed and
    /// lower-cased; each must be in the BIP39 English list and the checksum
    /// must hold. Errors name the first bad grid position.
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Result<Self, CryptoError> {
        if words.len() != WORDS {
            return Err(CryptoError::KitWordCount(words.len()));
        }
        let mut normalized = Vec::with_capacity(WORDS);
        for (i, w) in words.iter().enumerate() {
            let w = w.as_ref().trim().to_lowercase();
            if Language::English.find_word(&w).is_none() {
                return Err(CryptoError::KitUnknownWord { position: i + 1 });
            }
            normalized.push(w);
        }
        let phrase = normalized.join(" ");
        let m = Mnemonic::parse_in_normalized(Language::English, &phrase).map_err(|_| CryptoError::KitChecksum)?;
        let mut ent = m.to_entropy();
        let entropy: [u8; 32] = ent.as_slice().try_into().map_err(|_| CryptoError::Malformed("kit entropy"))?;
        ent.zeroize();
        Ok(Self { entropy })
    }

    /// Proves possession of the kit to the server, which stores only a hash of it.
    pub fn auth_key(&self) -> [u8; 32] {
        hkdf32(&self.entropy, b"handoff kit auth key")
    }

    /// Wraps the user's private keys. Never leaves the client.
    pub fn kek(&self) -> [u8; 32] {
        hkdf32(&self.entropy, b"handoff kit kek")
    }
}
