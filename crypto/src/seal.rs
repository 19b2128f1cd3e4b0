//! Symmetric sealing with XChaCha20-Poly1305: `version(1) || nonce(24) || ciphertext+tag`.
//! The random 192-bit nonce makes nonce reuse negligible without a counter.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

use crate::{CryptoError, random_array};

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: [u8; NONCE_LEN] = random_array()?;
    let ct = cipher.encrypt(&nonce.into(), Payload { msg: plaintext, aad }).map_err(|_| CryptoError::Decrypt)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let Some((&VERSION, rest)) = sealed.split_first() else {
        return Err(CryptoError::Malformed("sealed box"));
    };
    if rest.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed("sealed box"));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed("nonce"))?;
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher.decrypt(&nonce.into(), Payload { msg: ct, aad }).map_err(|_| CryptoError::Decrypt)
}
