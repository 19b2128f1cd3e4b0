//! Password stretching (ARCHITECTURE.md, "Privacy model as built", point 1): the server never sees
//! the password, nor anything that opens the user's keys more cheaply than one
//! Argon2id run per guess.
//!
//! `S = Argon2id(password, salt; m=19456 KiB, t=2, p=1)`, then
//! `auth_key = HKDF(S, "auth")` goes to the server (which stores only
//! `Argon2id(auth_key)`), and `kek = HKDF(S, "kek")` stays here.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptoError, hkdf32};

/// Argon2id memory cost, KiB (OWASP; the argon2 crate's default).
pub const M_KIB: u32 = 19_456;
/// Argon2id passes.
pub const T: u32 = 2;
/// Argon2id lanes.
pub const P: u32 = 1;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Shortest password accepted by the client.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The two keys a password yields.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PasswordKeys {
    /// Sent to the server, which hashes it again before storing.
    pub auth_key: [u8; 32],
    /// Wraps the user's private keys. Never leaves the client.
    pub kek: [u8; 32],
}

impl std::fmt::Debug for PasswordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordKeys(..)")
    }
}

impl PasswordKeys {
    /// Stretches `password` with the given salt and the fixed OWASP parameters.
    pub fn derive(password: &str, salt: &[u8]) -> Result<Self, CryptoError> {
        Self::derive_with(password, salt, M_KIB, T, P)
    }

    /// As [`derive`](Self::derive), with the parameters the server announced.
    /// Refuses anything weaker than the OWASP floor, so a malicious server
    /// cannot talk the client into cheap stretching.
    pub fn derive_with(password: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<Self, CryptoError> {
        if m_kib < M_KIB || t < T || p < P || salt.len() < SALT_LEN {
            return Err(CryptoError::Kdf);
        }
        let params = Params::new(m_kib, t, p, Some(32)).map_err(|_| CryptoError::Kdf)?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut stretched = [0u8; 32];
        argon.hash_password_into(password.as_bytes(), salt, &mut stretched).map_err(|_| CryptoError::Kdf)?;
        let keys = Self { auth_key: hkdf32(&stretched, b"handoff password auth key"), kek: hkdf32(&stretched, b"handoff password kek") };
        stretched.zeroize();
        Ok(keys)
    }
}

/// A fresh random salt.
pub fn new_salt() -> Result<[u8; SALT_LEN], CryptoError> {
    crate::random_array()
}
